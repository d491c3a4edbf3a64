"""The agent's view through the real server and the SDK client, in both protocol eras: tools/list
size budgets, toolsets (serve flag, path, header), resources and templates scoped by the token,
prompts, completions, logging and progress, one vocabulary (shared names, unknown arguments
refused, one default window stated, text cap)."""

from __future__ import annotations

import base64
import json

import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from fsharness import DEMO, mcp_session

ERAS = ["2025-11-25", "2026-07-28"]
NTOPNG = "/lua/rest/v2/exec/llm/mcp.lua"
KB = 1024


@pytest.fixture(scope="module")
def server(make_server):
    s = make_server(["--pcap", str(DEMO)])
    s.wait_sources_done()
    return s


def wire_size(result) -> int:
    return len(result.model_dump_json(by_alias=True, exclude_none=True))


async def tools_of(server, path: str = "/mcp", **kw) -> dict[str, types.Tool]:
    async with mcp_session(server, path=path, **kw) as session:
        return {t.name: t for t in (await session.list_tools()).tools}


# --- size budgets and per-principal lists -----------------------------------------------------
@pytest.mark.parametrize("era", ERAS)
async def test_read_only_default_list_within_32_kb(server, era):
    async with mcp_session(server, token="readonly", era=era, path="/mcp") as session:
        listing = await session.list_tools()
    size = wire_size(listing)
    print(f"tools/list read-only default ({era}): {len(listing.tools)} tools, {size} bytes")
    assert size <= 32 * KB
    assert listing.tools and all(t.annotations.read_only_hint for t in listing.tools)
    for t in listing.tools:  # still typed: input and output schemas
        assert t.input_schema["type"] == "object" and t.output_schema["type"] == "object", t.name


async def test_write_tools_listed_only_to_who_may_call_them(server):
    readonly = await tools_of(server, token="readonly", path="/mcp/x/all")
    analyst = await tools_of(server, token="analyst", path="/mcp/x/all")
    admin = await tools_of(server, token="admin", path="/mcp/x/all")
    assert not [n for n, t in readonly.items() if not t.annotations.read_only_hint]
    assert "set_host_label" in admin and "set_host_label" not in analyst  # admin-only write tool
    assert set(readonly) < set(admin)
    refused = await _call(server, "set_host_label", {"host": "10.77.0.1", "label": "x"}, token="readonly",
                          path="/mcp/x/all")
    assert refused.is_error and "read-only" in refused.content[0].text


@pytest.mark.parametrize("era", ERAS)
async def test_admin_every_toolset_within_64_kb(server, era):
    async with mcp_session(server, path="/mcp/x/all", era=era) as session:
        listing = await session.list_tools()
    print(f"tools/list admin, every toolset ({era}): {len(listing.tools)} tools, {wire_size(listing)} bytes")
    assert wire_size(listing) <= 64 * KB
    for t in listing.tools:  # one line each; the rest is in the tool's manual
        summary, example = t.description.split("\nExample: ")
        assert summary and "\n" not in summary and json.loads(example) is not None, t.name


async def test_tool_manuals_in_full_for_who_may_call_them(server):
    async with mcp_session(server, path="/mcp/x/all") as session:
        listed = {t.name: t for t in (await session.list_tools()).tools}
        manuals = {name: (await session.read_resource(f"flowscope://tools/{name}")).contents[0].text
                   for name in listed}
        names = (await session.complete(types.ResourceTemplateReference(uri="flowscope://tools/{tool}"),
                                        {"name": "tool", "value": "alert_st"})).completion.values
    for name, text in manuals.items():
        assert text.startswith(f"# {name}: ") and "## Arguments" in text, name
        for arg in listed[name].input_schema.get("properties", {}):
            assert f"- {arg} (" in text, (name, arg)  # every argument, shared ones too
        assert f"Example: {listed[name].description.split('Example: ')[1]}" in text, name
    assert len(manuals["get_host_info"]) > 2 * len(listed["get_host_info"].description)  # the details
    shared = [line for text in manuals.values() for line in text.splitlines()
              if line.startswith(("- host (", "- begin (", "- limit ("))]
    assert shared and all("): " in line for line in shared)  # shared arguments explained there too
    assert names == ["get_alert_stats"] or names[0] == "get_alert_stats"
    async with mcp_session(server, token="readonly") as session:  # a write tool's manual is not theirs
        with pytest.raises(MCPError):
            await session.read_resource("flowscope://tools/set_host_label")
        assert "get_alerts" in (await session.read_resource("flowscope://tools/get_alerts")).contents[0].text


# --- toolsets ---------------------------------------------------------------------------------
async def _call(server, name, args, **kw):
    async with mcp_session(server, **kw) as session:
        return await session.call_tool(name, args)


