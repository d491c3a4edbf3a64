"""Decoded flow records -> rows of the `flows` table (ntopng column names)."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any

from flowscope.flows.record import l7_name

#: the columns the collector fills, in the order of the row tuples it produces
COLUMNS: tuple[str, ...] = (
    "FLOW_ID", "IP_PROTOCOL_VERSION", "FIRST_SEEN", "LAST_SEEN", "VLAN_ID",
    "PACKETS", "TOTAL_BYTES", "SRC2DST_BYTES", "DST2SRC_BYTES", "SRC2DST_PACKETS", "DST2SRC_PACKETS",
    "PROTOCOL", "IPV4_SRC_ADDR", "IPV4_DST_ADDR", "IPV6_SRC_ADDR", "IPV6_DST_ADDR",
    "IP_SRC_PORT", "IP_DST_PORT", "L7_PROTO", "SRC_MAC", "DST_MAC", "INTERFACE_ID",
    "SRC2DST_TCP_FLAGS", "DST2SRC_TCP_FLAGS", "SRC_ASN", "DST_ASN", "PROBE_IP",
    "INPUT_SNMP", "OUTPUT_SNMP", "NEXT_HOP", "SAMPLING_RATE", "SOURCE_TYPE", "CLASSIFIED_BY",
)
COL = {name: i for i, name in enumerate(COLUMNS)}

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
NTP_EPOCH = 2208988800
MAX_MS = 4102444800000  # 2100-01-01, beyond which a timestamp is nonsense
_ZERO16 = bytes(16)
_inet_ntop = socket.inet_ntop
_AF6 = socket.AF_INET6

# FLOW_ID: top bit set (collector rows), 23 random bits per process, 40-bit counter.
_next_id = (1 << 63) | (secrets.randbits(23) << 40)
_ids_lock = threading.Lock()


def take_flow_ids(n: int) -> int:
    """The first of `n` consecutive new FLOW_IDs."""
    global _next_id
    with _ids_lock:
        first = _next_id
        _next_id += n
    return first

#: nDPI protocol ids for a port-based guess (ids of nDPI 4.x/5.x, verified against its
#: reference outputs). Keys: (ip protocol, port).
NDPI_IDS = {
    "FTP_CONTROL": 1, "POP3": 2, "SMTP": 3, "IMAP": 4, "DNS": 5, "HTTP": 7, "MDNS": 8, "NTP": 9,
    "NetBIOS": 10, "NFS": 11, "SSDP": 12, "BGP": 13, "SNMP": 14, "Syslog": 17, "DHCP": 18,
    "PostgreSQL": 19, "MySQL": 20, "Telnet": 77, "STUN": 78, "IPSec": 79, "GRE": 80, "ICMP": 81,
    "IGMP": 82, "RDP": 88, "VNC": 89, "TLS": 91, "SSH": 92, "TFTP": 96, "ICMPV6": 102, "DHCPV6": 103,
    "Kerberos": 111, "LDAP": 112, "NetFlow": 128, "sFlow": 129, "HTTP_Proxy": 131, "Radius": 146,
    "LLMNR": 154, "OpenVPN": 159, "SOCKS": 172, "QUIC": 188, "AMQP": 192,
}
_T, _U = 6, 17
_PORTS = {
    (_T, 21): "FTP_CONTROL", (_T, 110): "POP3", (_T, 25): "SMTP", (_T, 587): "SMTP", (_T, 143): "IMAP",
    (_U, 53): "DNS", (_T, 53): "DNS", (_T, 80): "HTTP", (_U, 5353): "MDNS", (_U, 123): "NTP",
    (_U, 137): "NetBIOS", (_U, 138): "NetBIOS", (_T, 139): "NetBIOS", (_T, 2049): "NFS", (_U, 2049): "NFS",
    (_U, 1900): "SSDP", (_T, 179): "BGP", (_U, 161): "SNMP", (_U, 162): "SNMP", (_U, 514): "Syslog",
    (_U, 67): "DHCP", (_U, 68): "DHCP", (_T, 5432): "PostgreSQL", (_T, 3306): "MySQL", (_T, 23): "Telnet",
    (_U, 3478): "STUN", (_U, 500): "IPSec", (_U, 4500): "IPSec", (_T, 3389): "RDP", (_T, 5900): "VNC",
    (_T, 443): "TLS", (_T, 993): "TLS", (_T, 995): "TLS", (_T, 465): "TLS", (_T, 8443): "TLS",
    (_T, 22): "SSH", (_U, 69): "TFTP", (_U, 546): "DHCPV6", (_U, 547): "DHCPV6", (_U, 88): "Kerberos",
    (_T, 88): "Kerberos", (_T, 389): "LDAP", (_U, 389): "LDAP", (_U, 2055): "NetFlow", (_U, 9995): "NetFlow",
    (_U, 9996): "NetFlow", (_U, 4739): "NetFlow", (_U, 6343): "sFlow", (_T, 3128): "HTTP_Proxy",
    (_T, 8080): "HTTP_Proxy", (_U, 1812): "Radius", (_U, 1813): "Radius", (_U, 5355): "LLMNR",
    (_U, 1194): "OpenVPN", (_T, 1194): "OpenVPN", (_T, 1080): "SOCKS", (_U, 443): "QUIC", (_T, 5672): "AMQP",
}
PORT_GUESS: dict[tuple[int, int], int] = {k: NDPI_IDS[v] for k, v in _PORTS.items()}
PROTO_GUESS = {1: 81, 58: 102, 2: 82, 47: 80, 50: 79, 51: 79}
#: application names as exporters spell them (NBAR, nProbe, Fortigate) -> nDPI name, lowercase
_APP_ALIASES = {"ssl": "tls", "https": "tls", "secure-http": "tls", "domain": "dns", "ftp": "ftp_control",
                "ftp-data": "ftp_control", "pop3": "pop3", "smtp": "smtp", "imap": "imap",
                "netbios-ns": "netbios", "netbios-dgm": "netbios", "netbios-ssn": "netbios",
                "http-alt": "http", "ntp": "ntp", "dhcp": "dhcp", "bootps": "dhcp", "bootpc": "dhcp"}
#: nDPI name (lowercase) -> id; the service widens it from the store's ndpi_protocols_table
NAME_TO_ID: dict[str, int] = {k.lower(): v for k, v in NDPI_IDS.items()}


def guess_l7(proto: int, sport: int, dport: int) -> int:
    if proto in PROTO_GUESS:
        return PROTO_GUESS[proto]
    g = PORT_GUESS.get
    return g((proto, dport)) or g((proto, sport)) or 0


def app_name_to_id(name: str) -> int:
    n = name.strip().lower()
    if not n:
        return 0
    n = _APP_ALIASES.get(n, n)
    got = NAME_TO_ID.get(n)
    if got is None and "." in n:  # nDPI "TLS.Google" style: take the most specific known part
        for part in reversed(n.split(".")):
            got = NAME_TO_ID.get(part)
            if got:
                break
    return got or 0


_ts_cache: dict[int, str] = {}


def fmt_ms(ms: int) -> str:
    """'YYYY-MM-DD hh:mm:ss.fff' (UTC) for epoch milliseconds."""
    if ms < 0:
        ms = 0
    elif ms > MAX_MS:
        ms = MAX_MS
    s, frac = divmod(int(ms), 1000)
    head = _ts_cache.get(s)
    if head is None:
        if len(_ts_cache) > 20000:
            _ts_cache.clear()
        head = _ts_cache[s] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s))
    return f"{head}.{frac:03d}"


class Context:
    """What a datagram's header tells about all its records."""

    __slots__ = ("probe_ip", "source_type", "interface_id", "export_ms", "uptime_ms", "sys_init_ms",
                 "sampling", "samplers", "app_names", "domain")

    def __init__(self, probe_ip: str, source_type: str, interface_id: int, export_ms: int,
                 uptime_ms: int | None = None, sys_init_ms: int | None = None, sampling: int = 1,
                 samplers: dict | None = None, app_names: dict | None = None, domain: int = 0):
        self.probe_ip = probe_ip
        self.source_type = source_type
        self.interface_id = interface_id
        self.export_ms = export_ms
        self.uptime_ms = uptime_ms
        self.sys_init_ms = sys_init_ms
        self.sampling = sampling
        self.samplers = samplers if samplers is not None else {}
        self.app_names = app_names if app_names is not None else {}
        self.domain = domain


