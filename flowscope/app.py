"""The App object: configuration, store, authorization, live state and components together.

Like datasette's app, it is what the CLI builds, the HTTP server serves and the tests start.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from typing import Any, Callable

from flowscope.auth import Auth
from flowscope.capture.sources import Sources
from flowscope.config import Config
from flowscope.flows.live import LiveTable
from flowscope.store import Store
from flowscope.store.writer import FlowWriter

log = logging.getLogger(__name__)


class App:
    def __init__(self, config: Config):
        self.config = config
        self.auth = Auth(config.data_dir)
        self.store = Store(config.data_dir, config.clickhouse_url, config.query_limits())
        self.store.migrate()
        self.flow_hooks: list[Callable[[list[dict]], None]] = []
        self.source_hooks: list[Callable[[dict], None]] = []
        self.flow_enrichers: list[Callable[[list[dict]], None]] = []
        self.live = LiveTable(config.max_live_flows)
        self.writer = FlowWriter(self.store, config.batch_rows, config.batch_seconds, self.flow_hooks,
                                 self.enrich_flows)
        self.sources = Sources(self)
        self.components: dict[str, Any] = {}
        self._attach_components()
        if "hosts" in self.components:
            from flowscope.services.hosts.geo import enrich_flow_rows

            self.before_store(enrich_flow_rows)

    # --- hooks -------------------------------------------------------------------------------
    def on_flows(self, callback: Callable[[list[dict]], None]) -> None:
        self.flow_hooks.append(callback)

    def on_source(self, callback: Callable[[dict], None]) -> None:
        self.source_hooks.append(callback)

    def before_store(self, callback: Callable[[list[dict]], None]) -> None:
        """`callback(rows)` may fill columns of each flow batch (e.g. countries) before it is stored."""
        self.flow_enrichers.append(callback)

    def enrich_flows(self, rows: list[dict]) -> None:
        """Run every `before_store` callback on a batch (the writer does; so can offline imports)."""
        for enrich in list(self.flow_enrichers):
            enrich(rows)

    # --- lifecycle ---------------------------------------------------------------------------
    def _attach_components(self) -> None:
        import flowscope.services as services

        for mod in pkgutil.iter_modules(services.__path__, "flowscope.services."):
            try:
                module = importlib.import_module(mod.name)
            except Exception:
                log.exception("could not load component %s", mod.name)
                continue
            attach = getattr(module, "attach", None)
            if attach is None:
                continue
            try:
                comp = attach(self)
            except Exception:
                log.exception("component %s failed to attach", mod.name)
                continue
            if comp is not None:
                self.components[mod.name.rsplit(".", 1)[-1]] = comp

    def start_sources(self) -> None:
        self.writer.start()
        for path in self.config.pcaps:
            self.sources.start_pcap(path)
        for iface in self.config.interfaces:
            self.sources.start_interface(iface)

    async def start(self) -> None:
        self.start_sources()
        for name, comp in self.components.items():
            start = getattr(comp, "start", None)
            if start is None:
                continue
            try:
                result = start()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("component %s failed to start", name)

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
        self.store.close()
