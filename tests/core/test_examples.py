"""The two examples users start from, run as scripts against a real server: the CI/runbook check
and the custom-agent skeleton that correlates an outside event list with flows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fsharness import DEMO, ROOT, call_tool

EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def server(make_server):
    s = make_server(["--pcap", str(DEMO)])
    s.wait_sources_done()
    return s


def run(server, script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FLOWSCOPE_URL": server.url, "FLOWSCOPE_TOKEN": server.tokens["readonly"]}
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_ci_check_passes_and_fails_on_real_traffic(server):
    ok = run(server, "ci_check.py", "--no-flows-to", "203.0.113.0/24", "--since", "2000-01-01T00:00:00Z")
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stderr
    bad = run(server, "ci_check.py", "--no-flows-to", "10.77.0.1/32", "--since", "2000-01-01T00:00:00Z")
    assert bad.returncode == 1 and "FAIL" in bad.stdout and "-> 10.77.0.1:" in bad.stdout
    later = run(server, "ci_check.py", "--no-flows-to", "10.77.0.1/32", "--since", "2999-01-01T00:00:00Z")
    assert later.returncode == 0  # nothing since a deploy after the capture
    wrong = run(server, "ci_check.py", "--no-flows-to", "10.77.0.1/33", "--since", "2000-01-01T00:00:00Z")
    assert wrong.returncode == 2


async def test_correlate_events_finds_the_flows_around_each_event(server, tmp_path):
    flows = (await call_tool(server, "get_historical_flow", {"host": "10.77.0.1", "begin": "2000-01-01T00:00:00Z",
                                                             "limit": 1})).structured_content["flows"]
    at = flows[0]["first_seen"]
    events = [{"host": "10.77.0.1", "time": at, "type": "edr_alert"},
              {"host": "10.77.0.1", "time": "2001-01-01T00:00:00Z", "type": "login"}]
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events))
    res = run(server, "correlate_events.py", str(path), "--window", "600")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report[0]["flows"] > 0 and flows[0]["flow_id"] in report[0]["flow_ids"]
    assert report[0]["verdict"] in ("confirmed", "network activity") and report[0]["applications"]
    assert report[1]["flows"] == 0 and report[1]["verdict"] == "no network activity"
