"""The live table's merging, expiry and bounds (the pure part behind live interfaces)."""

from __future__ import annotations

import pytest

from flowscope.flows import live as live_module
from flowscope.flows.live import FlowGone, LiveTable
from flowscope.flows.record import community_id


def seg(first: float, last: float, packets: int, app: str = "Unknown", **extra) -> dict:
    row = {"FLOW_ID": 7, "IP_PROTOCOL_VERSION": 4, "FIRST_SEEN": first, "LAST_SEEN": last, "VLAN_ID": 0,
           "PROTOCOL": 6, "SRC_IP": "10.0.0.1", "DST_IP": "10.0.0.2", "IP_SRC_PORT": 40000, "IP_DST_PORT": 443,
           "INTERFACE_ID": 1, "PACKETS": packets, "TOTAL_BYTES": packets * 100, "SRC2DST_BYTES": packets * 60,
           "DST2SRC_BYTES": packets * 40, "SRC2DST_PACKETS": packets, "DST2SRC_PACKETS": 0,
           "L7_PROTO_NAME": app, "INFO": "", "SRC2DST_TCP_FLAGS": 0x02, "FLOW_RISK": 0}
    row.update(extra)
    return row


def test_segments_merge_into_one_flow_and_keep_the_classification():
    live = LiveTable()
    live.merge_segment(seg(100.0, 103.0, 5, "TLS.Google", INFO="www.google.com", FLOW_RISK=4))
    live.merge_segment(seg(103.5, 106.0, 3, "Unknown", SRC2DST_TCP_FLAGS=0x11, FLOW_RISK=1))
    (f,) = live.flows()
    assert (f.PACKETS, f.TOTAL_BYTES, f.SRC2DST_BYTES) == (8, 800, 480)
    assert (f.FIRST_SEEN, f.LAST_SEEN) == (100.0, 106.0)
    assert f.L7_PROTO_NAME == "TLS.Google" and f.INFO == "www.google.com"
    assert f.SRC2DST_TCP_FLAGS == 0x13 and f.FLOW_RISK == 5
    row = f.as_row()
    assert row["IPV4_SRC_ADDR"] == 167772161 and row["IPV6_SRC_ADDR"] == "::"
    assert row["DOMAIN_NAME"] == "www.google.com"
    assert row["COMMUNITY_ID"] == community_id("10.0.0.1", "10.0.0.2", 6, 40000, 443)


def test_sweep_by_idle_time_and_by_duration():
    live = LiveTable()
    live.merge_segment(seg(100.0, 110.0, 1))
    live.merge_segment(seg(0.0, 2000.0, 1, IP_SRC_PORT=40001))
    live.merge_segment(seg(500.0, 505.0, 1, IP_SRC_PORT=40002))
    quiet = live.sweep(older_than=200.0, max_duration=1800.0)
    ports = sorted(f.IP_SRC_PORT for f in quiet)
    assert ports == [40000, 40001] and all(not f.active for f in quiet)
    assert [f.IP_SRC_PORT for f in live.flows()] == [40002]
    rest = live.sweep()
    assert len(rest) == 1 and len(live) == 0


def test_finished_flows_are_bounded_active_ones_kept():
    live = LiveTable(max_flows=3)
    live.merge_segment(seg(1.0, 2.0, 1))
    live.add_finished([seg(1.0, 2.0, 1, FLOW_ID=i, IP_SRC_PORT=i) for i in range(10)])
    assert len(live) == 3
    assert any(f.active for f in live.flows())
    assert live.evicted == 8


def test_segments_merge_their_minutes_and_a_reversed_segment_joins_its_flow():
    live = LiveTable()
    live.merge_segment(seg(118.0, 121.0, 5, PER_MINUTE=[(60, 3, 180, 0, 0), (120, 2, 120, 0, 0)]))
    # the next segment began with the server's packet: seen from 10.0.0.2:443 to 10.0.0.1:40000
    back = seg(121.0, 124.0, 2, SRC_IP="10.0.0.2", DST_IP="10.0.0.1", IP_SRC_PORT=443, IP_DST_PORT=40000,
               SRC2DST_PACKETS=2, DST2SRC_PACKETS=0, SRC2DST_BYTES=200, DST2SRC_BYTES=0,
               PER_MINUTE=[(120, 2, 200, 0, 0)])
    live.merge_segment(back)
    (f,) = live.flows()
    assert (f.PACKETS, f.SRC2DST_PACKETS, f.DST2SRC_PACKETS, f.DST2SRC_BYTES) == (7, 5, 2, 5 * 40 + 200)
    assert f.as_row()["PER_MINUTE"] == [(60, 3, 180, 0, 0), (120, 2, 120, 2, 200)]


