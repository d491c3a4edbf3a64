"""Decoder tests on real exporter payloads (logstash-codec-netflow corpus) and built datagrams."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from flowscope.collector.core import Collector
from flowscope.collector.mapping import COLUMNS
from collector_harness import need_exports, payload


def ip4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def rows_of(files: list[str], addr: str = "192.0.2.10") -> list[dict]:
    c = Collector()
    out = []
    for f in files:
        rows, _ = c.handle(payload(f), (addr, 2055))
        out.extend(dict(zip(COLUMNS, r)) for r in rows)
    assert c.errors == 0
    return out


def test_all_corpus_payloads_in_order_decode_or_count():
    d = need_exports()
    files = sorted(p for p in d.iterdir() if p.suffix == ".dat")
    assert len(files) == 92
    c = Collector()
    total_rows = 0
    for p in files:
        before_undec = c.undecodable
        rows, _ = c.handle(p.read_bytes(), ("127.0.0.1", 40000))
        total_rows += len(rows)
        # every datagram is either decoded (rows, templates, options or parked) or counted undecodable
        assert rows or c.undecodable > before_undec or any(
            e.datagrams for e in c.registry.all()), p.name
    assert c.errors == 0                      # no decoder exception at all
    assert c.datagrams == 92
    assert c.undecodable == 2                 # netflow5_test_invalid01/02: truncated v5
    assert total_rows > 350
    snaps = {s["type"]: s for s in c.registry.snapshots()}
    assert set(snaps) == {"netflow5", "netflow9", "ipfix"}
    assert snaps["netflow9"]["templates"] > 20 and snaps["ipfix"]["templates"] > 10
    assert snaps["netflow9"]["interface_names"] > 0     # learned from options data


# --- a dozen payloads, field values read from the bytes by hand ---------------------------------

def test_netflow5_basic():
    # header: uptime 0x0d35, secs 0x55451990 (2015-05-02 18:38:08), nsecs 280 ms; record 1:
    # 10.0.2.2:54435 -> 10.0.2.15:22 tcp, 5 pkts 230 bytes, first 0xffffffff, last 0x0a11
    r = rows_of(["netflow5.dat"])
    assert len(r) == 2
    f = r[0]
    assert (f["IPV4_SRC_ADDR"], f["IPV4_DST_ADDR"]) == (ip4("10.0.2.2"), ip4("10.0.2.15"))
    assert (f["IP_SRC_PORT"], f["IP_DST_PORT"], f["PROTOCOL"]) == (54435, 22, 6)
    assert (f["PACKETS"], f["TOTAL_BYTES"], f["SRC2DST_BYTES"], f["DST2SRC_BYTES"]) == (5, 230, 230, 0)
    assert f["FIRST_SEEN"] == "2015-05-02 18:38:04.898"     # uptime wrap: first = export - 3382 ms
    assert f["LAST_SEEN"] == "2015-05-02 18:38:07.476"
    assert (f["SRC2DST_TCP_FLAGS"], f["SOURCE_TYPE"], f["IPV6_SRC_ADDR"]) == (16, "netflow5", "::")
    assert (f["L7_PROTO"], f["CLASSIFIED_BY"]) == (92, "port")  # SSH by port


def test_netflow5_juniper_asn_nexthop_ifindex():
    # record 1: 10.0.0.1:443 -> 192.168.0.2:61608, nh 192.168.0.2, in 0x021e out 0x0218,
    # 1 pkt 1500 bytes, src_as 0xfbf1 dst_as 0xfbf0
    r = rows_of(["netflow5_test_juniper_mx80.dat"])
    assert len(r) == 29
    f = r[0]
    assert (f["IPV4_SRC_ADDR"], f["IPV4_DST_ADDR"]) == (ip4("10.0.0.1"), ip4("192.168.0.2"))
    assert (f["IP_SRC_PORT"], f["IP_DST_PORT"]) == (443, 61608)
    assert (f["INPUT_SNMP"], f["OUTPUT_SNMP"], f["NEXT_HOP"]) == (542, 536, "192.168.0.2")
    assert (f["SRC_ASN"], f["DST_ASN"], f["PACKETS"], f["TOTAL_BYTES"]) == (64497, 64496, 1, 1500)
    assert f["PROBE_IP"] == "192.0.2.10"


def test_netflow5_truncated_is_counted_not_decoded():
    c = Collector()
    for name in ("netflow5_test_invalid01.dat", "netflow5_test_invalid02.dat"):
        rows, _ = c.handle(payload(name), ("192.0.2.1", 1))
        assert rows == []
    assert c.undecodable == 2 and c.errors == 0


def test_netflow9_softflowd():
    r = rows_of(["netflow9_test_softflowd_tpl_data.dat"])
    assert len(r) == 7
    f = r[0]
    assert (f["IPV4_SRC_ADDR"], f["IPV4_DST_ADDR"]) == (ip4("172.16.32.100"), ip4("172.16.32.248"))
    assert (f["IP_SRC_PORT"], f["IP_DST_PORT"], f["PROTOCOL"]) == (123, 123, 17)
    assert (f["PACKETS"], f["TOTAL_BYTES"]) == (1, 76)
    assert (f["FIRST_SEEN"], f["LAST_SEEN"]) == ("2015-10-08 19:03:46.140", "2015-10-08 19:03:46.141")
    assert f["SOURCE_TYPE"] == "netflow9" and f["L7_PROTO"] == 9


def test_netflow9_data_before_template_is_parked_then_decoded():
    c = Collector()
    rows, _ = c.handle(payload("netflow9_test_fortigate_fortios_521_data257.dat"), ("192.0.2.2", 1))
    assert rows == []
    ex = c.registry.all()[0]
    assert ex.templates.pending_count == 1
    rows, _ = c.handle(payload("netflow9_test_fortigate_fortios_521_tpl.dat"), ("192.0.2.2", 1))
    assert ex.templates.pending_count == 0 and len(rows) == 1
    f = dict(zip(COLUMNS, rows[0]))
    assert (f["IPV4_SRC_ADDR"], f["IPV4_DST_ADDR"]) == (ip4("192.168.99.7"), ip4("31.13.87.36"))
    assert (f["IP_SRC_PORT"], f["IP_DST_PORT"], f["PACKETS"], f["TOTAL_BYTES"]) == (61910, 443, 3, 152)
    # times come from the parked datagram's own header, not the template's
    assert f["FIRST_SEEN"] == "2017-07-25 04:44:28.522"
    assert (f["INPUT_SNMP"], f["OUTPUT_SNMP"]) == (9, 3)


def test_netflow9_ipv6():
    r = rows_of(["netflow9_test_invalid01.dat"])
    f = r[0]
    assert f["IP_PROTOCOL_VERSION"] == 6 and f["IPV4_SRC_ADDR"] == 0 and f["IPV4_DST_ADDR"] == 0
    assert f["IPV6_SRC_ADDR"] == "2001:44b8:1118:7200::10"
    assert f["IPV6_DST_ADDR"] == "2001:44b8:4030:cd91:8075:bae:d39d:2621"
    assert (f["IP_SRC_PORT"], f["IP_DST_PORT"], f["TOTAL_BYTES"]) == (123, 123, 96)


def test_netflow9_nprobe_l7_is_exporter_classified():
    r = rows_of(["netflow9_test_nprobe_dpi.dat"])
    assert len(r) == 1
    assert r[0]["CLASSIFIED_BY"] == "exporter" and r[0]["L7_PROTO"] == 82      # L7_PROTO field 57590
    assert (r[0]["PACKETS"], r[0]["TOTAL_BYTES"]) == (1, 82)


def test_netflow9_macs_and_vlan():
    f = rows_of(["netflow9_test_macaddr_data.dat", "netflow9_test_macaddr_tpl.dat"])[0]
    assert (f["IPV4_SRC_ADDR"], f["IPV4_DST_ADDR"]) == (ip4("172.16.32.1"), ip4("172.16.32.201"))
    assert (f["IP_SRC_PORT"], f["IP_DST_PORT"]) == (65058, 22)
    assert f["SRC_MAC"] == 0x005056C00001 and f["DST_MAC"] == 0x000C29708609
    f = rows_of(["netflow9_test_field_layer2segmentid_data.dat", "netflow9_test_field_layer2segmentid_tpl.dat"])[0]
    assert f["VLAN_ID"] == 3174 and f["IP_DST_PORT"] == 445


def test_netflow9_reduced_size_encoding_and_sampling():
    f = rows_of(["netflow9_test_iptnetflow_reduced_size_encoding_tpldata260.dat"])[0]
    assert (f["IPV4_SRC_ADDR"], f["IP_SRC_PORT"], f["IP_DST_PORT"]) == (ip4("37.122.1.226"), 27622, 36025)
    assert (f["PACKETS"], f["TOTAL_BYTES"], f["NEXT_HOP"]) == (3, 156, "193.151.192.17")


def test_netflow9_h3c_variable_length_strings():
    r = rows_of(["netflow9_test_h3c_netstream_varstring_tpl3281.dat",
                 "netflow9_test_h3c_netstream_varstring_data3281.dat"])
    assert len(r) == 1
    f = r[0]
    assert (f["IPV4_SRC_ADDR"], f["IPV4_DST_ADDR"]) == (ip4("20.20.20.20"), ip4("20.20.255.255"))
    assert (f["IP_SRC_PORT"], f["IP_DST_PORT"], f["PACKETS"], f["TOTAL_BYTES"]) == (137, 137, 9, 702)


def test_ipfix_basic():
    r = rows_of(["ipfix.dat"])
    assert len(r) == 6
    f = r[0]
    assert (f["IPV4_SRC_ADDR"], f["IPV4_DST_ADDR"]) == (ip4("192.168.253.1"), ip4("192.168.253.128"))
    assert (f["IP_SRC_PORT"], f["IP_DST_PORT"], f["PACKETS"], f["TOTAL_BYTES"]) == (60560, 22, 5, 260)
    assert f["SOURCE_TYPE"] == "ipfix"


def test_ipfix_yaf_biflow_reverse_elements():
    r = rows_of(["ipfix_test_yaf_data45841.dat", "ipfix_test_yaf_tpl45841.dat"])
    f = r[-1]
    assert (f["IPV4_SRC_ADDR"], f["IPV4_DST_ADDR"]) == (ip4("172.16.32.201"), ip4("172.16.32.100"))
    assert (f["IP_SRC_PORT"], f["IP_DST_PORT"]) == (46086, 53)
    assert (f["SRC2DST_BYTES"], f["DST2SRC_BYTES"], f["SRC2DST_PACKETS"], f["DST2SRC_PACKETS"]) == (132, 200, 2, 2)
    assert (f["FIRST_SEEN"], f["LAST_SEEN"]) == ("2016-12-25 12:58:35.818", "2016-12-25 12:58:35.819")


def test_ipfix_openbsd_pflow_and_juniper_sampling_options():
    r = rows_of(["ipfix_test_openbsd_pflow_data.dat", "ipfix_test_openbsd_pflow_tpl.dat"])
    f = r[0]
    assert (f["IPV4_SRC_ADDR"], f["IPV4_DST_ADDR"]) == (ip4("192.168.0.17"), ip4("192.168.0.1"))
    assert (f["IP_SRC_PORT"], f["IP_DST_PORT"], f["PACKETS"], f["TOTAL_BYTES"]) == (64020, 80, 7, 373)
    c = Collector()
    c.handle(payload("ipfix_test_juniper_mx240_junos151r6s3_data512.dat"), ("192.0.2.9", 1))
    c.handle(payload("ipfix_test_juniper_mx240_junos151r6s3_opttpl512.dat"), ("192.0.2.9", 1))
    ex = c.registry.all()[0]
    assert 1000 in ex.domain_sampling.values()         # samplingInterval from the options data


# --- built datagrams: withdrawal, expiry, malformed -------------------------------------------

def _ipfix(sets: bytes, seq: int = 0, domain: int = 7, t: int = 1_700_000_000) -> bytes:
    return struct.pack("!HHIII", 10, 16 + len(sets), t, seq, domain) + sets


def _set(set_id: int, body: bytes) -> bytes:
    pad = (-len(body)) % 4
    return struct.pack("!HH", set_id, 4 + len(body) + pad) + body + b"\0" * pad


TPL = _set(2, struct.pack("!HH", 300, 5) + struct.pack("!HHHHHHHHHH", 8, 4, 12, 4, 1, 4, 2, 4, 152, 8))


def _data(n: int) -> bytes:
    return _set(300, b"".join(struct.pack("!IIIIQ", ip4("10.1.1.1"), ip4("10.2.2.2"), 100 + i, 1, 1_700_000_000_000)
                              for i in range(n)))


def test_ipfix_template_withdrawal_and_sequence_gaps():
    c = Collector()
    rows, _ = c.handle(_ipfix(TPL + _data(3), seq=0), ("192.0.2.5", 9))
    assert [r[COLUMNS.index("TOTAL_BYTES")] for r in rows] == [100, 101, 102]
    ex = c.registry.all()[0]
    # withdraw template 300, then data for it is parked, not decoded with a stale template
    c.handle(_ipfix(_set(2, struct.pack("!HH", 300, 0)), seq=3), ("192.0.2.5", 9))
    assert ex.templates.get(7, 300) is None and ex.templates.withdrawn == 1
    rows, _ = c.handle(_ipfix(_data(2), seq=3), ("192.0.2.5", 9))
    assert rows == [] and ex.templates.pending_count == 1
    # a sequence jump of 10 records counts as loss
    c.handle(_ipfix(TPL, seq=0), ("192.0.2.5", 9))      # template again: the parked set decodes
    snap = ex.snapshot()
    assert snap["pending_sets"] == 0 and ex.records == 5
    c.handle(_ipfix(TPL + _data(1), seq=15), ("192.0.2.5", 10))
    c.handle(_ipfix(_data(1), seq=26), ("192.0.2.5", 10))
    assert ex.snapshot()["lost"] == 10 and ex.snapshot()["sequence_gaps"] == 1


def test_parked_sets_expire_and_are_counted_dropped():
    c = Collector()
    c.handle(_ipfix(_data(2)), ("192.0.2.6", 1), now=1000.0)
    ex = c.registry.all()[0]
    ex.templates.expire(1000.0 + ex.templates.pending_max_age + 1)
    assert ex.templates.pending_count == 0 and ex.templates.dropped_sets == 1


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x05", b"\x00\x09" + b"\xff" * 30, b"\x00\x0a\x00\x10" + b"\0" * 12,
                                  b"\x00\x0a\xff\xff" + b"\0" * 12, b"\x00\x00\x00\x05" + b"\xff" * 40,
                                  _ipfix(_set(2, struct.pack("!HH", 300, 400)))])
def test_malformed_never_raises(data):
    c = Collector()
    rows, counters = c.handle(data, ("192.0.2.7", 1))
    assert rows == [] and counters == [] and c.errors == 0


# --- sFlow v5 ------------------------------------------------------------------------------------

def sflow_datagram(samples: list[bytes], seq: int = 1, agent: str = "192.0.2.50") -> bytes:
    head = struct.pack("!II4sIIII", 5, 1, ipaddress.IPv4Address(agent).packed, 0, seq, 1000, len(samples))
    return head + b"".join(samples)


def sflow_flow_sample(rate: int, frame_len: int, sport: int = 40000, dport: int = 443) -> bytes:
    eth = bytes.fromhex("001122334455" "66778899aabb" "0800")
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, frame_len - 14, 1, 0, 64, 6, 0,
                     ipaddress.IPv4Address("10.0.0.1").packed, ipaddress.IPv4Address("10.0.0.2").packed)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 0x50, 0x18, 1000, 0, 0)
    hdr = eth + ip + tcp
    raw = struct.pack("!IIII", 1, frame_len + 4, 4, len(hdr)) + hdr  # length with the FCS, 4 bytes stripped (as pmacctd sends)
    rec = struct.pack("!II", 1, len(raw)) + raw
    body = struct.pack("!IIIIIIII", 1, 3, rate, 100, 0, 5, 7, 1) + rec
    return struct.pack("!II", 1, len(body)) + body


def sflow_counter_sample(if_index: int, in_octets: int, out_octets: int) -> bytes:
    c = struct.pack("!IIQIIQIIIIIIQIIIIII", if_index, 6, 1_000_000_000, 1, 3, in_octets, 10, 0, 0, 0, 0, 0,
                    out_octets, 20, 0, 0, 0, 0, 0)
    rec = struct.pack("!II", 1, len(c)) + c
    body = struct.pack("!III", 1, if_index, 1) + rec
    return struct.pack("!II", 2, len(body)) + body


def test_sflow_flow_samples_are_scaled_and_counters_kept():
    c = Collector()
    rows, counters = c.handle(sflow_datagram([sflow_flow_sample(512, 1514), sflow_counter_sample(3, 12345, 678)]),
                              ("127.0.0.1", 6343))
    assert len(rows) == 1 and len(counters) == 1
    f = dict(zip(COLUMNS, rows[0]))
    assert (f["PACKETS"], f["TOTAL_BYTES"], f["SAMPLING_RATE"]) == (512, 1514 * 512, 512)
    assert (f["IPV4_SRC_ADDR"], f["IPV4_DST_ADDR"], f["IP_SRC_PORT"], f["IP_DST_PORT"]) == (
        ip4("10.0.0.1"), ip4("10.0.0.2"), 40000, 443)
    assert (f["INPUT_SNMP"], f["OUTPUT_SNMP"], f["PROBE_IP"], f["SOURCE_TYPE"]) == (5, 7, "192.0.2.50", "sflow")
    assert (f["SRC_MAC"], f["DST_MAC"], f["SRC2DST_TCP_FLAGS"]) == (0x66778899AABB, 0x001122334455, 0x18)
    assert counters[0]["if_index"] == 3 and counters[0]["in_octets"] == 12345 and counters[0]["agent"] == "192.0.2.50"
    # datagram sequence gap: 1 -> 5 means 3 datagrams lost
    c.handle(sflow_datagram([sflow_flow_sample(1, 100)], seq=5), ("127.0.0.1", 6343))
    snap = c.registry.all()[0].snapshot()
    assert snap["lost"] == 3 and snap["lost_unit"] == "datagrams"


def test_sflow_counters_become_snmp_style_interface_rates(store):
    from flowscope.collector.writer import CollectorWriter

    c = Collector()
    _, first = c.handle(sflow_datagram([sflow_counter_sample(3, 1_000_000, 500_000)]), ("127.0.0.1", 6343))
    _, second = c.handle(sflow_datagram([sflow_counter_sample(3, 3_500_000, 600_000)], seq=2), ("127.0.0.1", 6343))
    second[0]["time_ms"] = first[0]["time_ms"] + 20_000  # 20 s between the two samples
    writer = CollectorWriter(store)
    writer.write_counters(first)
    writer.write_counters(second)
    rows = store.query("SELECT device, host, if_index, interval_s, in_bps, out_bps, in_util, oper_status "
                       "FROM snmp_interface_ts").rows
    assert rows == [["sflow:192.0.2.50", "192.0.2.50", 3, 20, 1_000_000, 40_000, 0.1, "up"]]
    assert store.query("SELECT count() FROM sflow_counters").rows[0][0] == 2
