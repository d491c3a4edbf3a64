"""The alerts component on a real App: flow-risk and host alerts from flow batches, one-shot and
engaged alerts, exclusions, acknowledgement, statistics, host summaries and network scoping."""

from __future__ import annotations

import ipaddress
import time

import pytest

from flowscope.auth import Principal
from flowscope.capture.ingest import ingest_files
from flowscope.services.alerts.model import risk_slug

from alert_helpers import flow
from fsharness import corpus_pcap

ADMIN = Principal("admin", "admin")
LIMITED = Principal("lim", "user", allowed_networks=(ipaddress.ip_network("10.9.0.0/16"),))
GW_MAC = 0x001122334455
ROGUE_MAC = 0x00AABBCCDDEE


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from flowscope.app import App
    from flowscope.config import Config

    d = tmp_path_factory.mktemp("alerts")
    (d / "flowscope.toml").write_text(
        "[alerts]\nscan_ports = 20\nscan_hosts = 15\nflood_flows = 50\nhost_score_threshold = 400\n"
        "host_window_s = 60\n"
        "[expected_servers]\ndns = [\"10.9.0.53\"]\nntp = [\"10.9.0.123\"]\nsmtp = [\"10.9.0.25\"]\n"
        "dhcp = [\"10.9.0.1\"]\ngateway = [\"00:11:22:33:44:55\"]\n")
    a = App(Config(data_dir=str(d)))
    yield a
    a.store.close()


@pytest.fixture(scope="module")
def alerts(app):
    return app.components["alerts"]


def feed(app, rows):
    """Hand a batch to every flow hook, as the writer does, and wait for our thread."""
    for hook in app.flow_hooks:
        hook(rows)
    app.components["alerts"].flush()


def find(alerts, **f):
    rows, _ = alerts.get_alerts(ADMIN, limit=500, **f)
    return rows


def test_component_registered_and_hooked(app, alerts):
    assert app.components.get("alerts") is alerts
    assert alerts.on_flows in app.flow_hooks


def test_flow_risk_alert_with_evidence(app, alerts):
    t = time.time() - 5
    risk = (1 << 6) | (1 << 36)
    feed(app, [flow("10.9.1.1", "10.9.1.2", 21, risk=risk, domain="ftp.example.org", t=t)])
    got = find(alerts, source="flow", ip="10.9.1.1")
    assert len(got) == 1
    a = got[0]
    assert a["entity_type"] == "flow" and a["alert_type"] in (risk_slug(6), risk_slug(36))
    assert a["severity"] == "error" and a["score"] == 200
    assert {r["bit"] for r in a["evidence"]["risks"]} == {6, 36}
    assert a["evidence"]["DOMAIN_NAME"] == "ftp.example.org" and a["peer_ip"] == "10.9.1.2"
    assert "Clear-Text Credentials" in a["description"]
    # the same flow again within the dedup window bumps the occurrences instead of a new alert
    feed(app, [flow("10.9.1.1", "10.9.1.2", 21, risk=risk, domain="ftp.example.org", t=t + 10)])
    got = find(alerts, source="flow", ip="10.9.1.1")
    assert len(got) == 1 and got[0]["occurrences"] == 2


def test_port_scan_and_host_scan(app, alerts):
    t = time.time()
    feed(app, [flow("10.9.2.1", "10.9.2.2", p, t=t, answered=False) for p in range(1, 30)])
    scan = find(alerts, alert_type="port_scan", entity_value="10.9.2.1")
    assert len(scan) == 1 and scan[0]["peer_ip"] == "10.9.2.2" and scan[0]["evidence"]["distinct_ports"] == 21
    # below the threshold: nothing
    feed(app, [flow("10.9.2.5", "10.9.2.6", p, t=t) for p in range(1, 15)])
    assert not find(alerts, alert_type="port_scan", entity_value="10.9.2.5")
    feed(app, [flow("10.9.3.1", f"10.9.4.{i}", 445, t=t) for i in range(1, 25)])
    assert len(find(alerts, alert_type="host_scan", entity_value="10.9.3.1")) == 1


