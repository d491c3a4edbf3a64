"""Reading one device: an asyncio SNMP session (pysnmp 7) and the poll that uses it.

`poll(device)` returns a `PollResult` with the system group, the interfaces (ifTable + ifXTable),
IP addresses, LLDP and CDP neighbours and the bridge forwarding table, or raises `PollError`
whose `message` tells an operator what went wrong (timeout, wrong credentials, unknown user).
Each request has the device's timeout and retries; the whole poll has a budget, so one dead or
slow device costs only its own time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from flowscope.services.snmp import mibs
from flowscope.services.snmp.registry import Device

log = logging.getLogger(__name__)

MAX_TABLE_ROWS = 20_000   # varbinds per column walk, a guard against looping agents
MAX_FDB_ROWS = 8_192
BULK_REPETITIONS = 20


class PollError(Exception):
    """The device could not be read. `kind` is a short code, `message` is for an operator."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class Interface:
    if_index: int
    name: str = ""
    descr: str = ""
    alias: str = ""
    type: int = 0
    mtu: int = 0
    speed_bps: int = 0
    phys_address: str = ""
    admin_status: int = 0
    oper_status: int = 0
    last_change: int = 0
    counters_64: bool = False
    in_octets: Optional[int] = None
    out_octets: Optional[int] = None
    in_ucast_pkts: Optional[int] = None
    out_ucast_pkts: Optional[int] = None
    in_errors: Optional[int] = None
    out_errors: Optional[int] = None
    in_discards: Optional[int] = None
    out_discards: Optional[int] = None
    discontinuity: Optional[int] = None
    ip_addresses: list[str] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        return self.name or self.descr or f"ifIndex {self.if_index}"


@dataclass
class Neighbor:
    protocol: str            # lldp | cdp
    local_if_index: int = 0
    local_port: str = ""
    remote_name: str = ""
    remote_chassis_id: str = ""
    remote_port_id: str = ""
    remote_port_descr: str = ""
    remote_sys_descr: str = ""
    remote_address: str = ""
    remote_platform: str = ""


@dataclass
class FdbEntry:
    mac: str
    bridge_port: int
    if_index: int = 0


@dataclass
class PollResult:
    time: float
    duration_s: float
    system: dict[str, Any]
    interfaces: list[Interface]
    neighbors: list[Neighbor]
    fdb: list[FdbEntry]
    ip_addresses: list[tuple[int, str]]        # (ifIndex, address/prefix)
    warnings: list[str] = field(default_factory=list)
    fdb_truncated: bool = False

    @property
    def uptime_ticks(self) -> Optional[int]:
        v = self.system.get("sys_uptime")
        return v if isinstance(v, int) else None


# ---------------------------------------------------------------- value conversion

def to_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bytes):
        return v.rstrip(b"\x00").decode("utf-8", errors="replace")
    return str(v)


def to_mac(v: Any) -> str:
    if isinstance(v, bytes) and v:
        return ":".join(f"{b:02x}" for b in v)
    return ""


def to_int(v: Any) -> Optional[int]:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _printable(b: bytes) -> bool:
    try:
        s = b.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in s)


def text_or_hex(v: Any) -> str:
    if isinstance(v, bytes):
        return to_text(v) if _printable(v) else to_mac(v)
    return to_text(v)


def _convert(val: Any) -> Any:
    """pyasn1 SNMP value -> int | str | bytes | None (for the 'no such'/end-of-MIB markers)."""
    from pysnmp.proto import rfc1902, rfc1905

    if isinstance(val, (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)):
        return None
    if isinstance(val, rfc1902.IpAddress):
        return ".".join(str(b) for b in bytes(val.asOctets()))
    if isinstance(val, rfc1902.ObjectIdentifier):
        return ".".join(str(x) for x in val)
    if isinstance(val, rfc1902.OctetString):
        return bytes(val.asOctets())
    if isinstance(val, rfc1902.Bits):
        return bytes(val.asOctets())
    try:
        return int(val)
    except (TypeError, ValueError):
        return str(val)


def _is_end(val: Any) -> bool:
    from pysnmp.proto import rfc1905

    return isinstance(val, rfc1905.EndOfMibView)


# ---------------------------------------------------------------- errors in words

