"""CLI start to first packet read: `flowscope ingest` on a one-packet capture.

Two figures per case, each run in a fresh process, BENCH_CLI_ROUNDS times (7), interleaved; medians:

- first packet: from starting the process to the meter opening the capture, which it reads at
  once. Seen from outside with inotify: the last IN_OPEN of the capture (a private copy in a temp
  dir; the CLI opens it before that to check it and count its frames);
- whole: the process's wall time (for one packet: start, storing one flow, rolling it up, exit).

Cases:

  python          `python -c pass` (interpreter start, the floor)
  nfstream        `NFStreamer(capture, n_meters=1)` iterated in a fresh interpreter (the baseline:
                  importing nfstream and starting its meter is needed to read any packet)
  cli --help      `python -m flowscope --help` (the CLI's own imports)
  ingest          `python -m flowscope ingest --workers 1 capture` into a data dir made by a first,
                  untimed run (the usual case: the store exists)
  ingest script   the same through a copy of the `flowscope` console script (its workers' fork
                  server imports the script once)
  ingest new dir  the same into a new data dir (the schema is applied)

    .venv/bin/python bench/bench_cli.py
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import threading
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CORPUS_PCAPS, ROOT, env_int, load, table, verdict  # noqa: E402

CONSOLE_SCRIPT = "import sys\nfrom flowscope.cli import main\nif __name__ == '__main__':\n    sys.exit(main())\n"


def one_packet_capture(tmp: Path) -> Path:
    src = CORPUS_PCAPS / "NTPv4.pcap"
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


class OpenWatch:
    """Times at which a file is opened (inotify IN_OPEN), read on a thread."""

    IN_OPEN = 0x20

    def __init__(self, path: Path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init()
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, str(path).encode(), self.IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), "inotify")
        self.opens: list[float] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            data = os.read(self.fd, 4096)
            now = time.perf_counter()
            off = 0
            while off + 16 <= len(data):
                _wd, mask, _cookie, length = struct.unpack_from("iIII", data, off)
                if mask & self.IN_OPEN:
                    self.opens.append(now)
                off += 16 + length

    def last_open_since(self, t0: float) -> float:
        time.sleep(0.05)  # the reader thread has seen every event of the ended process
        return max((t for t in self.opens if t >= t0), default=float("nan")) - t0


def main() -> None:
    rounds = env_int("BENCH_CLI_ROUNDS", 7)
    tmp = Path(tempfile.mkdtemp(prefix="flowscope-bench-cli-"))
    py = sys.executable
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    pcap = tmp / "capture.pcap"  # a private copy: nobody else opens it
    shutil.copyfile(one_packet_capture(tmp), pcap)
    watch = OpenWatch(pcap)
    script = tmp / "flowscope"
    script.write_text(CONSOLE_SCRIPT)
    ingest = ["ingest", "--data-dir", str(tmp / "d"), "--workers", "1", str(pcap)]
    cases = {
        "python": [py, "-c", "pass"],
        "nfstream": [py, "-c", f"from nfstream import NFStreamer\nfor f in NFStreamer({str(pcap)!r}, n_meters=1): pass"],
        "cli --help": [py, "-m", "flowscope", "--help"],
        "ingest": [py, "-m", "flowscope", *ingest],
        "ingest script": [py, str(script), *ingest],
        "ingest new dir": None,
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    first: dict[str, list[float]] = {k: [] for k in cases}
    print(f"capture: {pcap.name} (1 packet); {load()}")
    try:
        subprocess.run([py, "-m", "flowscope", *ingest], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        for r in range(rounds):
            for name, argv in cases.items():
                if argv is None:
                    argv = [py, "-m", "flowscope", "ingest", "--data-dir", str(tmp / f"new{r}"), "--workers", "1",
                            str(pcap)]
                t = time.perf_counter()
                subprocess.run(argv, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - t)
                first[name].append(watch.last_open_since(t))
        med = {k: statistics.median(v) for k, v in times.items()}
        med_first = {k: statistics.median(v) for k, v in first.items()}
        rows = [[k, med_first[k], med_first[k] / med_first["nfstream"], med[k], med[k] / med["nfstream"]]
                for k in cases]
        table(f"start to first packet read and whole process (median of {rounds}; ratio vs nfstream alone)",
              ["case", "first packet s", "ratio", "whole s", "ratio"], rows)
        f_s, w_s = med_first["ingest"], med["ingest"]
        print(f"\nflowscope ingest, start to first packet read: {f_s:.2f} s "
              f"({verdict(f_s, 0.3, higher_is_better=False)}), {f_s / med_first['nfstream']:.2f}x nfstream alone; "
              f"whole process {w_s:.2f} s, {w_s / med['nfstream']:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
