"""Stores what the collector decodes: flows rows in batches (every `batch_seconds` or
`batch_rows`) from a thread of its own, sFlow interface counters, exporter snapshots."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from flowscope.collector.columnar import Block
from flowscope.collector.mapping import COLUMNS, live_row
from flowscope.services.snmp.rates import CounterSample, compute_rates
from flowscope.store.backend import ms_text
from flowscope.store.columns import FlowColumns

log = logging.getLogger(__name__)

COUNTER_COLUMNS = ("time", "agent", "if_index", "if_type", "if_speed", "if_direction", "if_status",
                   "in_octets", "in_ucast_pkts", "in_multicast_pkts", "in_broadcast_pkts", "in_discards",
                   "in_errors", "in_unknown_protos", "out_octets", "out_ucast_pkts", "out_multicast_pkts",
                   "out_broadcast_pkts", "out_discards", "out_errors")


#: collected flows of each batch shown in the live table (the newest)
LIVE_ROWS_PER_BATCH = 2000


def rows_block(rows: list[tuple]) -> Block:
    """Rows of the record path (build_row tuples, text timestamps) as a Block."""
    cols: list = []
    for name, values in zip(COLUMNS, zip(*rows)):
        if name in ("FIRST_SEEN", "LAST_SEEN"):
            cols.append(np.array(values, dtype="datetime64[ms]").astype(np.int64))
        elif all(isinstance(v, int) for v in values):
            cols.append(np.array(values, dtype=np.uint64))
        else:
            cols.append(np.array(values, dtype=object))
    return Block(len(rows), cols)


class CollectorWriter:
    """Stores what the collector decodes (flow rows as tuples, sFlow counters) from a thread of its
    own; flows metered from packets go through the app's FlowWriter (flowscope/store/writer.py)."""

    def __init__(self, store, batch_rows: int = 50_000, batch_seconds: float = 1.0,
                 hooks: list[Callable[[list[dict]], None]] | None = None, queue_max: int = 2000,
                 live=None, flow_writer=None):
        self.store = store
        self.flow_writer = flow_writer  # the app's FlowWriter: enriches, stores, runs the hooks
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.hooks = hooks if hooks is not None else []
        self.live = live  # the app's live table: collected flows show there as finished flows
        self._last_counters: dict[tuple[str, int], CounterSample] = {}
        #: INTERFACE_ID -> [flows, packets, bytes] stored, for get_interfaces
        self.per_interface: dict[int, list[int]] = {}
        self._q: queue.Queue = queue.Queue(maxsize=queue_max)
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.written = 0
        self.counters_written = 0
        self.failed_rows = 0
        self.dropped_rows = 0

    # called by the collector thread
    def put(self, rows: list[tuple], counters: list[dict[str, Any]], blocks: list[Block] = ()) -> None:
        """Queue what the collector decoded; waits up to 5 s for room, then drops it (counted)."""
        if not rows and not counters and not blocks:
            return
        self._idle.clear()
        try:
            self._q.put((rows, counters, list(blocks)), timeout=5)
        except queue.Full:
            self.dropped_rows += len(rows) + sum(b.n for b in blocks)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="collector-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(30)
            self._thread = None

    def flush(self, timeout: float = 30.0) -> bool:
        self._q.put(([], [], []))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._q.empty() and self._idle.wait(0.05):
                return True
        return False

    def _run(self) -> None:
        rows: list[tuple] = []
        counters: list[dict] = []
        blocks: list[Block] = []
        pending = 0  # flows rows in rows and blocks
        last = time.monotonic()
        while True:
            try:
                item = self._q.get(timeout=self.batch_seconds)
            except queue.Empty:
                item = ([], [], [])
            if item is None:
                self.write_rows(rows, blocks)
                self.write_counters(counters)
                return
            r, c, b = item
            rows.extend(r)
            counters.extend(c)
            blocks.extend(b)
            pending += len(r) + sum(x.n for x in b)
            force = not r and not c and not b
            if pending + len(counters) and (force or pending >= self.batch_rows
                                            or time.monotonic() - last >= self.batch_seconds):
                self.write_rows(rows, blocks)
                self.write_counters(counters)
                rows, counters, blocks, pending = [], [], [], 0
                last = time.monotonic()
            if not pending and not counters and self._q.empty():
                self._idle.set()

    def write_rows(self, rows: list[tuple], blocks: list[Block] = ()) -> None:
        if not rows and not blocks:
            return
        block = Block.concat([*blocks, *([rows_block(rows)] if rows else [])])
        batch = FlowColumns(block.n, dict(zip(COLUMNS, block.columns)))
        if self.live is not None:
            self._show_live(batch)
        if self.flow_writer is not None:
            self.flow_writer.put(batch)  # enriched, stored (one Arrow insert) and hooked there
            self.written += block.n
        else:
            try:
                self.store.insert_columns("flows", COLUMNS, [(block.n, block.columns)])
                self.written += block.n
            except Exception:
                self.failed_rows += block.n
                log.exception("could not store %d collected flows", block.n)
                return
            for hook in list(self.hooks):
                try:
                    hook(batch.rows())
                except Exception:
                    log.exception("flow hook %r failed", hook)
        self._tally(batch)

    def _show_live(self, batch: FlowColumns) -> None:
        """The newest LIVE_ROWS_PER_BATCH flows of the batch go to the live table as finished flows
        (at 100 k flows/s a table of every one would be replaced each few seconds anyway); every
        flow is in the store (get_historical_flow, query)."""
        k = min(batch.n, LIVE_ROWS_PER_BATCH)
        newest = FlowColumns(k, {name: c[-k:] if isinstance(c, np.ndarray) else c for name, c in batch.cols.items()
                                 if name != "PER_MINUTE"})
        try:
            self.live.add_finished([live_row(d) for d in newest.rows()])
        except Exception:
            log.exception("could not show collected flows in the live table")

    def _tally(self, batch: FlowColumns) -> None:
        """Flows, packets and bytes stored per interface (get_interfaces)."""
        ifaces = batch.full("INTERFACE_ID")
        packets, octets = batch.full("PACKETS"), batch.full("TOTAL_BYTES")
        for iface in np.unique(ifaces).tolist():
            mine = ifaces == iface
            tally = self.per_interface.setdefault(iface, [0, 0, 0])
            tally[0] += int(mine.sum())
            tally[1] += sum(packets[mine].tolist())  # python ints: no uint64 overflow
            tally[2] += sum(octets[mine].tolist())

    def write_counters(self, counters: list[dict[str, Any]]) -> None:
        if not counters:
            return
        data = [[ms_text(c["time_ms"]), c["agent"]] + [c[k] for k in COUNTER_COLUMNS[2:]] for c in counters]
        try:
            self.store.insert("sflow_counters", COUNTER_COLUMNS, data)
            self.counters_written += len(data)
        except Exception:
            log.exception("could not store %d sFlow interface counters", len(data))
        rates = self._interface_rates(counters)
        if rates:
            try:
                self.store.insert_dicts("snmp_interface_ts", rates)
            except Exception:
                log.exception("could not store %d sFlow interface rates", len(rates))

    def _interface_rates(self, counters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rates between successive counter samples of an interface, as SNMP polling stores them,
        so the SNMP timeseries and charts show sFlow agents' interfaces too."""
        out = []
        for c in sorted(counters, key=lambda c: c["time_ms"]):
            cur = CounterSample(time=c["time_ms"] / 1000, uptime_ticks=None, speed_bps=c["if_speed"], octet_bits=64,
                                in_octets=c["in_octets"], out_octets=c["out_octets"], in_errors=c["in_errors"],
                                out_errors=c["out_errors"], in_discards=c["in_discards"],
                                out_discards=c["out_discards"], in_pkts=c["in_ucast_pkts"],
                                out_pkts=c["out_ucast_pkts"])
            key = (c["agent"], c["if_index"])
            rates = compute_rates(self._last_counters.get(key), cur)
            self._last_counters[key] = cur
            if rates is None:
                continue
            status = c["if_status"]
            out.append({"time": ms_text(c["time_ms"]), "device": f"sflow:{c['agent']}", "host": c["agent"],
                        "if_index": c["if_index"], "if_name": str(c["if_index"]), "interval_s": rates.interval_s,
                        "speed_bps": c["if_speed"], "admin_status": "up" if status & 1 else "down",
                        "oper_status": "up" if status & 2 else "down", **rates.as_dict()})
        return out