@pytest.mark.parametrize("era", ERAS)
async def test_toolsets_by_path_header_and_ntopng_path(server, era):
    default = await tools_of(server, era=era)
    assert {"get_live_flows", "get_host_info", "get_alerts", "query"} <= set(default)
    assert "get_timeseries" not in default and "list_snmp_devices" not in default
    sql = await tools_of(server, era=era, path="/mcp/x/sql")
    assert set(sql) == {"list_tables", "describe_table", "query"}
    two = await tools_of(server, era=era, path="/mcp/x/timeseries,snmp")
    assert "chart" in two and "list_snmp_devices" in two and "get_live_flows" not in two
    header = await tools_of(server, era=era, headers={"X-Flowscope-Toolsets": "collector"})
    assert "list_flow_exporters" in header and "query" not in header
    everything = await tools_of(server, era=era, path=NTOPNG)
    assert set(everything) == set(await tools_of(server, era=era, path="/mcp/x/all"))
    assert len(everything) > len(default)


async def test_tool_outside_the_toolsets_says_how_to_enable_it(server):
    res = await _call(server, "query", {"sql": "SELECT 1"}, path="/mcp/x/flows")
    assert res.is_error and "/mcp/x/" in res.content[0].text and "sql" in res.content[0].text


def test_unknown_toolset_is_a_400(server):
    res = httpx.post(server.base + "/mcp/x/flows,nosuch", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                     headers={"Authorization": f"Token {server.tokens['admin']}",
                              "Accept": "application/json, text/event-stream"})
    assert res.status_code == 400 and "nosuch" in res.json()["error"]["message"]


async def test_serve_toolsets_flag(make_server):
    s = make_server(["--toolsets", "sql,timeseries"], users={"admin": {"user": "admin", "role": "admin"}})
    names = set(await tools_of(s))
    assert "query" in names and "chart" in names and "get_live_flows" not in names
    assert "get_live_flows" in set(await tools_of(s, path="/mcp/x/flows"))


# --- one vocabulary ---------------------------------------------------------------------------
async def test_unknown_arguments_refused_on_every_tool(server):
    tools = await tools_of(server, path="/mcp/x/all")
    async with mcp_session(server, path="/mcp/x/all") as session:
        for name in tools:
            res = await session.call_tool(name, {"no_such_argument": 1})
            assert res.is_error, name
            text = res.content[0].text
            assert "unknown argument" in text and "no_such_argument" in text, (name, text)


async def test_shared_argument_names(server):
    tools = await tools_of(server, path="/mcp/x/all")
    for t in tools.values():
        props = t.input_schema["properties"]
        assert "ip" not in props and "start" not in props, t.name  # host and begin everywhere
        assert "content" not in props
    assert "host" in tools["get_host_info"].input_schema["required"]
    assert '"host"' in tools["get_host_info"].description  # the example uses the shared name
    new = await _call(server, "get_host_info", {"host": "10.77.0.1"})
    old = await _call(server, "get_host_info", {"ip": "10.77.0.1"})  # ntopng's REST name still accepted
    assert not new.is_error and new.structured_content == old.structured_content
    ts = await _call(server, "get_top_applications", {"start": "2000-01-01T00:00:00Z"}, path="/mcp/x/timeseries")
    assert not ts.is_error and ts.content[0].text.startswith("Window: 2000-01-01T00:00:00Z")


async def test_history_tools_share_one_default_window_stated_in_the_answer(server):
    async with mcp_session(server, path="/mcp/x/all") as session:
        answers = {name: await session.call_tool(name, args) for name, args in (
            ("get_top_talkers", {}), ("get_historical_flow", {"limit": 5}), ("get_country_stats", {}),
            ("get_top_applications", {}), ("get_top_protocols", {}),
        )}
        explicit = await session.call_tool("get_top_talkers", {"begin": "2000-01-01T00:00:00Z"})
    headers = set()
    for name, res in answers.items():
        assert not res.is_error, (name, res.content[0].text)
        first = res.content[0].text.splitlines()[0]
        assert first.startswith("Window: ") and "default: all stored flows" in first, name
        headers.add(first)
    assert len(headers) == 1  # the same window everywhere
    assert answers["get_top_talkers"].structured_content["talkers"]  # the demo capture is inside it
    first = explicit.content[0].text.splitlines()[0]
    assert first.startswith("Window: 2000-01-01T00:00:00Z") and "default" not in first


async def test_text_answers_stay_within_8_kb(server):
    res = await _call(server, "get_live_flows", {"limit": 1000})
    assert not res.is_error
    assert len(res.content[0].text.encode()) <= 8 * KB
    assert len(res.structured_content["flows"]) > 20  # structured content keeps every row


