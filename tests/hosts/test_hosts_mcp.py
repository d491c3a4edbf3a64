"""The host tools through the real server (corpus captures), for an admin and a restricted user,
and the asset inventory across a server restart."""

from __future__ import annotations

import asyncio
import time

import pytest

from fsharness import call_tool, corpus_pcap

CAPTURES = ("teams.pcap", "wechat.pcap")


def _start(make_server, data_dir):
    data_dir.mkdir(parents=True, exist_ok=True)
    s = make_server([arg for c in CAPTURES for arg in ("--pcap", str(corpus_pcap(c)))], data_dir=data_dir)
    s.wait_sources_done()
    return s


@pytest.fixture(scope="module")
def server(make_server, tmp_path_factory):
    return _start(make_server, tmp_path_factory.mktemp("hosts-server"))


async def tool(server, name, args=None, token="admin", ok=True):
    res = await call_tool(server, name, args or {}, token=token)
    if ok:
        assert not res.is_error, res.content[0].text
    return res


async def wait_for(server, name, args, check, timeout=30.0):
    """Identity learning runs beside the flow meter: poll until it shows."""
    deadline = time.monotonic() + timeout
    while True:
        res = await tool(server, name, args)
        if check(res.structured_content) or time.monotonic() > deadline:
            return res.structured_content
        await asyncio.sleep(0.5)


async def sql(server, text):
    res = await tool(server, "query", {"sql": text, "limit": 10000})
    return res.structured_content["rows"]


async def test_get_host_info_local_host(server):
    sc = await wait_for(server, "get_host_info", {"ip": "192.168.1.106", "top": 3},
                        lambda sc: sc["identity"]["name"] == "iPhonediMonica")
    ident = sc["identity"]
    assert ident["name"] == "iPhonediMonica" and ident["name_source"] == "dhcp"
    assert ident["mac"] == "b8:78:2e:e2:da:07" and ident["manufacturer"] == "Apple, Inc."
    assert ident["os"] == "iOS" and ident["device_type"] == "phone"
    assert any(e["source"] == "dhcp_fingerprint" for e in ident["os_evidence"])
    assert sc["is_local"] and sc["local_network"] == "192.168.0.0/16"
    # historical totals equal SQL over flows for the same host (the iPhone only did DHCP: use the PC)
    sc = (await tool(server, "get_host_info", {"ip": "192.168.1.103", "top": 3})).structured_content
    ref = (await sql(server, "SELECT sumIf(SRC2DST_BYTES, SRC_IP = '192.168.1.103') + sumIf(DST2SRC_BYTES, "
                             "DST_IP = '192.168.1.103'), sumIf(DST2SRC_BYTES, SRC_IP = '192.168.1.103') + "
                             "sumIf(SRC2DST_BYTES, DST_IP = '192.168.1.103'), count() FROM flows WHERE "
                             "SRC_IP = '192.168.1.103' OR DST_IP = '192.168.1.103'"))[0]
    h = sc["historical"]
    assert [h["bytes_sent"], h["bytes_rcvd"], h["flows"]] == [int(x) for x in ref]
    # live table: capture-file flows stay visible there, with the same totals
    assert sc["live"]["totals"]["bytes_sent"] == h["bytes_sent"]
    assert h["flows"] > 50 and sc["identity"]["manufacturer"] == "Intel Corporate"
    assert len(sc["peers"]) == 3 and sc["truncated"] and sc["applications"] and sc["l4_protocols"]


async def test_get_host_info_remote_host(server):
    sc = await wait_for(server, "get_host_info", {"ip": "52.114.77.33"},
                        lambda sc: bool(sc["identity"]["names"]))
    names = {n["name"]: n["source"] for n in sc["identity"]["names"]}
    assert names.get("skypedataprdcolneu04.cloudapp.net") == "dns"
    assert names.get("mobile.pipe.aria.microsoft.com") == "tls_sni"
    assert not sc["is_local"] and sc["identity"]["gateway_mac"] == "10:13:31:f1:39:76"
    assert sc["location"]["country_code"] == "IE" and "MICROSOFT" in sc["location"]["as_name"]
    assert sc["services"] and sc["services"][0]["port"] == 443