def _explain(err: Any, dev: Device) -> PollError:
    name = type(err).__name__
    tries = dev.retries + 1
    where = f"{dev.host}:{dev.port}"
    if name == "RequestTimedOut":
        if dev.version == "v3":
            why = ("the device is down or unreachable, nothing listens on that UDP port, a firewall drops "
                   "SNMP, or the v3 privacy passphrase/protocol is wrong (agents drop what they cannot decrypt)")
        else:
            why = ("the device is down or unreachable, nothing listens on that UDP port, a firewall drops "
                   "SNMP, or the community string is wrong (agents silently ignore a wrong community)")
        return PollError("timeout", f"No answer from {where} within {dev.timeout_s:g}s x {tries} "
                                    f"tr{'y' if tries == 1 else 'ies'}: {why}.")
    if name == "WrongDigest":
        return PollError("auth_failure", f"{where} refused the request: wrong SNMPv3 authentication "
                                         f"passphrase or protocol for user {dev.user!r} (authentication failure).")
    if name == "UnknownUserName":
        return PollError("unknown_user", f"{where} does not know the SNMPv3 user {dev.user!r}: check the "
                                         "user name, or create the user on the device.")
    if name == "UnsupportedSecLevel":
        return PollError("unsupported_security_level",
                         f"{where} does not allow security level {dev.security_level} for user {dev.user!r}: "
                         "the user is configured with another level on the device.")
    if name in ("DecryptionError", "UnknownSecurityName"):
        return PollError("priv_failure", f"{where} could not be read: wrong SNMPv3 privacy passphrase or "
                                         f"protocol for user {dev.user!r}.")
    if name == "NotInTimeWindow":
        return PollError("time_window", f"{where} rejected the request as outside its time window "
                                        "(SNMPv3 engine time mismatch): retry, or restart the device's agent.")
    if name == "UnknownEngineID":
        return PollError("unknown_engine", f"{where}: SNMPv3 engine discovery failed.")
    return PollError("error", f"SNMP error from {where}: {err}")


# ---------------------------------------------------------------- the session

_AUTH = {
    "MD5": "usmHMACMD5AuthProtocol", "SHA": "usmHMACSHAAuthProtocol",
    "SHA-224": "usmHMAC128SHA224AuthProtocol", "SHA-256": "usmHMAC192SHA256AuthProtocol",
    "SHA-384": "usmHMAC256SHA384AuthProtocol", "SHA-512": "usmHMAC384SHA512AuthProtocol",
}
_PRIV = {
    "DES": "usmDESPrivProtocol", "AES": "usmAesCfb128Protocol",
    "AES-192": "usmAesBlumenthalCfb192Protocol", "AES-256": "usmAesBlumenthalCfb256Protocol",
    "AES-192C": "usmAesCfb192Protocol", "AES-256C": "usmAesCfb256Protocol",
}


class _NoMibCompiler:
    """Stands in for pysmi's MIB compiler: flowscope uses numeric OIDs only, and the default
    compiler would fetch missing MIB files from the Internet. Missing MIBs simply stay missing."""

    def compile(self, *names, **kw):
        from pysnmp.smi import error

        raise error.MibNotFoundError(f"MIB compilation disabled ({', '.join(names)})")


def _no_mib_compiler(engine) -> None:
    try:
        import pysnmp.smi.mibs as mibs_pkg

        mb = engine.get_mib_builder()
        if not mb.get_mib_compiler():
            mb.set_mib_compiler(_NoMibCompiler(), mibs_pkg.__path__[0])
    except Exception:  # older/newer pysnmp layouts: keep the default
        log.debug("could not disable the MIB compiler", exc_info=True)