def _ntp_ms(v: int) -> int:
    return ((v >> 32) - NTP_EPOCH) * 1000 + (((v & U32) * 1000) >> 32)


def _time(r: dict, ctx: Context, ms_key: str, s_key: str, up_key: str, us_key: str, ns_key: str,
          delta_key: str, default: int) -> int:
    v = r.get(ms_key)
    if v is not None:
        return v
    v = r.get(s_key)
    if v is not None:
        return v * 1000
    v = r.get(up_key)
    if v is not None:
        if ctx.uptime_ms is not None:
            d = (ctx.uptime_ms - v) & U32
            if d >= 0x80000000:
                d -= 1 << 32
            return ctx.export_ms - d
        if ctx.sys_init_ms is not None:
            return ctx.sys_init_ms + v
        return default
    v = r.get(us_key) or r.get(ns_key)
    if v is not None:
        return _ntp_ms(v)
    v = r.get(delta_key)
    if v is not None:
        return ctx.export_ms - v // 1000
    return default


def _app_l7(app: bytes, ctx: Context, proto: int) -> tuple[int, bool]:
    """(nDPI id, decided by the exporter) for an applicationId value."""
    if not app:
        return 0, False
    engine = app[0]
    selector = int.from_bytes(app[1:], "big") if len(app) > 1 else 0
    if engine == 1 and len(app) > 1:            # IANA L3: an IP protocol number
        return PROTO_GUESS.get(selector & 0xFF, 0), False
    if engine in (3, 4) and len(app) > 1:       # IANA/PANA L4: a port number
        return PORT_GUESS.get((proto, selector & 0xFFFF), 0), False
    name = ctx.app_names.get(app)
    if name:
        return app_name_to_id(name), True
    return 0, False


