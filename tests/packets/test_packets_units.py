"""Small parts of packet retention: size and age settings, the ring plan's bounds, display filters."""

from __future__ import annotations

import pytest

from flowscope.capture.retention import MAX_PACKET_BYTES, RingPlan
from flowscope.config import parse_age, parse_size
from flowscope.services.packets.filters import FlowKey, flow_filter


def test_sizes_and_ages():
    assert parse_size("2GiB") == 2 * 1024 ** 3 and parse_size("400kB") == 400_000 and parse_size(1000) == 1000
    assert parse_age("24h") == 86400 and parse_age("90m") == 5400 and parse_age("30") == 30
    for bad in ("2 parsecs", "-1GB", "GiB"):
        with pytest.raises(ValueError):
            parse_size(bad)
    with pytest.raises(ValueError):
        parse_age("yesterday")


@pytest.mark.parametrize("limit,age", [(400_000, None), (2 * 1024 ** 3, 86400), (1024 ** 3, None), (10 ** 12, 3600)])
def test_ring_plan_stays_within_limits(limit, age):
    plan = RingPlan.for_limits(limit, age)
    # dumpcap switches files after the packet that crosses filesize: one packet of slack per file
    worst = plan.files * (plan.filesize_kb * 1000 + min(limit // plan.files // 4, MAX_PACKET_BYTES) + 24)
    assert worst <= limit and plan.files >= 8
    if age:
        assert plan.files * plan.duration_s <= age


def test_display_filters_come_from_validated_values():
    key = FlowKey(1, "10.0.0.1", "10.0.0.2", 1234, 80, 6, 0, 0.0, 1.0)
    assert flow_filter(key) == ("((ip.src == 10.0.0.1 && ip.dst == 10.0.0.2 && tcp.srcport == 1234 && "
                                "tcp.dstport == 80) || (ip.src == 10.0.0.2 && ip.dst == 10.0.0.1 && "
                                "tcp.srcport == 80 && tcp.dstport == 1234))")
    v6 = FlowKey(1, "fd77::10", "fd77::1", 0, 0, 58, 7, 0.0, 1.0)
    assert flow_filter(v6).endswith(" && icmpv6 && vlan.id == 7") and "ipv6.src == fd77::10" in flow_filter(v6)
    with pytest.raises(ValueError):
        flow_filter(FlowKey(1, "10.0.0.1 || 1", "10.0.0.2", 1, 2, 6, 0, 0.0, 1.0))


def test_files_of_an_earlier_run_go_oldest_first_past_the_limit(tmp_path):
    import struct

    from flowscope.capture.retention import Ring

    def pcap(name: str, ts: int, size: int) -> None:
        body = b"\0" * (size - 40)
        (tmp_path / name).write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
                                      + struct.pack("<IIII", ts, 0, len(body), len(body)) + body)

    for i in range(1, 7):  # an earlier run's ring: 6 files of 100 kB
        pcap(f"20250101000000_{i:05d}_20250101000{i}00.pcap", 1_735_689_600 + i * 60, 100_000)
    ring = Ring("eth0", tmp_path, RingPlan.for_limits(400_000, None))
    pcap(f"{ring.prefix}_00001_x.pcap", 1_735_700_000, 50_000)  # this run's first file
    ring.enforce()
    kept = sorted(p.name for p in tmp_path.glob("*.pcap"))
    assert sum((tmp_path / n).stat().st_size for n in kept) <= 400_000
    assert kept[0].startswith("20250101000000_00004_") and kept[-1].startswith(ring.prefix)
    assert [f.first_ts for f in ring.files()][:1] == [1_735_689_600 + 4 * 60]
