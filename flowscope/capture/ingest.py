"""Offline import of capture files, split across worker processes.

Each worker meters the packets whose symmetric address hash falls in its share (a BPF filter,
see `split_filter`), so every flow stays whole inside one worker. Workers send flow rows back
in batches; the parent stores them, so only one process ever writes to the database.

Every frame is also counted by minute and EtherType (`frames.scan`), since nfstream skips non-IP
frames. Captures of other link types are first rewritten as Ethernet (BPF cannot split them and
nfstream misreads some); a link type neither can handle is metered by one worker, with a note.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from flowscope.capture import frames
from flowscope.capture.nfstream_source import split_filter

BATCH = 2000  # rows a worker sends at a time
INSERT_ROWS = 50_000  # rows stored at a time at most (measured: 2k-row inserts reach 18k rows/s, 50k 68k)
INSERT_ROWS_IDLE = 10_000  # rows stored at once when the store is idle (so storing overlaps metering)
_ctx = mp.get_context("forkserver")
# "__main__": the fork server imports the main script (e.g. the `flowscope` console script) once,
# instead of each worker importing it again before it meters
_ctx.set_forkserver_preload(["__main__", "flowscope.capture.ingest", "flowscope.capture.meter_preload"])


def start_meters() -> None:
    """Start the meters' fork server now (it imports nfstream), e.g. while the store opens."""
    from multiprocessing import forkserver

    forkserver.ensure_running()


class IngestError(Exception):
    """A capture could not be read; the message says which and why."""


@dataclass
class IngestSummary:
    files: int = 0
    flows: int = 0
    packets: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM; what was metered is stored
    #: every frame read (IP or not), as capinfos counts them
    frames: int = 0
    frame_bytes: int = 0

    def add(self, rows: list[dict]) -> None:
        self.flows += len(rows)
        for r in rows:
            self.packets += r["PACKETS"]
            self.bytes += r["TOTAL_BYTES"]

    def line(self) -> str:
        rate = self.packets / self.elapsed_s if self.elapsed_s else 0
        return (f"{self.files} file(s): {self.flows} flows, {self.packets} packets, {self.bytes} bytes "
                f"in {self.elapsed_s:.2f} s ({rate:,.0f} packets/s); {self.frames} frames, "
                f"{self.frame_bytes} bytes read")


def check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise IngestError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise IngestError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise IngestError(f"{path}: permission denied")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    known = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a"}
    if magic not in known:
        raise IngestError(f"{path}: not a pcap or pcapng capture (unknown magic {magic.hex() or 'empty file'})")


_metering = False
#: set (e.g. by a signal handler) to stop metering: workers are ended, what they sent is kept
STOP = threading.Event()


def _interrupt(signum, frame):
    if _metering:
        raise KeyboardInterrupt  # ends the meter loop; the worker reports nothing more
    os._exit(0)  # past metering (e.g. in exit finalizers): nothing left to save


def unpad(row: dict, pad: int) -> None:
    """Take `pad` bytes per packet back off a row metered from a rewritten capture."""
    s2d, d2s = pad * row["SRC2DST_PACKETS"], pad * row["DST2SRC_PACKETS"]
    row["SRC2DST_BYTES"] -= s2d
    row["DST2SRC_BYTES"] -= d2s
    row["TOTAL_BYTES"] -= s2d + d2s
    row["PER_MINUTE"] = [(t, sp, sb - pad * sp, dp, db - pad * dp) for t, sp, sb, dp, db in row["PER_MINUTE"]]


def _worker(source: str, bpf: str | None, idle: int, active: int, interface_id: int, source_type: str,
            batch_rows: int, pad: int, conn) -> None:
    global _metering
    # The parent stops workers with SIGTERM; Ctrl-C reaches every process of the group and would
    # only make each one print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    from flowscope.capture.nfstream_source import flow_extra, meter_flows
    from flowscope.flows.record import flow_row

    batch: list[dict] = []

    def on_flow(f) -> None:
        nonlocal batch
        row = flow_row(f, interface_id, source_type, flow_extra(f))
        if pad:
            unpad(row, pad)
        batch.append(row)
        if len(batch) >= batch_rows:
            conn.send(("rows", batch))
            batch = []

    _metering = True
    try:
        meter_flows(source, on_flow, bpf=bpf, idle_timeout=idle, active_timeout=active)
        conn.send(("rows", batch))
        conn.send(("done", None))
    except (KeyboardInterrupt, BrokenPipeError):
        pass  # stopped, or the parent is gone: nobody to tell
    except Exception as exc:  # report, never hang the parent
        try:
            conn.send(("rows", batch))
            conn.send(("error", str(exc) or type(exc).__name__))
        except OSError:
            pass
    finally:
        _metering = False
        conn.close()


