"""The App object: configuration, store, authorization, live state and components together.

Like datasette's app, it is what the CLI builds, the HTTP server serves and the tests start.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from flowscope.auth import Auth
from flowscope.capture.sources import Sources
from flowscope.config import Config
from flowscope.flows.live import LiveTable
from flowscope.metrics import MeteredStore, Metrics
from flowscope.modules import StartupError, attach_components, startup_modules
from flowscope.store.columns import FlowColumns
from flowscope.store.writer import FlowWriter

log = logging.getLogger(__name__)


class App:
    def __init__(self, config: Config):
        self.config = config
        self.auth = Auth(config.data_dir)
        self.metrics = Metrics(self)
        self.store = MeteredStore(self.metrics, config.data_dir, config.clickhouse_url, config.query_limits())
        self.store.migrate()
        self.flow_hooks: list[Callable[[list[dict]], None]] = []
        self.source_hooks: list[Callable[[dict], None]] = []
        self.flow_enrichers: list[Callable[[list[dict]], None]] = []
        #: column variants (FlowColumns batches) of hooks and enrichers, by the rows callable
        self.column_hooks: dict[Callable, Callable[[FlowColumns], None]] = {}
        self.column_enrichers: dict[Callable, Callable[[FlowColumns], None]] = {}
        self.live = LiveTable(config.max_live_flows)
        self.writer = FlowWriter(self.store, config.batch_rows, config.batch_seconds, self.flow_hooks,
                                 self.enrich_flows, self.column_hooks, self.enrich_columns)
        self.sources = Sources(self)
        self.components: dict[str, Any] = {}
        #: parts that cannot run here (module name -> reason), shown in /health and get_interfaces
        self.unavailable: dict[str, str] = {}
        attach_components(self, startup_modules(config.plugins))
        if "hosts" in self.components:
            from flowscope.services.hosts.geo import (
                enrich_flow_columns,
                enrich_flow_rows,
            )

            self.before_store(enrich_flow_rows, enrich_flow_columns)

    # --- hooks -------------------------------------------------------------------------------
    def on_flows(self, callback: Callable[[list[dict]], None],
                 columns: Callable[[FlowColumns], None] | None = None) -> None:
        """`callback(rows)` sees each stored batch; `columns(batch)`, if given, sees column batches
        (the collector's) instead of their rows."""
        self.flow_hooks.append(callback)
        if columns is not None:
            self.column_hooks[callback] = columns

    def on_source(self, callback: Callable[[dict], None]) -> None:
        self.source_hooks.append(callback)

    def before_store(self, callback: Callable[[list[dict]], None],
                     columns: Callable[[FlowColumns], None] | None = None) -> None:
        """`callback(rows)` may fill columns of each flow batch (e.g. countries) before it is stored;
        `columns(batch)` does it for column batches (without it, the callback gets their rows)."""
        self.flow_enrichers.append(callback)
        if columns is not None:
            self.column_enrichers[callback] = columns

    def enrich_flows(self, rows: list[dict]) -> None:
        """Run every `before_store` callback on a batch (the writer does; so can offline imports)."""
        for enrich in list(self.flow_enrichers):
            enrich(rows)

    def enrich_columns(self, batch: FlowColumns) -> None:
        """`enrich_flows` for a column batch."""
        for enrich in list(self.flow_enrichers):
            columns = self.column_enrichers.get(enrich)
            columns(batch) if columns is not None else enrich(batch.rows())

    # --- lifecycle ---------------------------------------------------------------------------
    def start_sources(self) -> None:
        self.writer.start()
        for path in self.config.pcaps:
            self.sources.start_pcap(path)
        for iface in self.config.interfaces:
            self.sources.start_interface(iface)

    async def start(self) -> None:
        if self.config.metrics_listen:
            self.metrics.serve(self.config.metrics_listen)
        self.start_sources()
        for name, comp in self.components.items():
            start = getattr(comp, "start", None)
            if start is None:
                continue
            try:
                result = start()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                raise StartupError(f"component {name} failed to start ({type(exc).__name__}: {exc})") from exc

    async def stop(self) -> None:
        for name, comp in reversed(list(self.components.items())):
            stop = getattr(comp, "stop", None)
            if stop is None:
                continue
            try:
                result = stop()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("component %s failed to stop", name)
        self.sources.stop()
        self.writer.put([f.as_row() for f in self.live.sweep()])  # flows still active: keep them
        self.writer.stop()
        self.metrics.stop()
        self.store.close()
