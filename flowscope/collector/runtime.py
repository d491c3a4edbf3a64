"""The running flow collector: listeners + decoding thread + store writer + exporter snapshots."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from flowscope.collector import mapping
from flowscope.collector.core import Collector
from flowscope.collector.listener import Listener
from flowscope.collector.writer import CollectorWriter, ms_text

log = logging.getLogger(__name__)

FIRST_INTERFACE_ID = 100
SNAPSHOT_EVERY_S = 60.0


def widen_app_names() -> None:
    """Teach the application-name resolver every protocol name the running nDPI knows."""
    try:
        from flowscope.flows.ndpi_catalog import catalog

        for p in catalog().protocols:
            mapping.NAME_TO_ID.setdefault(p.name.lower(), p.id)
    except Exception as exc:  # nfstream missing or an incompatible build: keep the built-in names
        log.debug("nDPI catalog unavailable for application names: %s", exc)


class FlowCollector:
    def __init__(self, store, urls: list[str], *, hooks: list[Callable] | None = None,
                 batch_rows: int = 50_000, batch_seconds: float = 1.0, first_interface_id: int = FIRST_INTERFACE_ID,
                 snmp: Any = None, live: Any = None, flow_writer: Any = None):
        self.store = store
        self.writer = CollectorWriter(store, batch_rows, batch_seconds, hooks, live=live, flow_writer=flow_writer)
        self.collector = Collector(self.writer.put, batch_rows=batch_rows, batch_seconds=batch_seconds)
        self.listeners = [Listener(u, first_interface_id + i, self.collector) for i, u in enumerate(urls)]
        self.snmp = snmp
        self._snap_task: asyncio.Task | None = None
        self.started = False

    @property
    def registry(self):
        return self.collector.registry

    async def start(self) -> None:
        widen_app_names()
        self.writer.start()
        self.collector.start()
        for lst in self.listeners:
            try:
                await lst.start()
            except OSError as exc:
                log.error("flow collector cannot listen on %s: %s", lst.url, exc)
        self.started = True
        self._snap_task = asyncio.get_running_loop().create_task(self._snapshots())

    async def stop(self) -> None:
        for lst in self.listeners:
            await lst.stop()
        if self._snap_task is not None:
            self._snap_task.cancel()
            self._snap_task = None
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self.collector.drain(10)
        self.collector.stop()
        self.writer.stop()
        self.save_exporters()
        self.started = False

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything received so far is decoded and stored (tests, benchmarks)."""
        ok = self.collector.drain(timeout)
        ok = self.writer.flush(timeout) and ok
        if self.writer.flow_writer is not None:
            ok = self.writer.flow_writer.flush(timeout) and ok
        return ok

    async def _snapshots(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_EVERY_S)
            try:
                await asyncio.to_thread(self.save_exporters)
            except Exception:
                log.exception("could not save exporter snapshots")

    def save_exporters(self) -> None:
        snaps = self.registry.snapshots()
        if not snaps:
            return
        now = ms_text(int(time.time() * 1000))
        cols = ("address", "type", "version", "interface_id", "first_seen", "last_seen", "datagrams", "records",
                "undecodable", "sequence_gaps", "lost", "templates", "dropped_sets", "health", "updated_at")
        rows = [[s["address"], s["type"], s["version"], s["interface_id"], ms_text(int(s["first_seen"] * 1000)),
                 ms_text(int(s["last_seen"] * 1000)), s["datagrams"], s["records"], s["undecodable"],
                 s["sequence_gaps"], s["lost"], s["templates"], s["dropped_sets"], s["health"], now] for s in snaps]
        self.store.insert("flow_exporters", cols, rows)

    # --- views for the MCP tools ----------------------------------------------------------------
    def interfaces(self) -> list[dict[str, Any]]:
        """The listeners as sources for get_interfaces: what each stored so far."""
        out = []
        for lst in self.listeners:
            flows, packets, octets = self.writer.per_interface.get(lst.interface_id, (0, 0, 0))
            out.append({"id": lst.interface_id, "kind": "collector", "name": lst.url,
                        "state": "running" if lst.transport is not None else "failed" if self.started else "stopped",
                        "packets": packets, "bytes": octets, "flows": flows, "drops": lst.kernel_drops(),
                        "error": None})
        return out

    def status(self) -> dict[str, Any]:
        c = self.collector
        return {
            "listeners": [{"url": lst.url, "interface_id": lst.interface_id, "bound": list(lst.bound or ()),
                           "datagrams": lst.received, "rcvbuf": lst.rcvbuf(), "socket_drops": lst.kernel_drops()}
                          for lst in self.listeners],
            # datagrams the kernel dropped (receive buffer full) before the collector could read them
            "socket_drops": sum(lst.kernel_drops() or 0 for lst in self.listeners),
            "datagrams": c.datagrams, "unknown_datagrams": c.unknown_datagrams, "undecodable": c.undecodable,
            "rows_decoded": c.rows_out, "queue_dropped": c.queue_dropped, "rows_stored": self.writer.written,
            "rows_failed": self.writer.failed_rows + getattr(self.writer.flow_writer, "failed_rows", 0),
            "rows_dropped": self.writer.dropped_rows,
        }

    def interface_names(self, address: str) -> dict[int, str]:
        """ifIndex -> name for an exporter: from its options data, then from SNMP when it is a device."""
        names: dict[int, str] = {}
        for ex in self.registry.find(address):
            names.update(ex.if_names)
        snmp = self.snmp
        if snmp is not None:
            for attr in ("interface_names", "if_names", "get_interface_names"):
                fn = getattr(snmp, attr, None)
                if callable(fn):
                    try:
                        got = fn(address) or {}
                        for k, v in dict(got).items():
                            if v:
                                names[int(k)] = str(v)
                    except Exception:
                        log.debug("SNMP interface names for %s failed", address, exc_info=True)
                    break
        return names