def meter(source: str, *, workers: int = 1, idle_timeout: int, active_timeout: int, interface_id: int = 0,
          source_type: str = "pcap", batch_rows: int = BATCH, pad: int = 0,
          on_started: Callable[[], None] | None = None) -> Iterable[list[dict]]:
    """Yield batches of flow rows metered from a capture file or an interface; `on_started()` is
    called once the workers are started.

    The meters run in processes started by a fork server: forking this process itself is unsafe
    once it has threads (the server, the embedded ClickHouse), as a lock held by another thread at
    fork time can deadlock the child."""
    workers = max(1, workers)
    pipes, procs = [], []
    for i in range(workers):
        parent, child = _ctx.Pipe(duplex=False)
        p = _ctx.Process(target=_worker, args=(source, split_filter(workers, i), idle_timeout, active_timeout,
                                               interface_id, source_type, batch_rows, pad, child), daemon=False)
        p.start()
        child.close()
        pipes.append(parent)
        procs.append(p)
    if on_started:
        on_started()
    errors = []
    try:
        open_pipes = list(pipes)
        while open_pipes and not STOP.is_set():
            for conn in mp.connection.wait(open_pipes, timeout=0.5):
                try:
                    kind, payload = conn.recv()
                except EOFError:
                    open_pipes.remove(conn)
                    continue
                if kind == "rows":
                    if payload:
                        yield payload
                elif kind == "error":
                    errors.append(payload)
                    open_pipes.remove(conn)
                else:
                    open_pipes.remove(conn)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()  # the worker ends its own nfstream meters first
                p.join(timeout=5)
            if p.is_alive():
                p.kill()
    if errors and not STOP.is_set():
        raise IngestError(f"{source}: {errors[0]}")


@dataclass
class FileScan:
    """What `meter_file` learnt about a file besides its flows; `on_counts(counts)` is called on the
    caller's thread once the frames are counted (before the rows, or among them)."""
    on_counts: Callable[[frames.FrameCounts], None] | None = None
    counts: frames.FrameCounts | None = None
    note: str | None = None  # e.g. "one worker: link type 127 cannot be split"


def meter_file(path: str, *, workers: int = 1, scan: FileScan | None = None, **kw) -> Iterable[list[dict]]:
    """`meter` for a capture file; raise IngestError on an unreadable capture. Frame counts (and a
    note when the file could not be split) land in `scan`: counted while the workers meter for a
    pcap of Ethernet frames (the common case), else before the first rows."""
    check_readable(path)
    scan = scan if scan is not None else FileScan()
    try:
        if frames.pcap_linktype(path) in frames.NATIVE:
            yield from _meter_while_counting(path, scan, workers=workers, **kw)
            return
        scan.counts = frames.scan(path)
    except (frames.CaptureFormatError, OSError) as exc:
        raise IngestError(f"{path}: {exc}") from None
    if scan.on_counts:
        scan.on_counts(scan.counts)
    kinds = scan.counts.linktypes
    if kinds and not kinds <= frames.NATIVE:
        if kinds <= frames.NATIVE | frames.CONVERTIBLE:
            fd, tmp = tempfile.mkstemp(prefix="flowscope-", suffix=".pcap")
            os.close(fd)
            try:
                frames.scan(path, rewrite_to=tmp)
                yield from meter(tmp, workers=workers, pad=frames.PADDING, **kw)
            except IngestError as exc:
                raise IngestError(str(exc).replace(tmp, path)) from None
            finally:
                os.unlink(tmp)
            return
        if workers > 1:
            workers = 1
            scan.note = (f"{path}: one worker for this file: link type {sorted(kinds - frames.NATIVE)} "
                         "cannot be split")
    yield from meter(path, workers=workers, **kw)


