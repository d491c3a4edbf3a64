"""sFlow v5 (sflow.org/sflow_version_5.txt): flow samples become flows rows scaled by their
sampling rate; generic interface counter samples become interface counters."""

from __future__ import annotations

import socket
import struct
from typing import Any, Callable

from flowscope.collector.exporters import Exporter
from flowscope.collector.mapping import COL, Context, build_row
from flowscope.collector.netflow_v5 import DecodeError

_U32 = struct.Struct("!I")
_2U32 = struct.Struct("!II")
FLOW_SAMPLE = struct.Struct("!IIIIIIII")           # seq, source id, rate, pool, drops, input, output, n
EXP_FLOW_SAMPLE = struct.Struct("!IIIIIIIIIII")    # seq, src type, src idx, rate, pool, drops, in fmt, in, out fmt, out, n
COUNTERS_SAMPLE = struct.Struct("!III")             # seq, source id, n
EXP_COUNTERS_SAMPLE = struct.Struct("!IIII")        # seq, src type, src idx, n
RAW_HEADER = struct.Struct("!IIII")                 # header protocol, frame length, stripped, header length
IPV4_DATA = struct.Struct("!IIIIIIII")              # length, protocol, src, dst, sport, dport, flags, tos
IF_COUNTERS = struct.Struct("!IIQIIQIIIIIIQIIIIII")  # 88 bytes, 19 fields
IF_COUNTER_NAMES = ("if_index", "if_type", "if_speed", "if_direction", "if_status", "in_octets",
                    "in_ucast_pkts", "in_multicast_pkts", "in_broadcast_pkts", "in_discards", "in_errors",
                    "in_unknown_protos", "out_octets", "out_ucast_pkts", "out_multicast_pkts",
                    "out_broadcast_pkts", "out_discards", "out_errors", "promiscuous")
MAX_SAMPLES = 1024
MAX_RECORDS = 64
_NH = COL["NEXT_HOP"]


def parse_packet(hdr: bytes, proto_kind: int, rec: dict[str, Any]) -> None:
    """Fill addresses, ports, protocol, TCP flags, VLAN and MACs from a sampled packet header."""
    n = len(hdr)
    pos = 0
    if proto_kind == 1:                 # Ethernet
        if n < 14:
            return
        rec["dmac"] = int.from_bytes(hdr[0:6], "big")
        rec["smac"] = int.from_bytes(hdr[6:12], "big")
        etype = (hdr[12] << 8) | hdr[13]
        pos = 14
        for _ in range(4):
            if etype not in (0x8100, 0x88A8, 0x9100) or n < pos + 4:
                break
            if "vlan" not in rec:
                rec["vlan"] = ((hdr[pos] << 8) | hdr[pos + 1]) & 0xFFF
            etype = (hdr[pos + 2] << 8) | hdr[pos + 3]
            pos += 4
    elif proto_kind == 11:
        etype = 0x0800
    elif proto_kind == 12:
        etype = 0x86DD
    else:
        return
    if etype == 0x0800:
        if n < pos + 20 or hdr[pos] >> 4 != 4:
            return
        ihl = (hdr[pos] & 0x0F) * 4
        proto = hdr[pos + 9]
        rec["proto"] = proto
        rec["src4"] = int.from_bytes(hdr[pos + 12:pos + 16], "big")
        rec["dst4"] = int.from_bytes(hdr[pos + 16:pos + 20], "big")
        if ((hdr[pos + 6] & 0x1F) << 8) | hdr[pos + 7]:
            return                      # a non-first fragment has no L4 header
        l4 = pos + max(ihl, 20)
    elif etype == 0x86DD:
        if n < pos + 40 or hdr[pos] >> 4 != 6:
            return
        proto = hdr[pos + 6]
        rec["src6"] = bytes(hdr[pos + 8:pos + 24])
        rec["dst6"] = bytes(hdr[pos + 24:pos + 40])
        l4 = pos + 40
        for _ in range(8):              # hop-by-hop, routing, fragment, destination options
            if proto not in (0, 43, 44, 60) or n < l4 + 8:
                break
            nxt = hdr[l4]
            if proto == 44:
                if ((hdr[l4 + 2] << 8) | hdr[l4 + 3]) & 0xFFF8:
                    rec["proto"] = nxt
                    return
                l4 += 8
            else:
                l4 += (hdr[l4 + 1] + 1) * 8
            proto = nxt
        rec["proto"] = proto
    else:
        return
    if proto in (6, 17, 132) and n >= l4 + 4:
        rec["sport"] = (hdr[l4] << 8) | hdr[l4 + 1]
        rec["dport"] = (hdr[l4 + 2] << 8) | hdr[l4 + 3]
        if proto == 6 and n >= l4 + 14:
            rec["tcp_flags"] = hdr[l4 + 13]


