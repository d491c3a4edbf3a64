"""Reading and writing libpcap files record by record: counting, cutting to a byte budget, and
keeping only the protocol headers of each packet (payload redaction)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
          b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}
ETHERTYPE_VLAN = (0x8100, 0x88A8, 0x9100)
IPV6_EXTENSIONS = (0, 43, 44, 60)


@dataclass
class Record:
    header: bytes  # the 16-byte record header as read
    data: bytes
    orig_len: int
    time: float


@dataclass
class PcapInfo:
    packets: int = 0
    bytes: int = 0  # original (wire) lengths, as flows count them


class PcapReader:
    def __init__(self, path: Path):
        self.fh = open(path, "rb")
        self.global_header = self.fh.read(24)
        kind = _MAGIC.get(self.global_header[:4])
        if kind is None or len(self.global_header) < 24:
            self.fh.close()
            raise ValueError(f"{path.name} is not a libpcap file")
        self.endian, self.tick = kind
        self.linktype = struct.unpack(self.endian + "I", self.global_header[20:24])[0] & 0x0FFFFFFF

    def __iter__(self) -> Iterator[Record]:
        rec = struct.Struct(self.endian + "IIII")
        while True:
            head = self.fh.read(16)
            if len(head) < 16:
                return
            sec, frac, incl, orig = rec.unpack(head)
            data = self.fh.read(incl)
            if len(data) < incl:
                return  # a file still being written ends mid-record
            yield Record(head, data, orig, sec + frac * self.tick)

    def close(self) -> None:
        self.fh.close()


def info(path: Path) -> PcapInfo:
    out = PcapInfo()
    reader = PcapReader(path)
    try:
        for r in reader:
            out.packets += 1
            out.bytes += r.orig_len
    finally:
        reader.close()
    return out


def rewrite(src: Path, dst: Path, *, begin: float | None = None, end: float | None = None, skip: int = 0,
            max_bytes: int | None = None, headers_only: bool = False) -> tuple[PcapInfo, bool]:
    """Copy the packets with begin <= time < end, after the first `skip` of them, into `dst`,
    stopping before the file would pass `max_bytes`; with headers_only every packet is cut where
    its transport payload starts. Returns what was written and whether packets were left out at
    the end. Reads a file dumpcap is still writing up to its last whole record."""
    reader = PcapReader(src)
    written, cut = PcapInfo(), False
    size = 24
    try:
        with open(dst, "wb") as out:
            out.write(reader.global_header)
            seen = 0
            for r in reader:
                if (begin is not None and r.time < begin) or (end is not None and r.time >= end):
                    continue
                seen += 1
                if seen <= skip:
                    continue
                data = r.data[:header_end(reader.linktype, r.data)] if headers_only else r.data
                if max_bytes is not None and size + 16 + len(data) > max_bytes and written.packets:
                    cut = True
                    break
                ts = r.header[:8]
                out.write(ts + struct.pack(reader.endian + "II", len(data), r.orig_len) + data)
                size += 16 + len(data)
                written.packets += 1
                written.bytes += r.orig_len
    finally:
        reader.close()
    return written, cut


def _link_offset(linktype: int, buf: bytes) -> tuple[int, int | None]:
    """(offset of the network header, ethertype or None when unknown)."""
    if linktype == 1:  # Ethernet, with any VLAN tags
        off, etype = 14, int.from_bytes(buf[12:14], "big")
        while etype in ETHERTYPE_VLAN and len(buf) >= off + 4:
            etype = int.from_bytes(buf[off + 2:off + 4], "big")
            off += 4
        return off, etype
    if linktype == 113:  # Linux cooked (SLL)
        return 16, int.from_bytes(buf[14:16], "big")
    if linktype == 276:  # Linux cooked v2 (SLL2)
        return 20, int.from_bytes(buf[0:2], "big")
    if linktype in (101, 228, 229, 12, 14):  # raw IP
        return 0, None
    if linktype in (0, 108):  # BSD loopback / null
        return 4, None
    return len(buf), None


def header_end(linktype: int, buf: bytes) -> int:
    """Where the transport payload of a frame starts (the whole frame when it has none to cut)."""
    off, etype = _link_offset(linktype, buf)
    if off >= len(buf):
        return len(buf)
    if etype is not None and etype not in (0x0800, 0x86DD):
        return len(buf) if etype == 0x0806 else off  # ARP is all header; other protocols: link only
    version = buf[off] >> 4
    if version == 4:
        proto, l4 = buf[off + 9] if len(buf) > off + 9 else 0, off + (buf[off] & 0x0F) * 4
    elif version == 6:
        proto, l4 = (buf[off + 6] if len(buf) > off + 6 else 0), off + 40
        while proto in IPV6_EXTENSIONS and len(buf) >= l4 + 8:
            proto, l4 = buf[l4], l4 + (8 if proto == 44 else (buf[l4 + 1] + 1) * 8)
    else:
        return off
    if proto == 6 and len(buf) > l4 + 12:
        end = l4 + (buf[l4 + 12] >> 4) * 4
    elif proto in (17, 136, 1, 58):  # UDP, UDP-Lite, ICMP, ICMPv6: 8-byte headers
        end = l4 + 8
    else:
        end = l4
    return min(end, len(buf))
