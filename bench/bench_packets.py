"""Packet retention: extracting one flow from a 1 GiB ring, and what keeping packets costs live
metering.

1. Extraction. A ring like dumpcap's (16 libpcap files of 64 MiB, named as dumpcap names them)
   is written in a temp dir from the corpus's Ethernet captures laid end to end, with the demo
   capture placed in the middle. flowscope's path for the demo's largest TCP flow: pick the ring
   files by time, cut them to the flow's time span without dissecting, then tshark with the
   flow's display filter (`flowscope.services.packets`). Baseline, same run: tshark with the same
   display filter over every file of the ring (what one would do by hand).
2. Capture overhead. `flowscope serve --interface` on a veth into a network namespace of our
   own; a UDP sender in the namespace sends as fast as it can for a fixed time. Metered
   packets/s (what the interface source counted) with `--retain-packets 1GiB` (dumpcap running
   beside the meter) against the same without retention.

    .venv/bin/python bench/bench_packets.py    # BENCH_RING_MB (default 1024), BENCH_SEND_S (5)
Needs root for part 2 (skipped otherwise).
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fsharness  # noqa: E402  (the tests' real-server harness)
from _capture import corpus_packets, synthetic_packets  # noqa: E402
from _common import ROOT, env_int, load, table  # noqa: E402

FILE_BYTES = 64 * 1024 * 1024
BASE_TS = 1_767_225_600  # 2026-01-01T00:00:00Z


def _demo_packets() -> list[tuple[float, bytes]]:
    import dpkt

    with open(fsharness.DEMO, "rb") as fh:
        return [(float(ts), bytes(buf)) for ts, buf in dpkt.pcap.Reader(fh)]


def build_ring(directory: Path, total_bytes: int) -> float:
    """Write the ring; return the time shift applied to the demo capture's packets."""
    pool = [buf for pkts in (corpus_packets() or synthetic_packets()) for _, buf in pkts]
    demo = _demo_packets()
    n_files = max(2, total_bytes // FILE_BYTES)
    clock, shift, idx = float(BASE_TS), 0.0, 0
    for f in range(n_files):
        path = directory / f"20260101000000_{f + 1:05d}_20260101{f:06d}.pcap"
        with open(path, "wb") as fh:
            fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
            size = 24
            if f == n_files // 2:  # the demo, whole, in the middle file; shifted by whole seconds
                shift = float(int(clock + 1) - int(demo[0][0]))
                packets = [(ts + shift, buf) for ts, buf in demo]
            else:
                packets = []
            while size < FILE_BYTES:
                if packets:
                    ts, buf = packets.pop(0)
                    clock = max(clock, ts)
                else:
                    ts, buf = clock + 0.0005, pool[idx % len(pool)]
                    idx += 1
                    clock = ts
                sec = int(ts)
                fh.write(struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)), len(buf), len(buf)) + buf)
                size += 16 + len(buf)
        os.utime(path, (clock, clock))  # as dumpcap's files: last written when their last packet came
    return shift


def extraction(tmp: Path, ring_bytes: int) -> list[list[object]]:
    from flowscope.capture.ingest import meter_file
    from flowscope.services.packets import PacketService, pcapfile, tshark
    from flowscope.services.packets.filters import FlowKey, flow_filter
    from flowscope.services.packets.store import Location, files_for

    ring = tmp / "ring"
    ring.mkdir()
    t0 = time.perf_counter()
    shift = build_ring(ring, ring_bytes)
    built = time.perf_counter() - t0
    on_disk = sum(p.stat().st_size for p in ring.glob("*.pcap"))
    flows = [r for b in meter_file(str(fsharness.DEMO), workers=1, idle_timeout=3600, active_timeout=86400)
             for r in b if r["PROTOCOL"] == 6]
    row = max(flows, key=lambda r: r["PACKETS"])
    row = {**row, "FIRST_SEEN": row["FIRST_SEEN"] + shift, "LAST_SEEN": row["LAST_SEEN"] + shift}
    key = FlowKey.of(row)

    def ours() -> tuple[int, int, int]:
        files = files_for(Location("ring", str(ring), "bench"), [key])
        work = Path(tempfile.mkdtemp(dir=tmp))
        got = pcapfile.PcapInfo()
        for i, path in enumerate(files.paths):
            out = work / f"out{i}.pcap"
            PacketService._read_window(path, flow_filter(key), key.first, key.end, work / f"cut{i}.pcap", out,
                                       tshark.Deadline(600))
            if out.exists():
                part = pcapfile.info(out)
                got.packets, got.bytes = got.packets + part.packets, got.bytes + part.bytes
        shutil.rmtree(work)
        return got.packets, got.bytes, len(files.paths)

    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        packets, nbytes, n_read = ours()
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    naive = 0
    for path in sorted(ring.glob("*.pcap")):
        out = subprocess.run(["tshark", "-n", "-r", str(path), "-Y", flow_filter(key), "-T", "fields", "-e",
                              "frame.len"], capture_output=True, text=True, check=True).stdout
        naive += len(out.split())
    base = time.perf_counter() - t0
    assert (packets, nbytes) == (row["PACKETS"], row["TOTAL_BYTES"]) and naive == packets, (packets, naive)
    print(f"ring: {on_disk / 2**20:.0f} MiB in {len(list(ring.glob('*.pcap')))} files, written in {built:.1f} s; "
          f"flow: {packets} packets, {nbytes} bytes (equal to the flow's counters)")
    return [["one flow from the ring", f"tshark -Y over the whole ring: {base:.2f} s",
             f"{min(times):.2f} s ({n_read} file read)", f"{min(times) / base:.3f}x"]]


