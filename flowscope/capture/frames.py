"""Every frame of a capture file, whatever its link type: counted by minute and EtherType, and
rewritten as Ethernet where nfstream or BPF cannot handle the original framing.

nfstream drops non-IP frames (ARP, STP, EAPOL...), so interface totals come from this pass, not
from flows. nfstream also mis-reads some link types (raw IP and BSD loopback: IPv4 fragments and
tunnels are not recognised; PPP with address/control bytes, Linux SLL2 and PPI not at all) and a
BPF split cannot be compiled on most of them, so those captures are rewritten as Ethernet frames
(zero MAC addresses). libpcap refuses a frame longer than its wire length, so a rewritten
frame's wire length is the original plus `PADDING` bytes, which the meter takes back off every
packet of the flows (`ingest`), so byte counts stay the original link-layer counts.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from typing import Iterator

ETHERNET = 1
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
IPV4, IPV6 = 0x0800, 0x86DD

#: EtherType names for the counters table
ETHER_TYPES = {
    0x0800: "IPv4", 0x86DD: "IPv6", 0x0806: "ARP", 0x8035: "RARP", 0x8100: "802.1Q", 0x88A8: "802.1ad",
    0x8847: "MPLS", 0x8848: "MPLS multicast", 0x8863: "PPPoE discovery", 0x8864: "PPPoE session",
    0x888E: "EAPOL", 0x88CC: "LLDP", 0x8809: "Slow protocols (LACP)", 0x88F7: "PTP", 0x8808: "Ethernet flow control",
    0x88E5: "MACsec", 0x8892: "PROFINET", 0x88A4: "EtherCAT", 0x88B8: "GOOSE", 0x88BA: "Sampled values",
    0x9000: "Loopback (configuration test)", 0x22F3: "TRILL", 0x893A: "IEEE 1905.1", 0x8137: "IPX",
    0x809B: "AppleTalk", 0x80F3: "AARP", 0x6002: "DEC MOP", 0x6003: "DECnet", 0x8899: "Realtek (RRCP)",
    0x88E1: "HomePlug AV", 0x8912: "HomePlug Green PHY", 0x2000: "Cisco CDP",
}
LLC = 0x0001  # 802.3 frames with a length field (STP, CDP, NetBIOS over LLC...)
OTHER = 0x0000  # not an EtherType: a link-layer protocol of a non-Ethernet capture (PPP LCP, ...)


def ether_type_name(value: int) -> str:
    if value == LLC:
        return "802.3/LLC"
    if value == OTHER:
        return "other link-layer"
    return ETHER_TYPES.get(value, f"0x{value:04x}")


class CaptureFormatError(Exception):
    """The file is not a capture this reader understands; the message says why."""


#: one frame: (link type, seconds since the epoch, wire length, captured bytes)
Frame = tuple[int, float, int, bytes]


def _pcap_frames(buf: mmap.mmap) -> Iterator[Frame]:
    magic = buf[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    if len(buf) < 24:
        raise CaptureFormatError("truncated pcap header")
    linktype = struct.unpack_from(endian + "I", buf, 20)[0] & 0x0FFFFFFF
    scale = 1e-9 if nano else 1e-6
    rec = struct.Struct(endian + "IIII")
    off, end = 24, len(buf)
    while off + 16 <= end:
        sec, frac, caplen, wire = rec.unpack_from(buf, off)
        off += 16
        if caplen > end - off:  # truncated last record: what is there still counts
            caplen = end - off
        yield linktype, sec + frac * scale, wire, buf[off:off + caplen]
        off += caplen


def _pcapng_frames(buf: mmap.mmap) -> Iterator[Frame]:
    off, end = 0, len(buf)
    endian = "<"
    ifaces: list[tuple[int, float]] = []  # (linktype, seconds per timestamp unit)
    while off + 12 <= end:
        btype = struct.unpack_from(endian + "I", buf, off)[0]
        if btype == 0x0A0D0D0A:  # section header: byte order may change, interfaces restart
            bom = buf[off + 8:off + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        blen = struct.unpack_from(endian + "I", buf, off + 4)[0]
        if blen < 12 or off + blen > end:
            break  # damaged block: stop here, keep what was read
        body = off + 8
        if btype == 1:  # interface description
            linktype = struct.unpack_from(endian + "H", buf, body)[0]
            ifaces.append((linktype, _tsresol(buf, endian, body + 8, off + blen - 4)))
        elif btype in (6, 2):  # enhanced / obsolete packet block
            if btype == 6:
                iface, hi, lo, caplen, wire = struct.unpack_from(endian + "IIIII", buf, body)
            else:
                iface, _drops, hi, lo, caplen, wire = struct.unpack_from(endian + "HHIIII", buf, body)
            if iface < len(ifaces):
                linktype, unit = ifaces[iface]
                data = body + 20
                caplen = min(caplen, off + blen - 4 - data)
                yield linktype, ((hi << 32) | lo) * unit, wire, buf[data:data + caplen]
        elif btype == 3 and ifaces:  # simple packet block: no timestamp
            wire = struct.unpack_from(endian + "I", buf, body)[0]
            data = body + 4
            caplen = min(wire, off + blen - 4 - data)
            yield ifaces[0][0], 0.0, wire, buf[data:data + caplen]
        off += blen


def _tsresol(buf, endian: str, opt: int, end: int) -> float:
    """Seconds per timestamp unit from an interface block's if_tsresol option (default 1e-6)."""
    while opt + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", buf, opt)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = buf[opt + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        opt += 4 + ((length + 3) & ~3)
    return 1e-6


