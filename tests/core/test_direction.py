"""Client and server as ntopng decides them, on real captures that begin mid-conversation, checked
against tshark's view of the packets; the DNS servers seen answering appear in list_expected_servers."""

from __future__ import annotations

import asyncio
import subprocess

from fsharness import corpus_pcap, mcp_session

CAPTURES = ("discord_mid_flow.pcap", "KakaoTalk_chat.pcap", "whatsapp_login_chat.pcap", "dns_ambiguous_names.pcap",
            "tls_1.2_unidirectional_server.pcapng", "teams.pcap")


def tshark(pcap, *fields: str, filt: str) -> list[list[str]]:
    args = ["tshark", "-n", "-r", str(pcap), "-Y", filt, "-T", "fields"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def reference_tcp_servers(pcap) -> dict[frozenset, tuple[str, int]]:
    """Per TCP connection: the server (address, port), as ntopng picks it: the receiver of a bare
    SYN; without one, the end with the well-known (< 1024) port."""
    out: dict[frozenset, tuple[str, int]] = {}
    rows = tshark(pcap, "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport", "tcp.flags.syn",
                  "tcp.flags.ack", filt="tcp")
    for s4, s6, sp, d4, d6, dp, syn, ack in rows:
        a, b = (s4 or s6, int(sp)), (d4 or d6, int(dp))
        key = frozenset([a, b])
        if syn in ("1", "True") and ack in ("0", "False"):
            out[key] = b
        elif key not in out and (a[1] < 1024) != (b[1] < 1024):
            out.setdefault(key, a if a[1] < 1024 else b)
    return out


async def test_servers_as_ntopng_chooses(make_server):
    pcaps = [corpus_pcap(n) for n in CAPTURES]
    server = make_server([arg for p in pcaps for arg in ("--pcap", str(p))])
    async with mcp_session(server) as session:
        for _ in range(120):
            states = {i["state"] for i in (await session.call_tool("get_interfaces", {})).structured_content["interfaces"]}
            if states <= {"done", "failed"}:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # the writer stores a batch every second
        rows = (await session.call_tool("query", {"sql": (
            "SELECT SRC_IP, IP_SRC_PORT, DST_IP, IP_DST_PORT, PROTOCOL FROM flows WHERE PROTOCOL IN (6, 17)")})
        ).structured_content["rows"]
        assert rows
        checked = 0
        reference = {}
        for p in pcaps:
            reference.update(reference_tcp_servers(p))
        for sip, sp, dip, dp, proto in rows:
            if proto == 6 and (srv := reference.get(frozenset([(sip, sp), (dip, dp)]))):
                checked += 1
                assert (dip, dp) == srv, (sip, sp, dip, dp)
            if 53 in (sp, dp) and sp != dp:
                assert dp == 53, (sip, sp, dip, dp)  # the DNS server is the server, whatever came first
        assert checked > 50
        dns_servers = {r[0] or r[1] for p in pcaps for r in tshark(
            p, "ip.src", "ipv6.src", filt="dns.flags.response == 1 && udp.srcport == 53 && !icmp && !icmpv6")}
        assert dns_servers
        expected = (await session.call_tool("list_expected_servers", {"observed_limit": 200})).structured_content
        observed_dns = {o["server"] for o in expected["observed"]["dns"]}
        assert dns_servers <= observed_dns, dns_servers - observed_dns
        for mac in {o["server"] for o in expected["observed"].get("gateway", [])}:
            assert not int(mac[:2], 16) & 1, mac  # never a multicast or broadcast MAC
    print(f"\n{checked} TCP connections oriented as ntopng would; DNS servers {sorted(dns_servers)}")
