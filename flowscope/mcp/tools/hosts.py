"""Host tools: what is this host, this MAC, the asset inventory, the LAN, countries and talkers."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, Field

from flowscope.mcp.toolkit import ToolContext, ToolError, tool
from flowscope.services.flows import FlowQueryError, iso, parse_time
from flowscope.services.hosts import geo as geo_mod
from flowscope.services.hosts import queries as host_queries
from flowscope.services.hosts import service
from flowscope.services.hosts.model import Identity, canonical_ip
from flowscope.services.hosts.netinfo import is_locally_administered, mac_text, manufacturer

TIME_HELP = "ISO time, epoch seconds, or a span back from now such as 15m, 24h, 7d"


def _svc(call: ToolContext):
    return service(call.app)


def _ip(text: str) -> str:
    ip = canonical_ip((text or "").strip().split("%")[0])
    if not ip:
        raise ToolError(f"not an IP address: {text!r} (give an IPv4 or IPv6 address, e.g. 192.168.1.10)")
    return ip


def _times(begin: str | None, end: str | None) -> tuple[float | None, float | None]:
    try:
        return parse_time(begin), parse_time(end)
    except FlowQueryError as exc:
        raise ToolError(str(exc)) from None


def _t(ts: Any) -> str | None:
    return iso(ts) if ts else None


async def _run(fn, *args, **kw):
    return await asyncio.to_thread(fn, *args, **kw)


# ---- shared models ----------------------------------------------------------------------------

class Totals(BaseModel):
    bytes_sent: int = 0
    bytes_rcvd: int = 0
    packets_sent: int = 0
    packets_rcvd: int = 0
    flows: int = 0
    flows_as_client: int = 0
    flows_as_server: int = 0
    first_seen: str | None = None
    last_seen: str | None = None
    score: int = Field(0, description="Sum of the flows' scores")
    active_flows: int | None = Field(None, description="Live only: flows still active")

    @classmethod
    def of(cls, d: dict[str, Any]) -> "Totals":
        return cls(**{k: (int(v) if isinstance(v, (int, float)) and k not in ("first_seen", "last_seen") else v)
                      for k, v in d.items() if k in cls.model_fields and k not in ("first_seen", "last_seen")},
                   first_seen=_t(d.get("first_seen")), last_seen=_t(d.get("last_seen")))


class NameInfo(BaseModel):
    name: str
    source: str = Field(description="dhcp, mdns, netbios, dhcpv6, tls_sni, http_host, quic_sni or dns")
    first_seen: str | None = None
    last_seen: str | None = None


class OsEvidence(BaseModel):
    os: str
    source: str = Field(description="dhcp_vendor, user_agent, dhcp_fingerprint, hostname or tcp_fingerprint")
    detail: str


class Location(BaseModel):
    country_code: str = ""
    country_name: str = ""
    city: str = ""
    asn: int = Field(0, description="AS number (0 unless a MaxMind ASN database is configured)")
    as_name: str = ""
    source: str = Field("", description="maxmind, geoip2fast, or empty for private/unknown addresses")


class Identification(BaseModel):
    name: str = ""
    name_source: str = ""
    names: list[NameInfo] = []
    label: str = Field("", description="Label set by a user (set_host_label)")
    mac: str = ""
    manufacturer: str = ""
    gateway_mac: str = Field("", description="Remote hosts: MAC of the router they are reached through")
    gateway_manufacturer: str = ""
    device_type: str = ""
    os: str = ""
    os_evidence: list[OsEvidence] = []
    mdns_services: list[str] = []
    dhcp: dict[str, str] = {}
    user_agents: list[str] = []


def _identification(idents: list[Identity], label: str = "") -> Identification:
    if not idents:
        return Identification(label=label)
    d = max(idents, key=lambda i: i.last_seen).as_dict()
    return Identification(
        name=d["name"], name_source=d["name_source"], names=[NameInfo(**n) for n in d["names"]], label=label,
        mac=d["mac"], manufacturer=d["manufacturer"], gateway_mac=d["gateway_mac"],
        gateway_manufacturer=manufacturer(d["gateway_mac"]) if d["gateway_mac"] else "",
        device_type=d["device_type"], os=d["os"],
        os_evidence=[OsEvidence(os=e["os"], source=e["source"], detail=e["detail"]) for e in d["os_evidence"]],
        mdns_services=d["mdns_services"], dhcp=d["dhcp"], user_agents=d["user_agents"])


class AppBytes(BaseModel):
    application: str
    bytes: int
    bytes_sent: int | None = None
    bytes_rcvd: int | None = None
    flows: int | None = None


class L4Bytes(BaseModel):
    l4_proto: str
    bytes: int
    bytes_sent: int
    bytes_rcvd: int
    flows: int


class Peer(BaseModel):
    ip: str
    name: str = ""
    bytes: int
    bytes_sent: int | None = None
    bytes_rcvd: int | None = None
    flows: int | None = None
    applications: list[str] = []
    country_code: str = ""


class Service(BaseModel):
    proto: str
    port: int
    application: str = ""
    flows: int = 0
    clients: int = 0
    bytes: int = 0


class LiveView(BaseModel):
    totals: Totals
    applications: list[AppBytes]
    peers: list[Peer]


# ---- get_host_info ------------------------------------------------------------------------------

class HostInfoParams(BaseModel):
    ip: str = Field(description="Host IPv4 or IPv6 address")
    vlan: int | None = Field(None, ge=0, le=4095, description="VLAN id (default: all VLANs)")
    top: int = Field(10, ge=1, le=100, description="How many peers, applications, protocols and services")
    begin: str | None = Field(None, description="History start: " + TIME_HELP + "; default all history")
    end: str | None = Field(None, description="History end: " + TIME_HELP + "; default now")


class HostInfo(BaseModel):
    ip: str
    vlan: int | None
    vlans: list[int] = Field(description="VLANs the address was seen on")
    is_local: bool
    local_network: str = ""
    identity: Identification
    location: Location
    live: LiveView = Field(description="From the live flow table (current flows)")
    historical: Totals = Field(description="From the flows history (finished flows) in the time range")
    applications: list[AppBytes] = Field(description="Top applications by bytes (history)")
    l4_protocols: list[L4Bytes]
    peers: list[Peer] = Field(description="Top peers by bytes (history)")
    peers_total: int = 0
    services: list[Service] = Field(description="Listening services observed: server ports that answered")
    first_seen: str | None = None
    last_seen: str | None = None
    score: int = Field(0, description="Host score from the alerts engine")
    alerts: int = Field(0, description="Engaged alerts from the alerts engine")
    truncated: bool = Field(description="More peers than returned: raise top")

    def text(self) -> str:
        i = self.identity
        lines = [f"{self.ip}{' vlan ' + str(self.vlan) if self.vlan is not None else ''} "
                 f"({'local ' + self.local_network if self.is_local else 'remote'})"
                 f"{' ' + i.name + ' [' + i.name_source + ']' if i.name else ''}"
                 f"{' label ' + repr(i.label) if i.label else ''}"]
        if i.mac:
            lines.append(f"MAC {i.mac} {i.manufacturer}".rstrip())
        if i.gateway_mac:
            lines.append(f"via gateway {i.gateway_mac} {i.gateway_manufacturer}".rstrip())
        if i.os or i.device_type:
            lines.append(f"OS {i.os or '?'} device {i.device_type or '?'}"
                         + (f" ({'; '.join(e.source + ': ' + e.detail for e in i.os_evidence[:3])})" if i.os_evidence else ""))
        loc = self.location
        if loc.country_code or loc.as_name:
            lines.append(f"location {loc.country_code} {loc.country_name} AS{loc.asn} {loc.as_name}".rstrip())
        h, lv = self.historical, self.live.totals
        lines.append(f"history: sent {h.bytes_sent} B/{h.packets_sent} pkts, received {h.bytes_rcvd} B/"
                     f"{h.packets_rcvd} pkts, {h.flows_as_client} flows as client, {h.flows_as_server} as server, "
                     f"{h.first_seen} .. {h.last_seen}")
        lines.append(f"live: sent {lv.bytes_sent} B, received {lv.bytes_rcvd} B, {lv.flows} flows")
        if self.applications:
            lines.append("apps: " + ", ".join(f"{a.application} {a.bytes} B" for a in self.applications))
        if self.peers:
            lines.append("peers: " + ", ".join(f"{p.ip}{' (' + p.name + ')' if p.name else ''} {p.bytes} B"
                                               for p in self.peers))
        if self.services:
            lines.append("services: " + ", ".join(f"{s.proto}/{s.port} {s.application}" for s in self.services))
        if len(i.names) > 1:
            lines.append("names: " + ", ".join(f"{n.name} [{n.source}]" for n in i.names))
        return "\n".join(lines)


def _label(app, ip: str) -> str:
    try:
        return app.store.query("SELECT argMax(label, updated_at) FROM host_labels WHERE ip = {ip:String}",
                               {"ip": ip}).scalar() or ""
    except Exception:
        return ""


def _name_of(svc, ip: str) -> str:
    idents = svc.model.get_host(ip)
    for i in idents:
        if i.name:
            return i.name
    return ""


def host_info(app, principal, p: HostInfoParams) -> HostInfo:
    ip = _ip(p.ip)
    if not principal.can_see(ip):
        raise ToolError(f"{ip} is outside your allowed networks")
    begin, end = _times(p.begin, p.end)
    svc = service(app)
    hist = host_queries.host_history(app.store, ip, p.vlan, begin, end, p.top)
    live = host_queries.live_host(host_queries.live_rows(app), ip, p.vlan, p.top)
    idents = svc.model.get_host(ip, p.vlan)
    ident = _identification(idents, _label(app, ip))
    loc = geo_mod.lookup(ip).as_dict()
    peers = [Peer(name=_name_of(svc, r["ip"]), country_code=geo_mod.lookup(r["ip"]).country_code, **r)
             for r in hist["peers"]]
    svcs = [Service(**r) for r in hist["services"]]
    known = {(s.proto, s.port) for s in svcs}
    for i in idents:  # services learned from packets (e.g. DHCP server) or flows not in the range
        for key, app_name in i.services.items():
            proto, _, port = key.partition("/")
            if (proto, int(port)) not in known and len(svcs) < p.top:
                svcs.append(Service(proto=proto, port=int(port), application=app_name))
                known.add((proto, int(port)))
    ht, lt = hist["totals"], live["totals"]
    firsts = [x for x in (ht.get("first_seen"), lt.get("first_seen")) + tuple(i.first_seen for i in idents) if x]
    lasts = [x for x in (ht.get("last_seen"), lt.get("last_seen")) + tuple(i.last_seen for i in idents) if x]
    if not ht["flows"] and not lt["flows"] and not idents:
        raise ToolError(f"{ip} has not been seen{' on vlan ' + str(p.vlan) if p.vlan is not None else ''}"
                        f"{' in that time range' if begin or end else ''}: check the address, or list hosts "
                        "with get_top_talkers")
    is_local = svc.local.is_local(ip)
    vlans = sorted(set(hist["vlans"]) | {i.vlan for i in idents})
    return HostInfo(
        ip=ip, vlan=p.vlan, vlans=vlans, is_local=is_local, local_network=svc.local.network_of(ip),
        identity=ident, location=Location(**loc),
        live=LiveView(totals=Totals.of(lt), applications=[AppBytes(**a) for a in live["applications"]],
                      peers=[Peer(name=_name_of(svc, r["ip"]), **r) for r in live["peers"]]),
        historical=Totals.of(ht), applications=[AppBytes(**a) for a in hist["applications"]],
        l4_protocols=[L4Bytes(**r) for r in hist["l4_protocols"]], peers=peers,
        peers_total=int(hist.get("peers_total", 0)), services=svcs,
        first_seen=_t(min(firsts)) if firsts else None, last_seen=_t(max(lasts)) if lasts else None,
        score=max((i.score for i in idents), default=0), alerts=max((i.alerts for i in idents), default=0),
        truncated=int(hist.get("peers_total", 0)) > len(peers))


@tool(title="Host information", example={"ip": "192.168.1.10", "top": 10})
async def get_host_info(call: ToolContext, params: HostInfoParams) -> HostInfo:
    """Everything known about one host (IP, optionally VLAN), as ntopng's host details: live totals
    (current flows) and historical totals (stored flows; time range with begin/end) of bytes/packets
    sent and received and flows as client/server; top applications, L4 protocols and peers by bytes;
    listening services; identity learned passively (names from DHCP/mDNS/NetBIOS/DNS/TLS SNI/HTTP Host
    with their source, MAC and manufacturer, gateway MAC for remote hosts, OS guess with evidence,
    device type); country/ASN; local or remote; score and alert count."""
    return await _run(host_info, call.app, call.principal, params)


# ---- get_mac_info ---------------------------------------------------------------------------------

class MacInfoParams(BaseModel):
    mac: str = Field(description="MAC address, e.g. 00:11:22:33:44:55 (any of : - . separators)")
    begin: str | None = Field(None, description="Traffic start: " + TIME_HELP + "; default all history")
    end: str | None = Field(None, description="Traffic end: " + TIME_HELP)
    limit: int = Field(50, ge=1, le=1000, description="Max IPs listed")


class MacIp(BaseModel):
    ip: str
    last_seen: str | None = None
    name: str = ""


class MacInfo(BaseModel):
    mac: str
    manufacturer: str
    locally_administered: bool = Field(description="Randomised/virtual MAC: no manufacturer")
    type: str = Field(description="mac, or network_device when it routes remote addresses")
    device_type: str
    os: str
    name: str
    names: list[NameInfo]
    ips: list[MacIp] = Field(description="IPs seen behind this MAC (local ones; remote ones for routers)")
    remote_ips: int = Field(0, description="Remote addresses reached through it")
    traffic: Totals = Field(description="Frames with this MAC as source/destination, from the flows history")
    first_seen: str | None
    last_seen: str | None
    dhcp: dict[str, str] = {}
    truncated: bool

    def text(self) -> str:
        t = self.traffic
        return (f"{self.mac} {self.manufacturer or '(unknown manufacturer)'} [{self.type}] {self.device_type} "
                f"{self.os} {self.name}\nIPs: {', '.join(i.ip for i in self.ips) or '-'}\n"
                f"traffic sent {t.bytes_sent} B received {t.bytes_rcvd} B in {t.flows} flows; "
                f"{self.first_seen} .. {self.last_seen}")


def mac_info(app, principal, p: MacInfoParams) -> MacInfo:
    mac = mac_text(p.mac)
    if not mac:
        raise ToolError(f"not a MAC address: {p.mac!r} (e.g. 00:11:22:33:44:55)")
    svc = service(app)
    m = svc.model.get_mac(mac)
    begin, end = _times(p.begin, p.end)
    tot, ip_rows = host_queries.mac_traffic(app.store, mac, begin, end, principal.sql_filter(["ip"]))
    ips: dict[str, float] = {}
    for ip, last in ip_rows:
        if svc.local.is_local(ip) or m is not None and m.type == "network_device":
            ips[ip] = float(last or 0)
    if m is not None:
        for ip, last in m.ips.items():
            if principal.can_see(ip):
                ips[ip] = max(ips.get(ip, 0), last)
    if m is None and not tot["flows"]:
        raise ToolError(f"MAC {mac} has not been seen (manufacturer: {manufacturer(mac) or 'unknown'}); "
                        "list devices with discover_lan")
    if principal.allowed_networks and not ips:
        raise ToolError(f"no address behind {mac} is inside your allowed networks")
    local_behind = sorted(ips.items(), key=lambda kv: -kv[1])
    d = m.as_dict() if m is not None else {}
    first = [x for x in (tot.get("first_seen"), m.first_seen if m else None) if x]
    last = [x for x in (tot.get("last_seen"), m.last_seen if m else None) if x]
    return MacInfo(
        mac=mac, manufacturer=manufacturer(mac), locally_administered=is_locally_administered(mac),
        type=d.get("type", "mac"), device_type=d.get("device_type", ""), os=d.get("os", ""), name=d.get("name", ""),
        names=[NameInfo(**n) for n in d.get("names", [])],
        ips=[MacIp(ip=ip, last_seen=_t(ts), name=_name_of(svc, ip)) for ip, ts in local_behind[:p.limit]],
        remote_ips=m.remote_ips if m else 0, traffic=Totals.of(tot),
        first_seen=_t(min(first)) if first else None, last_seen=_t(max(last)) if last else None,
        dhcp=d.get("dhcp", {}), truncated=len(local_behind) > p.limit)


@tool(title="MAC information", example={"mac": "00:11:22:33:44:55"})
async def get_mac_info(call: ToolContext, params: MacInfoParams) -> MacInfo:
    """One MAC address: manufacturer (IEEE OUI registry), device type, OS guess, names, the IPs seen
    behind it (a router's MAC shows as type network_device), its traffic from the flows history, and
    first/last seen."""
    return await _run(mac_info, call.app, call.principal, params)


# ---- get_asset_info ---------------------------------------------------------------------------------

class AssetParams(BaseModel):
    limit: int = Field(50, ge=1, le=1000, description="Max assets")
    offset: int = Field(0, ge=0, description="Skip this many (paging)")
    key: str | None = Field(None, description="Fetch one asset by key ('ip@vlan' for hosts, the MAC for MACs), "
                                               "with its change history")
    ip: str | None = Field(None, description="Assets with this IP (exact)")
    mac: str | None = Field(None, description="Assets with this MAC (exact)")
    name: str | None = Field(None, description="Name contains (any learned name, case-insensitive)")
    manufacturer: str | None = Field(None, description="Manufacturer contains (case-insensitive)")
    type: Literal["host", "mac", "network_device"] | None = Field(None, description="Asset type")
    device_type: str | None = Field(None, description="Device type, e.g. phone, workstation, networking, printer")
    os: str | None = Field(None, description="OS contains, e.g. Windows, iOS, Linux")
    local_only: bool = Field(False, description="Only hosts inside the local networks (and MACs)")
    active_within: str | None = Field(None, description="Only assets seen since: " + TIME_HELP +
                                      "; default: all, inactive ones included")


class Asset(BaseModel):
    """One inventory entry (a host, a MAC or a network device) as passively learned."""

    type: str
    key: str
    ip: str
    mac: str
    vlan: int
    name: str
    device_type: str
    manufacturer: str
    os: str
    gateway_mac: str
    services: list[str]
    is_local: bool
    first_seen: str
    last_seen: str
    score: int
    alerts: int
    info: dict[str, Any] = Field(description="names with sources, os_evidence, dhcp, ips, mdns_services, ...")


class AssetChange(BaseModel):
    field: str
    old_value: str
    new_value: str
    seen_at: str
    changed_at: str


class Assets(BaseModel):
    assets: list[Asset]
    history: list[AssetChange] | None = Field(None, description="With key: the asset's identity changes")
    truncated: bool
    next_offset: int | None = None

    def text(self) -> str:
        lines = [f"[{a.type}] {a.key} {a.name} mac={a.mac or '-'} {a.manufacturer} {a.device_type} {a.os} "
                 f"last {a.last_seen}".replace("  ", " ") for a in self.assets] or ["no assets match"]
        for h in self.history or []:
            lines.append(f"  {h.changed_at} {h.field}: {h.old_value!r} -> {h.new_value!r}")
        if self.truncated:
            lines.append(f"... more: offset={self.next_offset}")
        return "\n".join(lines)


def asset_info(app, principal, p: AssetParams) -> Assets:
    import json

    svc = service(app)
    svc.flush()
    params: dict[str, Any] = {"lim": p.limit + 1, "off": p.offset}
    where = [principal.sql_filter(["ip"])]
    if p.key:
        params["key"] = p.key.strip()
        where.append("key = {key:String}")
    if p.ip:
        params["ip"] = _ip(p.ip)
        where.append("ip = {ip:String}")
    if p.mac:
        m = mac_text(p.mac)
        if not m:
            raise ToolError(f"not a MAC address: {p.mac!r}")
        params["mac"] = m
        where.append("(mac = {mac:String} OR gateway_mac = {mac:String})")
    if p.name:
        params["name"] = p.name
        where.append("(positionCaseInsensitive(name, {name:String}) > 0 OR "
                     "positionCaseInsensitive(JSONExtractRaw(info, 'names'), {name:String}) > 0)")
    if p.manufacturer:
        params["manuf"] = p.manufacturer
        where.append("positionCaseInsensitive(manufacturer, {manuf:String}) > 0")
    if p.type:
        params["type"] = p.type
        where.append("type = {type:String}")
    if p.device_type:
        params["dtype"] = p.device_type.lower()
        where.append("device_type = {dtype:String}")
    if p.os:
        params["os"] = p.os
        where.append("positionCaseInsensitive(os, {os:String}) > 0")
    if p.local_only:
        where.append("(is_local = 1 OR type != 'host')")
    if p.active_within:
        since, _ = _times(p.active_within, None)
        params["since"] = since
        where.append("last_seen >= toDateTime64({since:Float64}, 3, 'UTC')")
    rows = app.store.query(
        "SELECT type, key, ip, mac, vlan, name, device_type, manufacturer, os, gateway_mac, services, is_local, "
        "toUnixTimestamp64Milli(first_seen) / 1000 AS first_seen, toUnixTimestamp64Milli(last_seen) / 1000 AS "
        "last_seen, score, alerts, info FROM assets FINAL WHERE " + " AND ".join(where) +
        " ORDER BY last_seen DESC, key LIMIT {lim:UInt32} OFFSET {off:UInt32}", params).dicts()
    more = len(rows) > p.limit
    assets = []
    for r in rows[:p.limit]:
        try:
            info = json.loads(r["info"] or "{}")
        except ValueError:
            info = {}
        r.update(info=info, is_local=bool(r["is_local"]), first_seen=_t(r["first_seen"]) or "",
                 last_seen=_t(r["last_seen"]) or "")
        assets.append(Asset(**r))
    history = None
    if p.key:
        hp = {"key": p.key.strip()}
        history = [AssetChange(**{**h, "seen_at": _t(h["seen_at"]) or "", "changed_at": _t(h["changed_at"]) or ""})
                   for h in app.store.query(
                       "SELECT field, old_value, new_value, toUnixTimestamp64Milli(seen_at) / 1000 AS seen_at, "
                       "toUnixTimestamp64Milli(changed_at) / 1000 AS changed_at FROM asset_history "
                       "WHERE key = {key:String} AND " + principal.sql_filter(["ip"]) +
                       " ORDER BY changed_at DESC, field LIMIT 200", hp).dicts()]
    return Assets(assets=assets, history=history, truncated=more, next_offset=p.offset + p.limit if more else None)


@tool(title="Asset inventory", example={"manufacturer": "Apple", "limit": 20})
async def get_asset_info(call: ToolContext, params: AssetParams) -> Assets:
    """Search the asset inventory (hosts, MACs and network devices learned passively, including inactive
    ones and across restarts) by IP, MAC, name, manufacturer, type, device type or OS; or fetch one asset
    by key with the history of its identity changes."""
    return await _run(asset_info, call.app, call.principal, params)


# ---- discover_lan ----------------------------------------------------------------------------------

class DiscoverParams(BaseModel):
    limit: int = Field(200, ge=1, le=5000, description="Max devices")
    include_inactive: bool = Field(True, description="Also devices not seen recently")
    active_within: str = Field("1h", description="With include_inactive=false: seen since " + TIME_HELP)


class LanDevice(BaseModel):
    ip: str
    vlan: int
    mac: str
    hostname: str
    name_source: str = Field(description="How the name was learned: dhcp, mdns, netbios, dhcpv6, dns, ...")
    manufacturer: str
    device_type: str
    os: str
    os_source: str = Field(description="Strongest OS evidence: dhcp_vendor, user_agent, dhcp_fingerprint, ...")
    learned_from: list[str] = Field(description="Every passive source that told something about it")
    first_seen: str | None
    last_seen: str | None


class LanDevices(BaseModel):
    devices: list[LanDevice]
    macs_without_ip: list[dict[str, str]] = Field(description="MACs seen (e.g. DHCP DISCOVER) with no address yet")
    truncated: bool

    def text(self) -> str:
        lines = [f"{d.ip:<39} {d.mac or '-':17} {d.hostname or '-'} [{d.name_source or '-'}] {d.manufacturer} "
                 f"{d.device_type} {d.os}".rstrip() for d in self.devices] or ["no LAN devices seen yet"]
        for m in self.macs_without_ip:
            lines.append(f"{'(no address)':<39} {m['mac']:17} {m.get('name') or '-'} {m.get('manufacturer', '')}")
        return "\n".join(lines)


def discover(app, principal, p: DiscoverParams) -> LanDevices:
    svc = service(app)
    since = None if p.include_inactive else _times(p.active_within, None)[0]
    hosts, macs = svc.model.local_hosts_and_macs()
    out = []
    for h in hosts:
        if not principal.can_see(h.ip) or (since and h.last_seen < since):
            continue
        if not (h.mac or h.names or h.os_evidence):
            continue
        d = h.as_dict()
        m = svc.model.get_mac(h.mac) if h.mac else None
        sources = {n["source"] for n in d["names"]} | {e["source"] for e in d["os_evidence"]}
        if h.mac:
            sources.add("mac")
        if m is not None and m.dhcp:
            sources.add("dhcp")
        os_ev = d["os_evidence"][0]["source"] if d["os_evidence"] else ""
        name, nsrc = d["name"], d["name_source"]
        if not name and m is not None and m.name:
            name, nsrc = m.name, m.best_name()[1]
        out.append(LanDevice(ip=h.ip, vlan=h.vlan, mac=h.mac, hostname=name, name_source=nsrc,
                             manufacturer=d["manufacturer"], device_type=d["device_type"] or
                             (m.device_type if m is not None else ""), os=d["os"] or (m.os if m else ""),
                             os_source=os_ev, learned_from=sorted(sources), first_seen=_t(h.first_seen),
                             last_seen=_t(h.last_seen)))
    out.sort(key=lambda d: (ipaddress.ip_address(d.ip).version, ipaddress.ip_address(d.ip)))
    with_ip = {d.mac for d in out if d.mac}
    orphans = []
    if not principal.allowed_networks:
        for m in macs:
            if m.mac not in with_ip and not m.ips and (m.names or m.dhcp):
                orphans.append({"mac": m.mac, "name": m.name, "manufacturer": m.manufacturer,
                                "device_type": m.device_type, "os": m.os})
    return LanDevices(devices=out[:p.limit], macs_without_ip=orphans[:p.limit], truncated=len(out) > p.limit)


@tool(title="Discover LAN devices", example={"limit": 100})
async def discover_lan(call: ToolContext, params: DiscoverParams) -> LanDevices:
    """Devices in the local networks, learned passively only (no scanning, nothing is sent): IP, MAC,
    host name and how it was learned (DHCP, mDNS, NetBIOS, DNS, ...), manufacturer, device type and OS
    guess with its strongest evidence."""
    return await _run(discover, call.app, call.principal, params)


# ---- get_country_stats ----------------------------------------------------------------------------

class CountryParams(BaseModel):
    by: Literal["bytes", "hosts", "score"] = Field("bytes", description="Rank countries by")
    begin: str | None = Field(None, description="Start: " + TIME_HELP + "; default all history")
    end: str | None = Field(None, description="End: " + TIME_HELP)
    limit: int = Field(20, ge=1, le=300, description="Max countries")


class CountryStat(BaseModel):
    country_code: str
    country_name: str
    hosts: int
    bytes: int
    bytes_sent: int = Field(description="Sent by hosts in that country")
    bytes_rcvd: int = Field(description="Received by hosts in that country")
    flows: int
    score: int
    top_hosts: list[str]


class CountryStats(BaseModel):
    countries: list[CountryStat]
    unknown_hosts: int = Field(description="Public hosts with no country in the database")
    truncated: bool

    def text(self) -> str:
        return "\n".join(f"{c.country_code} {c.country_name}: {c.hosts} hosts {c.bytes} B score {c.score} "
                         f"(top: {', '.join(c.top_hosts)})" for c in self.countries) or "no remote hosts"


def country_stats(app, principal, p: CountryParams) -> CountryStats:
    begin, end = _times(p.begin, p.end)
    hosts = host_queries.all_hosts(app.store, begin, end, principal.sql_filter(["ip"]), "bytes", 200_000)
    agg: dict[str, dict[str, Any]] = {}
    unknown = 0
    g = geo_mod.geo()
    for h in hosts:
        info = g.lookup(h["ip"])
        if not info.country_code:
            try:
                if ipaddress.ip_address(h["ip"]).is_global:
                    unknown += 1
            except ValueError:
                pass
            continue
        a = agg.setdefault(info.country_code, {"country_code": info.country_code, "country_name": info.country_name,
                                               "hosts": 0, "bytes": 0, "bytes_sent": 0, "bytes_rcvd": 0,
                                               "flows": 0, "score": 0, "top_hosts": []})
        a["hosts"] += 1
        a["bytes"] += h["bytes"]
        a["bytes_sent"] += h["bytes_sent"]
        a["bytes_rcvd"] += h["bytes_rcvd"]
        a["flows"] += h["flows"]
        a["score"] += h["score"]
        if len(a["top_hosts"]) < 5:
            a["top_hosts"].append(h["ip"])
    ranked = sorted(agg.values(), key=lambda a: (-a[p.by], a["country_code"]))
    return CountryStats(countries=[CountryStat(**a) for a in ranked[:p.limit]], unknown_hosts=unknown,
                        truncated=len(ranked) > p.limit)


@tool(title="Traffic by country", example={"by": "bytes", "limit": 10})
async def get_country_stats(call: ToolContext, params: CountryParams) -> CountryStats:
    """Top countries of the hosts seen in the flows history (offline geolocation), ranked by bytes,
    number of hosts or score, with each country's top hosts. Private addresses have no country."""
    return await _run(country_stats, call.app, call.principal, params)


# ---- get_top_talkers --------------------------------------------------------------------------------

class TalkersParams(BaseModel):
    by: Literal["bytes", "flows", "score", "packets", "bytes_sent", "bytes_rcvd"] = Field("bytes")
    where: Literal["all", "local", "remote"] = Field("all", description="Only local or only remote hosts")
    source: Literal["live", "history"] = Field("history", description="The live flow table, or the flows history "
                                                                     "over begin/end")
    begin: str | None = Field(None, description="History start: " + TIME_HELP + "; default all history")
    end: str | None = Field(None, description="History end: " + TIME_HELP)
    limit: int = Field(10, ge=1, le=1000)


class Talker(BaseModel):
    ip: str
    vlan: int
    name: str = ""
    is_local: bool
    bytes: int
    bytes_sent: int
    bytes_rcvd: int
    packets: int
    flows: int
    score: int
    country_code: str = ""


class Talkers(BaseModel):
    talkers: list[Talker]
    source: str
    truncated: bool

    def text(self) -> str:
        return "\n".join(f"{t.ip}{' (' + t.name + ')' if t.name else ''} {'local' if t.is_local else 'remote'} "
                         f"{t.bytes} B (sent {t.bytes_sent}, rcvd {t.bytes_rcvd}) {t.flows} flows score {t.score}"
                         for t in self.talkers) or "no hosts"


def top_talkers(app, principal, p: TalkersParams) -> Talkers:
    svc = service(app)
    nets = svc.local.networks
    rows: list[dict[str, Any]]
    if p.source == "live":
        rows = []
        for (ip, vlan), t in host_queries.live_hosts(host_queries.live_rows(app)).items():
            if not principal.can_see(ip):
                continue
            loc = svc.local.is_local(ip)
            if (p.where == "local" and not loc) or (p.where == "remote" and loc):
                continue
            rows.append(dict(t, ip=ip, vlan=vlan))
        rows.sort(key=lambda r: (-r[p.by], r["ip"]))
        more = len(rows) > p.limit
        rows = rows[:p.limit]
    else:
        begin, end = _times(p.begin, p.end)
        local_sql = None
        if p.where == "local":
            local_sql = host_queries.cidr_sql("ip", nets)
        elif p.where == "remote":
            local_sql = "NOT " + host_queries.cidr_sql("ip", nets)
        rows = host_queries.all_hosts(app.store, begin, end, principal.sql_filter(["ip"]), p.by, p.limit + 1, local_sql)
        more = len(rows) > p.limit
        rows = rows[:p.limit]
    out = []
    for r in rows:
        loc = svc.local.is_local(r["ip"])
        out.append(Talker(ip=r["ip"], vlan=int(r["vlan"]), name=_name_of(svc, r["ip"]), is_local=loc,
                          bytes=r["bytes"], bytes_sent=r["bytes_sent"], bytes_rcvd=r["bytes_rcvd"],
                          packets=r["packets"], flows=r["flows"], score=r["score"],
                          country_code="" if loc else geo_mod.lookup(r["ip"]).country_code))
    return Talkers(talkers=out, source=p.source, truncated=more)


@tool(title="Top talkers", example={"by": "bytes", "where": "local", "limit": 10})
async def get_top_talkers(call: ToolContext, params: TalkersParams) -> Talkers:
    """Hosts that talk the most, local and/or remote, by bytes, packets, flows or score, over the live
    flow table or the flows history in a time range; with names learned passively and countries."""
    return await _run(top_talkers, call.app, call.principal, params)


# ---- list_networks ------------------------------------------------------------------------------------

class NetworksParams(BaseModel):
    with_traffic: bool = Field(True, description="Add hosts and bytes per network from the flows history")


class NetworkInfo(BaseModel):
    network: str
    hosts: int | None = None
    bytes_sent: int | None = None
    bytes_rcvd: int | None = None


class Networks(BaseModel):
    networks: list[NetworkInfo]
    source: str = Field(description="Where the list comes from: command line, environment FLOWSCOPE_LOCAL_NETWORKS, "
                                    "config file PATH, or default")

    def text(self) -> str:
        return "\n".join(f"{n.network}" + (f": {n.hosts} hosts, sent {n.bytes_sent} B, received {n.bytes_rcvd} B"
                                           if n.hosts is not None else "") for n in self.networks)


def networks(app, principal, p: NetworksParams) -> Networks:
    svc = service(app)
    nets = svc.local.networks
    allowed = principal.allowed_networks
    visible = [n for n in nets if not allowed or any(n.version == a.version and n.overlaps(a) for a in allowed)]
    out = []
    for n in visible:
        info = NetworkInfo(network=str(n))
        if p.with_traffic:
            vis = principal.sql_filter(["ip"])
            r = app.store.query(
                f"SELECT uniqExact(ip) AS hosts, sum(s_bytes) AS s, sum(r_bytes) AS r FROM {host_queries.host_sides()} "
                f"WHERE {host_queries.cidr_sql('ip', [n])} AND {vis}").dicts()[0]
            info.hosts, info.bytes_sent, info.bytes_rcvd = int(r["hosts"]), int(r["s"]), int(r["r"])
        out.append(info)
    return Networks(networks=out, source=app.config.source_of("local_networks"))


@tool(title="Local networks", example={})
async def list_networks(call: ToolContext, params: NetworksParams) -> Networks:
    """The configured local networks (CLI --local-networks or the config file; private ranges by default)
    that decide local vs remote hosts, with hosts and bytes seen in each."""
    return await _run(networks, call.app, call.principal, params)


# ---- get_interface_addresses ---------------------------------------------------------------------------

class IfAddrParams(BaseModel):
    all_interfaces: bool = Field(False, description="List every interface of this machine, not only monitored ones")


class IfAddress(BaseModel):
    family: str
    address: str
    netmask: str = ""
    prefix: int | None = None


class IfInfo(BaseModel):
    name: str
    monitored: bool
    source_id: int | None = None
    mac: str = ""
    addresses: list[IfAddress]
    up: bool | None = None


class IfAddresses(BaseModel):
    interfaces: list[IfInfo]
    note: str = ""

    def text(self) -> str:
        lines = [f"{i.name}{' (monitored #' + str(i.source_id) + ')' if i.monitored else ''} {i.mac} "
                 f"{', '.join(a.address + ('/' + str(a.prefix) if a.prefix is not None else '') for a in i.addresses)}"
                 for i in self.interfaces]
        return "\n".join(lines + ([self.note] if self.note else [])) or self.note


def interface_addresses(app, principal, p: IfAddrParams) -> IfAddresses:
    import socket

    import psutil

    sources = [s for s in getattr(getattr(app, "sources", None), "items", []) if getattr(s, "kind", "") == "interface"]
    by_name = {s.name: s.id for s in sources}
    addrs = psutil.net_if_addrs()
    stats = psutil.net_if_stats()
    names = sorted(addrs) if p.all_interfaces else [n for n in by_name]
    out = []
    for name in names:
        items, mac = [], ""
        for a in addrs.get(name, []):
            if a.family == psutil.AF_LINK:
                mac = mac_text(a.address)
                continue
            fam = "ipv4" if a.family == socket.AF_INET else "ipv6" if a.family == socket.AF_INET6 else ""
            if not fam:
                continue
            ip = a.address.split("%")[0]
            if not principal.can_see(ip):
                continue
            prefix = None
            if a.netmask:
                try:
                    prefix = ipaddress.ip_network(f"{ip}/{a.netmask}", strict=False).prefixlen
                except ValueError:
                    prefix = None
            items.append(IfAddress(family=fam, address=ip, netmask=a.netmask or "", prefix=prefix))
        st = stats.get(name)
        out.append(IfInfo(name=name, monitored=name in by_name, source_id=by_name.get(name), mac=mac, addresses=items,
                          up=st.isup if st else None))
    note = "" if sources or p.all_interfaces else \
        "no live interface is monitored (capture files only); use all_interfaces=true to list this machine's"
    return IfAddresses(interfaces=out, note=note)


@tool(title="Interface addresses", example={})
async def get_interface_addresses(call: ToolContext, params: IfAddrParams) -> IfAddresses:
    """IPv4/IPv6 addresses (with prefix) and MAC of the monitored live interfaces, or of every interface
    of this machine with all_interfaces=true."""
    return await _run(interface_addresses, call.app, call.principal, params)
