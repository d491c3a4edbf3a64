"""Startup is loud: a tool module or component that fails stops `flowscope serve` with the reason;
a component that cannot run here (no pysnmp) is listed, with the reason, in /health and
get_interfaces; and the server serves exactly the tools listed below."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import flowscope
from fsharness import ROOT, call_tool, free_port, mcp_session

TOOLS = {
    "acknowledge_alerts", "add_active_monitoring_script", "add_certificate_alert_exclusion",
    "add_domain_alert_exclusion", "add_host_alert_exclusion", "add_snmp_device", "chart", "create_ai_policy",
    "delete_ai_policy", "describe_table", "discover_lan", "get_alert_stats", "get_alerts", "get_asset_info",
    "get_country_stats", "get_exporter_interfaces", "get_flow_packets", "get_historical_flow", "get_host_info",
    "get_interface_addresses", "get_interfaces", "get_live_flow", "get_live_flows", "get_live_flows_for_host",
    "get_live_flows_summary", "get_mac_info", "get_snmp_device_config", "get_snmp_device_info",
    "get_snmp_interface_details", "get_timeseries", "get_top_applications", "get_top_exporter_interfaces",
    "get_top_protocols", "get_top_talkers", "list_ai_policies", "list_alert_exclusions",
    "list_available_active_monitoring_scripts", "list_enabled_active_monitoring_scripts",
    "list_expected_servers", "list_flow_exporters", "list_networks", "list_protos", "list_snmp_devices",
    "list_tables", "list_timeseries", "pause_ai_policy", "query", "remove_active_monitoring_script",
    "remove_alert_exclusion", "remove_snmp_device", "resolve_proto", "resume_ai_policy", "run_ai_policy",
    "set_host_label", "update_ai_policy",
}

PLUGINS = {
    # a tool module with a typo in an import
    "typo_tools": "from flowscope.mcp.toolkit import ToolContxt, tool\n",
    # makes the built-in tool module flowscope.mcp.tools.data fail to import
    "break_data_tools": "import sys\nsys.modules['flowscope.mcp.tools.data'] = None\n",
    # a component whose attach fails
    "failing_component": "def attach(app):\n    raise RuntimeError('disk on fire')\n",
}


def serve_with(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    for name, code in PLUGINS.items():
        (plugins / f"{name}.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": f"{plugins}{os.pathsep}{ROOT}", "FLOWSCOPE_DATA_DIR": str(tmp_path / "d"),
           **env}
    return subprocess.run([sys.executable, "-m", "flowscope", "serve", "--listen", f"127.0.0.1:{free_port()}"],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("plugin, reason", [
    ("typo_tools", "plugin typo_tools failed to load (ImportError: cannot import name 'ToolContxt'"),
    ("break_data_tools", "tool module flowscope.mcp.tools.data failed to load (ModuleNotFoundError"),
    ("failing_component", "component failing_component (failing_component) failed to attach "
                          "(RuntimeError: disk on fire)"),
])
def test_broken_part_stops_serve(plugin, reason, tmp_path):
    res = serve_with(tmp_path, {"FLOWSCOPE_PLUGINS": plugin})
    assert res.returncode != 0
    assert reason in res.stderr, res.stderr[-2000:]


async def test_server_serves_every_tool(make_server):
    server = make_server([])
    async with mcp_session(server) as session:
        listed = await session.list_tools()
    assert {t.name for t in listed.tools} == TOOLS
    assert server.health()["unavailable"] == []


async def test_component_without_its_package_is_reported(make_server, tmp_path, monkeypatch):
    fake = tmp_path / "no-pysnmp" / "pysnmp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'pysnmp'\", name='pysnmp')\n")
    monkeypatch.setenv("PYTHONPATH", f"{fake.parent}{os.pathsep}{ROOT}")
    server = make_server([])
    want = {"name": "flowscope.services.snmp",
            "reason": "SNMP polling needs the Python package pysnmp, which is not installed (pip install pysnmp)"}
    assert server.health()["unavailable"] == [want]
    res = await call_tool(server, "get_interfaces")
    assert not res.is_error and res.structured_content["unavailable"] == [want]
    assert "unavailable flowscope.services.snmp: SNMP polling needs" in res.content[0].text
    res = await call_tool(server, "list_snmp_devices")
    assert res.is_error and res.content[0].text == ("the snmp component is not available on this server: "
                                                    + want["reason"])


def test_version():
    res = subprocess.run([sys.executable, "-m", "flowscope", "--version"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.strip() == f"flowscope {flowscope.__version__}"