class Session:
    """One device's SNMP session: its own engine, so v3 users of different devices never clash."""

    def __init__(self, dev: Device):
        from pysnmp.hlapi.v3arch import asyncio as h

        self._h = h
        self.dev = dev
        self.engine = h.SnmpEngine()
        _no_mib_compiler(self.engine)
        if dev.version in ("v1", "v2c"):
            self.auth = h.CommunityData(dev.community.reveal() if dev.community else "",
                                        mpModel=0 if dev.version == "v1" else 1)
        else:
            kw: dict[str, Any] = {}
            if dev.security_level in ("authNoPriv", "authPriv") and dev.auth_pass:
                kw["authKey"] = dev.auth_pass.reveal()
                kw["authProtocol"] = getattr(h, _AUTH[dev.auth_protocol or "SHA"])
            if dev.security_level == "authPriv" and dev.priv_pass:
                kw["privKey"] = dev.priv_pass.reveal()
                kw["privProtocol"] = getattr(h, _PRIV[dev.priv_protocol or "AES"])
            self.auth = h.UsmUserData(dev.user or "", **kw)
        self.context = h.ContextData(contextName=dev.context or "")
        self.target = None
        self.requests = 0

    async def open(self) -> None:
        h = self._h
        host = self.dev.host
        try:
            is6 = ipaddress.ip_address(host).version == 6
        except ValueError:
            is6 = False
        cls = h.Udp6TransportTarget if is6 else h.UdpTransportTarget
        try:
            self.target = await cls.create((host, self.dev.port), timeout=self.dev.timeout_s,
                                           retries=self.dev.retries)
        except Exception as exc:  # name resolution failure and the like
            raise PollError("unresolvable", f"Cannot reach {host}:{self.dev.port}: {exc}") from None

    def close(self) -> None:
        try:
            self.engine.close_dispatcher()
        except Exception:
            pass

    def _check(self, ei: Any, es: Any, ex: Any) -> None:
        if ei:
            raise _explain(ei, self.dev)
        if es and int(es) != 0 and int(es) != 2:  # 2 = noSuchName (v1 end of view), handled by callers
            raise PollError("agent_error", f"{self.dev.host}:{self.dev.port} answered with error "
                                           f"{es.prettyPrint() if hasattr(es, 'prettyPrint') else es}")

    async def get(self, oids: Iterable[str]) -> dict[str, Any]:
        h = self._h
        oids = list(oids)
        self.requests += 1
        ei, es, ex, vbs = await h.get_cmd(self.engine, self.auth, self.target, self.context,
                                          *[h.ObjectType(h.ObjectIdentity(o)) for o in oids],
                                          lookupMib=False)
        if not ei and es and int(es) == 2 and self.dev.version == "v1":
            # v1 fails the whole GET for one missing OID: ask one by one
            out: dict[str, Any] = {}
            for o in oids:
                ei1, es1, ex1, vbs1 = await h.get_cmd(self.engine, self.auth, self.target, self.context,
                                                      h.ObjectType(h.ObjectIdentity(o)), lookupMib=False)
                self._check(ei1, None, None)
                if not es1:
                    out.update({str(k): _convert(v) for k, v in vbs1})
            return out
        self._check(ei, es, ex)
        return {str(k): _convert(v) for k, v in vbs}

    async def walk(self, columns: list[str], max_rows: int = MAX_TABLE_ROWS) -> dict[str, list[tuple[str, Any]]]:
        """Walk several table columns in lockstep (GETBULK, or GETNEXT for v1).

        Returns column -> [(index, value)], each column stopping where it leaves its subtree.
        """
        h = self._h
        result: dict[str, list[tuple[str, Any]]] = {c: [] for c in columns}
        cursor = {c: c for c in columns}        # last OID seen per active column
        active = list(columns)
        rounds = 0
        while active and rounds < max_rows:
            rounds += 1
            reqs = [h.ObjectType(h.ObjectIdentity(cursor[c])) for c in active]
            self.requests += 1
            if self.dev.version == "v1":
                ei, es, ex, vbs = await h.next_cmd(self.engine, self.auth, self.target, self.context,
                                                   *reqs, lookupMib=False)
                if not ei and es and int(es) == 2:   # noSuchName: that column (1-based ex) is exhausted
                    idx = int(ex) - 1 if ex else 0
                    active.pop(min(max(idx, 0), len(active) - 1))
                    continue
            else:
                reps = max(1, min(BULK_REPETITIONS, 200 // max(1, len(active))))
                ei, es, ex, vbs = await h.bulk_cmd(self.engine, self.auth, self.target, self.context,
                                                   0, reps, *reqs, lookupMib=False)
            self._check(ei, es, ex)
            if not vbs:
                break
            done: set[str] = set()
            n = len(active)
            for i, (oid, val) in enumerate(vbs):
                col = active[i % n]
                if col in done:
                    continue
                o = str(oid)
                if _is_end(val) or not o.startswith(col + ".") or not _oid_greater(o, cursor[col]):
                    done.add(col)
                    continue
                result[col].append((o[len(col) + 1:], _convert(val)))
                cursor[col] = o
                if len(result[col]) >= max_rows:
                    done.add(col)
            active = [c for c in active if c not in done]
        return result


def _oid_greater(a: str, b: str) -> bool:
    return tuple(int(x) for x in a.split(".")) > tuple(int(x) for x in b.split("."))


# ---------------------------------------------------------------- the poll

def _speed(ifspeed: Optional[int], high: Optional[int]) -> int:
    if ifspeed and ifspeed < 4294967295:
        return ifspeed
    if high:
        return high * 1_000_000
    return ifspeed or 0


def _index_int(index: str) -> Optional[int]:
    return int(index) if index.isdigit() else None


async def poll(dev: Device, fdb_max: int = MAX_FDB_ROWS) -> PollResult:
    """Read everything flowscope keeps about one device. Raises PollError."""
    started = time.time()
    t0 = time.perf_counter()
    s = Session(dev)
    try:
        await s.open()
        system = await s.get(mibs.SYSTEM.values())
        if all(v is None for v in system.values()):
            raise PollError("no_system", f"{dev.host}:{dev.port} answered but exposes no system group "
                                         "(the view for this community/user excludes it).")
        sys_out = {k: system.get(o) for k, o in mibs.SYSTEM.items()}
        for k in ("sys_descr", "sys_contact", "sys_name", "sys_location"):
            sys_out[k] = to_text(sys_out[k])
        sys_out["sys_object_id"] = to_text(sys_out["sys_object_id"])
        sys_out["sys_uptime"] = to_int(sys_out["sys_uptime"])
        warnings: list[str] = []

        async def optional(label: str, cols: list[str], max_rows: int = MAX_TABLE_ROWS):
            try:
                return await s.walk(cols, max_rows)
            except PollError as exc:
                if exc.kind == "timeout":
                    raise PollError("timeout", f"{dev.host}:{dev.port} stopped answering while reading "
                                               f"{label}: {exc.message}") from None
                warnings.append(f"{label}: {exc.message}")
                return {c: [] for c in cols}

        # interfaces
        if_cols = {f"{mibs.IF_TABLE}.{n}": name for n, name in mibs.IF_COLUMNS.items()}
        ifx_cols = {f"{mibs.IFX_TABLE}.{n}": name for n, name in mibs.IFX_COLUMNS.items()}
        walked = await optional("ifTable", list(if_cols))
        rows: dict[int, dict[str, Any]] = {}
        for col, entries in walked.items():
            for index, val in entries:
                i = _index_int(index)
                if i is not None:
                    rows.setdefault(i, {})[if_cols[col]] = val
        xwalked = await optional("ifXTable", list(ifx_cols))
        for col, entries in xwalked.items():
            for index, val in entries:
                i = _index_int(index)
                if i is not None and i in rows:
                    rows[i][ifx_cols[col]] = val
        interfaces = [_make_interface(i, r) for i, r in sorted(rows.items())]
        by_index = {itf.if_index: itf for itf in interfaces}

        # IP addresses
        ips: list[tuple[int, str]] = []
        ipw = await optional("ipAddrTable", [f"{mibs.IP_ADDR_TABLE}.2", f"{mibs.IP_ADDR_TABLE}.3"])
        masks = {idx: v for idx, v in ipw[f"{mibs.IP_ADDR_TABLE}.3"]}
        for idx, ifi in ipw[f"{mibs.IP_ADDR_TABLE}.2"]:
            try:
                addr = str(ipaddress.ip_address(idx))
                plen = ipaddress.ip_network(f"0.0.0.0/{masks.get(idx) or '255.255.255.255'}").prefixlen
            except ValueError:
                continue
            ips.append((int(ifi or 0), f"{addr}/{plen}"))
        ip6 = await optional("ipAddressTable", [f"{mibs.IP_ADDRESS_TABLE}.3", f"{mibs.IP_ADDRESS_TABLE}.5"])
        prefixes = {idx: v for idx, v in ip6[f"{mibs.IP_ADDRESS_TABLE}.5"]}
        for idx, ifi in ip6[f"{mibs.IP_ADDRESS_TABLE}.3"]:
            parts = idx.split(".")
            if len(parts) == 18 and parts[0] == "2" and parts[1] == "16":
                try:
                    addr = str(ipaddress.IPv6Address(bytes(int(x) for x in parts[2:])))
                except ValueError:
                    continue
                pref = to_text(prefixes.get(idx)).rsplit(".", 1)[-1]
                ips.append((int(ifi or 0), f"{addr}/{pref if pref.isdigit() else 128}"))
        for ifi, cidr in ips:
            if ifi in by_index:
                by_index[ifi].ip_addresses.append(cidr)

        # LLDP
        neighbors: list[Neighbor] = []
        lcols = {f"{mibs.LLDP_REM_TABLE}.{n}": name for n, name in mibs.LLDP_REM_COLUMNS.items()}
        lw = await optional("LLDP-MIB", list(lcols))
        if any(lw.values()):
            loc = await optional("lldpLocPortTable",
                                 [f"{mibs.LLDP_LOC_PORT_TABLE}.{n}" for n in mibs.LLDP_LOC_PORT_COLUMNS])
            neighbors.extend(_lldp_neighbors(lw, lcols, loc, interfaces))
        # CDP
        ccols = {f"{mibs.CDP_CACHE_TABLE}.{n}": name for n, name in mibs.CDP_COLUMNS.items()}
        cw = await optional("CISCO-CDP-MIB", list(ccols))
        neighbors.extend(_cdp_neighbors(cw, ccols, by_index))
        # bridge forwarding table
        fdb: list[FdbEntry] = []
        truncated = False
        fw = await optional("BRIDGE-MIB dot1dTpFdbTable", [f"{mibs.DOT1D_TP_FDB_TABLE}.2"], fdb_max + 1)
        fentries = fw[f"{mibs.DOT1D_TP_FDB_TABLE}.2"]
        if fentries:
            pw = await optional("BRIDGE-MIB dot1dBasePortIfIndex", [mibs.DOT1D_BASE_PORT_IFINDEX])
            port_if = {int(i): int(v or 0) for i, v in pw[mibs.DOT1D_BASE_PORT_IFINDEX] if i.isdigit()}
            if len(fentries) > fdb_max:
                truncated, fentries = True, fentries[:fdb_max]
            for idx, port in fentries:
                parts = idx.split(".")
                if len(parts) != 6:
                    continue
                mac = ":".join(f"{int(x):02x}" for x in parts)
                p = int(port or 0)
                fdb.append(FdbEntry(mac=mac, bridge_port=p, if_index=port_if.get(p, 0)))
        return PollResult(time=started, duration_s=time.perf_counter() - t0, system=sys_out,
                          interfaces=interfaces, neighbors=neighbors, fdb=fdb, ip_addresses=ips,
                          warnings=warnings, fdb_truncated=truncated)
    finally:
        s.close()


def _make_interface(i: int, r: dict[str, Any]) -> Interface:
    hc_in, hc_out = to_int(r.get("hc_in_octets")), to_int(r.get("hc_out_octets"))
    use64 = hc_in is not None and hc_out is not None
    return Interface(
        if_index=i,
        name=to_text(r.get("name")),
        descr=to_text(r.get("descr")),
        alias=to_text(r.get("alias")),
        type=to_int(r.get("type")) or 0,
        mtu=to_int(r.get("mtu")) or 0,
        speed_bps=_speed(to_int(r.get("speed")), to_int(r.get("high_speed"))),
        phys_address=to_mac(r.get("phys_address")),
        admin_status=to_int(r.get("admin_status")) or 0,
        oper_status=to_int(r.get("oper_status")) or 0,
        last_change=to_int(r.get("last_change")) or 0,
        counters_64=use64,
        in_octets=hc_in if use64 else to_int(r.get("in_octets")),
        out_octets=hc_out if use64 else to_int(r.get("out_octets")),
        in_ucast_pkts=to_int(r.get("hc_in_ucast_pkts")) if use64 and r.get("hc_in_ucast_pkts") is not None
        else to_int(r.get("in_ucast_pkts")),
        out_ucast_pkts=to_int(r.get("hc_out_ucast_pkts")) if use64 and r.get("hc_out_ucast_pkts") is not None
        else to_int(r.get("out_ucast_pkts")),
        in_errors=to_int(r.get("in_errors")),
        out_errors=to_int(r.get("out_errors")),
        in_discards=to_int(r.get("in_discards")),
        out_discards=to_int(r.get("out_discards")),
        discontinuity=to_int(r.get("counter_discontinuity")),
    )


def _lldp_id(subtype: Optional[int], raw: Any, mac_subtype: int, net_subtype: int) -> str:
    if isinstance(raw, bytes):
        if subtype == mac_subtype and len(raw) == 6:
            return to_mac(raw)
        if subtype == net_subtype and len(raw) in (5, 17):
            try:
                return str(ipaddress.ip_address(raw[1:]))
            except ValueError:
                pass
    return text_or_hex(raw)


def _lldp_neighbors(lw, lcols, loc, interfaces: list[Interface]) -> list[Neighbor]:
    rows: dict[str, dict[str, Any]] = {}
    for col, entries in lw.items():
        for index, val in entries:
            rows.setdefault(index, {})[lcols[col]] = val
    loc_rows: dict[int, dict[str, Any]] = {}
    for col, entries in loc.items():
        name = mibs.LLDP_LOC_PORT_COLUMNS[int(col.rsplit(".", 1)[1])]
        for index, val in entries:
            if index.isdigit():
                loc_rows.setdefault(int(index), {})[name] = val
    by_name: dict[str, int] = {}
    for itf in interfaces:
        for n in (itf.descr, itf.name, itf.alias):
            if n:
                by_name.setdefault(n, itf.if_index)
    if_indexes = {itf.if_index for itf in interfaces}
    out = []
    for index, r in sorted(rows.items(), key=lambda kv: [int(x) for x in kv[0].split(".") if x.isdigit()]):
        parts = index.split(".")
        if len(parts) != 3:
            continue
        port_num = int(parts[1])
        lp = loc_rows.get(port_num, {})
        lp_id, lp_descr = to_text(lp.get("port_id")), to_text(lp.get("port_descr"))
        local_if = by_name.get(lp_id) or by_name.get(lp_descr) or (port_num if port_num in if_indexes else 0)
        local_name = next((i.display_name for i in interfaces if i.if_index == local_if), "") or lp_id or lp_descr
        out.append(Neighbor(
            protocol="lldp", local_if_index=local_if, local_port=local_name or str(port_num),
            remote_name=to_text(r.get("sys_name")),
            remote_chassis_id=_lldp_id(to_int(r.get("chassis_id_subtype")), r.get("chassis_id"), 4, 5),
            remote_port_id=_lldp_id(to_int(r.get("port_id_subtype")), r.get("port_id"), 3, 4),
            remote_port_descr=text_or_hex(r.get("port_descr")),
            remote_sys_descr=text_or_hex(r.get("sys_descr")),
        ))
    return out


def _cdp_neighbors(cw, ccols, by_index: dict[int, Interface]) -> list[Neighbor]:
    rows: dict[str, dict[str, Any]] = {}
    for col, entries in cw.items():
        for index, val in entries:
            rows.setdefault(index, {})[ccols[col]] = val
    out = []
    for index, r in sorted(rows.items(), key=lambda kv: [int(x) for x in kv[0].split(".") if x.isdigit()]):
        parts = index.split(".")
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        ifi = int(parts[0])
        addr = r.get("address")
        address = ""
        if isinstance(addr, bytes) and to_int(r.get("address_type")) == 1 and len(addr) == 4:
            address = str(ipaddress.IPv4Address(addr))
        elif isinstance(addr, bytes) and len(addr) == 16:
            address = str(ipaddress.IPv6Address(addr))
        itf = by_index.get(ifi)
        out.append(Neighbor(
            protocol="cdp", local_if_index=ifi, local_port=itf.display_name if itf else str(ifi),
            remote_name=text_or_hex(r.get("device_id")), remote_port_id=text_or_hex(r.get("device_port")),
            remote_sys_descr=text_or_hex(r.get("version")), remote_platform=text_or_hex(r.get("platform")),
            remote_address=address,
        ))
    return out


async def poll_with_budget(dev: Device, budget_s: float, fdb_max: int = MAX_FDB_ROWS) -> PollResult:
    try:
        return await asyncio.wait_for(poll(dev, fdb_max), timeout=budget_s)
    except asyncio.TimeoutError:
        raise PollError("budget", f"Reading {dev.host}:{dev.port} took longer than its {budget_s:g}s budget; "
                                  "the device is slow or very large: raise interval_s.") from None