def _address(data: bytes, pos: int) -> tuple[str | None, int]:
    (kind,) = _U32.unpack_from(data, pos)
    pos += 4
    if kind == 1:
        return socket.inet_ntoa(data[pos:pos + 4]), pos + 4
    if kind == 2:
        return socket.inet_ntop(socket.AF_INET6, data[pos:pos + 16]), pos + 16
    return None, pos


def _flow_records(data: bytes, pos: int, end: int, n: int, rec: dict[str, Any]) -> None:
    for _ in range(min(n, MAX_RECORDS)):
        if end - pos < 8:
            return
        fmt, length = _2U32.unpack_from(data, pos)
        pos += 8
        if pos + length > end:
            return
        body = data[pos:pos + length]
        pos += length
        if fmt == 1 and length >= 16:                        # raw packet header
            proto_kind, frame_len, stripped, hlen = RAW_HEADER.unpack_from(body)
            # frame_length counts what the agent stripped before sampling (the 4-byte FCS, usually):
            # bytes as the frame was seen, like flows metered from packets
            rec["bytes"] = frame_len - stripped if stripped < frame_len else frame_len
            parse_packet(body[16:16 + hlen], proto_kind, rec)
        elif fmt == 3 and length >= 32 and "bytes" not in rec:  # IPv4 data
            ln, proto, src, dst, sp, dp, flags, _ = IPV4_DATA.unpack_from(body)
            rec.update(bytes=ln, proto=proto & 0xFF, src4=src, dst4=dst, sport=sp, dport=dp, tcp_flags=flags)
        elif fmt == 4 and length >= 56 and "bytes" not in rec:  # IPv6 data
            ln, proto = _2U32.unpack_from(body)
            sp, dp, flags = struct.unpack_from("!III", body, 40)
            rec.update(bytes=ln, proto=proto & 0xFF, src6=body[8:24], dst6=body[24:40], sport=sp, dport=dp,
                       tcp_flags=flags)
        elif fmt == 1001 and length >= 16:                   # extended switch
            src_vlan, _, dst_vlan, _ = struct.unpack_from("!IIII", body)
            rec.setdefault("vlan", src_vlan & 0xFFF)
        elif fmt == 1002 and length >= 8:                    # extended router
            nh, _ = _address(body, 0)
            if nh:
                rec["nh"] = nh
        elif fmt == 1003 and length >= 8:                    # extended gateway
            try:
                nh, p = _address(body, 0)
                _, src_as, _, segs = struct.unpack_from("!IIII", body, p)
                p += 16
                dst_as = 0
                for _ in range(min(segs, 32)):
                    _, cnt = _2U32.unpack_from(body, p)
                    p += 8
                    if cnt:
                        cnt = min(cnt, 64)
                        (dst_as,) = _U32.unpack_from(body, p + 4 * (cnt - 1))
                    p += 4 * cnt
                rec["src_as"] = src_as
                rec["dst_as"] = dst_as
                if nh:
                    rec["nh"] = nh
            except struct.error:
                pass


