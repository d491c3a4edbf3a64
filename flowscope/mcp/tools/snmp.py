"""SNMP device tools: the registry of polled devices, their snapshots, interfaces and rates."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, BeforeValidator, Field

from flowscope.mcp.toolkit import Returns, ToolContext, ToolError, tool
from flowscope.services.snmp.registry import canonical_version

DEVICE_DESC = "name, from list_snmp_devices"


def _svc(call: ToolContext):
    return call.component("snmp")


def _visible_device(call: ToolContext, name: str):
    from flowscope.services.snmp import RegistryError

    svc = _svc(call)
    try:
        return svc, svc.device_for(call.principal, name)
    except RegistryError as exc:
        raise ToolError(str(exc)) from None


async def _run(fn, *args, **kw):
    from flowscope.services.snmp import RegistryError

    try:
        return await asyncio.to_thread(fn, *args, **kw)
    except RegistryError as exc:
        raise ToolError(str(exc)) from None


def _bps(v: Optional[float]) -> str:
    if v is None:
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= div:
            return f"{v / div:.2f} {unit}bit/s"
    return f"{v:.0f} bit/s"


# ---------------------------------------------------------------- list_snmp_devices

class ListSnmpDevicesParams(BaseModel):
    limit: int = Field(100, ge=1, le=1000, description="Max devices")
    offset: int = Field(0, ge=0, description="Skip this many devices (paging)")


class SnmpDeviceSummary(BaseModel):
    name: str
    host: str
    port: int
    version: str
    enabled: bool
    interval_s: int
    reachable: Optional[bool] = Field(description="Outcome of the last poll; null before the first one")
    last_poll: Optional[str] = Field(description="UTC time of the last poll attempt")
    last_success: Optional[str] = Field(description="UTC time of the last successful poll")
    interface_count: int
    sys_name: str = ""
    error: str = Field("", description="Why the last poll failed, when it did")
    created_by: str = Field("", description="Who registered it (cli: the server's command line)")


class ListSnmpDevicesResult(BaseModel):
    devices: list[SnmpDeviceSummary]
    total: int
    truncated: bool
    next_offset: Optional[int] = None

    def text(self) -> str:
        if not self.devices:
            return "No SNMP devices registered. Add one with add_snmp_device."
        lines = [f"{self.total} SNMP device(s):"]
        for d in self.devices:
            state = {True: "reachable", False: "UNREACHABLE", None: "not polled yet"}[d.reachable]
            lines.append(f"{d.name} {d.host}:{d.port} {d.version} [{state}] interfaces={d.interface_count} "
                         f"last_poll={d.last_poll or '-'}" + (f" error: {d.error}" if d.error else ""))
        if self.truncated:
            lines.append(f"... more: offset={self.next_offset}")
        return "\n".join(lines)


@tool(returns=Returns.OWNED, title="List SNMP devices", example={"limit": 20})
async def list_snmp_devices(call: ToolContext, params: ListSnmpDevicesParams) -> ListSnmpDevicesResult:
    """Polled SNMP devices with reachability, last poll and interface count.

    List the SNMP devices being polled, each with reachability (outcome of its last poll), the
    time of its last poll and last success, its interface count and, when unreachable, why. Use
    get_snmp_device_info for one device's interfaces and neighbours."""
    svc = _svc(call)
    rows = await _run(svc.list_devices, call.principal)
    page = rows[params.offset:params.offset + params.limit]
    more = params.offset + params.limit < len(rows)
    return ListSnmpDevicesResult(devices=[SnmpDeviceSummary(**{k: v for k, v in r.items() if k != "polling_now"})
                                          for r in page],
                                 total=len(rows), truncated=more,
                                 next_offset=params.offset + params.limit if more else None)


# ---------------------------------------------------------------- get_snmp_device_info

class GetSnmpDeviceInfoParams(BaseModel):
    device: str = Field(description=DEVICE_DESC)
    interface_offset: int = Field(0, ge=0)
    interface_limit: int = Field(50, ge=1, le=500)
    neighbor_limit: int = Field(100, ge=0, le=1000)


