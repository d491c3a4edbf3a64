"""Hostile SQL, allowed-network isolation, broken captures and restarts, on the real server."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from fsharness import DEMO, PCAPS, STANDARD_USERS, Server, call_tool, cli, corpus_pcap, mcp_session

MALICIOUS_SQL = [
    "SELECT * FROM file('/etc/passwd', 'CSV', 'line String')",
    "SELECT * FROM url('http://127.0.0.1:1/x', CSV, 'a String')",
    "SELECT * FROM remote('127.0.0.1', default, flows)",
    "SELECT * FROM remoteSecure('127.0.0.1', default.flows)",
    "SELECT * FROM s3('http://127.0.0.1/b/k', 'CSV')",
    "SELECT * FROM hdfs('hdfs://x/y', 'CSV')",
    "SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:5432', 'db', 't', 'u', 'p')",
    "SELECT * FROM executable('ls', 'TSV', 'x String')",
    "SELECT * FROM cluster('default', system.one)",
    "SELECT * FROM input('x String')",
    "SELECT * FROM python(x)",
    "SELECT * FROM jdbc('x', 'y')",
    "SELECT * FROM odbc('x', 'y', 'z')",
    "SELECT * FROM sqlite('/etc/x.db', 't')",
    "SELECT * FROM merge('default', '.*')",
    "SELECT * FROM dictionary('ndpi_protocols')",
    "SELECT * FROM system.users",
    "SELECT * FROM system.processes",
    "SELECT * FROM system.settings",
    "SELECT * FROM system.query_log",
    "SELECT * FROM system.disks",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM other_db.flows",
    "SELECT * FROM flows; DROP TABLE flows",
    "SELECT 1; SELECT 2",
    "DROP TABLE flows",
    "TRUNCATE TABLE flows",
    "INSERT INTO flows (FLOW_ID) VALUES (1)",
    "ALTER TABLE flows DELETE WHERE 1",
    "ALTER TABLE flows UPDATE SCORE = 1 WHERE 1",
    "CREATE TABLE x (a UInt8) ENGINE = Memory",
    "DELETE FROM flows WHERE 1",
    "SET readonly = 0",
    "SELECT * FROM flows SETTINGS readonly = 0",
    "SELECT * FROM flows SETTINGS max_execution_time = 100000",
    "SELECT count() FROM flows FORMAT TabSeparated",
    "SELECT * FROM flows INTO OUTFILE '/tmp/x.csv'",
    "ATTACH TABLE evil",
    "DETACH TABLE flows",
    "OPTIMIZE TABLE flows FINAL",
    "SYSTEM SHUTDOWN",
    "KILL QUERY WHERE 1",
    "GRANT ALL ON *.* TO default",
    "RENAME TABLE flows TO f2",
    "SELECT * FROM (SELECT * FROM file('/etc/passwd'))",
    "WITH x AS (SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')) SELECT * FROM x",
    "SELECT * FROM flows WHERE SRC_IP IN (SELECT * FROM file('/etc/hosts'))",
    "SELECT * FROM flows UNION ALL SELECT * FROM system.users",
    "SELECT getSetting('readonly')",
    "EXPLAIN SELECT * FROM file('/etc/passwd')",
    "DESCRIBE TABLE system.users",
    "SELECT * FROM numbers(10) AS n JOIN s3('http://127.0.0.1/x') AS s ON 1",
    "",
    "   ",
    "SELECT * FROM flows WHERE",
]


@pytest.fixture(scope="module")
def server(make_server):
    args = ["--pcap", str(DEMO)]
    if (PCAPS / "quic.pcap").exists():
        args += ["--pcap", str(PCAPS / "quic.pcap")]  # hosts in 192.168.1.0/24 and public addresses
    s = make_server(args)
    s.wait_sources_done()
    return s


async def test_malicious_sql_is_refused(server):
    assert len(MALICIOUS_SQL) >= 40
    async with mcp_session(server) as session:
        count = (await session.call_tool("query", {"sql": "SELECT count() FROM flows"})).structured_content
        before = int(count["rows"][0][0])
        for sql in MALICIOUS_SQL:
            res = await session.call_tool("query", {"sql": sql})
            assert res.is_error, f"accepted: {sql!r}"
            assert res.content[0].text.startswith("query refused"), (sql, res.content[0].text)
        after = (await session.call_tool("query", {"sql": "SELECT count() FROM flows"})).structured_content
        assert int(after["rows"][0][0]) == before


async def test_allowed_queries_still_work(server):
    ok = [
        "SELECT SRC_IP, sum(TOTAL_BYTES) b FROM flows GROUP BY SRC_IP ORDER BY b DESC LIMIT 5",
        "WITH t AS (SELECT DST_PORT p FROM flows) SELECT p, count() FROM t GROUP BY p",
        "DESCRIBE TABLE flows",
        "SHOW TABLES",
        "EXPLAIN SELECT count() FROM flows",
        "SELECT name FROM system.columns WHERE table = 'flows' LIMIT 3",
        "SELECT L7_PROTO_NAME, count() FROM flows GROUP BY 1 UNION ALL SELECT 'x', 1",
    ]
    async with mcp_session(server) as session:
        for sql in ok:
            res = await session.call_tool("query", {"sql": sql})
            assert not res.is_error, (sql, res.content[0].text)
            assert res.structured_content["rows"], sql


async def test_runaway_query_is_stopped(server):
    start = time.monotonic()
    res = await call_tool(server, "query", {
        "sql": "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) = 1"})
    assert res.is_error and "stopped" in res.content[0].text
    assert time.monotonic() - start < 60
    assert httpx.get(server.base + "/health").status_code == 200


def _inside(ip: str) -> bool:
    return ip.startswith("192.168.")


@pytest.fixture
def mixed(server):
    """The server, which must hold flows inside and outside the restricted user's networks."""
    corpus_pcap("quic.pcap")  # hosts in 192.168.1.0/24 beside the demo capture's 10.77.0.0/24
    return server


