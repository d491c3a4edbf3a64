"""NetFlow v5: fixed 24-byte header and 48-byte records."""

from __future__ import annotations

import struct

from flowscope.collector.exporters import Exporter
from flowscope.collector.mapping import Context, build_row

HEADER = struct.Struct("!HHIIIIBBH")
RECORD = struct.Struct("!IIIHHIIIIHHxBBxHHxxxx")
MAX_COUNT = 30


class DecodeError(ValueError):
    """The datagram cannot be decoded at all."""


def decode(data: bytes, ex: Exporter, src_port: int, listener_id: int) -> list[tuple]:
    if len(data) < HEADER.size:
        raise DecodeError("NetFlow v5 datagram shorter than its header")
    version, count, uptime, secs, nsecs, seq, eng_type, eng_id, sampling = HEADER.unpack_from(data)
    if version != 5:
        raise DecodeError("not NetFlow v5")
    if count == 0 or count > MAX_COUNT:
        raise DecodeError(f"NetFlow v5 record count {count} out of range")
    fits = (len(data) - HEADER.size) // RECORD.size
    if fits < count:
        raise DecodeError(f"NetFlow v5 datagram truncated: {count} records announced, {fits} present")
    domain = (eng_type << 8) | eng_id
    ex.domains.add(domain)
    ex.sequence(src_port, domain).check(seq, count)
    rate = sampling & 0x3FFF if sampling >> 14 else 1
    ctx = Context(ex.address, "netflow5", listener_id, secs * 1000 + nsecs // 1_000_000, uptime_ms=uptime,
                  sampling=max(rate, 1))
    rows = []
    for (src, dst, nh, i_if, o_if, pkts, octets, first, last, sport, dport, flags, proto,
         src_as, dst_as) in RECORD.iter_unpack(data[HEADER.size:HEADER.size + count * RECORD.size]):
        rec = {"src4": src, "dst4": dst, "nh4": nh, "in_if": i_if, "out_if": o_if, "pkts": pkts,
               "bytes": octets, "first_up": first, "last_up": last, "sport": sport, "dport": dport,
               "tcp_flags": flags, "proto": proto, "src_as": src_as, "dst_as": dst_as}
        rows.append(build_row(rec, ctx))
    ex.records += len(rows)
    return rows
