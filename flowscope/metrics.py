"""Prometheus metrics (`/metrics`): what get_interfaces and list_flow_exporters report, read at
scrape time from the same counters, plus tool-call and store latency histograms and rows written.

On the MCP listener `/metrics` needs an admin token (`Authorization: Bearer T` in the scrape
config); `--metrics-listen HOST:PORT` serves it without a token on an address of its own.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from flowscope.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SOURCE_LABELS = ["id", "kind", "name"]
EXPORTER_LABELS = ["address", "type"]
# per exporter: metric suffix -> (snapshot key, help)
EXPORTER_COUNTERS = {
    "datagrams": ("datagrams", "Datagrams received from the exporter"),
    "records": ("records", "Flow records (sFlow: flow samples) decoded"),
    "lost": ("lost", "Records (v5, IPFIX) or datagrams (v9, sFlow) missing by sequence numbers"),
    "undecodable": ("undecodable", "Datagrams or parts that could not be decoded"),
    "dropped_sets": ("dropped_sets", "Data sets dropped because their template never came"),
}


class AppCollector(Collector):
    """Reads the app's live counters when Prometheus scrapes."""

    def __init__(self, app: Any):
        self.app = app

    def collect(self) -> Iterator[Any]:
        yield from self._sources()
        yield from self._collector()
        live = GaugeMetricFamily("flowscope_live_flows", "Flows in the live table")
        live.add_metric([], len(self.app.live))
        yield live

    def _sources(self) -> Iterator[Any]:
        families = {what: CounterMetricFamily(f"flowscope_source_{what}", f"{what.capitalize()} metered per source",
                                              labels=SOURCE_LABELS)
                    for what in ("packets", "bytes", "flows", "drops")}
        for src in source_counters(self.app):
            labels = [str(src["id"]), src["kind"], src["name"]]
            for what, family in families.items():
                if src[what] is not None:  # drops are not measured on live interfaces
                    family.add_metric(labels, src[what])
        yield from families.values()

    def _collector(self) -> Iterator[Any]:
        collector = self.app.components.get("collector")
        if collector is None:
            return
        for suffix, (key, doc) in EXPORTER_COUNTERS.items():
            family = CounterMetricFamily(f"flowscope_exporter_{suffix}", doc, labels=EXPORTER_LABELS)
            for snap in collector.registry.snapshots():
                family.add_metric([snap["address"], snap["type"]], snap[key])
            yield family
        status = collector.status()
        dropped = CounterMetricFamily("flowscope_collector_dropped", "Collector records or datagrams dropped "
                                      "before storage, by stage", labels=["stage"])
        dropped.add_metric(["socket"], status["socket_drops"])
        dropped.add_metric(["queue"], status["queue_dropped"])
        dropped.add_metric(["writer"], status["rows_dropped"])
        dropped.add_metric(["store"], status["rows_failed"])
        yield dropped


def source_counters(app: Any) -> list[dict[str, Any]]:
    """Every source as get_interfaces shows it: capture files, interfaces and collector listeners."""
    out = [s.info() for s in app.sources.items]
    collector = app.components.get("collector")
    if collector is not None:
        out += collector.interfaces()
    return out


class Metrics:
    """One registry per App (several apps may live in one test process)."""

    def __init__(self, app: Any):
        self.registry = CollectorRegistry()
        self.registry.register(AppCollector(app))
        self.tool_seconds = Histogram("flowscope_tool_call_seconds", "MCP tool calls by tool and outcome",
                                      ["tool", "outcome"], registry=self.registry)
        self.store_seconds = Histogram("flowscope_store_query_seconds", "Store statements by kind and outcome",
                                       ["kind", "outcome"], registry=self.registry)
        self.rows_written = Counter("flowscope_rows_written", "Rows inserted into the store, by table",
                                    ["table"], registry=self.registry)
        self._server: Any = None

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, listen: str) -> None:
        """Serve /metrics without a token on `listen` (HOST:PORT), on a thread of its own."""
        from flowscope.config import parse_listen

        host, port = parse_listen(listen)
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def timed(self, histogram: Histogram, *labels: str):
        return _Timer(histogram, labels)


class _Timer:
    """`with metrics.timed(h, kind) as t:` observes the duration labelled with t.outcome."""

    def __init__(self, histogram: Histogram, labels: tuple[str, ...]):
        self.histogram, self.labels, self.outcome = histogram, labels, "ok"

    def __enter__(self) -> "_Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        outcome = "exception" if exc_type is not None else self.outcome
        self.histogram.labels(*self.labels, outcome).observe(time.perf_counter() - self.start)


def metered_tool(metrics: Metrics, name: str, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Wrap a registered tool function: its latency by outcome (ok, error, exception)."""

    @functools.wraps(call)
    async def metered(**kwargs: Any) -> Any:
        with metrics.timed(metrics.tool_seconds, name) as timer:
            result = await call(**kwargs)
            timer.outcome = "error" if getattr(result, "is_error", False) else "ok"
            return result

    return metered


class MeteredStore(Store):
    """The Store, timing every statement and counting the rows written per table."""

    def __init__(self, metrics: Metrics, data_dir: str, clickhouse_url: str | None = None, limits=None):
        super().__init__(data_dir, clickhouse_url, limits)
        self.metrics = metrics

    def query(self, sql, params=None, settings=None, **lanes):
        with self.metrics.timed(self.metrics.store_seconds, "query"):
            return super().query(sql, params, settings, **lanes)

    def command(self, sql, params=None):
        with self.metrics.timed(self.metrics.store_seconds, "command"):
            super().command(sql, params)

    def insert(self, table, columns, rows):  # insert_dicts goes through here too
        with self.metrics.timed(self.metrics.store_seconds, "insert"):
            count = super().insert(table, columns, rows)
        self.metrics.rows_written.labels(table).inc(count or 0)
        return count

    def insert_columns(self, table, names, chunks):
        with self.metrics.timed(self.metrics.store_seconds, "insert"):
            count = super().insert_columns(table, names, chunks)
        self.metrics.rows_written.labels(table).inc(count or 0)
        return count