async def test_restricted_user_sees_only_their_networks(mixed):
    server, tok = mixed, "restricted"  # allowed 192.168.0.0/16
    admin_live = await call_tool(server, "get_live_flows", {"limit": 1000})
    all_flows = admin_live.structured_content["flows"]
    outside = [f for f in all_flows if not _inside(f["src_ip"]) and not _inside(f["dst_ip"])]
    assert outside and len(outside) < len(all_flows)
    live = await call_tool(server, "get_live_flows", {"limit": 1000}, token=tok)
    flows = live.structured_content["flows"]
    assert flows and all(_inside(f["src_ip"]) or _inside(f["dst_ip"]) for f in flows)
    assert len(flows) == len(all_flows) - len(outside)
    hist = await call_tool(server, "get_historical_flow", {"limit": 1000}, token=tok)
    assert not hist.is_error, hist.content[0].text
    assert {f["flow_id"] for f in hist.structured_content["flows"]} <= {f["flow_id"] for f in all_flows}
    assert all(_inside(f["src_ip"]) or _inside(f["dst_ip"]) for f in hist.structured_content["flows"])
    hidden = outside[0]
    one = await call_tool(server, "get_historical_flow", {"flow_id": hidden["flow_id"]}, token=tok)
    assert one.structured_content["flows"] == []
    one = await call_tool(server, "get_live_flow", {"flow_id": hidden["flow_id"]}, token=tok)
    assert one.structured_content["found"] is False
    host = await call_tool(server, "get_live_flows_for_host", {"host": hidden["src_ip"]}, token=tok)
    assert host.is_error and "outside" in host.content[0].text
    summary = await call_tool(server, "get_live_flows_summary", {"group_by": "source"}, token=tok)
    assert all(_inside(r["key"]) or r["key"] in {f["src_ip"] for f in flows}
               for r in summary.structured_content["rows"])
    assert "10.77.0.1" not in {r["key"] for r in summary.structured_content["rows"]}
    label = await call_tool(server, "set_host_label", {"ip": hidden["src_ip"], "label": "x"}, token=tok)
    assert label.is_error


async def test_restricted_user_sql_is_scoped(server):
    tok = "restricted"
    q = await call_tool(server, "query", {"sql": "SELECT DISTINCT SRC_IP, DST_IP FROM flows"}, token=tok)
    pairs = q.structured_content["rows"]
    assert pairs and all(_inside(a) or _inside(b) for a, b in pairs)
    for sql in ["SELECT count() FROM flows AS f WHERE f.SRC_IP = '10.77.0.1'",
                "SELECT count() FROM (SELECT * FROM flows) WHERE DST_IP = '10.77.0.1'",
                "WITH x AS (SELECT * FROM flows) SELECT count() FROM x WHERE SRC_IP LIKE '10.77.%'",
                "SELECT count() FROM flows a JOIN flows b ON a.FLOW_ID = b.FLOW_ID WHERE a.SRC_IP = '10.77.0.10'",
                "SELECT count() FROM flows WHERE DST_IP = '10.77.0.1' UNION ALL "
                "SELECT count() FROM flows WHERE SRC_IP='10.77.0.10'"]:
        res = await call_tool(server, "query", {"sql": sql}, token=tok)
        assert not res.is_error, res.content[0].text
        assert all(int(r[0]) == 0 for r in res.structured_content["rows"]), sql
    admin = await call_tool(server, "query", {"sql": "SELECT count() FROM flows WHERE SRC_IP = '10.77.0.10'"})
    assert int(admin.structured_content["rows"][0][0]) > 0
    tables = await call_tool(server, "list_tables", {}, token=tok)
    assert "audit_log" not in {t["name"] for t in tables.structured_content["tables"]}


