"""The real server, spoken to with the SDK's Streamable HTTP client, in both protocol eras."""

from __future__ import annotations

import json

import httpx
import pytest

from fsharness import DEMO, call_tool, mcp_session



ERAS = ["2025-11-25", "2026-07-28"]
PATHS = ["/mcp", "/lua/rest/v2/exec/llm/mcp.lua"]


@pytest.fixture(scope="module")
def server(make_server):
    s = make_server(["--pcap", str(DEMO)])
    s.wait_sources_done()
    return s


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("scheme", ["Token", "Bearer"])
async def test_both_eras_paths_and_schemes(server, era, path, scheme):
    async with mcp_session(server, era=era, path=path, scheme=scheme) as session:
        assert session.protocol_version == era
        result = await session.call_tool("get_live_flows", {"application": "DNS", "limit": 5})
        assert not result.is_error, result.content[0].text
        flows = result.structured_content["flows"]
        assert flows and all("DNS" in f["application"] for f in flows)
        assert all(f["dst_port"] == 53 for f in flows)


async def test_tool_listing_is_typed_annotated_and_documented(server):
    async with mcp_session(server, path="/mcp/x/all") as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    for name in ("get_live_flows", "get_live_flows_for_host", "get_live_flows_summary", "get_live_flow",
                 "get_historical_flow", "get_interfaces", "list_protos", "resolve_proto", "list_tables",
                 "describe_table", "query", "set_host_label"):
        assert name in tools, name
    for t in tools.values():
        assert t.input_schema["type"] == "object"
        assert "content" not in t.input_schema["properties"], t.name  # accepted, not advertised
        assert "secret" not in json.dumps(t.input_schema), t.name  # audit markers stay server-side
        assert t.output_schema and t.output_schema.get("type") == "object", t.name
        assert "Example:" in (t.description or ""), t.name
        assert t.annotations is not None and t.annotations.read_only_hint is not None, t.name
    assert tools["query"].annotations.read_only_hint is True
    assert tools["set_host_label"].annotations.read_only_hint is False


async def test_demo_capture_content(server):
    res = await call_tool(server, "get_live_flows_summary", {"group_by": "application"})
    apps = {r["key"]: r for r in res.structured_content["rows"]}
    assert {"DNS", "HTTP", "ICMP"} <= set(apps)
    hist = await call_tool(server, "get_historical_flow", {"host": "10.77.0.1", "port": 80, "limit": 50})
    flows = hist.structured_content["flows"]
    assert flows and all(f["application"].startswith("HTTP") for f in flows)
    one = await call_tool(server, "get_historical_flow", {"flow_id": flows[0]["flow_id"]})
    assert one.structured_content["flows"][0]["flow_id"] == flows[0]["flow_id"]
    live = await call_tool(server, "get_live_flow", {"flow_id": server_live_id(await call_tool(
        server, "get_live_flows", {"limit": 1}))})
    assert live.structured_content["found"] is True


def server_live_id(result) -> int:
    return result.structured_content["flows"][0]["flow_id"]


async def test_live_and_history_agree_on_totals(server):
    live = await call_tool(server, "get_live_flows", {"limit": 1000})
    q = await call_tool(server, "query", {"sql": "SELECT count(), sum(TOTAL_BYTES), sum(PACKETS) FROM flows"})
    count, total_bytes, packets = q.structured_content["rows"][0]
    flows = live.structured_content["flows"]
    assert len(flows) == int(count)
    assert sum(f["bytes"] for f in flows) == int(total_bytes)
    assert sum(f["packets"] for f in flows) == int(packets)
    ifaces = await call_tool(server, "get_interfaces", {})
    src = ifaces.structured_content["interfaces"][0]
    # the interface counts every frame (ARP too); flows hold the IP ones
    frames = await call_tool(server, "query", {"sql": "SELECT sum(packets), sum(bytes), sumIf(packets, IS_IP), "
                                                      "sumIf(bytes, IS_IP) FROM frame_counters"})
    all_packets, all_bytes, ip_packets, ip_bytes = (int(v) for v in frames.structured_content["rows"][0])
    assert (src["packets"], src["bytes"], src["state"]) == (all_packets, all_bytes, "done")
    assert (ip_packets, ip_bytes) == (int(packets), int(total_bytes))


