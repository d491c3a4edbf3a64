"""The live table's merging, expiry and bounds (the pure part behind live interfaces)."""

from __future__ import annotations

from flowscope.flows.live import LiveTable
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
