"""Passive identity sniffer: names, MACs and OS hints from the packets of a source.

Reads the same source as the flow meter: a capture file (pcap/pcapng, read with dpkt) or a
live interface (``tcpdump -i IFACE -U -w - FILTER``, started with an argument list, never a
shell). Nothing is ever sent. What it learns:

- ARP and every IPv4/IPv6 frame from a local address: IP <-> MAC (cheap header check only);
- DNS answers (A/AAAA: the queried name names the answered address), mDNS answers (A/AAAA and
  service PTR/SRV records), DHCP (option 12 host name, 60 vendor class, 55 parameter list,
  50 requested address / yiaddr), DHCPv6 (option 39 FQDN), NetBIOS name registrations and
  positive query responses;
- HTTP requests (Host names the server, User-Agent hints the client's OS), TLS ClientHello
  (SNI names the server), TCP SYN fingerprints (client OS).
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import struct
import subprocess
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from flowscope.services.hosts import osguess
from flowscope.services.hosts.model import HostModel

log = logging.getLogger(__name__)

# For live interfaces: only the packets the parsers want (plus ARP), so tcpdump filters in-kernel.
LIVE_FILTER = (
    "arp or udp port 53 or udp port 5353 or udp port 67 or udp port 68 or udp port 137 or udp port 546 "
    "or udp port 547 or (tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn) "
    "or (tcp dst port 80 and (tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420 "
    "or tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x504f5354)) "
    "or (tcp and tcp[((tcp[12:1] & 0xf0) >> 2):1] = 0x16) "
    "or (vlan and (arp or udp port 53 or udp port 5353 or udp port 67 or udp port 68 or udp port 137))"
)

_HTTP_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ")
_NAME_PORTS_UDP = {53, 5353, 67, 68, 137, 546, 547}


def _ip4(b: bytes) -> str:
    return "%d.%d.%d.%d" % tuple(b)


def _ip6(b: bytes) -> str:
    return str(ipaddress.IPv6Address(b))


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


class IdentityParser:
    """Feeds one packet at a time into a HostModel. Never raises on bad packets."""

    def __init__(self, model: HostModel):
        self.model = model
        self.packets = 0
        self.parsed = 0
        self.errors = 0
        self._mac_seen: dict[tuple[str, str, int], float] = {}

    # ---- link layer -------------------------------------------------------------------
    def feed(self, linktype: int, ts: float, buf: bytes) -> None:
        self.packets += 1
        try:
            self._feed(linktype, ts, buf)
        except Exception:  # malformed packet: skip it
            self.errors += 1

    def _feed(self, linktype: int, ts: float, buf: bytes) -> None:
        src_mac = dst_mac = ""
        vlan = 0
        if linktype == 1:  # Ethernet
            if len(buf) < 14:
                return
            dst_mac, src_mac = _mac(buf[0:6]), _mac(buf[6:12])
            etype = struct.unpack_from("!H", buf, 12)[0]
            off = 14
            while etype in (0x8100, 0x88A8, 0x9100) and len(buf) >= off + 4:
                tci, etype = struct.unpack_from("!HH", buf, off)
                vlan = vlan or (tci & 0x0FFF)
                off += 4
        elif linktype == 113:  # Linux cooked (SLL)
            if len(buf) < 16:
                return
            halen = struct.unpack_from("!H", buf, 4)[0]
            if halen == 6:
                src_mac = _mac(buf[6:12])
            etype = struct.unpack_from("!H", buf, 14)[0]
            off = 16
        elif linktype == 276:  # SLL2
            if len(buf) < 20:
                return
            etype = struct.unpack_from("!H", buf, 0)[0]
            if buf[11] == 6:
                src_mac = _mac(buf[12:18])
            off = 20
        elif linktype in (101, 12, 14, 228, 229):  # raw IP
            if not buf:
                return
            etype = 0x0800 if buf[0] >> 4 == 4 else 0x86DD
            off = 0
        elif linktype in (0, 108):  # BSD loopback
            if len(buf) < 4:
                return
            fam = struct.unpack_from("=I", buf, 0)[0]
            if fam not in (2, 24, 28, 30) and struct.unpack_from("!I", buf, 0)[0] in (2, 24, 28, 30):
                fam = struct.unpack_from("!I", buf, 0)[0]
            etype = 0x0800 if fam == 2 else 0x86DD
            off = 4
        else:
            return
        if etype == 0x0806:
            self._arp(ts, buf[off:], vlan)
        elif etype == 0x0800:
            self._ipv4(ts, buf[off:], src_mac, dst_mac, vlan)
        elif etype == 0x86DD:
            self._ipv6(ts, buf[off:], src_mac, dst_mac, vlan)

    def _learn_mac(self, ip: str, mac: str, ts: float, vlan: int) -> None:
        if not mac:
            return
        key = (ip, mac, vlan)
        last = self._mac_seen.get(key)
        if last is not None and ts - last < 60:
            return
        if len(self._mac_seen) > 500_000:
            self._mac_seen.clear()
        self._mac_seen[key] = ts
        self.model.observe_mac(ip, mac, ts, vlan)

    def _arp(self, ts: float, b: bytes, vlan: int) -> None:
        if len(b) < 28:
            return
        htype, ptype, hlen, plen, _op = struct.unpack_from("!HHBBH", b, 0)
        if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
            return
        sha, spa = _mac(b[8:14]), _ip4(b[14:18])
        if spa != "0.0.0.0":
            self.parsed += 1
            self._learn_mac(spa, sha, ts, vlan)

    # ---- network layer ----------------------------------------------------------------
    def _ipv4(self, ts: float, b: bytes, src_mac: str, dst_mac: str, vlan: int) -> None:
        if len(b) < 20 or b[0] >> 4 != 4:
            return
        ihl = (b[0] & 0x0F) * 4
        total = struct.unpack_from("!H", b, 2)[0]
        frag = struct.unpack_from("!H", b, 6)[0]
        ttl, proto = b[8], b[9]
        src, dst = _ip4(b[12:16]), _ip4(b[16:20])
        if src != "0.0.0.0":
            self._learn_mac(src, src_mac, ts, vlan)
        if frag & 0x1FFF:  # not the first fragment
            return
        end = min(len(b), total) if total >= ihl else len(b)
        self._l4(ts, proto, b[ihl:end], src, dst, ttl, src_mac, vlan)

    def _ipv6(self, ts: float, b: bytes, src_mac: str, dst_mac: str, vlan: int) -> None:
        if len(b) < 40 or b[0] >> 4 != 6:
            return
        plen = struct.unpack_from("!H", b, 4)[0]
        nxt, hlim = b[6], b[7]
        src, dst = _ip6(b[8:24]), _ip6(b[24:40])
        if src != "::":
            self._learn_mac(src, src_mac, ts, vlan)
        off = 40
        end = min(len(b), 40 + plen) if plen else len(b)
        # skip the usual extension headers
        for _ in range(6):
            if nxt in (0, 43, 60) and off + 8 <= end:
                nxt, hl = b[off], b[off + 1]
                off += (hl + 1) * 8
            elif nxt == 44 and off + 8 <= end:
                if struct.unpack_from("!H", b, off + 2)[0] & 0xFFF8:
                    return
                nxt = b[off]
                off += 8
            else:
                break
        self._l4(ts, nxt, b[off:end], src, dst, hlim, src_mac, vlan)

    # ---- transport and applications ---------------------------------------------------
    def _l4(self, ts: float, proto: int, p: bytes, src: str, dst: str, ttl: int, src_mac: str, vlan: int) -> None:
        if proto == 17 and len(p) >= 8:
            sport, dport = struct.unpack_from("!HH", p, 0)
            if sport in _NAME_PORTS_UDP or dport in _NAME_PORTS_UDP:
                self._udp(ts, sport, dport, p[8:], src, dst, src_mac, vlan)
        elif proto == 6 and len(p) >= 20:
            sport, dport, _seq, _ack, off_flags, window = struct.unpack_from("!HHIIHH", p, 0)
            doff = (off_flags >> 12) * 4
            flags = off_flags & 0x3F
            if flags & 0x02 and not flags & 0x10:
                self._syn(ts, src, ttl, window, p[20:doff], vlan)
            payload = p[doff:]
            if payload:
                if payload[:1] == b"\x16":
                    self._tls(ts, payload, src, dst, vlan)
                elif payload.startswith(_HTTP_METHODS):
                    self._http(ts, payload, src, dst, vlan)

    def _udp(self, ts, sport, dport, data, src, dst, src_mac, vlan) -> None:
        if sport == 53 or sport == 5353 or dport == 5353:
            self._dns(ts, data, src, dst, mdns=(sport == 5353 or dport == 5353), vlan=vlan)
        elif sport in (67, 68) and dport in (67, 68):
            self._dhcp(ts, data, src, src_mac, vlan)
        elif sport == 137 or dport == 137:
            self._netbios(ts, data, src, vlan)
        elif sport in (546, 547) and dport in (546, 547):
            self._dhcpv6(ts, data, src, src_mac, vlan)

    def _dns(self, ts, data, src, dst, mdns: bool, vlan: int) -> None:
        import dpkt

        if len(data) < 12 or not data[2] & 0x80:  # responses only
            return
        msg = dpkt.dns.DNS(data)
        self.parsed += 1
        if mdns:
            for rr in list(msg.an) + list(msg.ar):
                if rr.type == dpkt.dns.DNS_A and len(rr.rdata) == 4:
                    self.model.observe_name(_ip4(rr.rdata), _mdns_host(rr.name), "mdns", ts, vlan)
                elif rr.type == dpkt.dns.DNS_AAAA and len(rr.rdata) == 16:
                    self.model.observe_name(_ip6(rr.rdata), _mdns_host(rr.name), "mdns", ts, vlan)
                elif rr.type == dpkt.dns.DNS_PTR and rr.name.startswith("_") and ".local" in rr.name:
                    if not rr.name.startswith("_services."):
                        self.model.observe_mdns_service(src, rr.name, ts, vlan)
                elif rr.type == dpkt.dns.DNS_SRV and getattr(rr, "srvname", ""):
                    # "<instance>._svc._tcp.local" served by srvname; the sender is that host
                    parts = rr.name.split(".")
                    svc = ".".join(p for p in parts if p.startswith("_"))
                    if svc:
                        self.model.observe_mdns_service(src, svc + ".local", ts, vlan)
            return
        if not msg.qd:
            return
        qname = msg.qd[0].name
        for rr in msg.an:
            if rr.type == dpkt.dns.DNS_A and len(rr.rdata) == 4:
                self.model.observe_name(_ip4(rr.rdata), qname, "dns", ts, vlan)
            elif rr.type == dpkt.dns.DNS_AAAA and len(rr.rdata) == 16:
                self.model.observe_name(_ip6(rr.rdata), qname, "dns", ts, vlan)

    def _dhcp(self, ts, data, src, src_mac, vlan) -> None:
        import dpkt

        if len(data) < 240:
            return
        msg = dpkt.dhcp.DHCP(data)
        self.parsed += 1
        opts = {}
        prl = ""
        for code, value in msg.opts:
            opts[code] = value
            if code == 55:
                prl = ",".join(str(x) for x in value)
        chaddr = _mac(msg.chaddr[:6]) if len(msg.chaddr) >= 6 else ""
        msg_type = opts.get(53, b"\x00")[0] if opts.get(53) else 0
        hostname = _text(opts.get(12, b""))
        if not hostname and 81 in opts and len(opts[81]) > 3:  # client FQDN
            hostname = _fqdn_text(opts[81][3:])
        vendor = _text(opts.get(60, b""))
        if msg.op == 1:  # from the client
            ip = ""
            if msg.ciaddr:
                ip = _ip4(struct.pack("!I", msg.ciaddr))
            elif 50 in opts and len(opts[50]) == 4 and msg_type == 3:  # REQUEST of an address
                ip = _ip4(opts[50])
            elif src and src != "0.0.0.0":
                ip = src
            self.model.observe_dhcp(chaddr, ip, ts, hostname=hostname, vendor_class=vendor, prl=prl, vlan=vlan,
                                    msg_type=msg_type)
        else:  # from the server: ACK binds chaddr to yiaddr; the server itself offers a service
            if msg_type == 5 and msg.yiaddr:
                self.model.observe_dhcp(chaddr, _ip4(struct.pack("!I", msg.yiaddr)), ts, hostname=hostname,
                                        vlan=vlan, msg_type=msg_type)
            if src and src != "0.0.0.0":
                self.model.observe_service(src, "udp", 67, "DHCP", ts, vlan)

    def _dhcpv6(self, ts, data, src, src_mac, vlan) -> None:
        if len(data) < 4 or data[0] not in (1, 3, 5, 6, 8, 11):  # client messages
            return
        off = 4
        while off + 4 <= len(data):
            code, ln = struct.unpack_from("!HH", data, off)
            val = data[off + 4:off + 4 + ln]
            off += 4 + ln
            if code == 39 and len(val) > 1:
                name = _fqdn_text(val[1:])
                if name:
                    self.parsed += 1
                    self.model.observe_name(src, name, "dhcpv6", ts, vlan, mac=src_mac)

    def _netbios(self, ts, data, src, vlan) -> None:
        if len(data) < 12:
            return
        _tid, flags, qd, an, _ns, ar = struct.unpack_from("!HHHHHH", data, 0)
        opcode = (flags >> 11) & 0x0F
        response = bool(flags & 0x8000)
        off = 12
        question = None
        for _ in range(qd):
            name, off = _nb_name(data, off)
            off += 4
            question = name
        records = []
        for _ in range(an + ar):
            name, off = _nb_name(data, off)
            if off + 10 > len(data):
                break
            rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", data, off)
            off += 10
            rdata = data[off:off + rdlen]
            off += rdlen
            if rtype == 0x20:
                records.append((name or question, rdata))
        if not (opcode in (5, 8) and not response) and not (opcode == 0 and response):
            return  # only registrations/refreshes and positive query responses name a host
        for name, rdata in records:
            if not name:
                continue
            text, suffix = name
            for i in range(0, len(rdata) - 5, 6):
                nb_flags = struct.unpack_from("!H", rdata, i)[0]
                if nb_flags & 0x8000:  # group name (workgroup/domain), not a host
                    continue
                if suffix not in (0x00, 0x20):
                    continue
                addr = _ip4(rdata[i + 2:i + 6])
                self.parsed += 1
                self.model.observe_name(addr if addr != "0.0.0.0" else src, text, "netbios", ts, vlan)

    def _syn(self, ts, src, ttl, window, opts: bytes, vlan) -> None:
        layout, mss, i = [], 0, 0
        while i < len(opts):
            kind = opts[i]
            if kind == 0:
                layout.append("E")
                break
            if kind == 1:
                layout.append("N")
                i += 1
                continue
            if i + 1 >= len(opts):
                break
            ln = opts[i + 1]
            if kind == 2 and ln == 4:
                mss = struct.unpack_from("!H", opts, i + 2)[0]
            layout.append({2: "M", 3: "W", 4: "S", 8: "T"}.get(kind, f"?{kind}"))
            i += max(ln, 2)
        ev = osguess.from_tcp_syn(ttl, window, ",".join(layout), mss)
        if ev:
            h = self.model.host(src, vlan, create=False)
            if h is None or not any(e["source"] == "tcp_fingerprint" for e in h.os_evidence):
                self.model.observe_os(src, ev, ts, vlan)

    def _tls(self, ts, p: bytes, src, dst, vlan) -> None:
        sni = tls_sni(p)
        if sni:
            self.parsed += 1
            self.model.observe_name(dst, sni, "tls_sni", ts, vlan)

    def _http(self, ts, p: bytes, src, dst, vlan) -> None:
        head = p.split(b"\r\n\r\n", 1)[0][:4096]
        host = ua = ""
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"host":
                host = v.strip().decode("latin-1")
            elif k == b"user-agent":
                ua = v.strip().decode("latin-1")
        self.parsed += 1
        if host:
            h = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
            self.model.observe_name(dst, h, "http_host", ts, vlan)
        if ua:
            self.model.observe_user_agent(src, ua, ts, vlan)


def _text(b: bytes) -> str:
    return b.split(b"\x00", 1)[0].decode("utf-8", "replace").strip() if b else ""


def _fqdn_text(b: bytes) -> str:
    """DNS wire-format name (or plain ASCII, as some clients send) to text."""
    if not b:
        return ""
    if b[0] < 64 and len(b) > b[0]:
        labels, i = [], 0
        while i < len(b) and b[i]:
            n = b[i]
            labels.append(b[i + 1:i + 1 + n].decode("utf-8", "replace"))
            i += 1 + n
        return ".".join(labels)
    return _text(b)


def _mdns_host(name: str) -> str:
    return name[:-6] if name.lower().endswith(".local") else name


def _nb_name(data: bytes, off: int) -> tuple[tuple[str, int] | None, int]:
    """Decode a NetBIOS first-level-encoded name at `off`; returns ((name, suffix) or None, new offset)."""
    if off >= len(data):
        return None, off
    ln = data[off]
    if ln & 0xC0 == 0xC0:  # pointer
        ptr = struct.unpack_from("!H", data, off)[0] & 0x3FFF
        name, _ = _nb_name(data, ptr) if ptr < off else (None, 0)
        return name, off + 2
    start = off
    off += 1
    enc = data[off:off + ln]
    off += ln
    while off < len(data) and data[off] != 0:  # scope labels
        off += 1 + data[off]
    off += 1
    if ln != 32 or start >= len(data):
        return None, off
    raw = bytes(((enc[i] - 0x41) << 4) | (enc[i + 1] - 0x41) for i in range(0, 32, 2))
    text = raw[:15].decode("latin-1").rstrip(" ").strip()
    if not text or not text.isprintable():
        return None, off
    return (text, raw[15]), off


def tls_sni(p: bytes) -> str:
    """Server name from a TLS ClientHello in the first TCP segment ('' if none)."""
    if len(p) < 43 or p[0] != 0x16 or p[1] != 0x03 or p[5] != 0x01:
        return ""
    i = 5 + 4 + 2 + 32  # record hdr, handshake hdr, version, random
    if i >= len(p):
        return ""
    i += 1 + p[i]  # session id
    if i + 2 > len(p):
        return ""
    i += 2 + struct.unpack_from("!H", p, i)[0]  # cipher suites
    if i >= len(p):
        return ""
    i += 1 + p[i]  # compression
    if i + 2 > len(p):
        return ""
    end = min(len(p), i + 2 + struct.unpack_from("!H", p, i)[0])
    i += 2
    while i + 4 <= end:
        etype, elen = struct.unpack_from("!HH", p, i)
        i += 4
        if etype == 0 and i + 5 <= end:
            nlen = struct.unpack_from("!H", p, i + 3)[0]
            if p[i + 2] == 0:
                return p[i + 5:i + 5 + nlen].decode("ascii", "replace")
            return ""
        i += elen
    return ""


# ---- readers ------------------------------------------------------------------------------

def _reader(fh: BinaryIO):
    import dpkt

    magic = fh.read(4)
    fh.seek(0)
    if magic == b"\x0a\x0d\x0d\x0a":
        return dpkt.pcapng.Reader(fh)
    return dpkt.pcap.Reader(fh)


def learn_from_pcap(model: HostModel, path: str, stop: threading.Event | None = None) -> IdentityParser:
    """Read a capture file and feed the model; returns the parser (with counters)."""
    parser = IdentityParser(model)
    with open(path, "rb") as fh:
        rd = _reader(fh)
        linktype = rd.datalink()
        try:
            for n, (ts, buf) in enumerate(rd):
                if stop is not None and n % 4096 == 0 and stop.is_set():
                    break
                parser.feed(linktype, float(ts), bytes(buf))
        except Exception as exc:  # truncated/damaged file: keep what was read
            log.info("identity: %s: stopped reading: %s", path, exc)
    return parser


class LiveSniffer:
    """Runs tcpdump on an interface with the identity filter and feeds the model from its pcap stream."""

    def __init__(self, model: HostModel, iface: str, on_error: Callable[[str], None] | None = None):
        self.model = model
        self.iface = iface
        self.proc: subprocess.Popen | None = None
        self.thread: threading.Thread | None = None
        self.parser = IdentityParser(model)
        self.error = ""
        self._on_error = on_error

    def start(self) -> bool:
        exe = shutil.which("tcpdump")
        if not exe:
            self.error = "tcpdump not found: live identity learning disabled (install Debian package tcpdump)"
            log.warning(self.error)
            return False
        if not self.iface or self.iface.startswith("-"):
            self.error = f"bad interface name {self.iface!r}"
            return False
        args = [exe, "-i", self.iface, "-U", "-n", "-s", "1600", "-w", "-", LIVE_FILTER]
        try:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        except OSError as exc:
            self.error = f"cannot start tcpdump on {self.iface}: {exc}"
            log.warning(self.error)
            return False
        self.thread = threading.Thread(target=self._run, name=f"identity-{self.iface}", daemon=True)
        self.thread.start()
        return True

    def _run(self) -> None:
        import dpkt

        assert self.proc is not None and self.proc.stdout is not None
        try:
            rd = dpkt.pcap.Reader(self.proc.stdout)
            lt = rd.datalink()
            for ts, buf in rd:
                self.parser.feed(lt, float(ts), bytes(buf))
        except Exception as exc:
            if self.proc and self.proc.poll() is None:
                self.error = f"identity sniffer on {self.iface} stopped: {exc}"
                log.info(self.error)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.thread:
            self.thread.join(timeout=3)


def learn_from_flow_rows(model: HostModel, rows: list[dict[str, Any]], app_name: Callable[[dict], str] | None = None) -> None:
    """What finished flows tell: MACs, server names (SNI/Host), User-Agents, listening services."""
    from flowscope.services.hosts.geo import row_ip

    for r in rows:
        try:
            src, dst = row_ip(r, "SRC"), row_ip(r, "DST")
            if not src or not dst:
                continue
            vlan = int(r.get("VLAN_ID") or 0)
            ts = _ts(r.get("LAST_SEEN"))
            if r.get("SRC_MAC"):
                model.observe_mac(src, r["SRC_MAC"], ts, vlan)
            if r.get("DST_MAC") and r.get("DST2SRC_PACKETS"):
                model.observe_mac(dst, r["DST_MAC"], ts, vlan)
            app = (app_name(r) if app_name else r.get("L7_PROTO_NAME")) or ""
            master = app.split(".", 1)[0].upper()
            dom = (r.get("DOMAIN_NAME") or "").strip()
            if dom and master in ("TLS", "HTTP", "QUIC", "DTLS", "HTTP_PROXY"):
                if ":" in dom and dom.count(":") == 1:
                    dom = dom.split(":", 1)[0]
                src_kind = {"TLS": "tls_sni", "DTLS": "tls_sni", "QUIC": "quic_sni"}.get(master, "http_host")
                model.observe_name(dst, dom, src_kind, ts, vlan)
            ua = r.get("USER_AGENT") or ""
            if ua:
                model.observe_user_agent(src, ua, ts, vlan)
            proto = r.get("PROTOCOL")
            port = int(r.get("IP_DST_PORT") or 0)
            if r.get("DST2SRC_PACKETS") and 0 < port <= 49151:
                flags = int(r.get("DST2SRC_TCP_FLAGS") or 0)
                # SYN+ACK from the server; without flags (not metered) the lower port is the server's
                if proto == 6 and ((flags & 0x12) == 0x12 or (not flags and port < int(r.get("IP_SRC_PORT") or 0))):
                    model.observe_service(dst, "tcp", port, app if app != "Unknown" else "", ts, vlan)
                elif proto == 17 and port not in (0,):
                    model.observe_service(dst, "udp", port, app if app != "Unknown" else "", ts, vlan)
        except Exception:
            log.debug("identity: bad flow row", exc_info=True)


def _ts(v: Any) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    from flowscope.services.hosts.model import epoch_of

    return epoch_of(v)


def latest_by_key(mask: Any, ts: Any, *cols: Any) -> dict[tuple, float]:
    """Distinct tuples of `cols` on the rows where `mask`, each with its latest `ts`."""
    out: dict[tuple, float] = {}
    for key, t in zip(zip(*(c[mask].tolist() for c in cols)), ts[mask].tolist()):
        if t > out.get(key, -1.0):
            out[key] = t
    return out


def learn_from_flow_columns(model: HostModel, batch: Any) -> None:
    """`learn_from_flow_rows` for a `FlowColumns` batch of collected flows (exporters send no
    server names, user agents or nDPI applications): MACs and listening services, each distinct
    (address, MAC or service, VLAN) observed once, at its latest time."""
    src, dst = batch.ips("SRC"), batch.ips("DST")
    vlan, ts = batch.full("VLAN_ID"), batch.full("LAST_SEEN") / 1000
    answered = batch.full("DST2SRC_PACKETS") > 0
    smac, dmac = batch.full("SRC_MAC"), batch.full("DST_MAC")
    for (ip, mac, v), t in latest_by_key(smac != 0, ts, src, smac, vlan).items():
        model.observe_mac(ip, mac, t, v)
    for (ip, mac, v), t in latest_by_key((dmac != 0) & answered, ts, dst, dmac, vlan).items():
        model.observe_mac(ip, mac, t, v)
    proto, port, sport = batch.full("PROTOCOL"), batch.full("IP_DST_PORT"), batch.full("IP_SRC_PORT")
    flags = batch.full("DST2SRC_TCP_FLAGS")
    server = answered & (port > 0) & (port <= 49151)
    tcp = server & (proto == 6) & (((flags & 0x12) == 0x12) | ((flags == 0) & (port < sport)))
    for kind, mask in (("tcp", tcp), ("udp", server & (proto == 17))):
        for (ip, p, v), t in latest_by_key(mask, ts, dst, port, vlan).items():
            model.observe_service(ip, kind, int(p), "", t, v)