async def test_ntopng_content_convention(server):
    res = await call_tool(server, "get_live_flows", {"content": json.dumps({"l4_proto": "icmp", "limit": 2})})
    assert not res.is_error
    assert all(f["l4_proto"] == "ICMP" for f in res.structured_content["flows"])
    res = await call_tool(server, "query", {"content": json.dumps({"sql": "SELECT count() FROM flows"})})
    assert not res.is_error and int(res.structured_content["rows"][0][0]) > 0
    bad = await call_tool(server, "get_live_flows", {"content": "{not json"})
    assert bad.is_error and "JSON" in bad.content[0].text


async def test_bad_arguments_explain_themselves(server):
    res = await call_tool(server, "get_live_flows", {"limit": 100000})
    assert res.is_error and "limit" in res.content[0].text and "Example" in res.content[0].text
    res = await call_tool(server, "get_live_flows", {"l4_proto": "xyz"})
    assert res.is_error and "tcp" in res.content[0].text
    res = await call_tool(server, "get_historical_flow", {"begin": "yesterday-ish"})
    assert res.is_error and "ISO" in res.content[0].text


async def test_bounded_answers_and_paging(server):
    first = await call_tool(server, "get_live_flows", {"limit": 3, "sort": "bytes"})
    assert first.structured_content["truncated"] is True
    nxt = first.structured_content["next_offset"]
    second = await call_tool(server, "get_live_flows", {"limit": 3, "offset": nxt, "sort": "bytes"})
    ids1 = {f["flow_id"] for f in first.structured_content["flows"]}
    ids2 = {f["flow_id"] for f in second.structured_content["flows"]}
    assert ids1 and ids2 and not ids1 & ids2
    assert max(f["bytes"] for f in second.structured_content["flows"]) <= \
        min(f["bytes"] for f in first.structured_content["flows"])
    q = await call_tool(server, "query", {"sql": "SELECT number FROM numbers(100000)", "limit": 10})
    assert q.structured_content["truncated"] is True and len(q.structured_content["rows"]) == 10


async def test_catalogue_tools(server):
    res = await call_tool(server, "resolve_proto", {"names": ["DNS", "HTTP", "NoSuchProto"], "ids": [5]})
    out = res.structured_content["results"]
    assert out[0]["id"] == 5 and out[0]["found"]
    assert out[2]["found"] is False
    assert out[3]["name"] == "DNS"
    web = await call_tool(server, "list_protos", {"category": "Web"})
    names = {p["name"] for p in web.structured_content["protocols"]}
    assert "HTTP" in names and all(p["category"] == "Web" for p in web.structured_content["protocols"])
    tables = await call_tool(server, "list_tables", {})
    assert "flows" in {t["name"] for t in tables.structured_content["tables"]}
    desc = await call_tool(server, "describe_table", {"table": "flows"})
    cols = {c["name"]: c for c in desc.structured_content["columns"]}
    assert {"IPV4_SRC_ADDR", "L7_PROTO", "FLOW_RISK", "SRC_IP", "L7_PROTO_NAME"} <= set(cols)
    assert all(c["comment"] for c in cols.values())
    assert cols["SRC_IP"]["alias"] is True


async def test_read_only_token_refused_on_write_tool(server):
    ro = await call_tool(server, "set_host_label", {"ip": "10.77.0.1", "label": "web"}, token="readonly")
    assert ro.is_error and "read-only" in ro.content[0].text
    user = await call_tool(server, "set_host_label", {"ip": "10.77.0.1", "label": "web"}, token="analyst")
    assert user.is_error and "admin" in user.content[0].text
    ok = await call_tool(server, "set_host_label", {"ip": "10.77.0.1", "label": "web"})
    assert not ok.is_error
    audit = await call_tool(server, "query", {"sql": "SELECT user, tool, outcome FROM audit_log"})
    rows = audit.structured_content["rows"]
    assert ["admin", "set_host_label", "ok"] in rows
    # the read-only refusal happens before the tool runs and is not an audited change
    labels = await call_tool(server, "query", {"sql": "SELECT ip, label FROM host_labels FINAL"})
    assert labels.structured_content["rows"] == [["10.77.0.1", "web"]]
    hidden = await call_tool(server, "query", {"sql": "SELECT * FROM audit_log"}, token="analyst")
    assert hidden.is_error and "admins" in hidden.content[0].text


