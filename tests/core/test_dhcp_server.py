"""A real DHCP server (dnsmasq, in a network namespace) answers a DISCOVER; the capture holds its
OFFER, whose flow begins with the server's answer. The server must be oriented as the server and
appear among list_expected_servers' DHCP servers."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from fsharness import mcp_session

NS_S, NS_C, VETH = "nu-dhcp-s", "nu-dhcp-c", "nudhcp"
SERVER, CLIENT = "10.99.31.1", "10.99.31.2"


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=check)


@pytest.fixture
def dhcp_capture(tmp_path):
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "dnsmasq", "tcpdump")):
        if os.environ.get("CI") == "true":
            pytest.fail("needs root, ip, dnsmasq and tcpdump")
        pytest.skip("needs root, ip, dnsmasq and tcpdump")
    for ns in (NS_S, NS_C):
        _run("ip", "netns", "del", ns, check=False)
        _run("ip", "netns", "add", ns)
    procs = []
    try:
        _run("ip", "link", "add", VETH + "s", "netns", NS_S, "type", "veth", "peer", "name", VETH + "c", "netns", NS_C)
        for ns, dev, addr in ((NS_S, VETH + "s", SERVER), (NS_C, VETH + "c", CLIENT)):
            _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/24", "dev", dev)
            _run("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
        pcap = tmp_path / "dhcp.pcap"
        procs.append(subprocess.Popen(["ip", "netns", "exec", NS_S, "tcpdump", "-i", VETH + "s", "-U", "-w", str(pcap),
                                       "udp port 67 or udp port 68"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(["ip", "netns", "exec", NS_S, "dnsmasq", "--no-daemon", "--port=0",
                                       "--no-resolv", "--no-hosts", f"--interface={VETH}s",
                                       "--dhcp-range=10.99.31.100,10.99.31.150,12h",
                                       f"--dhcp-leasefile={tmp_path / 'leases'}", "--dhcp-authoritative", "--no-ping"],
                                      stdout=open(tmp_path / "dnsmasq.log", "w"), stderr=subprocess.STDOUT))
        time.sleep(1.5)
        discover = (
            "import socket, dpkt\n"
            "d = dpkt.dhcp.DHCP(op=dpkt.dhcp.DHCP_OP_REQUEST, xid=0x4e550001, flags=0x8000, "
            "chaddr=bytes.fromhex('02004e550002'), opts=((dpkt.dhcp.DHCP_OPT_MSGTYPE, bytes([dpkt.dhcp.DHCPDISCOVER])),))\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n"
            f"s.bind(('{CLIENT}', 68))\n"
            "s.sendto(bytes(d), ('255.255.255.255', 67))\n")
        import sys

        _run("ip", "netns", "exec", NS_C, sys.executable, "-c", discover)
        for _ in range(40):
            if "DHCPOFFER" in (tmp_path / "dnsmasq.log").read_text():
                break
            time.sleep(0.25)
        time.sleep(0.5)  # tcpdump writes it
        for p in procs:  # a complete capture
            p.terminate()
            p.wait(10)
        yield pcap
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        for ns in (NS_S, NS_C):
            _run("ip", "netns", "del", ns, check=False)


async def test_dhcp_server_from_its_offer(make_server, dhcp_capture):
    offers = _run("tshark", "-n", "-r", str(dhcp_capture), "-Y", "udp.srcport == 67 && dhcp", "-T", "fields",
                  "-e", "ip.src").stdout.split()
    log = (dhcp_capture.parent / "dnsmasq.log").read_text()
    assert offers == [SERVER], (log, _run("tshark", "-n", "-r", str(dhcp_capture)).stdout)  # dnsmasq made an offer
    server = make_server(["--pcap", str(dhcp_capture)])
    async with mcp_session(server) as session:
        for _ in range(60):
            q = await session.call_tool("query", {"sql": "SELECT SRC_IP, IP_SRC_PORT, DST_IP, IP_DST_PORT FROM flows "
                                                         "WHERE IP_SRC_PORT = 67 OR IP_DST_PORT = 67"})
            rows = q.structured_content["rows"]
            if len(rows) >= 2:
                break
            time.sleep(0.5)
        offer = [r for r in rows if SERVER in (r[0], r[2])]
        assert offer and offer[0][2:] == [SERVER, 67], rows  # the server is the server
        expected = (await session.call_tool("list_expected_servers", {})).structured_content
        assert SERVER in {o["server"] for o in expected["observed"]["dhcp"]}