async def test_get_host_info_errors(server):
    res = await tool(server, "get_host_info", {"ip": "not-an-ip"}, ok=False)
    assert res.is_error and "not an IP address" in res.content[0].text
    res = await tool(server, "get_host_info", {"ip": "203.0.113.77"}, ok=False)
    assert res.is_error and "has not been seen" in res.content[0].text
    # the restricted user (192.168.0.0/16) may not look at a remote host
    res = await tool(server, "get_host_info", {"ip": "52.114.77.33"}, token="restricted", ok=False)
    assert res.is_error and "allowed networks" in res.content[0].text
    res = await tool(server, "get_host_info", {"ip": "192.168.1.6"}, token="restricted")
    assert res.structured_content["historical"]["flows"] > 0


async def test_get_mac_info(server):
    sc = (await tool(server, "get_mac_info", {"mac": "10-13-31-F1-39-76"})).structured_content
    assert sc["mac"] == "10:13:31:f1:39:76" and sc["type"] == "network_device"
    assert sc["manufacturer"].startswith("Technicolor") and sc["device_type"] == "networking"
    assert sc["traffic"]["flows"] > 0 and any(i["ip"] == "192.168.1.1" for i in sc["ips"])
    sc = (await tool(server, "get_mac_info", {"mac": "b8:78:2e:e2:da:07"})).structured_content
    assert sc["name"] == "iPhonediMonica" and {i["ip"] for i in sc["ips"]} >= {"192.168.1.106"}


async def test_get_asset_info(server):
    sc = await wait_for(server, "get_asset_info", {"manufacturer": "apple"},
                        lambda sc: any(a["name"] == "iPhonediMonica" for a in sc["assets"]))
    assert {a["manufacturer"] for a in sc["assets"]} == {"Apple, Inc."}
    sc = (await tool(server, "get_asset_info", {"name": "pi3.ntop"})).structured_content
    assert {a["key"] for a in sc["assets"]} >= {"00:80:8f:9a:ae:bd"}
    sc = (await tool(server, "get_asset_info", {"key": "192.168.1.106@0"})).structured_content
    assert len(sc["assets"]) == 1 and sc["assets"][0]["os"] == "iOS"
    assert any(h["field"] == "name" and h["new_value"] == "iPhonediMonica" for h in sc["history"])
    sc = (await tool(server, "get_asset_info", {"type": "network_device"})).structured_content
    assert {a["mac"] for a in sc["assets"]} >= {"10:13:31:f1:39:76", "f0:84:2f:4a:97:60"}
    # the restricted user sees only assets inside 192.168.0.0/16
    sc = (await tool(server, "get_asset_info", {"limit": 1000}, token="restricted")).structured_content
    assert sc["assets"] and all(a["ip"].startswith("192.168.") for a in sc["assets"])
    # assets appear in list_tables / describe_table with comments
    d = (await tool(server, "describe_table", {"table": "assets"})).structured_content
    assert "ReplacingMergeTree" in str(d) or "latest identity" in str(d)


async def test_discover_lan(server):
    sc = await wait_for(server, "discover_lan", {}, lambda sc: any(d["hostname"] == "TL-SG116E" for d in sc["devices"]))
    by_ip = {d["ip"]: d for d in sc["devices"]}
    assert by_ip["192.168.1.106"]["hostname"] == "iPhonediMonica" and "dhcp" in by_ip["192.168.1.106"]["learned_from"]
    assert by_ip["192.168.0.1"]["manufacturer"].startswith("TP-LINK")
    assert by_ip["192.168.1.1"]["device_type"] == "networking"
    assert all(not d["ip"].startswith(("52.", "13.", "40.")) for d in sc["devices"])