def test_rows_come_back_as_they_went_in_ipv4_and_ipv6_and_slots_are_reused(monkeypatch):
    monkeypatch.setattr(live_module, "GRACE_S", 0.0)
    live = LiveTable()
    v6 = seg(10.0, 11.0, 2, "DNS", SRC_IP="2001:db8::1", DST_IP="2001:db8::53", IP_PROTOCOL_VERSION=6,
             PROTOCOL=17, IP_DST_PORT=53, CLIENT_FINGERPRINT="", USER_AGENT="")
    v4 = seg(10.0, 12.0, 3, "HTTP", USER_AGENT="curl/8", SRC_MAC=0x020000000001, VLAN_ID=7, SRC_COUNTRY_CODE="IT")
    live.merge_segment(v6)
    live.merge_segment(v4)
    rows = {r["IP_PROTOCOL_VERSION"]: r for r in live.snapshot()}
    for want in (v4, v6):
        got = rows[want["IP_PROTOCOL_VERSION"]]
        for name, value in want.items():
            assert got[name] == value, name
    assert rows[6]["IPV6_SRC_ADDR"] == "2001:db8::1" and rows[6]["IPV4_SRC_ADDR"] == 0
    views = live.flows()
    live.merge_segment(seg(12.5, 13.0, 1, "HTTP", VLAN_ID=7))  # same flow as v4: views see the new counters
    assert sorted(f.PACKETS for f in views) == [2, 4]
    taken = live.sweep()
    assert sorted(f.PACKETS for f in taken) == [2, 4] and len(live) == 0
    live.merge_segment(seg(20.0, 21.0, 9, IP_SRC_PORT=1))  # reuses a freed slot, nothing left over from before
    (f,) = live.flows()
    assert (f.PACKETS, f.USER_AGENT, f.VLAN_ID, f.SRC_IP, f.SRC_COUNTRY_CODE) == (9, "", 0, "10.0.0.1", "")
    assert f.as_row().get("PER_MINUTE") is None
    assert sorted(x.PACKETS for x in taken) == [2, 4]  # taken flows are copies


def test_same_addresses_on_other_interfaces_vlans_or_ports_are_other_flows():
    live = LiveTable()
    for extra in ({}, {"INTERFACE_ID": 2}, {"VLAN_ID": 5}, {"IP_DST_PORT": 80}, {"PROTOCOL": 17},
                  {"SRC_IP": "10.0.0.3"}, {"DST_IP": "::1", "IP_PROTOCOL_VERSION": 6}):
        live.merge_segment(seg(1.0, 2.0, 1, **extra))
        live.merge_segment(seg(2.0, 3.0, 1, **extra))
    assert len(live) == 7 and all(f.PACKETS == 2 for f in live.flows())


def test_minutes_of_long_flows_stay_exact_in_any_order_and_beyond_32_bits():
    live = LiveTable()
    big = 5_000_000_000  # more packets in one minute than the slot's own cell holds
    cells = [[(600, 1, 100, 0, 0)], [(540, 2, 200, 1, 50), (600, 1, 10, 0, 0)], [(660, 3, 30, 3, 30)],
             [(600, big, big * 60, 0, 0)], [(601, 1, 1, 0, 0)], [(540, 1, 1, 1, 1)]]
    want: dict[int, list[int]] = {}
    for i, c in enumerate(cells):
        live.merge_segment(seg(540.0 + i, 541.0 + i, 1, PER_MINUTE=c))
        for t, *counters in c:
            want[t] = [a + b for a, b in zip(want.get(t, [0, 0, 0, 0]), counters)]
    (f,) = live.flows()
    assert f.as_row()["PER_MINUTE"] == [(t, *v) for t, v in sorted(want.items())]
    (taken,) = live.sweep()
    assert taken.as_row()["PER_MINUTE"] == [(t, *v) for t, v in sorted(want.items())]


def test_a_view_reads_its_flow_after_the_sweep_and_fails_rather_than_show_the_next_flow(monkeypatch):
    live = LiveTable()
    live.merge_segment(seg(1.0, 2.0, 4, INFO="a.example", SRC_IP="10.0.0.9"))
    (view,) = live.flows()
    live.sweep()
    live.merge_segment(seg(3.0, 4.0, 7, SRC_IP="10.0.0.5"))  # within the grace period: a new slot
    assert (view.PACKETS, view.INFO, view.SRC_IP, view.active) == (4, "a.example", "10.0.0.9", False)
    monkeypatch.setattr(live_module, "GRACE_S", 0.0)
    live.sweep()
    live.merge_segment(seg(5.0, 6.0, 9, SRC_IP="10.0.0.6"))  # reuses the view's slot
    with pytest.raises(FlowGone):
        _ = view.PACKETS
    with pytest.raises(FlowGone):
        view.as_row()
    assert [r["PACKETS"] for r in live.snapshot()] == [9]
