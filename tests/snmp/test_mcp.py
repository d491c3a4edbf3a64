"""The SNMP tools through the real MCP client against a running flowscope server."""

from __future__ import annotations

import asyncio
import json

import pytest

from snmp_harness import COMMUNITY, V3_AUTH, V3_PRIV, V3_USER


def structured(res) -> dict:
    assert not res.is_error, res.content[0].text if res.content else res
    return res.structured_content


@pytest.fixture(scope="module")
def server(make_server):
    return make_server([])


def call(server, name, args, token="admin"):
    from fsharness import call_tool

    return asyncio.run(call_tool(server, name, args, token=token))


def test_snmp_tools_end_to_end(server, snmpd):
    # read-only tokens cannot add devices
    res = call(server, "add_snmp_device", {"host": "127.0.0.1", "port": snmpd.port, "community": COMMUNITY},
               token="readonly")
    assert res.is_error and "read-only" in res.content[0].text

    # wrong community: clear error, nothing stored
    res = call(server, "add_snmp_device", {"host": "127.0.0.1", "port": snmpd.port, "community": "not-it",
                                           "timeout_s": 0.5, "retries": 0, "name": "bad"})
    assert res.is_error and "community string is wrong" in res.content[0].text
    assert structured(call(server, "list_snmp_devices", {}))["devices"] == []

    # v3 authPriv SHA/AES
    added = structured(call(server, "add_snmp_device", {
        "host": "127.0.0.1", "port": snmpd.port, "name": "lab", "version": "v3", "user": V3_USER,
        "security_level": "authPriv", "auth_protocol": "SHA", "auth_passphrase": V3_AUTH,
        "priv_protocol": "AES", "priv_passphrase": V3_PRIV, "interval_s": 10}))
    assert added["added"] and added["first_poll"]["ok"] and added["first_poll"]["interfaces"] >= 1
    assert added["config"]["auth_pass"] == "****" and added["config"]["priv_pass"] == "****"

    devices = structured(call(server, "list_snmp_devices", {}))["devices"]
    assert [d["name"] for d in devices] == ["lab"]
    assert devices[0]["reachable"] is True and devices[0]["interface_count"] == added["first_poll"]["interfaces"]

    info = structured(call(server, "get_snmp_device_info", {"device": "lab", "interface_limit": 1}))
    assert info["system"]["sys_name"] == "flowscope-lab"
    assert len(info["interfaces"]) == 1 and info["truncated"] == (info["interface_count"] > 1)

    lo = structured(call(server, "get_snmp_interface_details", {"device": "lab", "if_name": "lo"}))
    assert lo["interface"]["if_descr"] == "lo"

    cfg = call(server, "get_snmp_device_config", {"device": "lab"})
    text = json.dumps(structured(cfg)) + cfg.content[0].text
    assert V3_AUTH not in text and V3_PRIV not in text and "****" in text

    # the audit log never holds the secrets either
    res = call(server, "remove_snmp_device", {"device": "lab"}, token="readonly")
    assert res.is_error
    assert structured(call(server, "remove_snmp_device", {"device": "lab"}))["removed"] is True
    assert structured(call(server, "list_snmp_devices", {}))["devices"] == []
    for path in server.data_dir.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            data = path.read_bytes()
            assert V3_AUTH.encode() not in data and V3_PRIV.encode() not in data, path


@pytest.mark.parametrize("spelling", ["2c", "2", "SNMPv2c"])
def test_snmp_version_as_users_write_it(server, snmpd, spelling):
    """net-snmp's `-v 2c` (and `2`) mean v2c: the device is added and polled with v2c."""
    name = f"lab-{spelling}"
    added = structured(call(server, "add_snmp_device", {"host": "127.0.0.1", "port": snmpd.port, "name": name,
                                                        "version": spelling, "community": COMMUNITY}))
    assert added["added"] and added["first_poll"]["ok"] and added["config"]["version"] == "v2c"
    structured(call(server, "remove_snmp_device", {"device": name}))
    refused = call(server, "add_snmp_device", {"host": "127.0.0.1", "port": snmpd.port, "version": "4",
                                               "community": COMMUNITY})
    assert refused.is_error and "v2c" in refused.content[0].text
