"""Ownership and probe targets through the real server and the SDK client (issue 12, items 5-7).

Two plain users (alice, bob), a user limited to some networks (carol), admins (admin, erin) and a
user who gets removed (frank). Probes and SNMP polls only reach 127.0.0.1 or a host in our own
network namespace (prefix "ow"). The server runs in its own mount namespace with a bind-mounted
/etc/hosts, so a test can make a name that resolved inside later resolve to loopback (real
getaddrinfo, no stub).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from fsharness import DEMO, Server, call_tool, cli, unavailable

PID = os.getpid() % 10000
NS, VETH = f"ow{PID}", f"owv{PID}"
OCTET = 16 + os.getpid() % 200
HOST_IP, NS_IP = f"10.79.{OCTET}.1", f"10.79.{OCTET}.2"
NAME = "inside.ow.test"
USERS = {
    "admin": {"user": "admin", "role": "admin"},
    "erin": {"user": "erin", "role": "admin"},
    "alice": {"user": "alice", "role": "user"},
    "bob": {"user": "bob", "role": "user"},
    "carol": {"user": "carol", "role": "user", "networks": "10.79.0.0/16"},
    "frank": {"user": "frank", "role": "user"},
}
CONFIG = """
[monitoring]
tick_s = 0.3
granularity_seconds = { min = 1 }
[policies]
tick_s = 3600
"""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


@pytest.fixture(scope="module")
def netns():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("unshare"):
        unavailable("needs root, iproute2 and unshare")
    ip("netns", "add", NS)
    try:
        ip("link", "add", VETH + "a", "type", "veth", "peer", "name", VETH + "b")
        ip("link", "set", VETH + "b", "netns", NS)
        ip("addr", "add", f"{HOST_IP}/30", "dev", VETH + "a")
        ip("link", "set", VETH + "a", "up")
        ip("netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/30", "dev", VETH + "b")
        ip("netns", "exec", NS, "ip", "link", "set", VETH + "b", "up")
        yield NS_IP
    finally:
        ip("link", "del", VETH + "a", check=False)
        ip("netns", "del", NS, check=False)


class HostsFile:
    """The server's /etc/hosts (bind-mounted in its mount namespace); rewritten in place."""

    def __init__(self, path: Path):
        self.path = path
        self.base = Path("/etc/hosts").read_text()

    def point(self, name: str, addr: str) -> None:
        with open(self.path, "w") as fh:  # same inode: the bind mount sees the change
            fh.write(self.base + f"\n{addr} {name}\n")


@pytest.fixture(scope="module")
def server(netns, tmp_path_factory):
    d = tmp_path_factory.mktemp("ownership")
    (d / "flowscope.toml").write_text(CONFIG)
    hosts = HostsFile(d / "hosts")
    hosts.point(NAME, netns)
    wrap = ("import os, sys; os.execvp('unshare', ['unshare', '-m', 'sh', '-c', "
            f"'mount --bind {hosts.path} /etc/hosts && exec \"$0\" \"$@\"', sys.executable] + sys.argv[1:])")
    s = Server(d, ["--pcap", str(DEMO)], USERS, python_args=("-c", wrap))
    s.hosts = hosts
    s.wait_sources_done()
    yield s
    s.stop()


async def call(server, name, args, token, ok=True):
    res = await call_tool(server, name, args, token=token)
    text = res.content[0].text if res.content else ""
    assert res.is_error != ok, f"{name} as {token}: {text}"
    return res.structured_content if ok else text


async def probes(server, token):
    sc = await call(server, "list_enabled_active_monitoring_scripts", {}, token)
    return {p["id"]: p for p in sc["probes"]}


# --- probe targets -------------------------------------------------------------------------------