def decode(data: bytes, src_addr: str, get_exporter: Callable[[str], Exporter], src_port: int,
           listener_id: int, now: float) -> tuple[list[tuple], list[dict[str, Any]]]:
    """Rows for the flows table and interface counter records of one sFlow v5 datagram."""
    if len(data) < 28:
        raise DecodeError("datagram shorter than an sFlow v5 header")
    version, addr_type = _2U32.unpack_from(data)
    if version != 5:
        raise DecodeError(f"unknown sFlow version {version}")
    if addr_type == 1:
        agent = socket.inet_ntoa(data[8:12])
        pos = 12
    elif addr_type == 2:
        if len(data) < 40:
            raise DecodeError("sFlow v5 header truncated")
        agent = socket.inet_ntop(socket.AF_INET6, data[8:24])
        pos = 24
    else:
        raise DecodeError(f"unknown sFlow agent address type {addr_type}")
    if agent in ("0.0.0.0", "::"):
        agent = src_addr
    sub_agent, seq, uptime, nsamples = struct.unpack_from("!IIII", data, pos)
    pos += 16
    ex = get_exporter(agent)
    ex.version = 5
    ex.domains.add(sub_agent)
    ex.sequence(src_port, sub_agent).check(seq, 1)
    if nsamples > MAX_SAMPLES:
        raise DecodeError(f"sFlow sample count {nsamples} out of range")
    now_ms = int(now * 1000)
    rows: list[tuple] = []
    counters: list[dict[str, Any]] = []
    end = len(data)
    ctx_by_rate: dict[int, Context] = {}
    for _ in range(nsamples):
        if end - pos < 8:
            ex.undecodable += 1
            break
        tag, length = _2U32.unpack_from(data, pos)
        pos += 8
        if pos + length > end:
            ex.undecodable += 1
            break
        body_start, body_end = pos, pos + length
        pos = body_end
        if tag >> 12:                   # enterprise-specific sample: skip
            continue
        fmt = tag & 0xFFF
        try:
            if fmt in (1, 3):
                if fmt == 1:
                    _, _, rate, _, _, i_in, i_out, nrec = FLOW_SAMPLE.unpack_from(data, body_start)
                    i_in &= 0x3FFFFFFF
                    i_out = i_out & 0x3FFFFFFF if i_out >> 30 == 0 else 0
                    rp = body_start + FLOW_SAMPLE.size
                else:
                    (_, _, _, rate, _, _, _, i_in, out_fmt, i_out, nrec) = EXP_FLOW_SAMPLE.unpack_from(
                        data, body_start)
                    if out_fmt:
                        i_out = 0
                    rp = body_start + EXP_FLOW_SAMPLE.size
                rec: dict[str, Any] = {"pkts": 1, "in_if": i_in, "out_if": i_out}
                _flow_records(data, rp, body_end, nrec, rec)
                if "bytes" not in rec:
                    continue
                rate = rate or 1
                ctx = ctx_by_rate.get(rate)
                if ctx is None:
                    ctx = ctx_by_rate[rate] = Context(agent, "sflow", listener_id, now_ms, sampling=rate,
                                                      domain=sub_agent)
                nh = rec.pop("nh", None)
                row = build_row(rec, ctx)
                if nh:
                    row = row[:_NH] + (nh,) + row[_NH + 1:]
                rows.append(row)
            elif fmt in (2, 4):
                if fmt == 2:
                    _, _, nrec = COUNTERS_SAMPLE.unpack_from(data, body_start)
                    rp = body_start + COUNTERS_SAMPLE.size
                else:
                    _, _, _, nrec = EXP_COUNTERS_SAMPLE.unpack_from(data, body_start)
                    rp = body_start + EXP_COUNTERS_SAMPLE.size
                for _ in range(min(nrec, MAX_RECORDS)):
                    if body_end - rp < 8:
                        break
                    cfmt, clen = _2U32.unpack_from(data, rp)
                    rp += 8
                    if rp + clen > body_end:
                        break
                    if cfmt == 1 and clen >= IF_COUNTERS.size:
                        c = dict(zip(IF_COUNTER_NAMES, IF_COUNTERS.unpack_from(data, rp)))
                        c["if_direction"] &= 0xFF
                        c["if_status"] &= 0xFF
                        c["agent"] = agent
                        c["time_ms"] = now_ms
                        counters.append(c)
                        ex.counter_samples += 1
                    rp += clen
        except struct.error:
            ex.undecodable += 1
    ex.records += len(rows)
    return rows, counters
