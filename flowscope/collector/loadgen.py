"""A paced IPFIX load for the collector's tests and benchmarks: data records generated for a real
exporter's template (a template datagram captured from the exporter), sent at a steady rate to
127.0.0.1 from a process of its own.

The records vary in addresses, ports and counters; each datagram carries the export time at which
it is sent and the exporter's running sequence number, as a real exporter's do.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import struct
import time
from typing import Any

from flowscope.collector.fields import lookup

IPFIX_HEADER = struct.Struct("!HHIII")
MTU_PAYLOAD = 1400
VARIANTS = 64


def _template(tpl_datagram: bytes, tid: int) -> list[tuple[int, int]]:
    """(field id, length) of template `tid` in an IPFIX template datagram."""
    pos = IPFIX_HEADER.size
    while pos + 4 <= len(tpl_datagram):
        set_id, set_len = struct.unpack_from("!HH", tpl_datagram, pos)
        body, pos = tpl_datagram[pos + 4:pos + set_len], pos + set_len
        if set_id != 2:
            continue
        i = 0
        while i + 4 <= len(body):
            t, count = struct.unpack_from("!HH", body, i)
            i += 4
            fields = []
            for _ in range(count):
                f, n = struct.unpack_from("!HH", body, i)
                i += 4
                if f & 0x8000:
                    i += 4
                fields.append((f & 0x7FFF, n))
            if t == tid:
                return fields
    raise ValueError(f"template {tid} not in the template datagram")


def _value(key: str | None, k: int, now_s: int) -> int:
    """A field value for record number k (0 for fields the load does not vary)."""
    return {"src4": 0x0A000000 | (k * 7919) % 65536, "dst4": 0x01010100 | k % 32, "sport": 1024 + k % 60000,
            "dport": (443, 53, 80, 22)[k % 4], "proto": (6, 17)[k % 3 == 1], "bytes": 100 + k * 37 % 90000,
            "pkts": 1 + k % 60, "in_if": 1 + k % 4, "out_if": 5, "tcp_flags": 0x18, "nh4": 0xC0A8FF01,
            "first_s": now_s - 5, "last_s": now_s, "first_ms": (now_s - 5) * 1000, "last_ms": now_s * 1000,
            }.get(key or "", 0)


class Load:
    """Datagrams of `records` records each for one template of a real exporter."""

    def __init__(self, tpl_datagram: bytes, tid: int):
        self.tpl_datagram = tpl_datagram
        self.domain = IPFIX_HEADER.unpack_from(tpl_datagram)[4]
        fields = _template(tpl_datagram, tid)
        keys = [(lookup(f, 0)[0] if lookup(f, 0) else None) for f, _ in fields]
        rec_len = sum(n for _, n in fields)
        self.records = (MTU_PAYLOAD - IPFIX_HEADER.size - 4) // rec_len
        now_s = int(time.time())
        self.datagrams = []
        for v in range(VARIANTS):
            recs = b"".join(b"".join(_value(key, v * self.records + r, now_s).to_bytes(n, "big")
                                     if n <= 8 else bytes(n) for key, (_, n) in zip(keys, fields))
                            for r in range(self.records))
            data_set = struct.pack("!HH", tid, 4 + len(recs)) + recs
            self.datagrams.append(IPFIX_HEADER.pack(10, IPFIX_HEADER.size + len(data_set), now_s, 0, self.domain)
                                  + data_set)

    def send(self, port: int, rate: float, seconds: float) -> dict[str, Any]:
        """Send `rate` records/s for `seconds` (template first; rate 0: as fast as possible, for a
        burst the receive buffer holds); what was sent and how fast."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dest = ("127.0.0.1", port)
        s.sendto(self.tpl_datagram, dest)
        time.sleep(0.05)
        per_s = rate / self.records
        sent = seq = 0
        start = time.perf_counter()
        end = start + seconds
        now = start
        while now < end:
            due = min(int((now - start) * per_s) + 1, int(seconds * per_s)) if rate else sent + VARIANTS
            export_s = int(time.time())
            while sent < due:
                d = bytearray(self.datagrams[sent % VARIANTS])
                struct.pack_into("!II", d, 4, export_s, seq)
                s.sendto(d, dest)
                sent += 1
                seq += self.records
            if rate:
                time.sleep(0.002)
            now = time.perf_counter()
        elapsed = time.perf_counter() - start
        s.close()
        return {"records": sent * self.records, "datagrams": sent, "seconds": elapsed,
                "rate": sent * self.records / elapsed}


def _child(load: Load, port: int, rate: float, seconds: float, out: Any) -> None:
    out.put(load.send(port, rate, seconds))


def send_in_process(load: Load, port: int, rate: float, seconds: float) -> dict[str, Any]:
    """`Load.send` in a process of its own (so the sender does not share the collector's GIL)."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    p = ctx.Process(target=_child, args=(load, port, rate, seconds, out), daemon=True)
    p.start()
    try:
        return out.get(timeout=seconds + 60)
    finally:
        p.join(10)