REFUSED = [
    ({"type": "icmp", "target": "localhost"}, "loopback"),
    ({"type": "icmp", "target": "127.1"}, "unusual IPv4 spelling"),
    ({"type": "icmp", "target": "2130706433"}, "unusual IPv4 spelling"),
    ({"type": "icmp", "target": "0x7f000001"}, "unusual IPv4 spelling"),
    ({"type": "icmp", "target": "0177.0.0.1"}, "unusual IPv4 spelling"),
    ({"type": "cicmp", "target": "127.000.000.001"}, "unusual IPv4 spelling"),
    ({"type": "icmp", "target": "[::ffff:127.0.0.1]"}, "loopback"),
    ({"type": "icmp", "target": "::1"}, "loopback"),
    ({"type": "icmp", "target": "169.254.169.254"}, "metadata"),
    ({"type": "icmp", "target": "fd00:ec2::254"}, "metadata"),
    ({"type": "icmp", "target": "0.0.0.0"}, "unspecified"),
    ({"type": "icmp", "target": "0.1.2.3"}, "unspecified"),
    ({"type": "icmp", "target": "224.0.0.251"}, "multicast"),
    ({"type": "icmp", "target": "fe80::1"}, "link-local"),
    ({"type": "http", "target": "http://localhost:9/"}, "loopback"),
    ({"type": "http", "target": "http://0x7f.1:9/"}, "unusual IPv4 spelling"),
    ({"type": "throughput", "target": "http://[::1]:9/"}, "loopback"),
    ({"type": "tcp", "target": "localhost:22"}, "loopback"),
    ({"type": "tcp", "target": "017700000001:22"}, "unusual IPv4 spelling"),
    ({"type": "dns", "target": "example.com", "server": "127.0.0.53"}, "loopback"),
    ({"type": "dns", "target": "example.com", "server": "169.254.169.254:53"}, "metadata"),
    ({"type": "dns", "target": "example.com", "server": "0x7f000001"}, "server"),
]


async def test_probe_targets_refused_to_non_admins(server):
    for token in ("alice", "carol"):
        for args, why in REFUSED:
            text = await call(server, "add_active_monitoring_script", args, token, ok=False)
            assert why in text, (token, args, text)
    # inside the namespace's /30, but outside carol's 10.79.0.0/16: refused without naming the address
    text = await call(server, "add_active_monitoring_script", {"type": "tcp", "target": "10.80.1.2:80"}, "carol",
                      ok=False)
    assert "outside your allowed networks" in text
    text = await call(server, "add_active_monitoring_script",
                      {"type": "dns", "target": "example.com", "server": "10.80.0.53"}, "carol", ok=False)
    assert "outside your allowed networks" in text
    assert not await probes(server, "admin")
    # an admin may probe loopback
    out = await call(server, "add_active_monitoring_script", {"type": "icmp", "target": "127.0.0.1"}, "admin")
    assert out["first_measurement"]["ran"] is not False
    await call(server, "remove_active_monitoring_script", {"id": "icmp:127.0.0.1"}, "admin")