def read_frames(path: str) -> Iterator[Frame]:
    """Every frame of a pcap or pcapng file (a truncated end is read up to the damage)."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            magic = buf[:4]
            if magic == b"\x0a\x0d\x0d\x0a":
                frames = _pcapng_frames(buf)
            elif magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
                frames = _pcap_frames(buf)
            else:
                raise CaptureFormatError(f"unknown magic {bytes(magic).hex()}")
            try:
                yield from frames
            finally:
                frames.close()


# --- link layers -----------------------------------------------------------------------------

def _ip_version(data, off: int) -> int:
    if len(data) <= off:
        return OTHER
    v = data[off] >> 4
    return IPV4 if v == 4 else IPV6 if v == 6 else OTHER


def _ppp(data, off: int) -> tuple[int, int]:
    if len(data) >= off + 2 and data[off] == 0xFF and data[off + 1] == 0x03:
        off += 2
    if len(data) < off + 1:
        return OTHER, off
    if data[off] & 1:  # compressed one-byte protocol field
        proto, off = data[off], off + 1
    elif len(data) >= off + 2:
        proto, off = (data[off] << 8) | data[off + 1], off + 2
    else:
        return OTHER, off
    return {0x21: IPV4, 0x57: IPV6}.get(proto, OTHER), off


def _ethernet(data, off: int = 0) -> tuple[int, int]:
    if len(data) < off + 14:
        return OTHER, len(data)
    etype, off = (data[off + 12] << 8) | data[off + 13], off + 14
    while etype in _VLAN_TYPES and len(data) >= off + 4:
        etype, off = (data[off + 2] << 8) | data[off + 3], off + 4
    if etype < 0x0600:
        return LLC, off
    return etype, off


def classify(linktype: int, data) -> tuple[int, int]:
    """(EtherType, offset of the network layer) of a frame; OTHER when it has none."""
    if linktype == ETHERNET:
        return _ethernet(data)
    if linktype in (0, 108):  # BSD loopback: address family, host order (0) or network order (108)
        if len(data) < 4:
            return OTHER, 0
        fam = struct.unpack_from("<I" if linktype == 0 and data[0] else ">I", data, 0)[0]
        return (IPV4 if fam == 2 else IPV6 if fam in (10, 24, 28, 30) else OTHER), 4
    if linktype in (101, 12, 14):  # raw IP
        return _ip_version(data, 0), 0
    if linktype == 228:
        return IPV4, 0
    if linktype == 229:
        return IPV6, 0
    if linktype == 113:  # Linux cooked capture v1
        if len(data) < 16:
            return OTHER, 0
        proto = (data[14] << 8) | data[15]
        return (proto if proto >= 0x0600 else LLC), 16
    if linktype == 276:  # Linux cooked capture v2
        if len(data) < 20:
            return OTHER, 0
        proto = (data[0] << 8) | data[1]
        return (proto if proto >= 0x0600 else LLC), 20
    if linktype in (9, 50):  # PPP, PPP in HDLC framing
        return _ppp(data, 0)
    if linktype == 104:  # Cisco HDLC: address, control, EtherType
        if len(data) < 4:
            return OTHER, 0
        return (data[2] << 8) | data[3], 4
    if linktype == 192 and len(data) >= 8:  # PPI: a header, then the frame of the inner link type
        hlen, inner = struct.unpack_from("<HI", data, 2)
        etype, off = classify(inner, data[hlen:])
        return etype, off + hlen
    return OTHER, 0


#: link types nfstream reads correctly and BPF can split
NATIVE = {ETHERNET}
#: link types rewritten as Ethernet before metering
CONVERTIBLE = {0, 108, 101, 12, 14, 228, 229, 113, 276, 9, 50, 104, 192}


# --- counting and rewriting --------------------------------------------------------------------

@dataclass
class FrameCounts:
    """Frames and wire bytes per (minute start, EtherType); link types seen."""
    cells: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    linktypes: set[int] = field(default_factory=set)
    packets: int = 0
    bytes: int = 0

    def add(self, minute: int, etype: int, wire: int) -> None:
        cell = self.cells.get((minute, etype))
        if cell is None:
            self.cells[(minute, etype)] = [1, wire]
        else:
            cell[0] += 1
            cell[1] += wire
        self.packets += 1
        self.bytes += wire


PADDING = 14  # added to every rewritten frame's wire length (an Ethernet header's worth)
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, ETHERNET)
_ZERO_MACS = bytes(12)


_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
                b"\xa1\xb2\xc3\xd4": (">", 1e-6), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}


def pcap_linktype(path: str) -> int | None:
    """The link type of a classic pcap file (from its header); None for pcapng, whose interfaces
    may each have their own. Raises CaptureFormatError when the header is not a capture's."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if head[:4] == b"\x0a\x0d\x0d\x0a":
        return None
    if head[:4] not in _PCAP_MAGICS:
        raise CaptureFormatError(f"unknown magic {head[:4].hex() or 'empty file'}")
    if len(head) < 24:
        raise CaptureFormatError("truncated pcap header")
    return struct.unpack_from(_PCAP_MAGICS[head[:4]][0] + "I", head, 20)[0] & 0x0FFFFFFF