def test_flood_and_score(app, alerts):
    t = time.time()
    feed(app, [flow("10.9.5.1", "10.9.5.2", 80, sport=1000 + i, t=t) for i in range(60)])
    assert len(find(alerts, alert_type="flow_flood_attacker", entity_value="10.9.5.1")) == 1
    assert len(find(alerts, alert_type="flow_flood_victim", entity_value="10.9.5.2")) == 1
    feed(app, [flow("10.9.6.1", "10.9.6.2", 443, sport=2000 + i, risk=1 << 2, t=t) for i in range(4)])
    sc = find(alerts, alert_type="score_threshold_exceeded", entity_value="10.9.6.1")
    assert len(sc) == 1 and sc[0]["evidence"]["score"] > 400


def test_unexpected_servers(app, alerts):
    t = time.time()
    feed(app, [
        flow("10.9.7.1", "10.9.0.53", 53, proto=17, t=t),       # expected DNS
        flow("10.9.7.1", "8.8.8.8", 53, proto=17, t=t),          # unexpected DNS
        flow("10.9.7.1", "10.9.7.99", 123, proto=17, t=t),       # unexpected NTP
        flow("10.9.7.1", "10.9.0.25", 25, t=t),                  # expected SMTP
        flow("10.9.7.1", "10.9.7.25", 587, t=t),                 # unexpected SMTP
        flow("10.9.7.66", "10.9.7.1", 68, sport=67, proto=17, t=t),  # rogue DHCP server answering
        flow("10.9.7.1", "93.184.216.34", 443, dst_mac=GW_MAC, t=t),     # expected gateway
        flow("10.9.7.2", "93.184.216.34", 443, dst_mac=ROGUE_MAC, t=t),  # unexpected gateway
    ])
    by = {(a["alert_type"], a["entity_value"]) for a in find(alerts, source="host")}
    assert ("unexpected_dns_server", "8.8.8.8") in by
    assert ("unexpected_ntp_server", "10.9.7.99") in by
    assert ("unexpected_smtp_server", "10.9.7.25") in by
    assert ("unexpected_dhcp_server", "10.9.7.66") in by
    assert ("unexpected_gateway_server", "00:aa:bb:cc:dd:ee") in by
    assert not {("unexpected_dns_server", "10.9.0.53"), ("unexpected_smtp_server", "10.9.0.25"),
                ("unexpected_gateway_server", "00:11:22:33:44:55")} & by
    # reported once
    feed(app, [flow("10.9.7.3", "8.8.8.8", 53, proto=17, t=t + 1)])
    assert len(find(alerts, alert_type="unexpected_dns_server", entity_value="8.8.8.8")) == 1
    exp = alerts.expected_servers()
    assert exp["dns"] == ["10.9.0.53"] and exp["gateway"] == ["00:11:22:33:44:55"]


def test_raise_alert_contract_and_dedup(alerts):
    a1 = alerts.raise_alert("snmp_device", "10.9.8.1", "snmp_interface_down", "error", "ifIndex 3 went down",
                            {"ifIndex": 3, "ifName": "eth2"})
    a2 = alerts.raise_alert("snmp_device", "10.9.8.1", "snmp_interface_down", "error", "ifIndex 3 went down",
                            {"ifIndex": 3, "ifName": "eth2"})
    assert a1 and a1 == a2
    got = find(alerts, entity_type="snmp_device", entity_value="10.9.8.1")
    assert len(got) == 1 and got[0]["occurrences"] == 2 and got[0]["source"] == "snmp"
    assert got[0]["ip"] == "10.9.8.1" and got[0]["evidence"]["ifName"] == "eth2"
    with pytest.raises(ValueError):
        alerts.raise_alert("host", "10.9.8.2", "x", "catastrophic", "bad severity", {})


