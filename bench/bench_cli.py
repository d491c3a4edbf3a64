"""CLI start to first packet read: `flowscope ingest` on a one-packet capture, whole process.

For a capture of one packet, reading it is nothing: the wall time of the whole command is the
time from start to the first packet read (plus storing one flow and exiting). Each case runs in a
fresh process, BENCH_CLI_ROUNDS times (5), best and median kept:

  python        `python -c pass` (interpreter start, the floor)
  nfstream      `NFStreamer(capture, n_meters=1)` iterated in a fresh interpreter (the baseline:
                importing nfstream and starting its meter is needed to read any packet)
  cli --help    `python -m flowscope --help` (the CLI's own imports)
  ingest        `python -m flowscope ingest --workers 1 capture` into a data dir made by a first,
                untimed run (the usual case: the store exists)

    .venv/bin/python bench/bench_cli.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CORPUS_PCAPS, ROOT, env_int, load, table, verdict  # noqa: E402


def one_packet_capture(tmp: Path) -> Path:
    src = CORPUS_PCAPS / "fuzz-2021-06-07-c6c72a0a56.pcap"
    if src.exists():
        return src
    import dpkt

    path = tmp / "one.pcap"
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f)
        ip = dpkt.ip.IP(src=b"\x0a\0\0\x01", dst=b"\x0a\0\0\x02", p=17,
                        data=dpkt.udp.UDP(sport=1000, dport=53, data=b"x"))
        w.writepkt(bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)), ts=1.0)
    return path


def main() -> None:
    rounds = env_int("BENCH_CLI_ROUNDS", 5)
    tmp = Path(tempfile.mkdtemp(prefix="flowscope-bench-cli-"))
    py = sys.executable
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    pcap = one_packet_capture(tmp)
    cases = {
        "python": [py, "-c", "pass"],
        "nfstream": [py, "-c", f"from nfstream import NFStreamer\nfor f in NFStreamer({str(pcap)!r}, n_meters=1): pass"],
        "cli --help": [py, "-m", "flowscope", "--help"],
        "ingest": None,
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    print(f"capture: {pcap.name} (1 packet); {load()}")
    try:
        subprocess.run([py, "-m", "flowscope", "ingest", "--data-dir", str(tmp / "d"), "--workers", "1", str(pcap)],
                       env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        for r in range(rounds):
            for name, argv in cases.items():
                if argv is None:
                    argv = [py, "-m", "flowscope", "ingest", "--data-dir", str(tmp / "d"), "--workers", "1",
                            str(pcap)]
                t = time.perf_counter()
                subprocess.run(argv, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - t)
        base = statistics.median(times["nfstream"])
        rows = [[k, min(v), statistics.median(v), statistics.median(v) / base] for k, v in times.items()]
        table(f"start to first packet read (whole process, {rounds} rounds; ratio vs nfstream alone)",
              ["case", "best s", "median s", "ratio"], rows)
        ingest = statistics.median(times["ingest"])
        print(f"\nflowscope ingest, one packet: {ingest:.2f} s ({verdict(ingest, 0.3, higher_is_better=False)}); "
              f"{ingest / base:.2f}x nfstream alone")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