class SnmpDeviceInfoResult(BaseModel):
    name: str
    host: str
    port: int
    version: str
    reachable: Optional[bool]
    last_poll: Optional[str]
    last_success: Optional[str] = None
    error: str = ""
    system: Optional[dict[str, Any]] = Field(description="sysDescr, sysObjectID, sysName, sysLocation, sysContact, uptime")
    ip_addresses: list[str] = Field(default_factory=list)
    interface_count: int
    interfaces: list[dict[str, Any]] = Field(description="Interfaces of the last successful poll with current rates")
    truncated: bool = Field(description="More interfaces exist: page with interface_offset")
    next_offset: Optional[int] = None
    neighbors: list[dict[str, Any]] = Field(description="LLDP and CDP neighbours")
    neighbors_truncated: bool = False
    fdb_count: int = Field(0, description="MAC addresses in the bridge forwarding table (table snmp_fdb)")
    warnings: list[str] = Field(default_factory=list)

    def text(self) -> str:
        st = {True: "reachable", False: "UNREACHABLE", None: "not polled yet"}[self.reachable]
        lines = [f"{self.name} {self.host}:{self.port} {self.version} [{st}] last_poll={self.last_poll}"]
        if self.error:
            lines.append(f"error: {self.error}")
        if self.system:
            s = self.system
            lines.append(f"sysName={s.get('sys_name')!r} location={s.get('sys_location')!r} "
                         f"contact={s.get('sys_contact')!r} uptime={s.get('uptime_s')}s oid={s.get('sys_object_id')}")
            lines.append(f"sysDescr: {s.get('sys_descr')}")
        lines.append(f"{self.interface_count} interfaces (showing {len(self.interfaces)}):")
        for i in self.interfaces:
            r = i.get("rates") or {}
            lines.append(f"  {i['if_index']} {i['if_name']} [{i['admin_status']}/{i['oper_status']}] "
                         f"speed={_bps(i['speed_bps'] or None)} in={_bps(r.get('in_bps'))} out={_bps(r.get('out_bps'))}"
                         + (f" alias={i['if_alias']!r}" if i.get("if_alias") else ""))
        if self.truncated:
            lines.append(f"  ... more: interface_offset={self.next_offset}")
        if self.neighbors:
            lines.append(f"{len(self.neighbors)} neighbour(s):")
            for n in self.neighbors:
                lines.append(f"  {n['protocol']} {n['local_port']} -> {n['remote_name'] or n['remote_chassis_id']} "
                             f"port {n['remote_port_id']}" + (f" {n['remote_address']}" if n.get("remote_address") else ""))
        return "\n".join(lines)


@tool(returns=Returns.OWNED, title="SNMP device info", example={"device": "core-sw1", "interface_limit": 20})
async def get_snmp_device_info(call: ToolContext, params: GetSnmpDeviceInfoParams) -> SnmpDeviceInfoResult:
    """One SNMP device: system, addresses, interfaces with rates, LLDP/CDP neighbours (paged).

    Full snapshot of one SNMP device from its last successful poll: system group (sysDescr,
    sysName, location, contact, uptime), its IP addresses, interfaces (name, alias, speed,
    admin/oper status, counters and current rates: bps in/out, utilisation %, errors/s), and
    LLDP/CDP neighbours. Interfaces are paged: interface_offset / interface_limit."""
    svc, _dev = _visible_device(call, params.device)
    info = await _run(svc.device_info, params.device, params.interface_offset, params.interface_limit,
                      params.neighbor_limit)
    info["next_offset"] = params.interface_offset + params.interface_limit if info["truncated"] else None
    info.pop("offset", None)
    return SnmpDeviceInfoResult(**info)


# ---------------------------------------------------------------- get_snmp_interface_details

class GetSnmpInterfaceDetailsParams(BaseModel):
    device: str = Field(description=DEVICE_DESC)
    if_index: Optional[int] = Field(None, ge=0)
    if_name: Optional[str] = Field(None, max_length=256, description="ifName or ifDescr")
    history_limit: int = Field(60, ge=1, le=2000)
    changes_limit: int = Field(50, ge=1, le=1000)