def test_engage_and_release(alerts):
    key = ("test", "thing")
    aid = alerts.engage(key, "am_host", "10.9.9.1", "am_threshold_cross", "warning", "too slow", {"v": 1})
    assert alerts.is_engaged(key)
    assert alerts.engage(key, "am_host", "10.9.9.1", "am_threshold_cross", "warning", "still slow", {"v": 2}) == aid
    row = find(alerts, alert_type="am_threshold_cross", entity_value="10.9.9.1")[0]
    assert row["status"] == "engaged" and row["occurrences"] == 2
    assert alerts.release(key) == aid and not alerts.is_engaged(key)
    row = find(alerts, alert_type="am_threshold_cross", entity_value="10.9.9.1")[0]
    assert row["status"] == "released" and row["tstamp_end"] >= row["tstamp"]
    assert alerts.release(key) is None


def test_exclusions(app, alerts):
    from flowscope.services.alerts.exclusions import ExclusionError

    ex = alerts.exclusions
    with pytest.raises(ExclusionError):
        ex.add("host", "10.9.10.0/24", "", "admin")
    with pytest.raises(ExclusionError):
        ex.add("host", "not-an-ip", "scanner", "admin")
    h = ex.add("host", "10.9.10.0/24", "vulnerability scanner", "admin", ["port_scan"])
    with pytest.raises(ExclusionError):
        ex.add("host", "10.9.10.0/24", "again", "admin")
    d = ex.add("domain", "*.Trusted.Example", "internal", "admin")
    c = ex.add("certificate", "intranet.corp.lan", "internal CA", "admin")
    t = time.time()
    feed(app, [flow("10.9.10.5", "10.9.11.5", p, t=t) for p in range(1, 30)]
         + [flow("10.9.12.1", "10.9.12.2", 80, risk=1 << 11, domain="cdn.trusted.example", t=t),
            flow("10.9.12.1", "10.9.12.3", 443, risk=1 << 6, domain="intranet.corp.lan", t=t),
            flow("10.9.12.1", "10.9.12.4", 443, risk=1 << 6, domain="other.corp.lan", t=t)])
    assert not find(alerts, alert_type="port_scan", entity_value="10.9.10.5")
    assert not find(alerts, ip="10.9.12.2") and not find(alerts, ip="10.9.12.3")
    assert len(find(alerts, ip="10.9.12.4")) == 1
    # a host exclusion restricted to port_scan leaves other alert types alone
    assert alerts.raise_alert("host", "10.9.10.7", "host_scan", "error", "x", {}) is not None
    assert alerts.raise_alert("host", "10.9.10.7", "port_scan", "error", "x", {}) is None
    assert [e["id"] for e in ex.list()][-3:] == [h["id"], d["id"], c["id"]]
    ex.remove(h["id"])
    with pytest.raises(ExclusionError):
        ex.remove(h["id"])
    feed(app, [flow("10.9.10.5", "10.9.11.6", p, t=t + 200) for p in range(1, 30)])
    assert len(find(alerts, alert_type="port_scan", entity_value="10.9.10.5")) == 1


def test_exclusions_survive_restart(alerts):
    from flowscope.services.alerts.exclusions import Exclusions

    added = alerts.exclusions.add("domain", "*.Restart.Example", "kept across restarts", "admin")
    try:
        again = Exclusions(alerts.exclusions.path)
        assert {(e["id"], e["value"]) for e in again.list()} >= {(added["id"], "restart.example")}
    finally:
        alerts.exclusions.remove(added["id"])


