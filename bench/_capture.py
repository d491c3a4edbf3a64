"""Build a large Ethernet pcap for the ingest benchmark, in a temp dir (never in the repo).

From the corpus (../shared/corpus/pcap): every Ethernet capture is read once, then its packets
are written again and again, file after file, with timestamps rebased so each file starts right
after the previous one. Between rounds the clock jumps more than the idle timeout, so every
round makes new flows (as a long capture of recurring traffic would) and nfstream's flow table
does not grow without end. Without the corpus: synthetic TCP/UDP flows between random addresses.
"""

from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

from _common import CORPUS_PCAPS

LINKTYPE_ETHERNET = 1
GAP_S = 3700  # > the idle timeout flowscope ingest uses (3600 s)
BASE_TS = 1_735_689_600  # 2025-01-01T00:00:00Z
MAX_STEP_S = 5.0  # some corpus files hold odd timestamps or long pauses: cap the step between packets


def _read(path: Path) -> list[tuple[float, bytes]] | None:
    import dpkt

    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
            fh.seek(0)
            reader = dpkt.pcapng.Reader(fh) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(fh)
            if reader.datalink() != LINKTYPE_ETHERNET:
                return None
            return [(float(ts), bytes(buf)) for ts, buf in reader]
    except Exception:
        return None


def corpus_packets() -> list[list[tuple[float, bytes]]]:
    files = []
    if not CORPUS_PCAPS.is_dir():
        return files
    for path in sorted(CORPUS_PCAPS.iterdir()):
        if path.suffix not in (".pcap", ".pcapng"):
            continue
        pkts = _read(path)
        if pkts:
            files.append(pkts)
    return files


def synthetic_packets(n_flows: int = 4000, seed: int = 7) -> list[list[tuple[float, bytes]]]:
    """Many short TCP/UDP flows between random addresses, as one 'file'."""
    import dpkt

    rnd = random.Random(seed)
    out, t = [], 0.0
    for _ in range(n_flows):
        src = struct.pack("!I", rnd.getrandbits(32))
        dst = struct.pack("!I", rnd.getrandbits(32))
        sport, dport = rnd.randint(1024, 65535), rnd.choice([53, 80, 443, 123, 8080, rnd.randint(1, 65535)])
        udp = rnd.random() < 0.4
        for i in range(rnd.randint(2, 20)):
            fwd = i % 2 == 0
            payload = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 200)))
            if udp:
                l4 = dpkt.udp.UDP(sport=sport if fwd else dport, dport=dport if fwd else sport, data=payload)
                l4.ulen = len(l4)
                proto = 17
            else:
                l4 = dpkt.tcp.TCP(sport=sport if fwd else dport, dport=dport if fwd else sport,
                                  flags=dpkt.tcp.TH_ACK | (dpkt.tcp.TH_SYN if i == 0 else 0), data=payload)
                proto = 6
            ip = dpkt.ip.IP(src=src if fwd else dst, dst=dst if fwd else src, p=proto, data=l4)
            ip.len = len(ip)
            eth = dpkt.ethernet.Ethernet(src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02",
                                         type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
            t += rnd.random() * 0.01
            out.append((t, bytes(eth)))
    return [out]


def build(path: Path, target_packets: int) -> dict:
    """Write `path` with about `target_packets` packets; return a description."""
    files = corpus_packets()
    origin = "corpus"
    if not files:
        files, origin = synthetic_packets(), "synthetic"
    per_round = sum(len(f) for f in files)
    rounds = max(1, -(-target_packets // per_round))
    written = nbytes = 0
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
        clock = float(BASE_TS)
        for _ in range(rounds):
            for pkts in files:
                prev, t = pkts[0][0], clock
                for ts, buf in pkts:
                    t += min(max(0.0, ts - prev), MAX_STEP_S)  # keep order, cap odd gaps
                    prev = ts
                    sec = int(t)
                    usec = int((t - sec) * 1_000_000)
                    fh.write(struct.pack("<IIII", sec, usec, len(buf), len(buf)))
                    fh.write(buf)
                    written += 1
                    nbytes += len(buf)
                clock = t + 1.0
            clock += GAP_S
    return {"path": str(path), "origin": origin, "files": len(files), "rounds": rounds,
            "packets": written, "bytes": nbytes}


if __name__ == "__main__":
    info = build(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1_500_000)
    print(info)