def _post(server, body: bytes | str, headers: dict | None = None, path: str = "/mcp") -> httpx.Response:
    base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
            "Authorization": f"Token {server.tokens['admin']}"}
    base.update(headers or {})
    return httpx.post(server.base + path, content=body, headers={k: v for k, v in base.items() if v is not None},
                      timeout=10)


INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})


@pytest.mark.parametrize("auth", [None, "Token wrong", "Bearer fs_0000_nope", "Basic YWRtaW46YWRtaW4=", "Token"])
def test_missing_or_bad_token_is_401_jsonrpc(server, auth):
    res = _post(server, INIT, {"Authorization": auth})
    assert res.status_code == 401
    body = res.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] < 0 and "Token" in body["error"]["message"]


def test_health_is_open_and_no_oauth_metadata(server):
    assert httpx.get(server.base + "/health").json()["status"] == "ok"
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-authorization-server"):
        assert httpx.get(server.base + path).status_code == 404


def test_bad_origin_and_host_refused(server):
    assert _post(server, INIT, {"Origin": "http://evil.example"}).status_code == 403
    assert _post(server, INIT, {"Host": "evil.example"}).status_code in (403, 421)
    assert _post(server, INIT, {"Origin": f"http://127.0.0.1:{server.port}"}).status_code == 200


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"jsonrpc": "2.0"}', b'{"jsonrpc":"1.0","id":1,"method":"x"}',
                                  b"\xff\xfe", b'"just a string"'])
def test_malformed_jsonrpc_is_rejected_and_server_lives(server, body):
    res = _post(server, body)
    assert 400 <= res.status_code < 500
    assert httpx.get(server.base + "/health").status_code == 200


async def test_revoked_token_stops_working(server, tmp_path):
    from fsharness import cli

    out = cli(server.data_dir, "token", "create", "analyst").stdout.strip().splitlines()
    token, token_id = out[-1], out[0].split()[1]
    res = await call_tool(server, "list_tables", {}, token=token)
    assert not res.is_error
    cli(server.data_dir, "token", "revoke", token_id)
    assert _post(server, INIT, {"Authorization": f"Token {token}"}).status_code == 401
    listing = cli(server.data_dir, "token", "list").stdout
    assert token not in listing and f"{token_id}\tanalyst\trevoked" in listing


async def test_tcp_flags_are_recorded(server):
    res = await call_tool(server, "query", {"sql": "SELECT SRC2DST_TCP_FLAGS, DST2SRC_TCP_FLAGS FROM flows "
                                                   "WHERE PROTOCOL = 6 AND IP_DST_PORT = 80"})
    rows = res.structured_content["rows"]
    assert rows
    for client, srv in rows:  # full HTTP exchanges: SYN and ACK from the client, SYN+ACK back
        assert client & 0x12 == 0x12 and srv & 0x12 == 0x12


async def test_flow_text_shows_first_last_seen_and_duration(server):
    from datetime import datetime

    for name in ("get_historical_flow", "get_live_flows"):
        res = await call_tool(server, name, {"host": "10.77.0.1", "limit": 5, "sort": "bytes"}
                              if name == "get_live_flows" else {"host": "10.77.0.1", "limit": 5})
        lines = res.content[0].text.splitlines()
        for flow in res.structured_content["flows"]:
            line = next(x for x in lines if x.startswith(f"#{flow['flow_id']} "))
            took = (datetime.fromisoformat(flow["last_seen"]) - datetime.fromisoformat(flow["first_seen"]))
            assert f"{flow['first_seen']} → {flow['last_seen']} ({took.total_seconds():.3f} s)" in line, line
    assert any(f["first_seen"] != f["last_seen"] for f in res.structured_content["flows"])