# --- capture overhead --------------------------------------------------------------------------
SENDER = """
import socket, sys, time
dst, seconds = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload, sent, end = b"x" * 64, 0, time.monotonic() + seconds
while time.monotonic() < end:
    for port in range(20000, 20064):
        s.sendto(payload, (dst, port))
    sent += 64
print(sent)
"""


def netns() -> tuple[str, str, str, str]:
    tag = f"{random.getrandbits(16):04x}"
    ns, host_if, sub = f"pk{tag}", f"pk{tag}h", random.randint(1, 254)
    me, peer = f"10.214.{sub}.1", f"10.214.{sub}.2"
    for argv in (["ip", "netns", "add", ns],
                 ["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns],
                 ["ip", "addr", "add", f"{me}/24", "dev", host_if], ["ip", "link", "set", host_if, "up"],
                 ["ip", "-n", ns, "addr", "add", f"{peer}/24", "dev", "eth0"],
                 ["ip", "-n", ns, "link", "set", "eth0", "up"]):
        subprocess.run(argv, check=True)
    return ns, host_if, me, peer


def metered_rate(tmp: Path, ns: str, iface: str, me: str, retain: bool, seconds: int) -> tuple[float, int, int]:
    data = tmp / ("with" if retain else "without")
    data.mkdir()
    args = ["--interface", iface] + (["--retain-packets", "1GiB"] if retain else [])
    server = fsharness.Server(data, args, {})

    def send(secs: float) -> int:
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", SENDER, me, str(secs)],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip())

    def counted() -> int:
        return server.health()["sources"][0]["packets"]

    def settled() -> int:  # the meter hands over a flow's segment after 3 s quiet: wait until all came
        time.sleep(6)
        last, deadline = counted(), time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(5)
            now = counted()
            if now == last:
                return now
            last = now
        return last

    try:
        deadline = time.monotonic() + 90
        while not counted() and time.monotonic() < deadline:  # meter (and dumpcap) running
            send(0.05)
            time.sleep(2)
        before = settled()
        sent = send(seconds)
        metered = settled() - before
        ring = (server.health().get("packets") or {}).get("retention") or [{}]
        return metered / seconds, sent, ring[0].get("bytes_on_disk", 0)
    finally:
        server.stop()


def overhead(tmp: Path, seconds: int) -> list[list[object]]:
    if os.geteuid() != 0:
        print("capture overhead: needs root (network namespace), skipped")
        return []
    ns, iface, me, _ = netns()
    try:
        base, sent0, _ = metered_rate(tmp, ns, iface, me, False, seconds)
        with_ring, sent1, kept = metered_rate(tmp, ns, iface, me, True, seconds)
    finally:
        subprocess.run(["ip", "link", "del", iface], check=False)
        subprocess.run(["ip", "netns", "del", ns], check=False)
    print(f"sender: {sent0 / seconds:,.0f} pkt/s without retention ({base * seconds / sent0:.0%} metered), "
          f"{sent1 / seconds:,.0f} pkt/s with ({with_ring * seconds / sent1:.0%} metered); ring kept {kept:,} bytes")
    return [["live metering with --retain-packets", f"without retention: {base:,.0f} pkt/s metered",
             f"{with_ring:,.0f} pkt/s metered", f"{with_ring / base:.2f}x"]]


def main() -> None:
    print(load())
    ring_bytes = env_int("BENCH_RING_MB", 1024) * 1024 * 1024
    tmp = Path(tempfile.mkdtemp(prefix="bench_packets_"))
    try:
        rows = extraction(tmp, ring_bytes) + overhead(tmp, env_int("BENCH_SEND_S", 5))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table("packets", ["benchmark", "baseline (same run)", "result", "ratio"], rows)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
