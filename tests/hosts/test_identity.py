"""Passive identity: names (DNS, DHCP, NetBIOS, mDNS, TLS SNI, HTTP Host), MACs, OUI, OS guesses."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess

import dpkt
import pytest

from flowscope.services.hosts import osguess
from flowscope.services.hosts.identity import IdentityParser, learn_from_flow_rows, learn_from_pcap, tls_sni
from flowscope.services.hosts.model import HostModel
from flowscope.services.hosts.netinfo import LocalNets, manufacturer
from fsharness import corpus_pcap, unavailable


def learn(name: str) -> HostModel:
    model = HostModel()
    learn_from_pcap(model, str(corpus_pcap(name)))
    return model


def names(model: HostModel, ip: str) -> dict[str, str]:
    return {n: v[0] for h in model.get_host(ip) for n, v in h.names.items()}


def tshark_fields(path, display_filter: str, *fields: str) -> list[list[str]]:
    if not shutil.which("tshark"):
        unavailable("tshark not installed")
    args = ["tshark", "-n", "-r", str(path), "-Y", display_filter, "-T", "fields", "-E", "separator=\t"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


# ---- corpus captures, cross-checked with tshark ----------------------------------------------------

def test_dns_answers_name_the_answered_addresses():
    path = corpus_pcap("teams.pcap")
    model = learn("teams.pcap")
    pairs = 0
    for qname, addrs in tshark_fields(path, "dns.flags.response == 1 && !mdns", "dns.qry.name", "dns.a"):
        for a in filter(None, addrs.split(",")):
            assert qname in names(model, a), (qname, a, names(model, a))
            pairs += 1
    assert pairs >= 10
    assert names(model, "52.114.77.33")["skypedataprdcolneu04.cloudapp.net"] == "dns"


def test_dhcp_names_macs_and_addresses():
    path = corpus_pcap("teams.pcap")
    model = learn("teams.pcap")
    seen = tshark_fields(path, "dhcp.option.hostname", "dhcp.hw.mac_addr", "dhcp.option.hostname")
    assert seen
    for mac, hostname in seen:
        m = model.get_mac(mac.split(",")[0])
        assert m is not None and m.names.get(hostname, [None])[0] == "dhcp", (mac, hostname)
    # pi3.ntop.org asked (DISCOVER, no address yet); its traffic later binds the MAC to an address,
    # and the host inherits the name and OS evidence the MAC gave
    pi = model.get_mac("00:80:8f:9a:ae:bd")
    assert pi.name == "pi3.ntop.org" and "192.168.1.2" in pi.ips
    host = model.get_host("192.168.1.2")[0]
    assert host.mac == "00:80:8f:9a:ae:bd" and host.name == "pi3.ntop.org"
    assert host.os == "Linux"  # option 60 'dhcpcd-6.10.1:Linux-4.9.57-v7+:armv7l:BCM2835'
    assert any(e["source"] == "dhcp_vendor" for e in host.os_evidence)
    sw = model.get_host("192.168.0.1")[0]
    assert sw.name == "TL-SG116E" and sw.manufacturer.startswith("TP-LINK")


def test_dhcp_iphone_name_os_and_device_type():
    model = learn("wechat.pcap")
    h = model.get_host("192.168.1.106")[0]
    assert h.name == "iPhonediMonica" and h.best_name()[1] == "dhcp"
    assert h.mac == "b8:78:2e:e2:da:07" and h.manufacturer == "Apple, Inc."
    assert h.os == "iOS" and h.device_type == "phone"
    # its IPv6 link-local address shares the MAC
    v6 = [x for x in model.hosts.values() if x.ip.startswith("fe80:") and x.mac == "b8:78:2e:e2:da:07"]
    assert v6


def test_netbios_registration_names_the_host_not_the_workgroup():
    model = learn("dos_win98_smb_netbeui.pcap")
    h = model.get_host("192.168.239.129")[0]
    assert names(model, "192.168.239.129") == {"MDJR98": "netbios"}
    assert h.mac == "00:50:56:33:78:9e" and h.manufacturer == "VMware, Inc."


def test_tls_sni_names_the_server():
    path = corpus_pcap("teams.pcap")
    model = learn("teams.pcap")
    rows = tshark_fields(path, "tls.handshake.type == 1 && tls.handshake.extensions_server_name",
                         "ip.dst", "tls.handshake.extensions_server_name")
    assert rows
    import ipaddress

    def literal(text):
        try:
            return bool(ipaddress.ip_address(text))
        except ValueError:
            return False

    for dst, sni in rows:
        if dst and not literal(sni):  # an address given as SNI is no name
            assert names(model, dst).get(sni) in ("tls_sni", "dns"), (dst, sni)


def test_remote_hosts_get_the_gateway_mac_and_the_router_is_a_network_device():
    model = learn("teams.pcap")
    r = model.get_host("52.114.77.33")[0]
    assert not r.is_local and r.gateway_mac == "10:13:31:f1:39:76" and not r.mac
    gw = model.get_mac("10:13:31:f1:39:76")
    assert gw.type == "network_device" and gw.device_type == "networking"


# ---- synthetic packets (built with dpkt) for what the corpus lacks ----------------------------------

def eth(src_mac: str, dst_mac: str, ip_pkt: bytes, v6: bool = False) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(src=bytes.fromhex(src_mac.replace(":", "")),
                                        dst=bytes.fromhex(dst_mac.replace(":", "")),
                                        type=0x86DD if v6 else 0x0800, data=ip_pkt))


def udp4(src: str, dst: str, sport: int, dport: int, payload: bytes, ttl: int = 64) -> bytes:
    u = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    u.ulen = len(u)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=17, ttl=ttl, data=u)
    ip.len = len(ip)
    return bytes(ip)


def tcp4(src: str, dst: str, sport: int, dport: int, payload: bytes, flags: int, ttl: int = 64,
         opts: bytes = b"", win: int = 65535) -> bytes:
    t = dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, win=win, opts=opts, data=payload)
    t.off = (20 + len(opts)) // 4
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=6, ttl=ttl, data=t)
    ip.len = len(ip)
    return bytes(ip)


def test_mdns_answer_names_and_services():
    model = HostModel()
    p = IdentityParser(model)
    msg = dpkt.dns.DNS(id=0, op=0x8400)  # response, authoritative
    a = dpkt.dns.DNS.RR(name="Lucas-iMac.local", type=dpkt.dns.DNS_A, cls=0x8001, ttl=120,
                        rdata=socket.inet_aton("192.168.2.4"))
    ptr = dpkt.dns.DNS.RR(name="_airplay._tcp.local", type=dpkt.dns.DNS_PTR, cls=1, ttl=4500,
                          ptrname="Lucas-iMac._airplay._tcp.local")
    ptr.rdata = b""
    msg.an = [a, ptr]
    frame = eth("d8:30:62:56:00:1c", "01:00:5e:00:00:fb", udp4("192.168.2.4", "224.0.0.251", 5353, 5353, bytes(msg)))
    p.feed(1, 1_600_000_000.0, frame)
    h = model.get_host("192.168.2.4")[0]
    assert names(model, "192.168.2.4") == {"Lucas-iMac": "mdns"}
    assert h.mac == "d8:30:62:56:00:1c" and h.manufacturer == "Apple, Inc."
    assert "_airplay._tcp.local" in h.mdns_services and h.device_type == "tv"
    assert model.get_mac("d8:30:62:56:00:1c").name == "Lucas-iMac"


def test_http_host_user_agent_and_tcp_syn_fingerprint():
    model = HostModel()
    p = IdentityParser(model)
    c, s = "192.168.5.10", "93.184.216.34"
    opts = b"\x02\x04\x05\xb4\x01\x03\x03\x08\x01\x01\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00\x04\x02\x00\x00"
    syn = tcp4(c, s, 50000, 80, b"", dpkt.tcp.TH_SYN, ttl=128, opts=opts, win=64240)
    req = (b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
           b"AppleWebKit/537.36\r\n\r\n")
    data = tcp4(c, s, 50000, 80, req, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, ttl=128)
    for i, pkt in enumerate((syn, data)):
        p.feed(1, 1_600_000_000.0 + i, eth("3c:52:82:00:00:01", "10:13:31:f1:39:76", pkt))
    assert names(model, s) == {"example.com": "http_host"}
    h = model.get_host(c)[0]
    assert h.os == "Windows 10/11"
    assert {e["source"] for e in h.os_evidence} == {"user_agent", "tcp_fingerprint"}
    assert h.mac == "3c:52:82:00:00:01" and h.manufacturer  # an HP OUI


def test_tls_client_hello_parser():
    name = b"www.example.org"
    sni_ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    body = b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + \
        struct.pack("!H", len(sni_ext)) + sni_ext
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    rec = b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs
    assert tls_sni(rec) == "www.example.org"
    assert tls_sni(rec[:30]) == "" and tls_sni(b"\x17\x03\x03\x00\x10") == ""


def test_bad_packets_never_raise():
    model = HostModel()
    p = IdentityParser(model)
    for junk in (b"", b"\x00" * 13, b"\xff" * 60, eth("00:11:22:33:44:55", "ff:ff:ff:ff:ff:ff", b"\x45" + b"\x00" * 30)):
        p.feed(1, 0.0, junk)
    p.feed(1, 0.0, eth("00:11:22:33:44:55", "ff:ff:ff:ff:ff:ff", udp4("10.0.0.1", "10.0.0.255", 137, 137, b"\x00" * 40)))
    assert p.packets == 5


def test_flow_rows_teach_names_user_agents_services_and_macs():
    model = HostModel(LocalNets(["10.1.0.0/16"]))
    rows = [{
        "IP_PROTOCOL_VERSION": 4, "SRC_IP": "10.1.2.3", "DST_IP": "151.101.1.69", "VLAN_ID": 7, "PROTOCOL": 6,
        "IP_DST_PORT": 443, "L7_PROTO_NAME": "TLS.StackOverflow", "DOMAIN_NAME": "stackoverflow.com",
        "USER_AGENT": "", "SRC_MAC": 0x0050569a0001, "DST_MAC": 0x101331f13976, "DST2SRC_PACKETS": 5,
        "DST2SRC_TCP_FLAGS": 0x12, "LAST_SEEN": 1_700_000_000.0,
    }, {
        "IP_PROTOCOL_VERSION": 4, "SRC_IP": "10.1.2.3", "DST_IP": "10.1.0.5", "VLAN_ID": 7, "PROTOCOL": 6,
        "IP_DST_PORT": 8080, "L7_PROTO_NAME": "HTTP", "DOMAIN_NAME": "intranet:8080",
        "USER_AGENT": "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0)", "SRC_MAC": 0x0050569a0001,
        "DST_MAC": 0x0050569a0002, "DST2SRC_PACKETS": 3, "DST2SRC_TCP_FLAGS": 0x1a, "LAST_SEEN": 1_700_000_001.0,
    }]
    learn_from_flow_rows(model, rows)
    srv = model.get_host("151.101.1.69", 7)[0]
    assert srv.names["stackoverflow.com"][0] == "tls_sni" and srv.services == {"tcp/443": "TLS.StackOverflow"}
    assert srv.gateway_mac == "10:13:31:f1:39:76" and not srv.is_local
    web = model.get_host("10.1.0.5", 7)[0]
    assert web.name == "intranet" and web.services == {"tcp/8080": "HTTP"} and web.mac == "00:50:56:9a:00:02"
    cl = model.get_host("10.1.2.3", 7)[0]
    assert cl.os == "Linux" and cl.mac == "00:50:56:9a:00:01" and cl.vlan == 7
    assert model.get_host("10.1.2.3", 0) == []


# ---- OUI and OS rules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mac,org", [
    ("d8:30:62:56:00:1c", "Apple, Inc."),
    ("00-50-56-33-78-9E", "VMware, Inc."),
    ("b8:27:eb:12:34:56", "Raspberry Pi Foundation"),
    ("00:00:0c:07:ac:01", "Cisco Systems, Inc"),
])
def test_manufacturer_from_oui(mac, org):
    assert manufacturer(mac) == org


def test_randomised_mac_has_no_manufacturer():
    assert manufacturer("da:a1:19:00:00:01") == ""  # locally administered bit set
    assert manufacturer("not a mac") == ""


def test_os_rules():
    assert osguess.best(osguess.from_dhcp("MSFT 5.0", "")) == "Windows"
    assert osguess.best(osguess.from_dhcp("android-dhcp-13", "1,3,6,15,26,28,51,58,59,43")) == "Android"
    assert osguess.best(osguess.from_dhcp("", "1,121,3,6,15,119,252")) == "iOS"
    assert osguess.from_user_agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)")["os"] == "iOS"
    assert osguess.from_user_agent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)")["os"] == "macOS"
    assert osguess.from_tcp_syn(57, 65535, "M,N,W,N,N,T,S,E")["os"] == "macOS/iOS"
    assert osguess.from_tcp_syn(61, 64240, "M,S,T,N,W")["os"] == "Linux"
    assert osguess.from_tcp_syn(120, 64240, "M,N,W,N,N,S")["os"] == "Windows"
    # stronger evidence wins
    ev = [osguess.from_tcp_syn(64, 65535, "M,S,T,N,W"), *osguess.from_dhcp("MSFT 5.0", "")]
    assert osguess.best(ev) == "Windows"


def test_live_sniffer_learns_from_an_interface():
    """tcpdump on the loopback interface (argument list, identity filter): a DNS answer sent from
    127.0.0.1:53 to 127.0.0.1 names the answered address. Only loopback traffic."""
    import os
    import time

    from flowscope.services.hosts.identity import LiveSniffer

    if not shutil.which("tcpdump") or os.geteuid() != 0:
        unavailable("needs tcpdump and root (Debian package tcpdump)")
    model = HostModel()
    sn = LiveSniffer(model, "lo")
    assert sn.start(), sn.error
    try:
        msg = dpkt.dns.DNS(id=7, op=0x8180, qd=[dpkt.dns.DNS.Q(name="printer.example.test")])
        msg.an = [dpkt.dns.DNS.RR(name="printer.example.test", type=dpkt.dns.DNS_A, cls=1, ttl=60,
                                  rdata=socket.inet_aton("10.20.30.40"))]
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.bind(("127.0.0.1", 53))
        deadline = time.monotonic() + 15
        try:
            while time.monotonic() < deadline and not model.get_host("10.20.30.40"):
                tx.sendto(bytes(msg), rx.getsockname())
                time.sleep(0.3)
        finally:
            tx.close()
            rx.close()
        assert names(model, "10.20.30.40") == {"printer.example.test": "dns"}
    finally:
        sn.stop()
    assert sn.proc.poll() is not None
