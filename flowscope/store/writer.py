"""Batch writer: finished flows go to ClickHouse every `batch_seconds` or `batch_rows`.

A `kill -9` loses at most the batch not yet flushed. Hooks registered with `App.on_flows`
see each batch right after it is stored.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable

log = logging.getLogger(__name__)


class FlowWriter:
    """Stores flows metered from packets (capture files, interfaces); the collector has its own
    CollectorWriter (flowscope/collector/writer.py)."""

    def __init__(self, store, batch_rows: int = 50_000, batch_seconds: float = 1.0,
                 hooks: list[Callable[[list[dict]], None]] | None = None,
                 enrich: Callable[[list[dict]], None] | None = None):
        self.store = store
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.hooks = hooks if hooks is not None else []
        self.enrich = enrich
        self._queue: queue.Queue[list[dict] | None] = queue.Queue(maxsize=1000)
        self._thread = threading.Thread(target=self._run, name="flow-writer", daemon=True)
        self.written = 0
        self.failed_batches = 0
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> None:
        self._thread.start()

    def put(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._idle.clear()
            self._queue.put(rows)

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
            pending.extend(item)
            force = not item  # an empty list asks for a flush
            if pending and (force or len(pending) >= self.batch_rows or time.monotonic() - last >= self.batch_seconds):
                self._store(pending)
                pending = []
                last = time.monotonic()
            if not pending and self._queue.empty():
                self._idle.set()

    def _store(self, rows: list[dict]) -> None:
        if not rows:
            return
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
        for hook in list(self.hooks):
            try:
                hook(rows)
            except Exception:
                log.exception("flow hook %r failed", hook)