# counter fields by preference: forward (src->dst), then the exporter's `out_*` field, reverse
_BYTES_FORWARD, _BYTES_REVERSE = ("bytes", "init_bytes", "total_bytes"), ("rbytes", "resp_bytes")
_PKTS_FORWARD, _PKTS_REVERSE = ("pkts", "init_pkts", "total_pkts"), ("rpkts", "resp_pkts")


def _directions(g, forward: tuple[str, ...], out: str, reverse: tuple[str, ...]) -> tuple[int, int]:
    """(forward, reverse) counter, ntopng-style (IN = src->dst, OUT = dst->src): the first forward
    field present, else `out` stands for it; the first reverse field present, else `out`."""
    o = g(out)
    for key in forward:
        f = g(key)
        if f is not None:
            break
    else:
        f, o = o or 0, None
    for key in reverse:
        rev = g(key)
        if rev is not None:
            return f, rev
    return f, o or 0


def build_row(r: dict[str, Any], ctx: Context) -> tuple:
    g = r.get
    src6 = g("src6")
    if src6 is not None and g("src4") is None:
        ipver = 6
        s4 = d4 = 0
        s6 = _inet_ntop(_AF6, src6)
        d6 = _inet_ntop(_AF6, g("dst6") or _ZERO16)
    else:
        ipver = 4
        s4 = g("src4") or 0
        d4 = g("dst4") or 0
        s6 = d6 = "::"
    # counters: forward / reverse, ntopng-style (IN_BYTES = src->dst, OUT_BYTES = dst->src)
    b, rb = _directions(g, _BYTES_FORWARD, "out_bytes", _BYTES_REVERSE)
    p, rp = _directions(g, _PKTS_FORWARD, "out_pkts", _PKTS_REVERSE)
    rate = g("sampling") or g("sampler_interval")
    if not rate:
        sid = g("sampler_id")
        rate = ctx.samplers.get((ctx.domain, sid)) if sid is not None else None
        if not rate:
            rate = ctx.sampling or 1
    if rate > 1:
        b, rb, p, rp = b * rate, rb * rate, p * rate, rp * rate
        if b > U64 or rb > U64 or p > U64 or rp > U64:
            b, rb, p, rp = min(b, U64), min(rb, U64), min(p, U64), min(rp, U64)
    proto = (g("proto") or 0) & 0xFF
    sport = (g("sport") or 0) & 0xFFFF
    dport = (g("dport") or 0) & 0xFFFF
    # timestamps
    exp = ctx.export_ms
    first = _time(r, ctx, "first_ms", "first_s", "first_up", "first_us", "first_ns", "first_delta_us", -1)
    last = _time(r, ctx, "last_ms", "last_s", "last_up", "last_us", "last_ns", "last_delta_us", -1)
    if first < 0:
        first = last if last >= 0 else g("obs_ms") or exp
    if last < first:
        last = first
    # application
    l7 = g("l7")
    if l7:
        cls = "exporter"
        l7 &= 0xFFFF
    else:
        l7, by_exporter = 0, False
        app = g("app_id")
        if app:
            l7, by_exporter = _app_l7(app, ctx, proto)
        if not l7:
            name = g("l7_name")
            if name:
                l7 = app_name_to_id(name)
                by_exporter = bool(l7)
        if l7 and by_exporter:
            cls = "exporter"
        else:
            cls = "port"
            l7 = l7 or guess_l7(proto, sport, dport)
    nh = g("nh4")
    if nh:
        nh_s = socket.inet_ntoa(nh.to_bytes(4, "big"))
    else:
        nh6 = g("nh6") or g("bgp_nh6")
        if nh6 and nh6 != _ZERO16:
            nh_s = _inet_ntop(_AF6, nh6)
        else:
            nh = g("bgp_nh4")
            nh_s = socket.inet_ntoa(nh.to_bytes(4, "big")) if nh else ""
    vlan = g("vlan")
    if vlan is None:
        vlan = g("dot1q_vlan") or 0
    return (
        take_flow_ids(1), ipver, fmt_ms(first), fmt_ms(last), vlan & 0xFFF,
        min(p + rp, U64), min(b + rb, U64), b, rb, p, rp,
        proto, s4, d4, s6, d6,
        sport, dport, l7, (g("smac") or 0) & 0xFFFFFFFFFFFF, (g("dmac") or g("dmac_post") or 0) & 0xFFFFFFFFFFFF,
        ctx.interface_id,
        (g("tcp_flags") or 0) & 0xFF, (g("rtcp_flags") or 0) & 0xFF,
        (g("src_as") or 0) & U32, (g("dst_as") or 0) & U32, ctx.probe_ip,
        (g("in_if") or 0) & U32, (g("out_if") or 0) & U32, nh_s, min(rate, U32), ctx.source_type, cls,
    )


def is_flow_record(r: dict[str, Any]) -> bool:
    """A data record worth a flows row: it names at least one endpoint or carries counters."""
    return ("src4" in r or "src6" in r or "dst4" in r or "dst6" in r or "bytes" in r or "pkts" in r
            or "init_bytes" in r or "total_bytes" in r)


def live_row(d: dict[str, Any]) -> dict[str, Any]:
    """A stored collector row as the live table wants it: text addresses, epoch times, L7 name."""
    def epoch(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()

    v4 = d["IP_PROTOCOL_VERSION"] == 4
    return {**d, "FIRST_SEEN": epoch(d["FIRST_SEEN"]), "LAST_SEEN": epoch(d["LAST_SEEN"]),
            "SRC_IP": str(ipaddress.IPv4Address(d["IPV4_SRC_ADDR"])) if v4 else d["IPV6_SRC_ADDR"],
            "DST_IP": str(ipaddress.IPv4Address(d["IPV4_DST_ADDR"])) if v4 else d["IPV6_DST_ADDR"],
            "L7_PROTO_NAME": l7_name(d["L7_PROTO"])}