def _meter_while_counting(path: str, scan: FileScan, **kw) -> Iterable[list[dict]]:
    """Meter and count the frames at once: the count runs on a thread of this process while the
    workers meter in theirs. `scan.on_counts` is called on the caller's thread (between batches, or
    when metering ends), so it never races with what the caller does with the rows."""
    counted: list[frames.FrameCounts] = []
    failed: list[BaseException] = []

    def count() -> None:
        try:
            counted.append(frames.scan(path))
        except BaseException as exc:  # reported once metering ends
            failed.append(exc)

    def report() -> None:
        if counted and scan.counts is None:
            scan.counts = counted[0]
            if scan.on_counts:
                scan.on_counts(scan.counts)

    counter = threading.Thread(target=count, name="frame-count", daemon=True)
    counter.start()
    try:
        for rows in meter(path, **kw):
            report()
            yield rows
    finally:
        counter.join()
    if failed:
        if isinstance(failed[0], (frames.CaptureFormatError, OSError)):
            raise IngestError(f"{path}: {failed[0]}")
        raise failed[0]
    report()


class _Storer:
    """Stores batches of rows on a thread of its own, so the workers' pipes are read meanwhile
    (chDB lets go of the GIL while it inserts); one batch waits at most. An error is raised on the
    next `put` or at `close`."""

    def __init__(self, store, on_rows: Callable[[list[dict]], None] | None):
        self.store, self.on_rows = store, on_rows
        self.queue: queue.Queue[list[dict] | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.busy = False
        self.thread = threading.Thread(target=self._run, name="ingest-store", daemon=True)
        self.thread.start()

    def put(self, rows: list[dict]) -> None:
        self._raise()
        self.queue.put(rows)

    def idle(self) -> bool:
        return not self.busy and self.queue.empty()

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _run(self) -> None:
        while (rows := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain until closed; the caller hears of the error
            self.busy = True
            try:
                if self.store is not None:
                    self.store.insert_dicts("flows", rows)
                if self.on_rows:
                    self.on_rows(rows)
            except BaseException as exc:
                self.error = exc
            finally:
                self.busy = False


def ingest_files(store, paths: list[str], *, workers: int | None = None, idle_timeout: int = 3600,
                 active_timeout: int = 86400, interface_ids: dict[str, int] | None = None,
                 enrich: Callable[[list[dict]], None] | None = None,
                 on_rows: Callable[[list[dict]], None] | None = None,
                 progress: Callable[[str, IngestSummary], None] | None = None,
                 on_started: Callable[[], None] | None = None) -> IngestSummary:
    """Meter and store every file; files that fail are reported in `errors`, the rest go on.
    `enrich(rows)` may fill columns (countries, ASNs) before rows are stored, and `on_rows(rows)`
    sees them once stored (like `App.on_flows`); `on_started()` is called as each file's workers
    start (e.g. to open the store then: it is first used after that). Rows are stored on a thread, INSERT_ROWS at a time
    while it is busy (an insert costs about the same whatever its size, up to there), at least
    INSERT_ROWS_IDLE when it is idle. Each file's frame counts are stored too
    (`frame_counters`, and the interface's per-minute volumes)."""
    from flowscope.store.writer import store_frame_counts
    workers = workers or os.cpu_count() or 1
    summary = IngestSummary()
    start = time.monotonic()
    pending: list[dict] = []
    storer = _Storer(store, on_rows)

    def store_pending() -> None:
        nonlocal pending
        if pending:
            storer.put(pending)
            pending = []

    try:
        for path in paths:
            interface_id = (interface_ids or {}).get(path, 0)
            source = os.path.abspath(path)
            scan = FileScan(on_counts=None if store is None else
                            lambda counts: store_frame_counts(store, counts, interface_id, source))
            try:
                for rows in meter_file(path, workers=workers, idle_timeout=idle_timeout, active_timeout=active_timeout,
                                       interface_id=interface_id, scan=scan, on_started=on_started):
                    if enrich:
                        enrich(rows)
                    pending.extend(rows)
                    if len(pending) >= INSERT_ROWS or (len(pending) >= INSERT_ROWS_IDLE and storer.idle()):
                        store_pending()
                    summary.add(rows)
                    if progress:
                        progress(path, summary)
                summary.files += 1
            except IngestError as exc:
                summary.errors.append(str(exc))
            if STOP.is_set():
                summary.interrupted = True  # the workers were ended by meter(); keep what they sent
                break
            if scan.note:
                summary.notes.append(scan.note)
            if scan.counts is not None:
                summary.frames += scan.counts.packets
                summary.frame_bytes += scan.counts.bytes
    finally:
        store_pending()
        storer.close()
    summary.elapsed_s = time.monotonic() - start
    return summary