# --- resources --------------------------------------------------------------------------------
@pytest.mark.parametrize("era", ERAS)
async def test_resources_and_templates(server, era):
    async with mcp_session(server, era=era) as session:
        listed = {str(r.uri): r for r in (await session.list_resources()).resources}
        templates = {t.uri_template for t in (await session.list_resource_templates()).resource_templates}
        assert {"flowscope://schema/flows", "flowscope://tables", "flowscope://ndpi/protocols",
                "flowscope://playbooks/first-steps"} <= set(listed)
        assert {"flowscope://flows/{flow_id}", "flowscope://hosts/{host}", "flowscope://tables/{table}",
                "flowscope://charts/{entity}/{metric}", "flowscope://tools/{tool}"} <= templates
        texts = {uri: (await session.read_resource(uri)).contents[0] for uri in listed}
        flow_id = (await session.call_tool("get_historical_flow", {"host": "10.77.0.1", "limit": 1})
                   ).structured_content["flows"][0]["flow_id"]
        flow = json.loads((await session.read_resource(f"flowscope://flows/{flow_id}")).contents[0].text)
        host = json.loads((await session.read_resource("flowscope://hosts/10.77.0.1")).contents[0].text)
        table = (await session.read_resource("flowscope://tables/alerts")).contents[0].text
        chart = (await session.read_resource("flowscope://charts/interface/bytes")).contents[0]
    assert "L7_PROTO" in texts["flowscope://schema/flows"].text and "--" in texts["flowscope://schema/flows"].text
    assert "flows:" in texts["flowscope://tables"].text and "alerts:" in texts["flowscope://tables"].text
    catalogue = json.loads(texts["flowscope://ndpi/protocols"].text)
    assert any(p["name"] == "DNS" for p in catalogue["protocols"]) and catalogue["categories"]
    assert texts["flowscope://playbooks/first-steps"].text.startswith("# ")
    assert flow["flow_id"] == flow_id and flow["first_seen"]
    assert host["ip"] == "10.77.0.1" and host["historical"]["flows"] > 0
    assert table.startswith("alerts:")
    assert chart.mime_type == "image/png" and base64.b64decode(chart.blob)[:8] == b"\x89PNG\r\n\x1a\n"


async def test_resources_scoped_like_tools(server):
    async with mcp_session(server) as session:
        flow_id = (await session.call_tool("get_historical_flow", {"host": "10.77.0.1", "limit": 1})
                   ).structured_content["flows"][0]["flow_id"]
    async with mcp_session(server, token="restricted") as session:  # 192.168.0.0/16: no demo host
        for uri in (f"flowscope://flows/{flow_id}", "flowscope://hosts/10.77.0.1", "flowscope://nosuch"):
            with pytest.raises(MCPError) as err:
                await session.read_resource(uri)
            assert err.value.error.code == types.INVALID_PARAMS, uri
            assert (err.value.error.data or {}).get("uri") == uri


# --- prompts ----------------------------------------------------------------------------------
PROMPT_ARGS = {
    "investigate_host": {"host": "10.77.0.1"},
    "triage_alerts": {"min_severity": "warning"},
    "security_sweep": {"begin": "7d"},
    "bandwidth_report": {"interface_id": "1"},
    "explain_flow": {"flow_id": "1"},
}


@pytest.mark.parametrize("era", ERAS)
async def test_prompts(server, era):
    async with mcp_session(server, era=era) as session:
        prompts = {p.name: p for p in (await session.list_prompts()).prompts}
        assert len(prompts) >= 5 and set(PROMPT_ARGS) <= set(prompts)
        tools = await session.list_tools()
        resources = await session.list_resource_templates()
        known = {t.name for t in (await tools_of(server, path="/mcp/x/all")).values()}
        for name, args in PROMPT_ARGS.items():
            assert prompts[name].arguments, name
            got = await session.get_prompt(name, args)
            text = got.messages[0].content.text
            steps = [line for line in text.splitlines() if line[:2] in ("1.", "2.", "3.", "4.")]
            assert 1 <= len(steps) <= 3, name
            named = {w.strip("`,.:(") for w in text.split()} & known
            assert named, name  # each prompt names the tools it uses
            for arg in args.values():
                assert arg in text, (name, arg)
        with pytest.raises(MCPError):
            await session.get_prompt("investigate_host", {})
        assert tools.tools and resources.resource_templates