async def wait_last_error(server, pid, word, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = (await probes(server, "admin")).get(pid)
        if p and p["last"] and word in (p["last"]["error"] or ""):
            return p["last"]["error"]
        await asyncio.sleep(0.3)
    raise AssertionError(f"{pid}: no run with {word!r}: {p and p['last']}")


async def test_probe_ownership_and_recheck_at_run_time(server, netns):
    a = await call(server, "add_active_monitoring_script",
                   {"type": "icmp", "target": netns, "granularity": "min"}, "alice")
    assert a["first_measurement"]["ok"], a["first_measurement"]
    n = await call(server, "add_active_monitoring_script", {"type": "icmp", "target": NAME, "granularity": "min"},
                   "alice")
    assert n["first_measurement"]["ok"] and n["probe"]["created_by"] == "alice"
    ip_id, name_id = f"icmp:{netns}", f"icmp:{NAME}"
    assert {ip_id, name_id} <= set(await probes(server, "bob"))       # bob has no network limit: sees them
    assert set(await probes(server, "carol")) == {ip_id}               # a name is shown only to its owner
    for token in ("bob", "carol"):
        text = await call(server, "remove_active_monitoring_script", {"id": ip_id}, token, ok=False)
        assert "belongs to alice" in text
    text = await call(server, "remove_active_monitoring_script", {"id": name_id}, "carol", ok=False)
    assert "no probe" in text                                          # not even its existence

    # the name now resolves to loopback: the next scheduled run is refused, not sent
    server.hosts.point(NAME, "127.0.0.1")
    err = await wait_last_error(server, name_id, "not measured")
    assert "loopback" in err
    refused = await call(server, "get_alerts", {"alert_type": "am_target_refused"}, "admin")
    assert any(al["entity_value"] == NAME for al in refused["alerts"])

    # alice's networks are narrowed: her probe to the namespace host stops at its next run
    cli(server.data_dir, "user", "edit", "alice", "--allowed-networks", "10.80.0.0/16")
    try:
        err = await wait_last_error(server, ip_id, "not measured")
        assert "outside your allowed networks" in err
    finally:
        cli(server.data_dir, "user", "edit", "alice", "--allowed-networks", "")
    for pid in (ip_id, name_id):
        await call(server, "remove_active_monitoring_script", {"id": pid}, "admin")
    assert not await probes(server, "admin")


# --- SNMP devices --------------------------------------------------------------------------------

async def test_snmp_device_ownership(server, netns):
    quick = {"community": "ow-secret", "timeout_s": 0.2, "retries": 0, "store_if_unreachable": True}
    out = await call(server, "add_snmp_device", {"host": netns, "name": "alice-sw", **quick}, "alice")
    assert out["added"] and out["config"]["created_by"] == "alice"
    for host, why in (("localhost", "loopback"), ("0x7f000001", "unusual IPv4 spelling"),
                      ("169.254.169.254", "metadata"), ("ff02::1", "multicast")):
        text = await call(server, "add_snmp_device", {"host": host, "name": "x", **quick}, "bob", ok=False)
        assert why in text, (host, text)
    text = await call(server, "add_snmp_device", {"host": "10.80.0.5", **quick}, "carol", ok=False)
    assert "outside your allowed networks" in text
    # the admin's device on loopback: nobody answers there, nothing leaves the machine
    await call(server, "add_snmp_device", {"host": "127.0.0.1", "port": 9, "name": "admin-lo", **quick}, "admin")

    def names(sc):
        return {d["name"] for d in sc["devices"]}

    assert names(await call(server, "list_snmp_devices", {}, "bob")) == {"alice-sw", "admin-lo"}
    assert names(await call(server, "list_snmp_devices", {}, "carol")) == {"alice-sw"}
    text = await call(server, "get_snmp_device_config", {"device": "admin-lo"}, "carol", ok=False)
    assert "no SNMP device" in text
    for token in ("bob", "carol"):
        text = await call(server, "remove_snmp_device", {"device": "alice-sw"}, token, ok=False)
        assert "belongs to alice" in text
    text = await call(server, "remove_snmp_device", {"device": "admin-lo"}, "alice", ok=False)
    assert "belongs to admin" in text
    for dev in ("alice-sw", "admin-lo"):
        assert (await call(server, "remove_snmp_device", {"device": dev}, "admin"))["removed"]


# --- alert exclusions ----------------------------------------------------------------------------

async def test_exclusion_ownership(server):
    def add(kind, value, token, ok=True):
        key = {"host": "host", "domain": "domain", "certificate": "certificate"}[kind]
        return call(server, f"add_{kind}_alert_exclusion", {key: value, "reason": "test rule"}, token, ok=ok)

    a_host = (await add("host", "10.79.3.0/24", "alice"))["exclusion"]
    a_wide = (await add("host", "10.0.0.0/8", "alice"))["exclusion"]
    a_dom = (await add("domain", "partner.example", "alice"))["exclusion"]
    adm = (await add("host", "192.0.2.0/24", "admin"))["exclusion"]
    assert "unusual IPv4 spelling" in await add("host", "0x0a4f0301", "alice", ok=False)
    assert "unusual IPv4 spelling" in await add("host", "10.79.3/24", "carol", ok=False)
    assert "outside your allowed networks" in await add("host", "10.0.0.0/8", "carol", ok=False)
    c_host = (await add("host", "10.79.4.7", "carol"))["exclusion"]

    async def listed(token):
        return {e["id"] for e in (await call(server, "list_alert_exclusions", {}, token))["exclusions"]}

    everything = {a_host["id"], a_wide["id"], a_dom["id"], adm["id"], c_host["id"]}
    assert await listed("admin") == everything
    assert await listed("bob") == everything          # no network limit: sees every rule, changes none
    assert await listed("carol") == {a_host["id"], c_host["id"]}  # her own, and host rules inside her networks
    for token, ex in (("bob", a_host), ("bob", adm), ("carol", a_host), ("alice", c_host)):
        text = await call(server, "remove_alert_exclusion", {"id": ex["id"]}, token, ok=False)
        assert "only they or an admin" in text, (token, text)
    text = await call(server, "remove_alert_exclusion", {"id": a_dom["id"]}, "carol", ok=False)
    assert "no exclusion with id" in text
    await call(server, "remove_alert_exclusion", {"id": c_host["id"]}, "carol")
    await call(server, "remove_alert_exclusion", {"id": a_dom["id"]}, "alice")
    for ex in (a_host, a_wide, adm):
        await call(server, "remove_alert_exclusion", {"id": ex["id"]}, "admin")
    assert not await listed("admin")


# --- acknowledgements ----------------------------------------------------------------------------

async def test_acknowledgements_of_users_change_only_their_view(server):
    await call(server, "create_ai_policy", {"description": "every conversation", "name": "ack-source",
                                            "sql": "SELECT SRC_IP, DST_IP, count() AS n FROM flows "
                                                   "GROUP BY SRC_IP, DST_IP"}, "admin")
    run = await call(server, "run_ai_policy", {"policy": "ack-source"}, "admin")
    assert run["alerts"] >= 2, run
    alerts = (await call(server, "get_alerts", {"entity_value": "ack-source"}, "admin"))["alerts"]
    x, y = alerts[0]["alert_id"], alerts[1]["alert_id"]

    async def acked(token, aid):
        sc = await call(server, "get_alerts", {"entity_value": "ack-source", "acknowledged": True}, token)
        return next((a for a in sc["alerts"] if a["alert_id"] == aid), None)

    async def ack(token, aid, undo=False):
        return (await call(server, "acknowledge_alerts", {"alert_ids": [aid], "comment": f"by {token}",
                                                          "unacknowledge": undo}, token))["changed"]

    async def unacked(token):
        return (await call(server, "get_alert_stats", {"entity_value": "ack-source"}, token))["unacknowledged"]

    before = await unacked("bob")
    assert await ack("alice", x) == 1
    mine = await acked("alice", x)
    assert mine and mine["ack_by"] == "alice" and mine["ack_comment"] == "by alice"
    assert await acked("bob", x) is None and await acked("admin", x) is None
    assert await unacked("alice") == before - 1 and await unacked("bob") == before
    assert await ack("bob", x, undo=True) == 0                    # nothing of bob's to withdraw
    assert await ack("admin", y) == 1                             # an admin's is shared
    for token in ("alice", "bob", "carol", "admin"):
        shared = await acked(token, y)
        if token != "carol" or shared:  # carol sees the alert only if it concerns her networks
            assert shared and shared["ack_by"] == "admin", token
    assert await ack("alice", y, undo=True) == 0 and await acked("alice", y)
    assert await ack("alice", x, undo=True) == 1 and await acked("alice", x) is None
    await call(server, "delete_ai_policy", {"policy": "ack-source"}, "admin")


# --- policies run with their owner's current rights ----------------------------------------------

PAIRS = "SELECT SRC_IP, DST_IP, count() AS flows FROM flows GROUP BY SRC_IP, DST_IP ORDER BY SRC_IP, DST_IP"


async def expected_pairs(server, where="1"):
    sql = f"SELECT SRC_IP, DST_IP FROM flows WHERE {where} GROUP BY SRC_IP, DST_IP"
    return {tuple(r) for r in (await call(server, "query", {"sql": sql}, "admin"))["rows"]}


async def test_policy_narrowed_then_paused_when_owner_demoted(server):
    created = await call(server, "create_ai_policy", {"description": "conversations", "name": "erin-pairs",
                                                      "sql": PAIRS}, "erin")
    every = await expected_pairs(server)
    assert created["dry_run"]["matches"] == len(every) >= 2
    assert "erin-pairs" not in {p["name"] for p in (await call(server, "list_ai_policies", {}, "bob"))["policies"]}
    for tool in ("run_ai_policy", "pause_ai_policy", "delete_ai_policy"):
        assert "belongs to erin" in await call(server, tool, {"policy": "erin-pairs"}, "bob", ok=False)

    # narrowed owner -> narrowed results, at the next run, without touching the policy
    one = sorted({s for s, _ in every})[-1]
    cli(server.data_dir, "user", "edit", "erin", "--allowed-networks", f"{one}/{128 if ':' in one else 32}")
    narrowed = await expected_pairs(server, f"SRC_IP = '{one}' OR DST_IP = '{one}'")
    run = await call(server, "run_ai_policy", {"policy": "erin-pairs"}, "admin")
    assert run["ok"] and run["matches"] == len(narrowed) < len(every)

    # demoted owner -> paused, with the reason in the policy and in an alert
    cli(server.data_dir, "user", "edit", "erin", "--role", "user")
    run = await call(server, "run_ai_policy", {"policy": "erin-pairs"}, "admin")
    assert not run["ok"] and "no longer an admin" in run["error"]
    pol = {p["name"]: p for p in (await call(server, "list_ai_policies", {}, "admin"))["policies"]}["erin-pairs"]
    assert pol["paused"] and "no longer an admin" in pol["paused_reason"]
    paused = await call(server, "get_alerts", {"alert_type": "policy_paused", "entity_value": "erin-pairs"}, "admin")
    assert paused["alerts"] and "no longer an admin" in paused["alerts"][0]["description"]
    # resuming accepts the owner's current (user) rights
    await call(server, "resume_ai_policy", {"policy": "erin-pairs"}, "erin")
    run = await call(server, "run_ai_policy", {"policy": "erin-pairs"}, "erin")
    assert run["ok"] and run["matches"] == len(narrowed)
    await call(server, "delete_ai_policy", {"policy": "erin-pairs"}, "erin")


async def test_policy_paused_when_owner_removed(server):
    await call(server, "create_ai_policy", {"description": "frank's conversations", "name": "frank-pairs",
                                            "sql": PAIRS.replace("flows GROUP", "flows WHERE PROTOCOL > 0 GROUP")},
               "frank")
    cli(server.data_dir, "user", "remove", "frank")
    gone = httpx.post(server.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=10,
                      headers={"Authorization": f"Token {server.tokens['frank']}"})
    assert gone.status_code == 401                       # frank's token went with him
    run = await call(server, "run_ai_policy", {"policy": "frank-pairs"}, "admin")
    assert not run["ok"] and "no longer exists" in run["error"]
    paused = await call(server, "get_alerts", {"alert_type": "policy_paused", "entity_value": "frank-pairs"}, "admin")
    assert paused["alerts"] and "'frank' no longer exists" in paused["alerts"][0]["description"]
    assert "no longer exists" in await call(server, "resume_ai_policy", {"policy": "frank-pairs"}, "admin", ok=False)
    await call(server, "delete_ai_policy", {"policy": "frank-pairs"}, "admin")