# Every tool as a restricted user, and every write tool with a read-only token: tests/security/test_sweep.py


def test_corrupt_and_truncated_captures(make_server, tmp_path):
    good = DEMO.read_bytes()
    truncated = tmp_path / "truncated.pcap"
    truncated.write_bytes(good[: len(good) // 2 + 7])
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"\x00" * 4000)
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    for bad in (garbage, empty, tmp_path / "missing.pcap"):
        res = cli(tmp_path / "d1", "ingest", str(bad), check=False)
        assert res.returncode != 0
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and str(bad.name) in lines[0], res.stderr
    res = cli(tmp_path / "d2", "ingest", "--workers", "1", str(truncated), check=False)
    assert res.returncode == 0, res.stderr
    assert " flows, " in res.stdout
    # The server refuses unreadable files at start, and keeps serving when one fails midway.
    s = make_server(["--pcap", str(truncated), "--pcap", str(DEMO)])
    h = s.wait_sources_done()
    assert [src["state"] for src in h["sources"]] == ["done", "done"]
    assert httpx.get(s.base + "/health").status_code == 200


def test_ingest_cli_summary_and_workers(tmp_path):
    one = cli(tmp_path / "w1", "ingest", "--workers", "1", str(DEMO)).stdout
    two = cli(tmp_path / "w2", "ingest", "--workers", "2", str(DEMO)).stdout
    import re

    def nums(text):
        m = re.search(r"(\d+) flows, (\d+) packets, (\d+) bytes", text)
        return tuple(map(int, m.groups()))

    assert nums(one) == nums(two)
    flows, packets, _ = nums(one)
    assert flows >= 20 and packets >= 400


async def test_history_survives_restart_and_kill9(tmp_path):
    data = tmp_path / "persist"
    data.mkdir()
    s = Server(data, ["--pcap", str(DEMO)], STANDARD_USERS)
    try:
        s.wait_sources_done()
        res = await call_tool(s, "query", {"sql": "SELECT count(), sum(TOTAL_BYTES) FROM flows"})
        before = res.structured_content["rows"][0]
        await call_tool(s, "set_host_label", {"ip": "10.77.0.1", "label": "web"})
        os.kill(s.proc.pid, signal.SIGKILL)
        s.proc.wait()
    finally:
        s.stop()
    s2 = Server(data, [], {})
    s2.tokens = s.tokens
    try:
        res = await call_tool(s2, "query", {"sql": "SELECT count(), sum(TOTAL_BYTES) FROM flows"})
        assert res.structured_content["rows"][0] == before
        labels = await call_tool(s2, "query", {"sql": "SELECT label FROM host_labels FINAL"})
        assert labels.structured_content["rows"] == [["web"]]
    finally:
        s2.stop()


@pytest.mark.parametrize("name", ["discord_mid_flow.pcap", "false_positives.pcapng", "bfd.pcap"])
def test_worker_split_loses_nothing(tmp_path, name):
    """QinQ, PPPoE and VLAN frames: 2 workers store exactly what 1 worker stores."""
    import re

    path = str(corpus_pcap(name))
    one = cli(tmp_path / "a", "ingest", "--workers", "1", path).stdout
    two = cli(tmp_path / "b", "ingest", "--workers", "2", path).stdout
    grab = lambda t: re.search(r"(\d+) flows, (\d+) packets, (\d+) bytes", t).groups()  # noqa: E731
    assert grab(one) == grab(two)


def test_data_dir_in_use_gives_one_line_reason(tmp_path):
    """A data directory held by a process that serves nothing (a running `serve` takes the files
    instead, see test_local_entry_points): one line saying why, no traceback."""
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import chdb, sys, time; c = chdb.connect(sys.argv[1]); c.query('SELECT 1'); "
                               "print('held', flush=True); time.sleep(120)", str(tmp_path / "clickhouse")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = cli(tmp_path, "ingest", str(DEMO), check=False)
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode == 2
    ours = [line for line in res.stderr.splitlines() if line.startswith("flowscope:")]
    assert len(ours) == 1 and "another flowscope process" in ours[0] and "Traceback" not in res.stderr