class SnmpInterfaceDetailsResult(BaseModel):
    device: str
    interface: dict[str, Any] = Field(description="Latest counters and status (cumulative raw counters)")
    current_rates: Optional[dict[str, Any]] = Field(description="Rates over the last poll interval")
    history: list[dict[str, Any]] = Field(description="Recent rate samples, oldest first")
    status_changes: list[dict[str, Any]] = Field(description="Interface up/down events, newest first")

    def text(self) -> str:
        i = self.interface
        lines = [f"{self.device} {i['if_index']} {i['if_name']} [{i['admin_status']}/{i['oper_status']}] "
                 f"speed={_bps(i['speed_bps'] or None)} alias={i.get('if_alias')!r} mac={i.get('phys_address')}",
                 f"counters: in_octets={i['in_octets']} out_octets={i['out_octets']} in_errors={i['in_errors']} "
                 f"out_errors={i['out_errors']} in_discards={i['in_discards']} out_discards={i['out_discards']}"]
        r = self.current_rates
        if r:
            lines.append(f"rates: in={_bps(r.get('in_bps'))} out={_bps(r.get('out_bps'))} "
                         f"util in={r.get('in_util')}% out={r.get('out_util')}% "
                         f"errors/s in={r.get('in_errors_ps')} out={r.get('out_errors_ps')}")
        else:
            lines.append("rates: none yet (need two polls)")
        lines.append(f"{len(self.history)} rate sample(s); {len(self.status_changes)} status change(s)")
        for e in self.status_changes[:10]:
            lines.append(f"  {e['time']} {e['event']}: {e['description']}")
        return "\n".join(lines)


@tool(returns=Returns.OWNED, title="SNMP interface details", example={"device": "core-sw1", "if_name": "Gi1/0/1"})
async def get_snmp_interface_details(call: ToolContext, params: GetSnmpInterfaceDetailsParams
                                     ) -> SnmpInterfaceDetailsResult:
    """One SNMP interface: counters, status, rates, rate history and status changes.

    One interface of an SNMP device: its latest raw counters and status, the current rates
    (bps, utilisation %, packets/s, errors/s, discards/s), recent rate history (for a chart) and
    its up/down status changes. Name it by if_index or if_name."""
    svc, _dev = _visible_device(call, params.device)
    if params.if_index is None and not params.if_name:
        raise ToolError("give if_index or if_name (get_snmp_device_info lists the interfaces)")
    d = await _run(svc.interface_details, params.device, params.if_index, params.if_name,
                   params.history_limit, params.changes_limit)
    return SnmpInterfaceDetailsResult(**d)


# ---------------------------------------------------------------- get_snmp_device_config

class GetSnmpDeviceConfigParams(BaseModel):
    device: str = Field(description=DEVICE_DESC)


class SnmpDeviceConfigResult(BaseModel):
    config: dict[str, Any] = Field(description="Polling configuration; secrets are always shown as ****")

    def text(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.config.items())


@tool(returns=Returns.OWNED, title="SNMP device config", example={"device": "core-sw1"})
async def get_snmp_device_config(call: ToolContext, params: GetSnmpDeviceConfigParams) -> SnmpDeviceConfigResult:
    """How one SNMP device is polled (secrets masked).

    How one SNMP device is polled: address, port, SNMP version, v3 user, security level and
    protocols, interval, timeout, retries and poll budget. Community strings and passphrases are
    never returned: they show as ****."""
    svc, _dev = _visible_device(call, params.device)
    return SnmpDeviceConfigResult(config=await _run(svc.device_config, params.device))


# ---------------------------------------------------------------- add / remove

