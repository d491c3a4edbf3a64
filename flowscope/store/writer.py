"""The one flow writer: finished flows of every source (capture files, interfaces, NetFlow/IPFIX/
sFlow exporters) go to ClickHouse every `batch_seconds` or `batch_rows`, enriched the same way
(countries, ASNs: `App.enrich_flows`) and with their per-minute volumes (PER_MINUTE).

Two input shapes: dict rows (flows metered from packets) and `FlowColumns` batches (the
collector: 100 k flows/s, stored with one Arrow insert, enriched per distinct address). A hook or
enricher registered with a column variant gets the batch itself; one without gets `rows()`.

A `kill -9` loses at most the batch not yet flushed. Hooks registered with `App.on_flows`
see each batch right after it is stored. `store_frame_counts` stores what the frame counter saw.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flowscope.store.columns import FlowColumns

log = logging.getLogger(__name__)


class FlowWriter:
    """Stores flows of every source: dict rows, and the collector's `FlowColumns` batches (the
    CollectorWriter, flowscope/collector/writer.py, batches what the collector decodes)."""

    def __init__(self, store, batch_rows: int = 50_000, batch_seconds: float = 1.0,
                 hooks: list[Callable[[list[dict]], None]] | None = None,
                 enrich: Callable[[list[dict]], None] | None = None,
                 column_hooks: dict[Callable, Callable[[FlowColumns], None]] | None = None,
                 enrich_columns: Callable[[FlowColumns], None] | None = None):
        self.store = store
        self.column_hooks = column_hooks if column_hooks is not None else {}  # hook -> its column variant
        self.enrich_columns = enrich_columns
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.hooks = hooks if hooks is not None else []
        self.enrich = enrich
        self._queue: queue.Queue[list[dict] | None] = queue.Queue(maxsize=1000)
        self._thread = threading.Thread(target=self._run, name="flow-writer", daemon=True)
        self.written = 0
        self.failed_batches = 0
        self.failed_rows = 0  # of column batches (the collector counts them as lost)
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> None:
        self._thread.start()

    def put(self, rows: list[dict[str, Any]] | FlowColumns) -> None:
        if rows:
            self._idle.clear()
            self._queue.put(rows)

    @property
    def idle(self) -> bool:
        """Nothing queued or being stored: every flow put so far is in the store."""
        return self._queue.empty() and self._idle.is_set()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is stored."""
        self._queue.put([])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.empty() and self._idle.wait(0.05):
                return True
        return False

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        pending: list[dict] = []
        last = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=self.batch_seconds)
            except queue.Empty:
                item = []
            if item is None:
                self._store(pending)
                return
            columns = isinstance(item, FlowColumns)
            if columns:
                self._store_columns(item)  # the collector's writer made the batch
            else:
                pending.extend(item)
            force = not columns and not item  # an empty list asks for a flush
            if pending and (force or len(pending) >= self.batch_rows or time.monotonic() - last >= self.batch_seconds):
                self._store(pending)
                pending = []
                last = time.monotonic()
            if not pending and self._queue.empty():
                self._idle.set()

    def _store(self, rows: list[dict]) -> None:
        if not rows:
            return
        fill_per_minute(rows)
        if self.enrich is not None:
            try:
                self.enrich(rows)
            except Exception:
                log.exception("flow enrichment failed; storing the batch as it is")
        try:
            self.store.insert_dicts("flows", rows)
            self.written += len(rows)
        except Exception:
            self.failed_batches += 1
            log.exception("could not store %d flows", len(rows))
            return
        self._run_hooks(rows)

    def _store_columns(self, batch: FlowColumns) -> None:
        from flowscope.collector.mapping import COLUMNS

        batch.cols["PER_MINUTE"] = batch.per_minute()
        if self.enrich_columns is not None:
            try:
                self.enrich_columns(batch)
            except Exception:
                log.exception("flow enrichment failed; storing the batch as it is")
        names = [c for c in (*COLUMNS, "SRC_COUNTRY_CODE", "DST_COUNTRY_CODE", "PER_MINUTE") if c in batch.cols]
        try:
            self.store.insert_columns("flows", names, [(batch.n, [batch.cols[c] for c in names])])
            self.written += batch.n
        except Exception:
            self.failed_batches += 1
            self.failed_rows += batch.n
            log.exception("could not store %d flows", batch.n)
            return
        self._run_hooks(batch)

    def _run_hooks(self, batch: list[dict] | FlowColumns) -> None:
        for hook in list(self.hooks):
            try:
                if isinstance(batch, FlowColumns):
                    columns = self.column_hooks.get(hook)
                    columns(batch) if columns is not None else hook(batch.rows())
                else:
                    hook(batch)
            except Exception:
                log.exception("flow hook %r failed", hook)


def _seconds(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    text = str(value).replace("T", " ").rstrip("Z")
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def spread(first: float, last: float, counters: tuple[int, int, int, int]) -> list[tuple[int, ...]]:
    """PER_MINUTE cells for a flow known only by its totals (exporter records, live segments):
    counters spread in proportion to the time spent in each minute, remainders to the last."""
    m0, m1 = int(first // 60), int(last // 60)
    if m1 <= m0 or last <= first:
        return [(m1 * 60, *counters)]
    span = last - first
    cells, given = [], [0, 0, 0, 0]
    for m in range(m0, m1 + 1):
        if m == m1:
            part = [c - g for c, g in zip(counters, given)]
        else:
            share = (min(last, (m + 1) * 60) - max(first, m * 60)) / span
            part = [int(c * share) for c in counters]
            given = [g + p for g, p in zip(given, part)]
        cells.append((m * 60, *part))
    return cells


def fill_per_minute(rows: list[dict]) -> None:
    """Give rows without PER_MINUTE (exporter flows, merged live segments) an even spread."""
    for r in rows:
        if r.get("PER_MINUTE"):
            continue
        try:
            r["PER_MINUTE"] = spread(_seconds(r["FIRST_SEEN"]), _seconds(r["LAST_SEEN"]),
                                     (int(r.get("SRC2DST_PACKETS") or 0), int(r.get("SRC2DST_BYTES") or 0),
                                      int(r.get("DST2SRC_PACKETS") or 0), int(r.get("DST2SRC_BYTES") or 0)))
        except (KeyError, TypeError, ValueError):
            r["PER_MINUTE"] = []  # the rollups then count the flow at LAST_SEEN


def store_frame_counts(store, counts, interface_id: int, source: str) -> None:
    """Store a capture's frame counts: per EtherType in `frame_counters`, and as the interface's
    per-minute volumes (ts_interface_1m), which for capture files count every frame, not flows."""
    from flowscope.capture.frames import ether_type_name

    if not counts.cells:
        return
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    rows, per_minute = [], {}
    for (minute, etype), (packets, nbytes) in counts.cells.items():
        rows.append([_minute_text(minute), interface_id, source, etype, ether_type_name(etype), packets, nbytes, now])
        cell = per_minute.setdefault(minute, [0, 0])
        cell[0] += packets
        cell[1] += nbytes
    store.insert("frame_counters", ["time", "INTERFACE_ID", "SOURCE", "ETHER_TYPE", "ETHER_TYPE_NAME",
                                    "packets", "bytes", "written"], rows)
    store.insert("ts_interface_1m", ["time", "INTERFACE_ID", "bytes", "packets", "flows", "drops", "written"],
                 [[_minute_text(m), interface_id, b, p, 0, 0, now] for m, (p, b) in sorted(per_minute.items())])


def _minute_text(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
