"""AI policies on a real App: compile order (agent SQL, fake OpenAI-compatible LLM on 127.0.0.1,
built-in intents), the same guard as `query`, dry runs, duplicates, scheduling, pause/resume,
and every built-in intent against corpus captures with and without the behaviour."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import json
import threading
import time

import pytest
from fsharness import corpus_pcap

from flowscope.auth import Principal
from flowscope.capture.ingest import ingest_files
from flowscope.store.guard import GuardError, guard_sql

ADMIN = Principal("admin", "admin")
LIMITED = Principal("lim", "user", allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from flowscope.app import App
    from flowscope.config import Config

    d = tmp_path_factory.mktemp("policies")
    (d / "flowscope.toml").write_text("[policies]\ntick_s = 0.2\nperiod_seconds = { min = 1 }\n")
    a = App(Config(data_dir=str(d)))
    # policies run with their owner's current rights: the owners must exist
    a.auth.add_user(ADMIN.name, ADMIN.role)
    a.auth.add_user(LIMITED.name, LIMITED.role, [str(n) for n in LIMITED.allowed_networks])
    yield a
    a.store.close()


@pytest.fixture(scope="module")
def pol(app):
    return app.components["policies"]


def policy_alerts(app, name):
    rows, _ = app.components["alerts"].get_alerts(ADMIN, limit=500, entity_type="policy", entity_value=name)
    return rows


def reset(app, pol):
    app.store.command("TRUNCATE TABLE flows")
    for p in pol.list():
        pol.delete(ADMIN, p["id"])


def synth(app, rows):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "alerts"))
    from alert_helpers import flow

    app.store.insert_dicts("flows", [flow(*r[:3], **r[3]) for r in rows])


# --- compile order and guard --------------------------------------------------------------------

MALICIOUS = [
    "DROP TABLE flows",
    "INSERT INTO flows (FLOW_ID) VALUES (1)",
    "SELECT * FROM system.users",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:1/', 'CSV', 'a String')",
    "SELECT 1; SELECT 2",
    "SELECT count() FROM flows SETTINGS readonly = 0",
    "SELECT * FROM audit_log",
    "SELECT * FROM other_db.flows",
]


@pytest.mark.parametrize("sql", MALICIOUS)
def test_malicious_sql_refused_like_query(pol, sql):
    from flowscope.services.policies import PolicyError

    principal = LIMITED  # audit_log is admin-only: refused to users
    with pytest.raises(GuardError) as ref:
        guard_sql(sql, principal)
    with pytest.raises(PolicyError) as got:
        pol.create(principal, "malicious", sql=sql, name="bad")
    assert str(got.value) == f"policy SQL refused: {ref.value}"
    assert not [p for p in pol.list() if p["name"] == "bad"]


def test_agent_sql_first(app, pol):
    reset(app, pol)
    t = time.time()
    synth(app, [("10.20.0.5", "10.20.0.6", 23, {"t": t}), ("10.20.0.7", "10.20.0.6", 80, {"t": t})])
    res = pol.create(ADMIN, "no telnet anywhere", name="no-telnet", periodicity="hourly", score=150,
                     sql="SELECT SRC_IP, DST_IP, count() AS flows FROM flows WHERE DST_PORT = 23 GROUP BY SRC_IP, DST_IP")
    p = res["policy"]
    assert p["source"] == "agent" and p["periodicity"] == "hourly" and p["score"] == 150
    assert res["dry_run"]["matches"] == 1 and res["dry_run"]["sample"][0][:2] == ["10.20.0.5", "10.20.0.6"]
    assert not policy_alerts(app, "no-telnet")  # a dry run raises nothing
    from flowscope.services.policies import PolicyError

    with pytest.raises(PolicyError, match="exists already"):
        pol.create(ADMIN, "again", name="no-telnet", sql="SELECT 1")
    with pytest.raises(PolicyError, match="same query"):
        pol.create(ADMIN, "same", name="other", sql=p["sql"] + " ")
    run = pol.run_policy(p["id"])
    assert run["ok"] and run["matches"] == 1 and run["alerts"] == 1
    a = policy_alerts(app, "no-telnet")
    assert len(a) == 1 and a[0]["alert_type"] == "policy_violation" and a[0]["severity"] == "critical"
    assert a[0]["evidence"]["row"] == {"SRC_IP": "10.20.0.5", "DST_IP": "10.20.0.6", "flows": 1}
    assert a[0]["ip"] == "10.20.0.5" and a[0]["peer_ip"] == "10.20.0.6" and a[0]["score"] == 150
    # the same violation is not raised twice; a new one is
    assert pol.run_policy(p["id"])["alerts"] == 0
    synth(app, [("10.20.0.8", "10.20.0.6", 23, {"t": t})])
    assert pol.run_policy(p["id"])["alerts"] == 1


def test_no_intent_asks_for_sql(pol):
    from flowscope.services.policies import PolicyError

    with pytest.raises(PolicyError) as exc:
        pol.create(ADMIN, "make the network feel happier")
    msg = str(exc.value)
    assert "Pass `sql`" in msg and "FIRST_SEEN" in msg and "port scan" in msg


class _FakeLLM(http.server.BaseHTTPRequestHandler):
    answer = "```sql\nSELECT SRC_IP, count() AS flows FROM flows WHERE DST_PORT = 23 GROUP BY SRC_IP\n```"
    seen: list[dict] = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        out = json.dumps({"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": self.answer}, "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture()
def fake_llm(app):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeLLM)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    app.config.file_settings["llm"] = {"url": f"http://127.0.0.1:{srv.server_address[1]}/v1", "model": "fake",
                                       "api_key": "sk-test"}
    yield _FakeLLM
    app.config.file_settings.pop("llm", None)
    srv.shutdown()
    srv.server_close()


def test_llm_second(app, pol, fake_llm):
    reset(app, pol)
    synth(app, [("10.20.1.5", "10.20.1.6", 23, {})])
    res = pol.create(ADMIN, "nobody may use telnet", name="llm-telnet")
    assert res["policy"]["source"] == "llm" and "DST_PORT = 23" in res["policy"]["sql"]
    assert res["dry_run"]["matches"] == 1
    req = fake_llm.seen[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert "flows" in req["body"]["messages"][0]["content"] and req["body"]["messages"][1]["content"] == \
        "nobody may use telnet"
    # agent SQL still wins over the LLM
    res = pol.create(ADMIN, "x", name="agent-wins", sql="SELECT DST_IP FROM flows WHERE DST_PORT = 80")
    assert res["policy"]["source"] == "agent"
    # an LLM answer the guard refuses falls back to the built-in intents, and says so
    fake_llm.answer = "SELECT * FROM system.users"
    res = pol.create(ADMIN, "alert on clear-text passwords", name="llm-bad")
    assert res["policy"]["source"] == "builtin" and res["policy"]["intent"] == "clear_text_credentials"
    assert any("LLM compilation failed" in n and "system.users" in n for n in res["notes"])


def test_pause_resume_update_delete_and_schedule(app, pol):
    reset(app, pol)
    synth(app, [("10.20.2.5", "10.20.2.6", 23, {})])
    p = pol.create(ADMIN, "telnet", name="sched", periodicity="min",
                   sql="SELECT SRC_IP FROM flows WHERE DST_PORT = 23")["policy"]

    async def go(seconds):
        await pol.start()
        await asyncio.sleep(seconds)
        await pol.stop()

    runs = pol.runs
    asyncio.run(go(1.5))
    assert pol.runs - runs >= 2  # every second (period_seconds.min = 1 in this test's config)
    assert len(policy_alerts(app, "sched")) == 1
    assert pol.set_paused(ADMIN, "sched", True)["paused"]
    runs = pol.runs
    asyncio.run(go(1.2))
    assert pol.runs == runs
    pol.set_paused(ADMIN, p["id"], False)
    upd = pol.update(ADMIN, "sched", sql="SELECT SRC_IP, DST_IP FROM flows WHERE DST_PORT = 23", score=20,
                     periodicity="daily")
    assert upd["dry_run"]["matches"] == 1 and upd["policy"]["score"] == 20 and upd["policy"]["periodicity"] == "daily"
    # changing the query forgets which violations were alerted
    assert pol.run_policy(p["id"])["alerts"] == 1
    other = Principal("someone", "user")
    from flowscope.services.policies import PolicyError

    with pytest.raises(PolicyError, match="belongs to"):
        pol.delete(other, "sched")
    pol.delete(ADMIN, "sched")
    with pytest.raises(PolicyError, match="no policy"):
        pol.get("sched")


def test_restricted_owner_scope(app, pol):
    reset(app, pol)
    synth(app, [("10.20.3.5", "10.21.3.6", 23, {}), ("192.0.2.9", "198.51.100.9", 23, {})])
    res = pol.create(LIMITED, "telnet", name="scoped", sql="SELECT SRC_IP, DST_IP FROM flows WHERE DST_PORT = 23")
    assert res["dry_run"]["matches"] == 1
    assert pol.run_policy(res["policy"]["id"])["matches"] == 1


def test_registry_survives_restart(app, pol):
    from flowscope.services.policies import PoliciesService

    assert [p["name"] for p in PoliciesService(app).list()] == [p["name"] for p in pol.list()]


# --- built-in intents on synthetic flows ----------------------------------------------------------

def test_builtin_intents_synthetic(app, pol):
    reset(app, pol)
    t = time.time() - 100
    rows = [("10.20.4.1", "10.20.4.2", p, {"t": t}) for p in range(1, 40)]                       # port scan
    rows += [("10.20.5.1", "203.0.113.5", 22, {"t": t})]                                          # SSH to internet
    rows += [("10.20.6.1", "9.9.9.9", 53, {"t": t, "proto": 17})]                                 # DNS elsewhere
    rows += [("10.20.7.1", "10.20.7.2", 21, {"t": t, "risk": 1 << 36})]                           # clear-text creds
    rows += [("10.20.8.1", "10.20.8.2", 443, {"t": t, "risk": 1 << 6})]                           # self-signed
    rows += [("10.20.9.1", "198.51.100.7", 443, {"t": t, "dst_cc": "RU"})]                        # country
    rows += [("10.20.10.1", "10.20.10.2", 80, {"t": t, "nbytes": 5_000_000})]                     # volume
    synth(app, rows)
    cases = {
        "port scans: more than 30 distinct ports in 60 seconds": ("port_scan", "10.20.4.1"),
        "SSH from or to the internet": ("remote_access_internet", "10.20.5.1"),
        "DNS to servers other than 10.20.0.53": ("dns_non_approved", "10.20.6.1"),
        "clear-text credentials": ("clear_text_credentials", "10.20.7.1"),
        "flows with self-signed certificates": ("flow_risk", "10.20.8.1"),
        "traffic to country RU": ("country", "10.20.9.1"),
        "any host exceeding 4 MB per hour": ("host_bytes_exceeded", "10.20.10.1"),
    }
    for i, (desc, (intent, host)) in enumerate(cases.items()):
        res = pol.create(ADMIN, desc, name=f"syn{i}")
        assert res["policy"]["intent"] == intent, desc
        hosts = {v for row in res["dry_run"]["sample"] for v in row if isinstance(v, str)}
        assert host in hosts, (desc, res["dry_run"])
        assert res["explanation"]


# --- built-in intents on corpus captures ----------------------------------------------------------

CORPUS_CASES = [
    # (description, capture with the behaviour, capture without it, intent)
    # 10.0.0.1 probes 8 resolver ports within the hour (the fuzzed RADIUS capture used before only looked
    # like a scan while server replies were oriented as clients)
    ("port scan: more than 5 distinct ports in 60 minutes", ["dnscrypt-v1-and-resolver-pings.pcap"], ["imap.pcap"],
     "port_scan"),
    ("any host exceeding 100 KB per hour", ["wechat.pcap"], ["imap.pcap"], "host_bytes_exceeded"),
    ("BitTorrent used by any host", ["bittorrent_utp.pcap"], ["imap.pcap"], "application_used"),
    ("traffic to or from country CN", None, ["quic.pcap"], "country"),  # US peers, none in CN
    ("alert when a new device appears", ["imap.pcap", "google_ssl.pcap"], ["google_ssl.pcap"], "new_device"),
    ("SSH, Telnet or RDP to or from the internet in the last 8000 days", ["custom_categories.pcapng"], ["rdp2.pcap"],
     "remote_access_internet"),
    ("DNS to servers other than 192.168.1.1", ["dns_ambiguous_names.pcap"], ["teams.pcap"], "dns_non_approved"),
    ("alert on plain-text credentials", ["imap.pcap"], ["google_ssl.pcap"], "clear_text_credentials"),
    ("host traffic over twice its own baseline per hour", ["wechat.pcap"], ["imap.pcap"], "traffic_over_baseline"),
    ("flows with a self-signed certificate", ["emotet.pcap"], ["google_ssl.pcap"], "flow_risk"),
]


def _ingest(app, names):
    paths = [str(corpus_pcap(n)) for n in names]
    for i, p in enumerate(paths):
        ingest_files(app.store, [p], workers=1, interface_ids={p: 100 + i}, enrich=app.enrich_flows)


@pytest.mark.parametrize("desc,positive,negative,intent", CORPUS_CASES, ids=[c[3] for c in CORPUS_CASES])
def test_builtin_intent_on_corpus(app, pol, desc, positive, negative, intent):
    name = f"corpus-{intent}"
    # without the behaviour: no alert
    reset(app, pol)
    _ingest(app, negative)
    p = pol.create(ADMIN, desc, name=name)["policy"]
    assert p["intent"] == intent and p["source"] == "builtin"
    run = pol.run_policy(p["id"])
    assert run["ok"] and run["alerts"] == 0, run
    if positive is None:
        located = "SELECT count() FROM flows WHERE SRC_COUNTRY_CODE != '' OR DST_COUNTRY_CODE != ''"
        assert app.store.query(located).rows[0][0], "the negative capture must have located public addresses"
        return
    # with it: alerts with the violating rows as evidence
    reset(app, pol)
    _ingest(app, positive)
    p = pol.create(ADMIN, desc, name=name)["policy"]
    run = pol.run_policy(p["id"])
    assert run["ok"] and run["alerts"] >= 1, run
    got = policy_alerts(app, name)
    assert len(got) >= run["alerts"]
    assert all(a["alert_type"] == "policy_violation" and a["evidence"]["intent"] == intent for a in got)
    assert all(a["evidence"]["row"] for a in got)
