"""Generated sweeps over every tool `tools/list` shows, on the real server with the SDK client.

- A user limited to 192.168.0.0/16 calls every tool with valid arguments (built from the tool's
  input schema and a table of real values: a visible host, its MAC, a visible flow, objects the
  sweep created) and no answer, text or structured, names an address outside that network other
  than a peer of a flow the user may see, or one the request itself named.
- A read-only token calls every write tool with valid arguments: each is refused, and nothing
  changes.
A tool the table cannot give valid arguments fails the sweep: add its values here.

The server runs in a network namespace of its own (prefix "sc") whose only route is loopback,
with 192.168.250.1 on it: probes and SNMP polls the sweep creates never leave the namespace.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from fsharness import DEMO, STANDARD_USERS, Server, corpus_pcap, mcp_session

INSIDE = ipaddress.ip_network("192.168.0.0/16")
LAB_IP = "192.168.250.1"  # on the namespace's loopback: a probe/SNMP target that stays local
NS = f"sc-sweep-{os.getpid()}"
VETH = f"scw{os.getpid() % 100000}"
NET = f"10.213.{os.getpid() % 250}"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def netns():
    ip("netns", "add", NS)
    try:
        ip("link", "add", VETH + "a", "type", "veth", "peer", "name", VETH + "b")
        ip("link", "set", VETH + "b", "netns", NS)
        ip("addr", "add", f"{NET}.1/30", "dev", VETH + "a")
        ip("link", "set", VETH + "a", "up")
        for args in (("addr", "add", f"{NET}.2/30", "dev", VETH + "b"), ("link", "set", VETH + "b", "up"),
                     ("link", "set", "lo", "up"), ("addr", "add", f"{LAB_IP}/32", "dev", "lo")):
            ip("netns", "exec", NS, "ip", *args)
        # a silent SNMP agent: reads and never answers, so a device added there times out
        sink = subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-c",
                                 "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                                 f"s.bind(('{LAB_IP}', 161))\nwhile True: s.recv(65535)"])
        yield f"{NET}.2"
        sink.terminate()
        sink.wait(timeout=10)
    finally:
        subprocess.run(["ip", "link", "del", VETH + "a"], capture_output=True)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)


@pytest.fixture(scope="module")
def server(netns, tmp_path_factory):
    quic = corpus_pcap("quic.pcap")  # hosts in 192.168.1.0/24 talking to public addresses
    s = Server(tmp_path_factory.mktemp("sweep"), ["--pcap", str(DEMO), "--pcap", str(quic)], STANDARD_USERS,
               prefix=("ip", "netns", "exec", NS), host=netns)
    try:
        s.wait_sources_done()
        yield s
    finally:
        s.stop()


# ---- reading addresses (independently of the server's own parser) --------------------------------

_V4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d/])")
_V6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:/])")


def addresses(text: str) -> set[str]:
    """Addresses written in `text`: CIDR blocks (10.0.0.0/8, e.g. in a policy's SQL) are ranges,
    not hosts, and netmasks and 0.0.0.0 / :: name no host."""
    out = set()
    for m in list(_V4.finditer(text)) + list(_V6.finditer(text)):
        try:
            a = ipaddress.ip_address(m.group(0))
        except ValueError:
            continue
        inverse = ~int(a) & ((1 << a.max_prefixlen) - 1)
        if not a.is_unspecified and inverse & (inverse + 1):  # netmasks name no host
            out.add(str(a))
    return out


def inside(addr: str) -> bool:
    a = ipaddress.ip_address(addr)
    return a.version == 4 and a in INSIDE


def find(node: Any, key: str) -> Any:
    """The first value of `key` anywhere in a JSON answer."""
    if isinstance(node, dict):
        if node.get(key) not in (None, ""):
            return node[key]
        node = list(node.values())
    if isinstance(node, list):
        for v in node:
            got = find(v, key)
            if got not in (None, ""):
                return got
    return None


# ---- the table of real values ----------------------------------------------------------------------

async def facts(server: Server) -> dict[str, Any]:
    """Real values from the admin's view: a visible host with its MAC, flows, and who talks to whom."""
    async with mcp_session(server) as admin:
        async def sql(text: str) -> list[list[Any]]:
            res = await admin.call_tool("query", {"sql": text, "limit": 10000})
            assert not res.is_error, res.content[0].text
            return res.structured_content["rows"]

        pairs = await sql("SELECT DISTINCT SRC_IP, DST_IP FROM flows")
        host, mac = (await sql("SELECT SRC_IP, any(SRC_MAC_ADDR) FROM flows WHERE "
                               "isIPAddressInRange(SRC_IP, '192.168.0.0/16') GROUP BY SRC_IP "
                               "ORDER BY count() DESC LIMIT 1"))[0]
        live = (await admin.call_tool("get_live_flows", {"limit": 1000})).structured_content["flows"]
    peers = {b for a, b in pairs if inside(a)} | {a for a, b in pairs if inside(b)}
    hidden = [f for f in live if not inside(f["src_ip"]) and not inside(f["dst_ip"])]
    assert hidden and len(hidden) < len(live), "the sweep needs flows on both sides of 192.168.0.0/16"
    return {"host": host, "mac": mac, "peers": peers,
            "flow_id": next(f["flow_id"] for f in live if inside(f["src_ip"]) or inside(f["dst_ip"])),
            "hidden_flow": hidden[0], "outside_hosts": {a for p in pairs for a in p} - peers}


def value_table(f: dict[str, Any], made: dict[str, Any]) -> dict[str, Any]:
    """Property name -> a valid value (`made`: ids of what the sweep created)."""
    return {
        "ip": f["host"], "host": f["host"], "target": LAB_IP, "exporter": f["host"], "mac": f["mac"],
        "flow_id": f["flow_id"], "table": "flows", "type": "icmp", "label": "sweep", "reason": "sweep",
        "sql": "SELECT SRC_IP, DST_IP, sum(TOTAL_BYTES) AS b FROM flows GROUP BY SRC_IP, DST_IP ORDER BY b DESC",
        "series": [{"entity": "host", "metrics": ["bytes"], "filters": {"host": f["host"]}}],
        "domain": "sweep.example", "certificate": "sweep.example", "description": "No RDP from the internet",
        **made,
    }


#: tool -> arguments beyond the required ones, or overriding them
EXTRA: dict[str, dict[str, Any]] = {
    "add_host_alert_exclusion": {"host": LAB_IP},
    "add_snmp_device": {"host": LAB_IP, "community": "sweep", "timeout_s": 1, "retries": 0,
                        "store_if_unreachable": True},
    "create_ai_policy": {"name": "sweep-policy"},
}

#: creators -> (field of their answer, property name it fills for later tools)
MADE_BY = {
    "add_host_alert_exclusion": ("id", "id@remove_alert_exclusion"),
    "add_active_monitoring_script": ("id", "id@remove_active_monitoring_script"),
    "add_snmp_device": ("device", "device"),
    "create_ai_policy": ("name", "policy"),
}


def order(tools: list) -> list:
    """Creators first, removers last, so that every tool gets real objects to work on."""
    def rank(t) -> int:
        return 0 if t.name.startswith(("add_", "create_")) else 2 if t.name.startswith(("remove_", "delete_")) else 1
    return sorted(tools, key=lambda t: (rank(t), t.name))


def arguments(tool, table: dict[str, Any]) -> dict[str, Any]:
    required = tool.input_schema.get("required", [])
    args = {}
    for prop in required:
        key = f"{prop}@{tool.name}" if f"{prop}@{tool.name}" in table else prop
        if key not in table:
            pytest.fail(f"no valid value for {tool.name}.{prop}: add one to the sweep's value table")
        args[prop] = table[key]
    return {**args, **EXTRA.get(tool.name, {})}


def answer_text(res) -> str:
    parts = [c.text for c in res.content if getattr(c, "type", "") == "text"]
    return "\n".join(parts) + "\n" + json.dumps(res.structured_content or {})


# ---- the sweeps ----------------------------------------------------------------------------------------

async def test_restricted_user_every_tool(server):
    """Every tool, valid arguments, as a user limited to 192.168.0.0/16: no outside address leaks."""
    f = await facts(server)
    made: dict[str, Any] = {}
    called, answered = [], []
    async with mcp_session(server, token="restricted") as session:
        tools = (await session.list_tools()).tools
        assert len(tools) >= 50
        for tool in order(tools):
            args = arguments(tool, value_table(f, made))
            res = await session.call_tool(tool.name, args)
            called.append(tool.name)
            if not res.is_error:
                answered.append(tool.name)
            if tool.name in MADE_BY:
                assert not res.is_error, (tool.name, args, res.content[0].text)
                field, prop = MADE_BY[tool.name]
                made[prop] = find(res.structured_content, field)
            asked = addresses(json.dumps(args))
            leaked = {a for a in addresses(answer_text(res)) if not inside(a)} - f["peers"] - asked
            assert not leaked, (tool.name, args, sorted(leaked)[:5], answer_text(res)[:800])
    assert called == [t.name for t in order(tools)]
    # the read tools answer (a refusal proves nothing about leaks)
    for name in ("get_live_flows", "get_historical_flow", "get_host_info", "get_top_talkers", "get_interfaces",
                 "query", "get_asset_info", "get_country_stats", "get_live_flows_summary", "chart"):
        assert name in answered, name


async def test_restricted_user_targeted_answers(server):
    """The answers that used to leak, and the rule for peers: a talker or source outside is never shown."""
    f = await facts(server)
    outside = sorted(f["outside_hosts"])[0]
    async with mcp_session(server, token="restricted") as session:
        talkers = (await session.call_tool("get_top_talkers", {"limit": 1000})).structured_content["talkers"]
        assert talkers and all(inside(t["ip"]) for t in talkers)
        live_talkers = (await session.call_tool("get_top_talkers", {"limit": 1000, "source": "live"}))
        assert all(inside(t["ip"]) for t in live_talkers.structured_content["talkers"])
        ifaces = (await session.call_tool("get_interfaces", {})).structured_content
        names = {i["name"] for i in ifaces["interfaces"]}
        assert names == {"quic.pcap"}, names  # the demo capture holds no flow of theirs; no directories
        assert all(i["drops"] is None and i["error"] is None for i in ifaces["interfaces"])
        count = (await session.call_tool("query", {"sql": "SELECT count() FROM flows"})).structured_content
        assert ifaces["flows_stored"] == ifaces["interfaces"][0]["flows"] == int(count["rows"][0][0]) > 0
        addrs = (await session.call_tool("get_interface_addresses", {"all_interfaces": True})).structured_content
        assert [i["name"] for i in addrs["interfaces"]] == ["lo"]  # only lo holds an address of theirs
        assert [a["address"] for a in addrs["interfaces"][0]["addresses"]] == [LAB_IP]
        for name, args in (("get_host_info", {"ip": outside}), ("get_live_flows_for_host", {"host": outside})):
            res = await session.call_tool(name, args)
            assert res.is_error and "outside your allowed networks" in res.content[0].text
        one = await session.call_tool("get_live_flow", {"flow_id": f["hidden_flow"]["flow_id"]})
        assert one.structured_content["found"] is False
        assets = (await session.call_tool("get_asset_info", {"limit": 1000})).structured_content["assets"]
        assert assets and all(inside(a["ip"]) for a in assets)
        assert all(inside(i["ip"]) for a in assets for i in a["info"].get("ips", []))
    async with mcp_session(server) as admin:
        ifaces = (await admin.call_tool("get_interfaces", {})).structured_content["interfaces"]
        assert len(ifaces) == 2 and all(i["name"].startswith("/") for i in ifaces)


def _state_of(answer: Any) -> Any:
    """What identifies the objects in a list answer (ids, names), not their changing measurements."""
    if isinstance(answer, dict):
        keys = {k: v for k, v in answer.items() if k in ("id", "name", "device", "host", "enabled", "state",
                                                          "paused", "acknowledged", "label", "ip")}
        nested = {k: _state_of(v) for k, v in answer.items() if isinstance(v, (list, dict))}
        return {**keys, **{k: v for k, v in nested.items() if v}}
    if isinstance(answer, list):
        return [_state_of(v) for v in answer]
    return None


async def _state(session) -> dict[str, Any]:
    out = {}
    for name in ("list_alert_exclusions", "list_enabled_active_monitoring_scripts", "list_snmp_devices",
                 "list_ai_policies", "get_alerts"):
        res = await session.call_tool(name, {})
        assert not res.is_error, (name, res.content[0].text)
        out[name] = _state_of(res.structured_content)
    res = await session.call_tool("query", {"sql": "SELECT ip, label FROM host_labels ORDER BY ip, label"})
    out["labels"] = res.structured_content["rows"]
    return out


async def test_read_only_token_every_write_tool(server):
    """Every write tool, valid arguments, read-only token: refused, and nothing changed."""
    f = await facts(server)
    made: dict[str, Any] = {}
    async with mcp_session(server) as admin:  # real objects for the write tools to name
        tools = (await admin.list_tools()).tools
        writes = [t for t in order(tools) if t.annotations.read_only_hint is False]
        assert len(writes) >= 15
        for tool in writes:
            if tool.name in MADE_BY:
                args = arguments(tool, value_table(f, made))
                if tool.name == "create_ai_policy":
                    args["name"] = "sweep-ro-policy"
                res = await admin.call_tool(tool.name, args)
                assert not res.is_error, (tool.name, res.content[0].text)
                field, prop = MADE_BY[tool.name]
                made[prop] = find(res.structured_content, field)
        before = await _state(admin)
    async with mcp_session(server, token="readonly") as session:
        for tool in writes:
            res = await session.call_tool(tool.name, arguments(tool, value_table(f, made)))
            assert res.is_error and "read-only" in res.content[0].text, (tool.name, res.content[0].text)
    async with mcp_session(server) as admin:
        assert await _state(admin) == before
        for tool in writes:  # leave nothing behind for the other sweeps (any order)
            if tool.name.startswith(("remove_", "delete_")):
                res = await admin.call_tool(tool.name, arguments(tool, value_table(f, made)))
                assert not res.is_error, (tool.name, res.content[0].text)
