"""Packet retention on a live interface: a veth into a network namespace of our own, real curl,
ping and dig traffic to an HTTP server and dnsmasq inside it. The ring keeps the packets, rotates
at its size limit, and a flow's packets come back after the flow ended."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import time

import pytest

from fsharness import mcp_session

LIMIT = 400_000  # --retain-packets 400kB: 8 files of about 37 kB


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=60)


@pytest.fixture
def netns(tmp_path):
    if os.geteuid() != 0 or not shutil.which("dnsmasq"):
        if os.environ.get("CI") == "true":
            pytest.fail("this test needs root and dnsmasq")
        pytest.skip("needs root (network namespaces) and dnsmasq")
    tag = f"{random.getrandbits(16):04x}"
    ns, host_if, subnet = f"pk{tag}", f"pk{tag}h", random.randint(1, 254)
    me, peer = f"10.213.{subnet}.1", f"10.213.{subnet}.2"
    procs = []
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        for args in (["ip", "link", "set", host_if, "gso_max_size", "1514", "gso_max_segs", "1"],
                     ["ip", "-n", ns, "link", "set", "eth0", "gso_max_size", "1514", "gso_max_segs", "1"],
                     ["ip", "addr", "add", f"{me}/24", "dev", host_if], ["ip", "link", "set", host_if, "up"],
                     ["ip", "-n", ns, "addr", "add", f"{peer}/24", "dev", "eth0"],
                     ["ip", "-n", ns, "link", "set", "eth0", "up"], ["ip", "-n", ns, "link", "set", "lo", "up"],
                     ["sysctl", "-qw", f"net.ipv6.conf.{host_if}.disable_ipv6=1"]):
            sh(*args)
        www = tmp_path / "www"
        www.mkdir()
        (www / "small.txt").write_bytes(b"s" * 2000)
        (www / "big.bin").write_bytes(os.urandom(60_000))
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-m", "http.server", "8000", "--bind",
                                       peer, "--directory", str(www)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "dnsmasq", "-k", "--no-resolv", "--no-hosts",
                                       "--bind-interfaces", f"--listen-address={peer}", "--address=/pk.test/" + peer,
                                       "--user=root", "--pid-file=", "--log-facility=-"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1)
        yield {"ns": ns, "interface": host_if, "peer": peer}
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        sh("ip", "link", "del", host_if, check=False)
        sh("ip", "netns", "del", ns, check=False)


def curl(peer: str, name: str) -> None:
    sh("curl", "-sS", "-o", "/dev/null", f"http://{peer}:8000/{name}")


async def stored_flow(session, **flt) -> dict:
    """The flow once it has ended and been written to history."""
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        res = await session.call_tool("get_historical_flow", {**flt, "begin": "10m", "sort": "last_seen",
                                                              "limit": 1})
        if res.structured_content["flows"]:
            return res.structured_content["flows"][0]
        await asyncio.sleep(1)
    raise AssertionError(f"no stored flow for {flt}")


async def flow_packets(session, flow_id: int, **args) -> dict:
    res = await session.call_tool("get_flow_packets", {"flow_id": flow_id, **args})
    assert not res.is_error, res.content[0].text
    return res.structured_content


async def test_ring_keeps_rotates_and_gives_back_packets(make_server, tmp_path, netns):
    data = tmp_path / "data"
    data.mkdir()
    (data / "flowscope.toml").write_text("[flowscope]\nidle_timeout = 3\n")
    server = make_server(["--interface", netns["interface"], "--retain-packets", "400kB"], data_dir=data)
    peer = netns["peer"]
    async with mcp_session(server) as session:
        await asyncio.sleep(2)  # dumpcap and the meter open the interface
        sh("ping", "-c", "3", "-i", "0.2", peer)
        sh("dig", f"@{peer}", "+time=2", "+tries=1", "www.pk.test")
        curl(peer, "small.txt")
        early = await stored_flow(session, host=peer, port=8000)
        dns = await stored_flow(session, host=peer, port=53)
        icmp = await stored_flow(session, host=peer, l4_proto="icmp")
        for f in (early, dns, icmp):
            got = await flow_packets(session, f["flow_id"], detail=[1])
            assert (got["total_packets"], got["total_bytes"]) == (f["packets"], f["bytes"]), f
        got = await flow_packets(session, dns["flow_id"], detail=[1, 2])
        assert got["details"][1]["layers"]["dns"]["dns.a"] == peer

        for _ in range(10):  # 600 kB through a 400 kB ring
            curl(peer, "big.bin")
        last = None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and (last is None or last["bytes"] < 60_000):
            last = await stored_flow(session, host=peer, port=8000)
        got = await flow_packets(session, last["flow_id"], limit=5)
        assert (got["total_packets"], got["total_bytes"]) == (last["packets"], last["bytes"])
        res = await session.call_tool("get_flow_packets", {"flow_id": early["flow_id"]})
        assert res.is_error and "no longer in" in res.content[0].text

        ring = (await session.call_tool("get_interfaces", {})).structured_content["packets"]["retention"][0]
        assert ring["state"] == "running" and ring["limit_bytes"] == LIMIT
        assert ring["bytes_on_disk"] <= LIMIT and ring["files"] <= ring["ring_files"]
        names = sorted(p.name for p in (data / "packets" / "ring" / netns["interface"]).glob("*.pcap"))
        assert "_00001_" not in names[0]  # the first files were dropped
        health = server.health()["packets"]
        assert health["retention"][0]["files"] == len(names) and health["extraction"]["extractions"] >= 4
        print(f"ring: {ring['files']} files, {ring['bytes_on_disk']} bytes of {LIMIT}")
    async with mcp_session(server, token="restricted") as session:  # 192.168.0.0/16 only
        res = await session.call_tool("get_flow_packets", {"flow_id": last["flow_id"]})
        assert res.is_error and "outside your allowed networks" in res.content[0].text