class AddSnmpDeviceParams(BaseModel):
    host: str = Field(max_length=253, description="Device address (IP or DNS name)")
    name: Optional[str] = Field(None, max_length=128, description="default: the address")
    port: int = Field(161, ge=1, le=65535, description="UDP port of the agent")
    version: Annotated[Literal["v1", "v2c", "v3"], BeforeValidator(canonical_version)] = Field(
        "v2c", description="also 2c, 2, 1, 3")
    community: Optional[str] = Field(None, max_length=255, description="v1, v2c",
                                     json_schema_extra={"secret": True})
    user: Optional[str] = Field(None, max_length=32, description="v3")
    security_level: Optional[Literal["noAuthNoPriv", "authNoPriv", "authPriv"]] = Field(
        None, description="v3 (default: from the passphrases)")
    auth_protocol: Optional[Literal["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]] = Field(
        None, description="v3 (default SHA)")
    auth_passphrase: Optional[str] = Field(None, min_length=8, max_length=256, description="v3",
                                           json_schema_extra={"secret": True})
    priv_protocol: Optional[Literal["DES", "AES", "AES-192", "AES-256", "AES-192C", "AES-256C"]] = Field(
        None, description="v3 (default AES)")
    priv_passphrase: Optional[str] = Field(None, min_length=8, max_length=256, description="v3",
                                           json_schema_extra={"secret": True})
    context: str = Field("", max_length=64, description="v3")
    interval_s: int = Field(60, ge=10, le=86400)
    timeout_s: float = Field(2.0, ge=0.2, le=30)
    retries: int = Field(1, ge=0, le=5)
    store_if_unreachable: bool = Field(False, description="even if the first poll gets no answer")


class AddSnmpDeviceResult(BaseModel):
    added: bool
    device: str
    config: Optional[dict[str, Any]] = Field(None, description="The stored configuration, secrets masked")
    first_poll: dict[str, Any] = Field(description="What the first poll found, or why it failed")

    def text(self) -> str:
        p = self.first_poll
        if p.get("ok"):
            head = f"Added {self.device}: " if self.added else f"{self.device}: "
            return (head + f"sysName={p.get('sys_name')!r}, {p.get('interfaces')} interfaces "
                    f"({p.get('interfaces_up')} up), {p.get('lldp_neighbors')} LLDP and {p.get('cdp_neighbors')} "
                    f"CDP neighbours, {p.get('fdb_macs')} MACs; polled in {p.get('duration_s')}s. "
                    f"{p.get('sys_descr', '')[:200]}")
        verdict = "Added anyway (store_if_unreachable)" if self.added else "Not added"
        return f"{verdict}: {p.get('error')}"


@tool(returns=Returns.OWNED, write=True, title="Add SNMP device",
      example={"host": "192.0.2.10", "version": "v2c", "community": "public"})
async def add_snmp_device(call: ToolContext, params: AddSnmpDeviceParams) -> AddSnmpDeviceResult:
    """Register an SNMP device (v1, v2c, v3) and poll it once: what it found, or why it failed.

    Register a device for SNMP polling and poll it once at once. v1/v2c need a read community;
    v3 needs a user and, for authNoPriv/authPriv, passphrases (8+ characters). Answers what the
    first poll found (system, interfaces, neighbours) or why it failed in plain words (no answer,
    wrong community, authentication failure, unknown user); a device whose first poll fails is
    not stored. Credentials are stored encrypted and can never be read back. The host (names are
    resolved) must be inside your allowed networks; loopback, link-local and metadata addresses are
    for admins only; each poll re-checks with the owner's current rights."""
    svc = _svc(call)
    host = params.host
    from flowscope.services.snmp import RegistryError

    try:
        dev, out = await svc.add_device(
            name=params.name, host=host, port=params.port, version=params.version, community=params.community,
            user=params.user, security_level=params.security_level, auth_protocol=params.auth_protocol,
            auth_pass=params.auth_passphrase, priv_protocol=params.priv_protocol, priv_pass=params.priv_passphrase,
            context=params.context, interval_s=params.interval_s, timeout_s=params.timeout_s,
            retries=params.retries, principal=call.principal,
            require_answer=not params.store_if_unreachable)
    except RegistryError as exc:
        raise ToolError(str(exc)) from None
    stored = svc.registry.get(dev.name)
    added = stored is not None
    if not out.ok and not added:
        raise ToolError(f"{dev.name} was not added: {out.error}")
    return AddSnmpDeviceResult(added=added, device=dev.name, config=stored.public() if stored else None,
                               first_poll=out.summary())


class RemoveSnmpDeviceParams(BaseModel):
    device: str = Field(description=DEVICE_DESC)


class RemoveSnmpDeviceResult(BaseModel):
    removed: bool
    device: str

    def text(self) -> str:
        return (f"Removed {self.device}: no longer polled (its history stays in the snmp_* tables)."
                if self.removed else f"No device {self.device}.")


@tool(returns=Returns.OWNED, write=True, title="Remove SNMP device", example={"device": "core-sw1"})
async def remove_snmp_device(call: ToolContext, params: RemoveSnmpDeviceParams) -> RemoveSnmpDeviceResult:
    """Stop polling a device and delete its credentials; its history stays.

    Stop polling a device you registered (admins: any) and delete it (and its credentials) from the
    registry. Its history stays in the snmp_* tables until their retention expires."""
    svc = _svc(call)
    removed = await _run(svc.remove_device, params.device, call.principal)
    return RemoveSnmpDeviceResult(removed=removed, device=params.device)
