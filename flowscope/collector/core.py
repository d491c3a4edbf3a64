"""The collector's engine: datagram in, flows rows (and sFlow interface counters) out.

`Collector.handle` decodes one datagram synchronously and never raises. `Collector.submit`
queues a datagram for the decoding thread (bounded: overflow is counted, never blocks),
which hands batches to a sink.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable

from flowscope.collector import netflow_v5, netflow_v9_ipfix, sflow
from flowscope.collector.columnar import Pending
from flowscope.collector.exporters import Exporter, ExporterRegistry
from flowscope.collector.netflow_v5 import DecodeError

log = logging.getLogger(__name__)

#: (flows rows, interface counters, flows columns of whole data sets: columnar.Block)
Sink = Callable[[list[tuple], list[dict[str, Any]], list[Any]], None]


def source_type_of(data: bytes) -> str | None:
    if len(data) < 4:
        return None
    v = (data[0] << 8) | data[1]
    if v == 5:
        return "netflow5"
    if v == 9:
        return "netflow9"
    if v == 10:
        return "ipfix"
    if v == 0 and data[2] == 0 and data[3] == 5:
        return "sflow"
    return None


def normalize_address(host: str) -> str:
    if host.startswith("::ffff:") and "." in host:
        return host[7:]
    return host.split("%", 1)[0]


class Collector:
    def __init__(self, sink: Sink | None = None, *, queue_max: int = 50000, batch_rows: int = 5000,
                 batch_seconds: float = 1.0):
        self.registry = ExporterRegistry()
        self.sink = sink
        self.queue_max = queue_max
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.datagrams = 0
        self.unknown_datagrams = 0
        self.undecodable = 0
        self.rows_out = 0
        self.queue_dropped = 0
        self.errors = 0
        self._queue: deque = deque()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._drain = threading.Event()  # asked to hand on what it holds as soon as the queue is empty
        #: how long decoded rows may wait to be handed on in a bigger batch
        self.hold_seconds = min(batch_seconds, 0.2)
        self._busy = False

    # --- synchronous decoding ----------------------------------------------------------------
    def handle(self, data: bytes, addr: tuple, listener_id: int = 100, now: float | None = None,
               pending: Pending | None = None) -> tuple[list[tuple], list[dict[str, Any]]]:
        """Decode one datagram: (flows rows, interface counters). Never raises. With `pending`, the
        data sets of fixed-length templates go there (to become columns) instead of into the rows."""
        now = time.time() if now is None else now
        before = pending.rows if pending is not None else 0
        self.datagrams += 1
        host = normalize_address(str(addr[0]))
        port = int(addr[1]) if len(addr) > 1 else 0
        kind = source_type_of(data)
        if kind is None:
            self.unknown_datagrams += 1
            return [], []
        ex: Exporter | None = None
        try:
            if kind == "sflow":
                holder: list[Exporter] = []

                def get(agent: str) -> Exporter:
                    e = self.registry.get(agent, "sflow", listener_id, now)
                    holder.append(e)
                    return e

                try:
                    rows, counters = sflow.decode(data, host, get, port, listener_id, now)
                finally:
                    ex = holder[0] if holder else self.registry.get(host, "sflow", listener_id, now)
                    self._touch(ex, data, now)
            else:
                ex = self.registry.get(host, kind, listener_id, now)
                self._touch(ex, data, now)
                counters = []
                if kind == "netflow5":
                    rows = netflow_v5.decode(data, ex, port, listener_id)
                else:
                    rows = netflow_v9_ipfix.decode(data, ex, port, listener_id, now, pending)
        except DecodeError as exc:
            self.undecodable += 1
            if ex is not None:
                ex.undecodable += 1
            log.debug("undecodable datagram from %s: %s", host, exc)
            return [], []
        except Exception:  # a decoder bug must never take the collector down
            self.undecodable += 1
            self.errors += 1
            if ex is not None:
                ex.undecodable += 1
            log.debug("decoder error on datagram from %s", host, exc_info=True)
            return [], []
        self.rows_out += len(rows) + (pending.rows - before if pending is not None else 0)
        return rows, counters

    @staticmethod
    def _touch(ex: Exporter, data: bytes, now: float) -> None:
        ex.datagrams += 1
        ex.bytes_received += len(data)
        ex.last_seen = now

    # --- threaded pipeline -------------------------------------------------------------------
    def submit(self, data: bytes, addr: tuple, listener_id: int) -> None:
        """Queue a datagram for the decoding thread (called from the event loop)."""
        if len(self._queue) >= self.queue_max:
            self.queue_dropped += 1
            return
        self._queue.append((data, addr, listener_id, time.time()))

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="flow-collector", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def idle(self) -> bool:
        return not self._queue and not self._busy

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued datagram is decoded and handed to the sink."""
        deadline = time.monotonic() + timeout
        self._drain.set()
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        rows: list[tuple] = []
        counters: list[dict[str, Any]] = []
        pending = Pending()  # data sets that become columns when handed on: many at once is cheap
        last = time.monotonic()
        q = self._queue
        while True:
            if q:
                self._busy = True
                for _ in range(min(len(q), 2000)):
                    data, addr, lid, t = q.popleft()
                    r, c = self.handle(data, addr, lid, t, pending)
                    if r:
                        rows.extend(r)
                    if c:
                        counters.extend(c)
            mono = time.monotonic()
            held = rows or counters or pending.rows
            stopping = self._stop.is_set() and not q
            if held and (len(rows) + pending.rows >= self.batch_rows or mono - last >= self.hold_seconds
                         or stopping or (not q and self._drain.is_set())):
                self._flush(rows, counters, pending)
                rows, counters = [], []
                last = mono
                held = False
            if stopping:
                self._busy = False
                return
            if not q:
                if not held:
                    self._drain.clear()
                self._busy = bool(held)
                self._stop.wait(0.005)

    def _flush(self, rows: list[tuple], counters: list[dict[str, Any]], pending: Pending) -> None:
        if self.sink is None or not (rows or counters or pending.rows):
            pending.blocks()
            return
        try:
            self.sink(rows, counters, pending.blocks())
        except Exception:
            log.exception("collector sink failed on %d rows", len(rows))
