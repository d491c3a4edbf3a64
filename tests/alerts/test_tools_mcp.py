"""Alert, active-monitoring and AI-policy tools through the real server: flow alerts from served
captures, every write tool refused to a read-only token and audited on success, scoping."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time

import pytest

from fsharness import call_tool, corpus_pcap

CAPTURES = ("emotet.pcap", "imap.pcap", "dns_ambiguous_names.pcap", "webdav.pcap")  # webdav: repeated risky flows


@pytest.fixture(scope="module")
def server(make_server, tmp_path_factory):
    d = tmp_path_factory.mktemp("alerts-server")
    (d / "flowscope.toml").write_text('[expected_servers]\ndns = ["192.168.1.1"]\n')
    s = make_server([arg for c in CAPTURES for arg in ("--pcap", str(corpus_pcap(c)))], data_dir=d)
    s.wait_sources_done()
    return s


@pytest.fixture(scope="module")
def web():
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


async def tool(server, name, args=None, token="admin", ok=True):
    res = await call_tool(server, name, args or {}, token=token)
    if ok:
        assert not res.is_error, res.content[0].text
    return res


async def audit_rows(server, name):
    res = await tool(server, "query", {"sql": f"SELECT user, tool, params, outcome FROM audit_log WHERE tool = '{name}' "
                                              "ORDER BY time", "limit": 1000})
    return [dict(zip(res.structured_content["columns"], r)) for r in res.structured_content["rows"]]


async def write_ok(server, name, args):
    """Refused to the read-only token (nothing changes), then done by the admin and audited."""
    ro = await tool(server, name, args, token="readonly", ok=False)
    assert ro.is_error and "read-only" in ro.content[0].text
    before = len([r for r in await audit_rows(server, name) if r["outcome"] == "ok"])
    res = await tool(server, name, args)
    rows = await audit_rows(server, name)
    ok_rows = [r for r in rows if r["outcome"] == "ok"]
    assert len(ok_rows) == before + 1 and ok_rows[-1]["user"] == "admin"
    return res.structured_content


async def wait_alerts(server, args, n=1, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        sc = (await tool(server, "get_alerts", args)).structured_content
        if len(sc["alerts"]) >= n or time.monotonic() > deadline:
            return sc
        await asyncio.sleep(0.5)


async def test_flow_alerts_from_served_captures(server):
    sc = await wait_alerts(server, {"source": "flow", "limit": 200})
    types = {a["alert_type"] for a in sc["alerts"]}
    assert "flow_risk_clear_text_credentials" in types or any("clear_text" in t for t in types)  # imap.pcap
    assert any("self_signed" in t for a in sc["alerts"] for t in [b["name"].lower().replace("-", "_")
                                                                  for b in a["evidence"]["risks"]]) or \
        any("self" in b["name"].lower() for a in sc["alerts"] for b in a["evidence"]["risks"])
    # every risky stored flow is covered by a flow alert carrying its risk bits
    res = await tool(server, "query", {"sql": "SELECT SRC_IP, groupBitOr(FLOW_RISK) FROM flows WHERE FLOW_RISK != 0 "
                                              "GROUP BY SRC_IP"})
    for src, bits in res.structured_content["rows"]:
        alerts = [a for a in sc["alerts"] if a["ip"] == src]
        seen = {b["bit"] for a in alerts for b in a["evidence"]["risks"]}
        assert seen == {b for b in range(1, 64) if int(bits) >> b & 1}
    dns = await wait_alerts(server, {"alert_type": "unexpected_dns_server"})
    assert {a["entity_value"] for a in dns["alerts"]} == {"8.8.8.8"}
    stats = (await tool(server, "get_alert_stats", {})).structured_content
    assert stats["total"] >= len(sc["alerts"]) and stats["by_source"]
    restricted = (await tool(server, "get_alerts", {"limit": 500}, token="restricted")).structured_content
    assert all(a["ip"].startswith("192.168.") or a["peer_ip"].startswith("192.168.") for a in restricted["alerts"])
    exp = (await tool(server, "list_expected_servers", {})).structured_content
    assert exp["expected"]["dns"] == ["192.168.1.1"]
    assert {"server": "8.8.8.8", "expected": False}.items() <= exp["observed"]["dns"][0].items()


async def test_acknowledge_alerts(server):
    sc = (await tool(server, "get_alerts", {"source": "flow", "limit": 1})).structured_content
    aid = sc["alerts"][0]["alert_id"]
    out = await write_ok(server, "acknowledge_alerts", {"alert_ids": [aid], "comment": "seen"})
    assert out["changed"] == 1
    got = (await tool(server, "get_alerts", {"acknowledged": True, "limit": 50})).structured_content["alerts"]
    assert any(a["alert_id"] == aid and a["ack_by"] == "admin" and a["ack_comment"] == "seen" for a in got)
    bad = await tool(server, "acknowledge_alerts", {"comment": "everything"}, ok=False)
    assert bad.is_error and "all_matching" in bad.content[0].text


async def test_exclusion_tools(server):
    h = await write_ok(server, "add_host_alert_exclusion", {"host": "10.0.0.0/24", "reason": "lab scanner"})
    d = await write_ok(server, "add_domain_alert_exclusion", {"domain": "example.org", "reason": "partner"})
    c = await write_ok(server, "add_certificate_alert_exclusion", {"certificate": "intranet.lan", "reason": "our CA"})
    missing = await tool(server, "add_domain_alert_exclusion", {"domain": "x.org"}, ok=False)
    assert missing.is_error and "reason" in missing.content[0].text
    dup = await tool(server, "add_host_alert_exclusion", {"host": "10.0.0.0/24", "reason": "again"}, ok=False)
    assert dup.is_error and "exists already" in dup.content[0].text
    outside = await tool(server, "add_host_alert_exclusion", {"host": "10.1.0.1", "reason": "nope"},
                         token="restricted", ok=False)
    assert outside.is_error and "outside your allowed networks" in outside.content[0].text
    listed = (await tool(server, "list_alert_exclusions", {})).structured_content["exclusions"]
    assert {e["kind"] for e in listed} == {"host", "domain", "certificate"}
    await write_ok(server, "remove_alert_exclusion", {"id": h["exclusion"]["id"]})
    for x in (d, c):
        await tool(server, "remove_alert_exclusion", {"id": x["exclusion"]["id"]})
    assert not (await tool(server, "list_alert_exclusions", {})).structured_content["exclusions"]


async def test_monitoring_tools(server, web):
    cat = (await tool(server, "list_available_active_monitoring_scripts", {})).structured_content["scripts"]
    assert {s["type"] for s in cat} == {"icmp", "cicmp", "http", "throughput", "tcp", "dns"}
    out = await write_ok(server, "add_active_monitoring_script",
                         {"type": "http", "target": web, "threshold": 5000, "granularity": "min"})
    assert out["first_measurement"]["ok"] and out["first_measurement"]["value"] < 5000
    assert out["probe"]["id"] == f"http:{web}"
    dup = await tool(server, "add_active_monitoring_script", {"type": "http", "target": web}, ok=False)
    assert dup.is_error and "exists already" in dup.content[0].text
    bad = await tool(server, "add_active_monitoring_script", {"type": "icmp", "target": "127.0.0.1",
                                                              "threshold": 99999}, ok=False)
    assert bad.is_error and "between" in bad.content[0].text
    await tool(server, "add_active_monitoring_script", {"type": "icmp", "target": "127.0.0.1", "threshold": 100})
    enabled = (await tool(server, "list_enabled_active_monitoring_scripts", {"history_hours": 2})).structured_content
    by = {p["id"]: p for p in enabled["probes"]}
    assert by["icmp:127.0.0.1"]["last"]["ok"] and by["icmp:127.0.0.1"]["availability_last_hour_pct"] == 100.0
    await write_ok(server, "remove_active_monitoring_script", {"id": f"http:{web}"})
    await tool(server, "remove_active_monitoring_script", {"id": "icmp:127.0.0.1"})
    assert not (await tool(server, "list_enabled_active_monitoring_scripts", {})).structured_content["probes"]


async def test_policy_tools(server):
    created = await write_ok(server, "create_ai_policy", {"description": "alert on clear-text credentials in the last 9000 days",
                                                          "name": "cleartext", "periodicity": "hourly"})
    assert created["policy"]["intent"] == "clear_text_credentials" and created["dry_run"]["matches"] >= 1
    run = await write_ok(server, "run_ai_policy", {"policy": "cleartext"})
    # the scheduler may have run it first (then this run finds no new violation)
    assert run["ok"] and run["matches"] >= 1
    alerts = (await tool(server, "get_alerts", {"entity_type": "policy", "entity_value": "cleartext"})).structured_content
    assert alerts["alerts"] and alerts["alerts"][0]["evidence"]["row"]["SRC_IP"]
    await write_ok(server, "update_ai_policy", {"policy": "cleartext", "score": 30})
    await write_ok(server, "pause_ai_policy", {"policy": "cleartext"})
    await write_ok(server, "resume_ai_policy", {"policy": "cleartext"})
    listed = (await tool(server, "list_ai_policies", {})).structured_content["policies"]
    assert listed[0]["score"] == 30 and not listed[0]["paused"]
    evil = await tool(server, "create_ai_policy", {"description": "steal users", "sql": "SELECT * FROM system.users"}, ok=False)
    q = await tool(server, "query", {"sql": "SELECT * FROM system.users"}, ok=False)
    assert evil.is_error and q.is_error
    from flowscope.auth import Principal
    from flowscope.store.guard import GuardError, guard_sql

    with pytest.raises(GuardError) as ref:
        guard_sql("SELECT * FROM system.users", Principal("admin", "admin"))
    assert str(ref.value) in q.content[0].text and str(ref.value) in evil.content[0].text
    refused = [r for r in await audit_rows(server, "create_ai_policy") if r["outcome"].startswith("refused")]
    assert refused and "system.users" in json.loads(refused[-1]["params"])["sql"]
    await write_ok(server, "delete_ai_policy", {"policy": "cleartext"})
    assert not (await tool(server, "list_ai_policies", {})).structured_content["policies"]


async def test_alert_counts_show_occurrences_and_distinct_alerts(server):
    """An alert folds repeats of its condition (e.g. risky flows) into `occurrences`: answers give
    both numbers, so "N alerts" is never read as N risky flows."""
    await wait_alerts(server, {"source": "flow"})
    page = await tool(server, "get_alerts", {"limit": 500})
    alerts = page.structured_content["alerts"]
    assert not page.structured_content["truncated"]
    seen = sum(a["occurrences"] for a in alerts)
    stats = await tool(server, "get_alert_stats", {})
    sc = stats.structured_content
    assert sc["total"] == len(alerts) and sc["occurrences"] == seen
    assert sum(c["occurrences"] for c in sc["by_source"]) == seen
    assert sum(c["count"] for c in sc["by_source"]) == len(alerts)
    assert stats.content[0].text.splitlines()[0].startswith(f"{len(alerts)} distinct alerts, {seen} occurrences")
    repeated = [a for a in alerts if a["occurrences"] > 1]
    assert repeated, "webdav.pcap repeats a risky flow to one server"
    text = page.content[0].text
    assert f"{len(alerts)} distinct alert(s), seen {seen} times" in text
    assert f"#{repeated[0]['alert_id']} " in text and f"seen {repeated[0]['occurrences']} times" in text