# --- completions ------------------------------------------------------------------------------
async def test_completions_scoped_to_the_principal(server):
    ref = types.PromptReference(name="investigate_host")
    async with mcp_session(server) as session:
        hosts = (await session.complete(ref, {"name": "host", "value": "10.77"})).completion.values
        apps = (await session.complete(types.PromptReference(name="explain_flow"), {"name": "flow_id", "value": ""}))
        tables = (await session.complete(types.ResourceTemplateReference(uri="flowscope://tables/{table}"),
                                         {"name": "table", "value": "al"})).completion.values
        other = (await session.complete(types.PromptReference(name="test_prompt_with_arguments"),
                                        {"name": "arg1", "value": "x"})).completion.values
        entities = (await session.complete(types.ResourceTemplateReference(
            uri="flowscope://charts/{entity}/{metric}"), {"name": "entity", "value": "int"})).completion.values
    assert "10.77.0.1" in hosts and all(h.startswith("10.77") for h in hosts)
    assert apps.completion.values == []
    assert "alerts" in tables and all(t.startswith("al") for t in tables)
    assert other == []
    assert "interface" in entities
    async with mcp_session(server, token="restricted") as session:
        assert (await session.complete(ref, {"name": "host", "value": "10."})).completion.values == []
    async with mcp_session(server, token="analyst") as session:
        tables_user = (await session.complete(types.ResourceTemplateReference(uri="flowscope://tables/{table}"),
                                              {"name": "table", "value": "audit"})).completion.values
    assert tables_user == []  # audit_log is for admins


# --- logging and progress ---------------------------------------------------------------------
async def test_logging_and_progress(server):
    logs: list[types.LoggingMessageNotificationParams] = []
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_log(params):
        logs.append(params)

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    async with mcp_session(server, logging_callback=on_log) as session:
        await session.call_tool("get_interfaces", {})
        assert logs == []  # nothing before logging/setLevel
        await session.set_logging_level("debug")
        await session.call_tool("get_interfaces", {}, progress_callback=on_progress)
        await session.call_tool("get_live_flows", {"no_such_argument": 1})
        await session.set_logging_level("error")
        await session.call_tool("get_interfaces", {})
    assert [entry.data["tool"] for entry in logs] == ["get_interfaces"]
    assert logs[0].level == "debug" and logs[0].data["ms"] >= 0
    assert progress and progress[-1][0] == progress[-1][1] and "done" in progress[-1][2]



def test_a_call_is_streamed_only_when_it_can_receive_notifications(server):
    """Over HTTP a request that can receive no notification (no progress token, no log level on its
    session) is answered with one JSON body; one with a token, or on a session with a level, on an
    SSE stream that carries the notifications before the answer."""
    headers = {"Authorization": f"Token {server.tokens['admin']}", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-11-25"}

    def post(body: dict) -> httpx.Response:
        return http.post(server.base + "/mcp", json={"jsonrpc": "2.0", **body})

    def events(res: httpx.Response) -> list[dict]:
        return [json.loads(line[len("data:"):]) for line in res.text.splitlines() if line.startswith("data:")
                and line[len("data:"):].strip()]

    call = {"method": "tools/call", "params": {"name": "get_interfaces", "arguments": {}}}
    with httpx.Client(headers=headers, timeout=30) as http:
        opened = post({"id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        http.headers["Mcp-Session-Id"] = opened.headers["mcp-session-id"]
        assert post({"method": "notifications/initialized"}).status_code == 202

        quiet = post({"id": 2, **call})
        assert quiet.headers["content-type"].startswith("application/json")
        assert quiet.json()["result"]["structuredContent"]["interfaces"]

        with_token = {"id": 3, **call, "params": {**call["params"], "_meta": {"progressToken": "p1"}}}
        streamed = post(with_token)
        assert streamed.headers["content-type"].startswith("text/event-stream")
        got = events(streamed)
        assert got[0]["method"] == "notifications/progress" and got[0]["params"]["progressToken"] == "p1"
        assert got[-1]["id"] == 3 and got[-1]["result"]["structuredContent"]["interfaces"]

        assert post({"id": 4, "method": "logging/setLevel", "params": {"level": "debug"}}).status_code == 200
        logged = post({"id": 5, **call})
        assert logged.headers["content-type"].startswith("text/event-stream")
        got = events(logged)
        assert [e.get("method") for e in got[:-1]] == ["notifications/message"]
        assert got[0]["params"]["data"]["tool"] == "get_interfaces" and got[-1]["id"] == 5

        refused = http.post(server.base + "/mcp", json={"jsonrpc": "2.0", "id": 6, **call},
                            headers={"Accept": "application/json"})
        assert refused.status_code == 406  # a client must accept both, as before

# --- instructions -----------------------------------------------------------------------------
def test_instructions_say_where_to_start(server):
    res = httpx.post(server.base + "/mcp", headers={
        "Authorization": f"Token {server.tokens['readonly']}", "Accept": "application/json, text/event-stream"},
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    body = res.text[res.text.index("{"):]
    text = json.loads(body.splitlines()[0])["result"]["instructions"]
    assert len(text.splitlines()) <= 8
    for word in ("get_interfaces", "Toolsets:", "flowscope://schema/flows", "investigate_host", "begin"):
        assert word in text
