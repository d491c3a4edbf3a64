"""Recorded walks of real Cisco switches served by snmpsim on loopback."""

from __future__ import annotations

import asyncio

import pytest

IFINDEX = "1.3.6.1.2.1.2.2.1.1."
LLDP_SYSNAME = "1.0.8802.1.1.2.1.4.1.1.9."
CDP_DEVICE_ID = "1.3.6.1.4.1.9.9.23.1.2.1.1.6."


def text(rec: tuple[str, str]) -> str:
    tag, value = rec
    if tag.endswith("x"):
        return bytes.fromhex(value).rstrip(b"\0").decode("utf-8", "replace")
    return value


@pytest.mark.parametrize("community", ["n5000", "c3560"])
def test_interfaces_and_neighbours_match_recording(snmpsim, service, app, community):
    rec = snmpsim.records(community)
    dev, out = asyncio.run(service.add_device(name=f"sim-{community}", host="127.0.0.1", port=snmpsim.port,
                                              community=community, timeout_s=3, retries=1))
    assert out.ok, out.error
    want_ifindexes = sorted(int(o[len(IFINDEX):]) for o in rec if o.startswith(IFINDEX))
    want_lldp = sorted(text(v) for o, v in rec.items() if o.startswith(LLDP_SYSNAME))
    want_cdp = sorted(text(v) for o, v in rec.items() if o.startswith(CDP_DEVICE_ID))
    assert len(want_ifindexes) > 24        # dozens of interfaces

    info = service.device_info(dev.name, limit=500, neighbor_limit=500)
    assert info["interface_count"] == len(want_ifindexes)
    assert [i["if_index"] for i in info["interfaces"]] == want_ifindexes
    assert info["system"]["sys_name"] == text(rec["1.3.6.1.2.1.1.5.0"])
    assert info["system"]["sys_descr"] == text(rec["1.3.6.1.2.1.1.1.0"])
    assert info["system"]["sys_uptime_ticks"] == int(rec["1.3.6.1.2.1.1.3.0"][1])
    lldp = sorted(n["remote_name"] for n in info["neighbors"] if n["protocol"] == "lldp")
    cdp = sorted(n["remote_name"] for n in info["neighbors"] if n["protocol"] == "cdp")
    assert lldp == want_lldp
    assert cdp == want_cdp
    assert out.summary()["lldp_neighbors"] == len(want_lldp)
    for itf in info["interfaces"]:
        i = itf["if_index"]
        assert itf["if_descr"] == text(rec[f"1.3.6.1.2.1.2.2.1.2.{i}"])
        assert itf["oper_status"] == {"1": "up", "2": "down", "7": "lowerLayerDown", "5": "dormant",
                                      "6": "notPresent"}.get(rec[f"1.3.6.1.2.1.2.2.1.8.{i}"][1], itf["oper_status"])
    # paging over interfaces
    page1 = service.device_info(dev.name, offset=0, limit=10)
    page2 = service.device_info(dev.name, offset=10, limit=10)
    assert page1["truncated"] and [i["if_index"] for i in page1["interfaces"] + page2["interfaces"]] == \
        want_ifindexes[:20]


def test_n5000_lldp_local_ports(snmpsim, service, app):
    dev, out = asyncio.run(service.add_device(name="n5k", host="127.0.0.1", port=snmpsim.port, community="n5000",
                                              timeout_s=3))
    assert out.ok
    nb = {(n["local_port"], n["remote_name"]) for n in service.device_info("n5k")["neighbors"]
          if n["protocol"] == "lldp"}
    assert ("mgmt0", "NWPU-CA-5548-02") in nb and ("Ethernet1/1", "H3C-1") in nb
    cdp = [n for n in service.device_info("n5k")["neighbors"] if n["protocol"] == "cdp"]
    assert {n["remote_address"] for n in cdp} >= {"10.40.1.20", "10.40.1.2"}
    assert {n["remote_platform"] for n in cdp} >= {"N5K-C5548UP", "UCS-FI-6248UP"}
