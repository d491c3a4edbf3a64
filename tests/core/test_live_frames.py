"""Live interface totals count every frame (ARP too), equal to what tcpdump writes on the same
interface over the same time: a veth whose far end lives in a network namespace sends ARP
requests and UDP broadcasts to it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time

import pytest

from fsharness import mcp_session

NS, NEAR, FAR = "nu-live", "nu-live0", "nu-live1"


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=check)


@pytest.fixture
def veth():
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "tcpdump", "capinfos")):
        if os.environ.get("CI") == "true":
            pytest.fail("needs root, ip, tcpdump and capinfos")
        pytest.skip("needs root, ip, tcpdump and capinfos")
    _run("ip", "netns", "del", NS, check=False)
    _run("ip", "link", "del", NEAR, check=False)
    _run("ip", "netns", "add", NS)
    try:
        _run("ip", "link", "add", NEAR, "type", "veth", "peer", "name", FAR, "netns", NS)
        _run("sysctl", "-qw", f"net.ipv6.conf.{NEAR}.disable_ipv6=1")  # no autoconf chatter
        _run("ip", "netns", "exec", NS, "sysctl", "-qw", f"net.ipv6.conf.{FAR}.disable_ipv6=1")
        _run("ip", "link", "set", NEAR, "up")
        _run("ip", "netns", "exec", NS, "ip", "addr", "add", "10.99.33.2/24", "dev", FAR)
        _run("ip", "netns", "exec", NS, "ip", "link", "set", FAR, "up")
        yield
    finally:
        _run("ip", "link", "del", NEAR, check=False)
        _run("ip", "netns", "del", NS, check=False)


TRAFFIC = (
    "import socket, time\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n"
    "for i in range(40):\n"
    "    s.sendto(b'x' * (10 + i), ('10.99.33.255', 9999))\n"
    "    s.sendto(b'y', ('10.99.33.%d' % (100 + i % 5), 9999))  # ARP requests nobody answers\n"
    "    time.sleep(0.02)\n")


async def test_interface_counts_every_frame(make_server, veth, tmp_path):
    server = make_server(["--interface", NEAR])
    async with mcp_session(server) as session:
        await asyncio.sleep(3)  # the meter and the frame counter open the interface
        pcap = tmp_path / "ref.pcap"
        dump = subprocess.Popen(["tcpdump", "-i", NEAR, "-U", "-w", str(pcap)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        before = (await session.call_tool("get_interfaces", {})).structured_content["interfaces"][0]
        _run("ip", "netns", "exec", NS, sys.executable, "-c", TRAFFIC)
        time.sleep(4)  # ARP retries end, the counter hands its counts over (every 3 s)
        dump.terminate()
        dump.wait(10)
        await asyncio.sleep(4)
        after = (await session.call_tool("get_interfaces", {})).structured_content["interfaces"][0]
        ref = _run("capinfos", "-T", "-r", "-c", "-d", str(pcap)).stdout.split("\t")
        ref_packets, ref_bytes = int(ref[1]), int(ref[2])
        assert ref_packets > 40
        assert (after["packets"] - before["packets"], after["bytes"] - before["bytes"]) == (ref_packets, ref_bytes)
        q = await session.call_tool("query", {"sql": "SELECT ETHER_TYPE_NAME, sum(packets) FROM frame_counters "
                                                     "GROUP BY ETHER_TYPE_NAME"})
        by_type = {k: int(v) for k, v in q.structured_content["rows"]}
        assert by_type.get("ARP", 0) >= 5 and by_type.get("IPv4", 0) >= 40
        q = await session.call_tool("query", {"sql": "SELECT sum(packets) FROM ts_interface_1m"})
        assert int(q.structured_content["rows"][0][0]) == after["packets"]
    print(f"\n{ref_packets} frames, {ref_bytes} bytes on {NEAR}: {by_type}")