async def test_top_talkers_and_countries(server):
    sc = (await tool(server, "get_top_talkers", {"where": "local", "limit": 3})).structured_content
    t = sc["talkers"]
    assert len(t) == 3 and all(x["is_local"] for x in t) and t[0]["bytes"] >= t[1]["bytes"] >= t[2]["bytes"]
    ref = await sql(server, "SELECT ip, sum(b) s FROM (SELECT SRC_IP ip, TOTAL_BYTES b FROM flows UNION ALL "
                            "SELECT DST_IP, TOTAL_BYTES FROM flows) WHERE isIPAddressInRange(ip, '192.168.0.0/16') "
                            "OR isIPAddressInRange(ip, 'fe80::/10') GROUP BY ip ORDER BY s DESC LIMIT 1")
    assert t[0]["ip"] == ref[0][0] and t[0]["bytes"] == int(ref[0][1])
    sc = (await tool(server, "get_top_talkers", {"where": "remote", "source": "live", "by": "flows"})).structured_content
    assert sc["talkers"] and not any(x["is_local"] for x in sc["talkers"])
    sc = (await tool(server, "get_country_stats", {"by": "hosts"})).structured_content
    codes = [c["country_code"] for c in sc["countries"]]
    assert {"IE", "US", "CN"} <= set(codes)
    assert all(sc["countries"][i]["hosts"] >= sc["countries"][i + 1]["hosts"] for i in range(len(codes) - 1))
    sc = (await tool(server, "get_country_stats", {}, token="restricted")).structured_content
    assert sc["countries"] == []  # only private hosts are visible to that user


async def test_networks_and_interfaces(server):
    sc = (await tool(server, "list_networks", {})).structured_content
    nets = {n["network"]: n for n in sc["networks"]}
    assert "192.168.0.0/16" in nets and nets["192.168.0.0/16"]["hosts"] > 5
    assert sc["source"] == "default"  # the server was started without local networks
    sc = (await tool(server, "list_networks", {}, token="restricted")).structured_content
    assert [n["network"] for n in sc["networks"]] == ["192.168.0.0/16"]
    sc = (await tool(server, "get_interface_addresses", {"all_interfaces": True})).structured_content
    lo = [i for i in sc["interfaces"] if i["name"] == "lo"]
    assert lo and any(a["address"] == "127.0.0.1" for a in lo[0]["addresses"])
    sc = (await tool(server, "get_interface_addresses", {})).structured_content
    assert sc["interfaces"] == [] and "no live interface" in sc["note"]


async def test_asset_inventory_survives_server_restart(make_server, tmp_path):
    server = _start(make_server, tmp_path / "restart")  # its own server: this test stops it
    await wait_for(server, "get_asset_info", {"key": "192.168.1.106@0"}, lambda sc: bool(sc["assets"]))
    before = (await tool(server, "get_asset_info", {"limit": 1000})).structured_content["assets"]
    server.stop()  # flushes the inventory at stop
    s2 = make_server([], users={}, data_dir=server.data_dir)  # same data dir, no sources this time
    s2.tokens = server.tokens
    after = (await tool(s2, "get_asset_info", {"limit": 1000})).structured_content["assets"]
    ident = lambda assets: {a["key"]: (a["name"], a["mac"], a["os"], a["device_type"], a["manufacturer"])  # noqa: E731
                            for a in assets}
    assert len(before) > 20 and ident(after) == ident(before)
    sc = (await tool(s2, "get_host_info", {"ip": "192.168.1.106"})).structured_content
    assert sc["identity"]["name"] == "iPhonediMonica"  # reloaded identity, history from the flows table
    assert sc["live"]["totals"]["flows"] == 0  # nothing live after the restart
    sc = (await tool(s2, "get_host_info", {"ip": "192.168.1.103"})).structured_content
    assert sc["historical"]["flows"] > 50 and sc["identity"]["mac"] == "78:92:9c:0f:a8:8e"
    s2.stop()
