"""Wireshark's command-line tools (editcap, tshark, mergecap), run with argv lists and a deadline.

Display filters given to tshark are built by `filters` from validated values only."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

SUMMARY_FIELDS = ("frame.number", "frame.time_epoch", "_ws.col.Source", "_ws.col.Destination", "_ws.col.Protocol",
                  "frame.len", "_ws.col.Info", "tcp.srcport", "tcp.dstport", "tcp.flags.str", "tcp.len",
                  "udp.srcport", "udp.dstport", "udp.length")
_ENV = {**os.environ, "LC_ALL": "C.UTF-8"}


class ExtractionTimeout(Exception):
    """The extraction's time budget ran out."""


class PacketToolError(Exception):
    """A Wireshark tool failed; the message is short, details go to the log."""


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise ExtractionTimeout()
        return left


def run(argv: list[str], deadline: Deadline) -> str:
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=_ENV,
                             timeout=deadline.remaining(), errors="replace")
    except subprocess.TimeoutExpired:
        raise ExtractionTimeout() from None
    if res.returncode != 0:
        err = " ".join(line for line in res.stderr.splitlines() if "Running as user" not in line)
        log.warning("%s failed (%s): %s", argv[0], res.returncode, err[-2000:])
        raise PacketToolError(f"{argv[0]} could not read the packets ({err[:200] or res.returncode})")
    return res.stdout


def iso_ns(ts: float) -> str:
    dt = datetime.fromtimestamp(int(ts), tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{round((ts - int(ts)) * 1e9):09d}Z"


def cut_time(src: Path, begin: float, end: float, dst: Path, deadline: Deadline) -> None:
    """Packets with begin <= time < end (editcap reads without dissecting: fast)."""
    run(["editcap", "-F", "pcap", "-A", iso_ns(begin), "-B", iso_ns(end), str(src), str(dst)], deadline)


def filter_to(src: Path, display_filter: str, dst: Path, deadline: Deadline) -> None:
    run(["tshark", "-n", "-r", str(src), "-Y", display_filter, "-F", "pcap", "-w", str(dst)], deadline)


def concat(srcs: list[Path], dst: Path, deadline: Deadline) -> None:
    run(["mergecap", "-a", "-F", "pcap", "-w", str(dst), *map(str, srcs)], deadline)


def summary(pcap: Path, first: int, last: int, deadline: Deadline) -> list[list[str]]:
    """One row of SUMMARY_FIELDS per packet numbered first..last (1-based), dissected in context."""
    argv = ["tshark", "-n", "-r", str(pcap), "-c", str(last), "-Y", f"frame.number >= {int(first)}",
            "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    for f in SUMMARY_FIELDS:
        argv += ["-e", f]
    return [line.split("\t") for line in run(argv, deadline).splitlines() if line]


def layers(pcap: Path, frames: list[int], deadline: Deadline) -> list[dict]:
    """tshark's JSON layers of the chosen packets."""
    wanted = ",".join(str(int(n)) for n in frames)
    out = run(["tshark", "-n", "-r", str(pcap), "-c", str(max(frames)), "-Y", f"frame.number in {{{wanted}}}",
               "-T", "json", "--no-duplicate-keys"], deadline)
    return [p["_source"]["layers"] for p in json.loads(out or "[]")]