def test_acknowledge_stats_and_summary(app, alerts):
    t = time.time()
    feed(app, [flow("10.9.21.1", "10.9.21.2", p, t=t, answered=False) for p in range(1, 30)])  # port scan
    feed(app, [flow("10.9.22.1", f"10.9.23.{i}", 445, t=t) for i in range(1, 25)])  # host scan
    feed(app, [flow("10.9.24.1", "10.9.24.2", 21, risk=(1 << 6) | (1 << 36), t=t)])  # flow alert, score 200
    before = alerts.get_stats(ADMIN)
    n = alerts.acknowledge(ADMIN, "admin", "handled", alert_type="port_scan")
    assert n >= 1
    assert all(a["acknowledged"] and a["ack_by"] == "admin" for a in find(alerts, alert_type="port_scan"))
    assert not find(alerts, alert_type="port_scan", acknowledged=False)
    after = alerts.get_stats(ADMIN)
    assert after["total"] == before["total"] and after["unacknowledged"] == before["unacknowledged"] - n
    types = {c["value"]: c["count"] for c in after["by_type"]}
    assert types["port_scan"] == len(find(alerts, alert_type="port_scan"))
    assert sum(c["count"] for c in after["by_severity"]) == after["total"]
    summ = alerts.host_alert_summary(["10.9.24.1", "10.9.21.1", "203.0.113.1"])
    assert summ["10.9.24.1"]["alerts"] >= 1 and summ["10.9.24.1"]["score"] >= 200
    assert summ["10.9.21.1"]["alerts"] >= 1 and summ["10.9.21.1"]["unacknowledged"] == 0
    assert summ["203.0.113.1"] == {"score": 0, "alerts": 0, "unacknowledged": 0, "engaged": 0}
    # acknowledging by id, and undoing it
    one = find(alerts, alert_type="host_scan")[0]["alert_id"]
    assert alerts.acknowledge(ADMIN, "admin", "", alert_ids=[one]) == 1
    assert alerts.acknowledge(ADMIN, "admin", "", acknowledged=False, alert_ids=[one]) == 1
    assert not find(alerts, alert_ids=[one])[0]["acknowledged"]


def test_paging_and_filters(alerts):
    for i in range(4):
        alerts.raise_alert("host", f"10.9.25.{i}", "host_scan", "warning", "paging", {})
    everything = find(alerts)
    page1, more = alerts.get_alerts(ADMIN, limit=3)
    page2, _ = alerts.get_alerts(ADMIN, limit=3, offset=3)
    assert more and len(page1) == 3 and page1[0]["alert_id"] != page2[0]["alert_id"]
    assert all(a["severity_id"] >= 5 for a in find(alerts, min_severity="error"))
    assert len(find(alerts, min_severity="info")) == len(everything)
    assert not find(alerts, start=time.time() + 3600)


def test_network_scope(alerts):
    alerts.raise_alert("host", "10.9.26.1", "host_scan", "error", "inside", {})
    alerts.raise_alert("host", "192.0.2.77", "host_scan", "error", "outside", {})
    mine, _ = alerts.get_alerts(LIMITED, limit=500)
    assert mine and all(LIMITED.can_see(a["ip"]) or LIMITED.can_see(a["peer_ip"]) for a in mine)
    assert not [a for a in mine if a["entity_value"] == "192.0.2.77"]
    assert alerts.get_stats(LIMITED)["total"] == len(mine)


def test_analyze_stored_flows(app, alerts):
    t = time.time() - 30
    rows = [flow("10.9.13.1", "10.9.13.2", 80, risk=1 << 2, t=t)]
    app.store.insert_dicts("flows", rows)
    res = alerts.analyze_stored(start=t - 1, end=t + 1)
    assert res["flows"] >= 1
    assert find(alerts, ip="10.9.13.1", alert_type=risk_slug(2))


def test_corpus_capture_flow_risks(app, alerts):
    path = corpus_pcap("emotet.pcap")
    rows_seen = []

    def on_rows(rows):
        rows_seen.extend(rows)
        alerts.process_flows(rows)

    ingest_files(app.store, [str(path)], workers=1, on_rows=on_rows)
    risky = [r for r in rows_seen if int(r.get("FLOW_RISK") or 0)]
    assert risky, "emotet.pcap should carry nDPI flow risks"
    for r in risky:
        from flowscope.services.alerts.model import row_ip

        got = find(alerts, source="flow", ip=row_ip(r, "SRC"))
        bits = {b["bit"] for a in got for b in a["evidence"]["risks"]}
        assert bits >= {b for b in range(1, 64) if int(r["FLOW_RISK"]) >> b & 1}
