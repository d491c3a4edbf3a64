"""The poller and service against Net-SNMP's snmpd on loopback (v2c and v3 authPriv SHA/AES)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from snmp_harness import COMMUNITY, SYS, V3_AUTH, V3_PRIV, V3_USER, free_udp_port, snmpwalk

IF = "1.3.6.1.2.1.2.2.1"
IFX = "1.3.6.1.2.1.31.1.1.1"
COUNTERS = {"in_octets": (f"{IFX}.6", f"{IF}.10"), "out_octets": (f"{IFX}.10", f"{IF}.16"),
            "in_errors": (None, f"{IF}.14"), "out_errors": (None, f"{IF}.20"),
            "in_discards": (None, f"{IF}.13"), "out_discards": (None, f"{IF}.19")}


def v2c(snmpd, **kw):
    return dict(name=kw.pop("name", "lab-v2c"), host="127.0.0.1", port=snmpd.port, version="v2c",
                community=kw.pop("community", COMMUNITY), **kw)


def v3(snmpd, **kw):
    return dict(name=kw.pop("name", "lab-v3"), host="127.0.0.1", port=snmpd.port, version="v3", user=V3_USER,
                security_level="authPriv", auth_protocol="SHA", auth_pass=kw.pop("auth_pass", V3_AUTH),
                priv_protocol="AES", priv_pass=kw.pop("priv_pass", V3_PRIV), **kw)


def hexmac(v: str) -> str:
    return ":".join(v.split()).lower()


def stored_rows(app, table: str) -> int:
    return int(app.store.query(f"SELECT count() FROM {table}").scalar())


@pytest.mark.parametrize("mode", ["v2c", "v3"])
def test_values_equal_snmpwalk(snmpd, service, app, mode):
    """Every system and interface value flowscope returns equals what snmpwalk reads."""
    fields = v2c(snmpd) if mode == "v2c" else v3(snmpd)
    community = COMMUNITY if mode == "v2c" else None
    before = {o: snmpwalk(snmpd.port, o, community) for o in (f"{IFX}.6", f"{IFX}.10", f"{IF}.10", f"{IF}.16",
                                                             "1.3.6.1.2.1.1.3.0")}
    dev, out = asyncio.run(service.add_device(**fields))
    after = {o: snmpwalk(snmpd.port, o, community) for o in before}
    assert out.ok, out.error
    system = snmpwalk(snmpd.port, "1.3.6.1.2.1.1", community)
    iftab = snmpwalk(snmpd.port, IF, community)
    ifx = snmpwalk(snmpd.port, IFX, community)

    info = service.device_info(dev.name, limit=1000)
    s = info["system"]
    assert s["sys_descr"] == system["1.3.6.1.2.1.1.1.0"]
    assert s["sys_object_id"] == system["1.3.6.1.2.1.1.2.0"].lstrip(".")
    assert s["sys_name"] == system["1.3.6.1.2.1.1.5.0"] == SYS["sys_name"]
    assert s["sys_location"] == system["1.3.6.1.2.1.1.6.0"] == SYS["sys_location"]
    assert s["sys_contact"] == system["1.3.6.1.2.1.1.4.0"] == SYS["sys_contact"]
    up0, up1 = int(before["1.3.6.1.2.1.1.3.0"]["1.3.6.1.2.1.1.3.0"]), int(after["1.3.6.1.2.1.1.3.0"]["1.3.6.1.2.1.1.3.0"])
    assert up0 <= s["sys_uptime_ticks"] <= up1

    indexes = sorted(int(o.rsplit(".", 1)[1]) for o in iftab if o.startswith(f"{IF}.1."))
    assert indexes and [i["if_index"] for i in info["interfaces"]] == indexes
    assert info["interface_count"] == len(indexes)
    for itf in info["interfaces"]:
        i = itf["if_index"]
        assert itf["if_descr"] == iftab[f"{IF}.2.{i}"]
        assert itf["if_name"] == ifx[f"{IFX}.1.{i}"]
        assert itf["if_alias"] == ifx.get(f"{IFX}.18.{i}", "")
        assert itf["if_type"] == int(iftab[f"{IF}.3.{i}"])
        assert itf["mtu"] == int(iftab[f"{IF}.4.{i}"])
        speed = int(iftab[f"{IF}.5.{i}"])
        assert itf["speed_bps"] == (speed if speed < 4294967295 else int(ifx[f"{IFX}.15.{i}"]) * 10**6)
        assert itf["phys_address"] == hexmac(iftab[f"{IF}.6.{i}"])
        assert itf["admin_status"] == {"1": "up", "2": "down", "3": "testing"}[iftab[f"{IF}.7.{i}"]]
        assert itf["oper_status"] == {"1": "up", "2": "down", "7": "lowerLayerDown", "5": "dormant",
                                      "6": "notPresent", "4": "unknown", "3": "testing"}[iftab[f"{IF}.8.{i}"]]
        assert itf["counters_64bit"] == 1
        for name, (hc, low) in COUNTERS.items():
            oid = f"{hc or low}.{i}"
            table = ifx if hc else iftab
            if hc:   # traffic counters move (our own polls cross lo): between the walk before and after
                lo_v, hi_v = int(before[hc][oid]), int(after[hc][oid])
                assert lo_v <= itf[name] <= hi_v, (name, i)
            else:
                assert itf[name] == int(table[oid]), (name, i)
    # IP addresses (ipAddrTable) are attached to their interfaces
    ipt = snmpwalk(snmpd.port, "1.3.6.1.2.1.4.20.1.2", community)
    lo = next(i for i in info["interfaces"] if i["if_descr"] == "lo")
    for oid, ifi in ipt.items():
        addr = oid[len("1.3.6.1.2.1.4.20.1.2."):]
        itf = next(i for i in info["interfaces"] if i["if_index"] == int(ifi))
        assert any(c.startswith(addr + "/") for c in itf["ip_addresses"]), (addr, itf["ip_addresses"])
    assert "127.0.0.1/8" in lo["ip_addresses"]
    assert any(c.startswith("127.0.0.1/") for c in info["ip_addresses"])


def test_rates_from_successive_polls(snmpd, service, app):
    dev, out = asyncio.run(service.add_device(**v2c(snmpd, interval_s=5)))
    assert out.ok
    assert stored_rows(app, "snmp_interface_ts") == 0      # no rate from a single poll
    time.sleep(1.5)
    out2 = asyncio.run(service.poll_device(dev))
    assert out2.ok
    rows = app.store.query("SELECT if_name, interval_s, in_bps, out_bps, in_util, speed_bps, in_errors_ps "
                           "FROM snmp_interface_ts ORDER BY if_index").dicts()
    assert len(rows) == len(out2.result.interfaces)
    lo = next(r for r in rows if r["if_name"] == "lo")
    assert 1.0 < lo["interval_s"] < 30
    assert lo["in_bps"] is not None and lo["in_bps"] >= 0 and lo["out_bps"] >= 0
    assert lo["in_util"] == pytest.approx(lo["in_bps"] * 100 / lo["speed_bps"])
    assert lo["in_errors_ps"] == 0
    details = service.interface_details(dev.name, if_name="lo")
    assert details["current_rates"]["in_bps"] == lo["in_bps"]
    assert len(details["history"]) == 1


def test_agent_restart_on_a_real_agent(snmpd, service, app):
    # a restart shows as an uptime more than 5 s behind the clock: the agent must have been up longer
    time.sleep(max(0.0, 7 - (time.monotonic() - snmpd.started)))
    dev, out = asyncio.run(service.add_device(**v2c(snmpd, name="restarts")))
    assert out.ok
    snmpd.restart()          # sysUpTime starts again from 0
    time.sleep(6.5)          # more than the restart tolerance (5 s) since the previous poll
    out2 = asyncio.run(service.poll_device(dev))
    assert out2.ok
    ev = app.store.query("SELECT event FROM snmp_events WHERE device = 'restarts'").rows
    assert ["agent_restart"] in ev
    rows = app.store.query("SELECT in_bps, out_bps FROM snmp_interface_ts WHERE device = 'restarts'").rows
    assert rows and all(r == [None, None] for r in rows)   # no rate across a restart, never negative


@pytest.mark.parametrize("fields,kind,words", [
    (lambda s: v2c(s, community="wrong-community", timeout_s=0.5, retries=0), "timeout", "community string is wrong"),
    (lambda s: v3(s, auth_pass="wrong-auth-pass"), "auth_failure", "authentication"),
    (lambda s: {**v3(s), "user": "nobodyhere"}, "unknown_user", "does not know the SNMPv3 user"),
    (lambda s: v3(s, priv_pass="wrong-priv-pass", timeout_s=0.5, retries=0), "timeout", "privacy passphrase"),
])
def test_wrong_credentials_clear_error_nothing_stored(snmpd, service, app, fields, kind, words):
    dev, out = asyncio.run(service.add_device(**fields(snmpd)))
    assert not out.ok and out.error_kind == kind
    assert words in out.error
    assert service.registry.list() == []
    for t in ("snmp_devices", "snmp_interfaces", "snmp_interface_ts", "snmp_events"):
        assert stored_rows(app, t) == 0, t


def test_dead_device_times_out_within_budget_and_does_not_slow_others(snmpd, service, app):
    dead_port = free_udp_port()      # nothing listens there
    service.registry.add(service_device(dict(name="dead", host="127.0.0.1", port=dead_port, community="x",
                                             timeout_s=1.0, retries=1)))
    service.registry.add(service_device(v2c(snmpd, name="alive")))
    done: dict[str, float] = {}

    async def run():
        t0 = time.perf_counter()

        async def one(dev):
            out = await service.poll_device(dev)
            done[dev.name] = time.perf_counter() - t0
            return out
        return await asyncio.gather(*(one(d) for d in service.registry.list()))

    outs = {o.device: o for o in asyncio.run(run())}
    assert outs["alive"].ok
    assert not outs["dead"].ok and outs["dead"].error_kind == "timeout"
    assert "within 1s x 2 tries" in outs["dead"].error
    assert done["alive"] < 0.6 * done["dead"]  # not held behind the dead one (alone it would be ~0.1 s)
    assert 1.9 <= done["dead"] <= 3.5         # 2 tries x 1 s, within its budget
    rows = {r[0]: r[1] for r in app.store.query("SELECT device, reachable FROM snmp_devices").rows}
    assert rows == {"alive": 1, "dead": 0}
    ev = app.store.query("SELECT device, event FROM snmp_events").rows
    assert ["dead", "device_unreachable"] in ev
    listing = {d["name"]: d for d in service.list_devices()}
    assert listing["alive"]["reachable"] is True and listing["alive"]["interface_count"] > 0
    assert listing["dead"]["reachable"] is False and "No answer" in listing["dead"]["error"]


def service_device(fields):
    from flowscope.services.snmp import make_device

    return make_device(**fields)


def test_unreachable_raises_alert_through_alerts_component(snmpd, service, app):
    raised = []

    class Alerts:
        def raise_alert(self, entity_type, entity_value, alert_type, severity, description, evidence):
            raised.append((entity_type, entity_value, alert_type, severity, description, evidence))

    app.components["alerts"] = Alerts()
    dev = service_device(dict(name="gone", host="127.0.0.1", port=free_udp_port(), community="x", timeout_s=0.3,
                              retries=0))
    service.registry.add(dev)
    asyncio.run(service.poll_device(dev))
    asyncio.run(service.poll_device(dev))          # still down: no second alert
    assert len(raised) == 1
    et, ev, at, sev, desc, evidence = raised[0]
    assert (et, ev, at, sev) == ("snmp_device", "gone", "snmp_device_unreachable", "error")
    assert "unreachable" in desc and evidence["error_kind"] == "timeout"


def test_interface_down_event(snmpd, service, app):
    """An interface going from up to down raises interface_down (state fed as the poller sees it)."""
    from flowscope.services.snmp.poller import Interface, PollResult
    from flowscope.services.snmp.service import DeviceState, PollOutcome

    dev = service.registry.add(service_device(v2c(snmpd, name="sw")))
    st = DeviceState()

    def result(oper, t):
        itf = Interface(if_index=3, name="Gi0/3", admin_status=1, oper_status=oper, speed_bps=10**9,
                        in_octets=1000, out_octets=1000, counters_64=True)
        return PollOutcome("sw", True, result=PollResult(time=t, duration_s=0.1, system={"sys_uptime": 100000},
                                                         interfaces=[itf], neighbors=[], fdb=[], ip_addresses=[]))
    t0 = time.time() - 120
    assert service._record(dev, st, result(1, t0)) == []
    alerts = service._record(dev, st, result(2, t0 + 60))
    assert [a[2] for a in alerts] == ["snmp_interface_down"]
    assert alerts[0][1] == "sw:Gi0/3"
    service._record(dev, st, result(1, t0 + 120))
    ev = [r[0] for r in app.store.query("SELECT event FROM snmp_events ORDER BY time").rows]
    assert ev == ["interface_down", "interface_up"]
    d = service.interface_details("sw", if_index=3)
    assert [c["event"] for c in d["status_changes"]] == ["interface_up", "interface_down"]


def test_secrets_never_readable(snmpd, service, app, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    dev, out = asyncio.run(service.add_device(**v3(snmpd)))
    assert out.ok
    dev2, out2 = asyncio.run(service.add_device(**v2c(snmpd)))
    secrets = [V3_AUTH, V3_PRIV, COMMUNITY]
    shown = json.dumps([service.device_config("lab-v3"), service.device_config("lab-v2c"),
                        service.list_devices(), service.device_info("lab-v3"), repr(dev), str(dev.auth_pass)],
                       default=str)
    cfg = service.device_config("lab-v3")
    assert cfg["auth_pass"] == "****" and cfg["priv_pass"] == "****" and cfg["user"] == V3_USER
    assert service.device_config("lab-v2c")["community"] == "****"
    raw = (tmp_path / "snmp.db").read_bytes()
    for s in secrets:
        assert s not in shown
        assert s not in caplog.text
        assert s.encode() not in raw
    # the registry decrypts them for the poller only
    assert service.registry.get("lab-v3").auth_pass.reveal() == V3_AUTH


def test_scheduler_polls_on_interval_and_stops(snmpd, service, app):
    service.registry.add(service_device(v2c(snmpd, name="sched", interval_s=1)))

    async def run():
        await service.start()
        await asyncio.sleep(3.2)
        await service.stop()
    asyncio.run(run())
    n = app.store.query("SELECT count() FROM snmp_devices WHERE device = 'sched' AND reachable = 1").scalar()
    assert 2 <= int(n) <= 5
    assert int(app.store.query("SELECT count() FROM snmp_interface_ts WHERE device = 'sched'").scalar()) > 0
