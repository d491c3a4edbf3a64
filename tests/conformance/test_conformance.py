"""The official MCP conformance suite (@modelcontextprotocol/conformance, on Node 22 from npm)
against a real flowscope server. The runner cannot send headers, so token_proxy.py adds the
token. Scenarios needing the suite's own fixture tools (test_*, json_schema_2020_12_tool) are
out of scope."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fsharness import DEMO, ROOT, free_port

SUITE = ROOT / "build" / "conformance"
NODE = SUITE / "node_modules" / ".bin" / "node"
RUNNER = SUITE / "node_modules" / ".bin" / "conformance"
SCENARIOS = [
    "server-initialize", "server-session-lifecycle", "ping", "tools-list", "logging-set-level",
    "completion-complete", "resources-list", "prompts-list", "dns-rebinding-protection", "caching",
    "http-header-validation", "sep-2164-resource-not-found", "server-sse-multiple-streams",
]


def _install_suite() -> None:
    if RUNNER.exists() and NODE.exists():
        return
    if shutil.which("npm") is None and os.environ.get("CI") != "true":
        pytest.skip("npm is not installed (make conformance-deps installs the suite)")
    subprocess.run(["make", "-C", str(ROOT), "conformance-deps"], check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def proxied(make_server):
    _install_suite()
    server = make_server(["--pcap", str(DEMO)])
    port = free_port()
    proxy = subprocess.Popen([sys.executable, str(Path(__file__).with_name("token_proxy.py")), str(port),
                              str(server.port), server.tokens["admin"]], stdout=subprocess.PIPE, text=True)
    assert proxy.stdout.readline().strip() == "ready"
    yield f"http://localhost:{port}/mcp"
    proxy.terminate()
    proxy.wait(timeout=10)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario(proxied, scenario, tmp_path):
    run = subprocess.run([str(NODE), str(RUNNER), "server", "--url", proxied, "--scenario", scenario,
                          "-o", str(tmp_path)], capture_output=True, text=True, timeout=180)
    checks = [c for f in tmp_path.rglob("checks.json") for c in json.loads(f.read_text())]
    failed = [c for c in checks if c.get("status") == "FAILURE"]
    assert run.returncode == 0 and checks and not failed, run.stdout[-3000:] + run.stderr[-1000:]
    assert any(c.get("status") == "SUCCESS" for c in checks)
