"""Packet retention on live interfaces: a ring of capture files written by Wireshark's dumpcap.

dumpcap (`-b filesize:… -b files:… -b duration:…`) switches files and drops the oldest itself, so
the ring never holds more than `files × filesize` bytes nor, when an age is set, data older than
`files × duration` seconds. Files left by an earlier run are not part of dumpcap's ring: they are
kept as history and removed oldest first as soon as the total would pass the size limit.
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024 * 1024  # smaller files: a flow's packets are found by reading fewer bytes
MIN_FILES, MAX_FILES = 8, 256
MAX_PACKET_BYTES = 65_600  # a loopback or GRO frame plus its record header: what a file may overshoot by
DEFAULT_SIZE = 1024 ** 3  # when only an age is given
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
               b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}


@dataclass(frozen=True)
class RingPlan:
    limit_bytes: int
    limit_age_s: int | None
    files: int
    filesize_kb: int  # dumpcap's kB are 1000 bytes
    duration_s: int | None

    @classmethod
    def for_limits(cls, limit_bytes: int | None, age_s: int | None) -> "RingPlan":
        limit = limit_bytes or DEFAULT_SIZE
        files = min(MAX_FILES, max(MIN_FILES, math.ceil(limit / MAX_FILE_BYTES)))
        per_file = limit // files
        # dumpcap switches after the packet that crosses the size, so leave room for one more packet
        filesize = per_file - min(per_file // 4, MAX_PACKET_BYTES) - 24
        if filesize < 1000:
            raise ValueError(f"packet retention of {limit} bytes is too small: give at least 100kB")
        duration = max(1, age_s // files) if age_s else None
        return cls(limit, age_s, files, filesize // 1000, duration)


@dataclass(frozen=True)
class RingFile:
    path: Path
    first_ts: float | None  # time of its first packet; None while empty
    end_ts: float  # its last write: no packet in it is later
    size: int


def first_packet_time(path: Path) -> float | None:
    """Time of the first packet of a libpcap file, from its first record header."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
    except OSError:
        return None
    kind = _PCAP_MAGIC.get(head[:4])
    if kind is None or len(head) < 32:
        return None
    sec, frac = struct.unpack(kind[0] + "II", head[24:32])
    return sec + frac * kind[1]


def _ring_order(path: Path) -> tuple[str, int]:
    """dumpcap names files RUN_NNNNN_TIME.pcap: by run, then by file number (which may pass 99999)."""
    run, _, rest = path.stem.partition("_")
    num = rest.partition("_")[0]
    return run, int(num) if num.isdigit() else 0


def safe_name(text: str) -> str:
    return _SAFE.sub("_", text) or "_"


class Ring:
    """dumpcap writing one interface's ring under `directory`; `files()` lists what is kept."""

    def __init__(self, interface: str, directory: Path, plan: RingPlan):
        self.interface = interface
        self.directory = directory
        self.plan = plan
        self.prefix = time.strftime("%Y%m%d%H%M%S", time.gmtime())  # this run's files
        self.proc: subprocess.Popen | None = None
        self.error: str | None = None
        self.started_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def argv(self) -> list[str]:
        argv = ["dumpcap", "-q", "-P", "-i", self.interface, "-w", str(self.directory / f"{self.prefix}.pcap"),
                "-b", f"filesize:{self.plan.filesize_kb}", "-b", f"files:{self.plan.files}"]
        if self.plan.duration_s:
            argv += ["-b", f"duration:{self.plan.duration_s}"]
        return argv

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log_path = self.directory / "dumpcap.log"
        with open(log_path, "ab") as errlog:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=errlog)
        self.started_at = time.time()
        self._thread = threading.Thread(target=self._watch, name=f"ring-{self.interface}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(2):
            if self.proc and self.proc.poll() is not None and self.error is None:
                tail = (self.directory / "dumpcap.log").read_text(errors="replace").strip().splitlines()[-3:]
                self.error = f"dumpcap exited ({self.proc.returncode}): {' '.join(tail)}"
                log.error("packet retention on %s stopped: %s", self.interface, self.error)
            try:
                self.enforce()
            except OSError:
                log.exception("ring clean-up failed")

    def enforce(self) -> None:
        """Remove files of earlier runs, oldest first, while the total passes the size limit or
        they are older than the age limit (this run's files are dumpcap's to drop)."""
        files = self.files(include_old=True)
        total = sum(f.size for f in files)
        now = time.time()
        for f in files:
            if f.path.name.startswith(self.prefix):
                break
            too_old = self.plan.limit_age_s is not None and f.end_ts < now - self.plan.limit_age_s
            if total <= self.plan.limit_bytes and not too_old:
                continue
            f.path.unlink(missing_ok=True)
            total -= f.size

    def files(self, include_old: bool = False) -> list[RingFile]:
        """Kept files, oldest first; without include_old, files past the age limit are left out."""
        out = list_ring_files(self.directory)
        if not include_old and self.plan.limit_age_s is not None:
            cutoff = time.time() - self.plan.limit_age_s
            out = [f for f in out if f.end_ts >= cutoff]
        return out

    def info(self) -> dict:
        files = self.files()
        firsts = [f.first_ts for f in files if f.first_ts]
        running = self.proc is not None and self.proc.poll() is None
        return {"interface": self.interface, "directory": str(self.directory),
                "state": "running" if running else ("failed" if self.error else "stopped"),
                "error": self.error, "limit_bytes": self.plan.limit_bytes, "limit_age_s": self.plan.limit_age_s,
                "ring_files": self.plan.files, "file_bytes": self.plan.filesize_kb * 1000,
                "files": len(files), "bytes_on_disk": sum(f.size for f in files),
                "oldest": min(firsts) if firsts else None, "newest": max(f.end_ts for f in files) if files else None}

    def stop(self) -> None:
        self._stop.set()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # dumpcap closes the current file cleanly
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def list_ring_files(directory: Path) -> list[RingFile]:
    """The ring's files, oldest first, with the time span of their packets."""
    paths = sorted(directory.glob("*.pcap"), key=_ring_order)
    out = []
    for path in paths:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue  # dropped by dumpcap meanwhile
        out.append(RingFile(path, first_packet_time(path), st.st_mtime, st.st_size))
    return out


def ring_directory(data_dir: str, interface: str) -> Path:
    return Path(data_dir) / "packets" / "ring" / safe_name(interface)


def dumpcap_available() -> bool:
    return any(os.access(os.path.join(d, "dumpcap"), os.X_OK) for d in os.environ.get("PATH", "").split(":"))