def _count_ethernet_pcap(buf: mmap.mmap, counts: FrameCounts) -> None:
    """`scan` of a classic Ethernet pcap, inlined (no frame copied): the same cells, ~2x faster."""
    endian, scale = _PCAP_MAGICS[buf[:4]]
    rec = struct.Struct(endian + "IIII").unpack_from
    limit = round(1 / scale)  # a fraction below this is less than a second
    cells = counts.cells
    off, end = 24, len(buf)
    n = total = 0
    while off + 16 <= end:
        sec, frac, caplen, wire = rec(buf, off)
        off += 16
        if caplen > end - off:  # truncated last record: what is there still counts
            caplen = end - off
        if caplen < 14:
            etype = OTHER
        else:
            etype = (buf[off + 12] << 8) | buf[off + 13]
            if etype in _VLAN_TYPES:
                etype = _ethernet(buf[off:off + caplen])[0]
            elif etype < 0x0600:
                etype = LLC
        # the minute of sec + frac * scale, in floating point as `scan` does where that may differ
        minute = sec - sec % 60 if frac < limit and sec % 60 != 59 else int((sec + frac * scale) // 60) * 60
        cell = cells.get((minute, etype))
        if cell is None:
            cells[(minute, etype)] = [1, wire]
        else:
            cell[0] += 1
            cell[1] += wire
        n += 1
        total += wire
        off += caplen
    counts.packets += n
    counts.bytes += total
    counts.linktypes.add(ETHERNET)


def scan(path: str, rewrite_to: str | None = None) -> FrameCounts:
    """Count every frame of `path`; with `rewrite_to`, also write its IP frames there as an
    Ethernet pcap (original timestamps, wire lengths + PADDING) for nfstream to meter."""
    counts = FrameCounts()
    if rewrite_to is None and pcap_linktype(path) == ETHERNET:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            _count_ethernet_pcap(buf, counts)
        return counts
    out = open(rewrite_to, "wb") if rewrite_to else None
    rec = struct.Struct("<IIII")
    try:
        if out:
            out.write(_PCAP_HEADER)
        last_minute_ts, minute = -1.0, 0
        linktypes = counts.linktypes
        for linktype, ts, wire, data in read_frames(path):
            linktypes.add(linktype)
            if not (last_minute_ts <= ts < last_minute_ts + 60):
                minute = int(ts // 60) * 60
                last_minute_ts = float(minute)
            etype, off = classify(linktype, data)
            counts.add(minute, etype, wire)
            if out is None:
                continue
            if etype >= 0x0600:  # IP, or MPLS, PPPoE, VLAN... that nfstream unwraps
                frame = _ZERO_MACS + etype.to_bytes(2, "big") + data[off:]
            else:
                continue  # nothing nfstream would meter
            sec = int(ts)
            usec = min(int(round((ts - sec) * 1e6)), 999_999)
            out.write(rec.pack(sec, usec, len(frame), wire + PADDING))
            out.write(frame)
    finally:
        if out:
            out.close()
    return counts
