"""Running sources: capture files and live interfaces, each metered on its own thread."""

from __future__ import annotations

import functools
import logging
import multiprocessing as mp
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from flowscope.capture.ingest import FileScan, IngestError, meter, meter_file
from flowscope.capture.live_frames import count_frames, open_counter_socket
from flowscope.store.writer import store_frame_counts

log = logging.getLogger(__name__)

LIVE_UPDATE_S = 3  # nfstream idle and active timeout on interfaces: the live table lags about this


@dataclass
class Source:
    id: int
    kind: str  # "pcap" | "interface"
    name: str
    state: str = "starting"  # starting, running, done, failed
    error: str | None = None
    packets: int = 0
    bytes: int = 0
    flows: int = 0
    #: capture drops: 0 for files (reading a file drops nothing); None for interfaces, where
    #: nfstream does not report them
    drops: int | None = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    #: packets and bytes are every frame's (files: counted before metering), not only the flows'
    frames_counted: bool = False
    note: str | None = None
    #: packets and bytes of the flows metered (what `ingest` and nDPI's reader report)
    flow_packets: int = 0
    flow_bytes: int = 0

    def count(self, rows: list[dict]) -> None:
        self.flows += len(rows)
        packets, nbytes = sum(r["PACKETS"] for r in rows), sum(r["TOTAL_BYTES"] for r in rows)
        self.flow_packets += packets
        self.flow_bytes += nbytes
        if not self.frames_counted:
            self.packets += packets
            self.bytes += nbytes

    def counted_frames(self, packets: int, nbytes: int) -> None:
        self.packets, self.bytes, self.frames_counted = packets, nbytes, True

    def info(self) -> dict[str, Any]:
        return asdict(self)


class Sources:
    def __init__(self, app):
        self.app = app
        self.items: list[Source] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def add(self, kind: str, name: str) -> Source:
        src = Source(id=len(self.items) + 1, kind=kind, name=name)
        self.items.append(src)
        return src

    def start_pcap(self, path: str, *, workers: int | None = None, idle_timeout: int | None = None,
                   active_timeout: int | None = None) -> Source:
        """Meter a capture file; the meter settings default to the configuration's."""
        src = self.add("pcap", os.path.abspath(path))
        cfg = self.app.config
        meter_args = dict(workers=workers or os.cpu_count() or 1,
                          idle_timeout=idle_timeout or cfg.file_idle_timeout,
                          active_timeout=active_timeout or cfg.file_active_timeout)
        self._spawn(functools.partial(self._run_pcap, **meter_args), src)
        return src

    def start_interface(self, iface: str) -> Source:
        src = self.add("interface", iface)
        src.drops = None
        self._spawn(self._run_interface, src)
        self._spawn(self._sweep_interface, src)
        self._spawn(self._count_interface_frames, src)
        return src

    def _spawn(self, fn: Callable[[Source], None], src: Source) -> None:
        t = threading.Thread(target=fn, args=(src,), name=f"source-{src.id}", daemon=True)
        self._threads.append(t)
        t.start()

    def _notify(self, src: Source) -> None:
        for cb in list(self.app.source_hooks):
            try:
                cb(src.info())
            except Exception:
                log.exception("source hook failed")

    def _run_pcap(self, src: Source, **meter_args) -> None:
        src.state = "running"
        self._notify(src)
        def counted(counts) -> None:
            src.counted_frames(counts.packets, counts.bytes)
            store_frame_counts(self.app.store, counts, src.id, src.name)

        scan = FileScan(on_counts=counted)
        try:
            for rows in meter_file(src.name, interface_id=src.id, scan=scan, **meter_args):
                src.count(rows)
                self.app.live.add_finished(rows)
                self.app.writer.put(rows)
            if scan.note:
                src.note = scan.note
                log.warning("%s", scan.note)
            src.state = "done"
        except IngestError as exc:
            src.state, src.error = "failed", str(exc)
            log.error("capture file failed: %s", exc)
        except Exception as exc:  # keep serving whatever happens to one source
            src.state, src.error = "failed", f"{src.name}: {exc}"
            log.exception("capture file failed")
        src.finished_at = time.time()

    def _run_interface(self, src: Source) -> None:
        src.state = "running"
        self._notify(src)
        try:
            # nfstream hands over a segment after LIVE_UPDATE_S of activity or of silence; the live
            # table merges them, and the sweeper stores a flow once it has been quiet for idle_timeout.
            for rows in meter(src.name, idle_timeout=LIVE_UPDATE_S, active_timeout=LIVE_UPDATE_S,
                              interface_id=src.id, source_type="interface", batch_rows=1):
                if self._stop.is_set():
                    break
                src.count(rows)
                for row in rows:
                    self.app.live.merge_segment(row)
            src.state = "done"
        except Exception as exc:
            src.state, src.error = "failed", f"{src.name}: {exc}"
            log.error("interface capture failed: %s", exc)
        src.finished_at = time.time()

    def _count_interface_frames(self, src: Source) -> None:
        """Every frame of the interface (ARP, STP, ... too) for its totals and frame_counters."""
        try:
            sock = open_counter_socket(src.name)
        except OSError as exc:
            log.warning("%s: frames not counted (%s); interface totals are the flows' only", src.name, exc)
            return
        src.counted_frames(0, 0)

        def flush(counts) -> None:
            src.packets += counts.packets
            src.bytes += counts.bytes
            try:
                store_frame_counts(self.app.store, counts, src.id, src.name)
            except Exception:
                log.exception("could not store frame counts of %s", src.name)

        count_frames(sock, self._stop, flush, LIVE_UPDATE_S)

    def _sweep_interface(self, src: Source) -> None:
        """Store flows that went quiet or outlived the active timeout."""
        cfg = self.app.config
        while not self._stop.wait(LIVE_UPDATE_S):
            done = self.app.live.sweep(time.time() - cfg.idle_timeout - LIVE_UPDATE_S, cfg.active_timeout)
            if done:
                self.app.writer.put([f.as_row() for f in done])
            if src.state in ("done", "failed"):
                return

    def stop(self) -> None:
        """Stop metering: nfstream's meter processes (children of this process) are ended too,
        since a meter waiting for packets on a quiet interface would otherwise outlive us."""
        self._stop.set()
        children = mp.active_children()
        for child in children:
            child.terminate()
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
