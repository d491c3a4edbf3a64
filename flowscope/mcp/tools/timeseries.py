"""Timeseries tools: list and read series, rank applications/protocols, draw charts."""

from __future__ import annotations

from typing import Any, Literal

import anyio
from pydantic import BaseModel, Field

from flowscope.mcp.toolkit import Returns, ToolContext, ToolError, tool
from flowscope.services.timeseries import query as ts_query
from flowscope.services.timeseries.charting import CHART_TYPES, SQL_UNITS, build_chart

TIME_HELP = ("ISO 8601 UTC (2024-05-01T10:00:00Z), epoch seconds, 'now' or relative (-6h, -2d). "
             "Default: the hour ending at the newest data")
Entity = Literal["interface", "host", "application", "category", "country", "asn", "snmp_interface", "probe"]
Resolution = Literal["auto", "1m", "5m", "1h", "raw"]


async def _run(fn):
    from flowscope.store.guard import GuardError

    try:
        return await anyio.to_thread.run_sync(fn)
    except ts_query.TimeseriesError as exc:
        raise ToolError(str(exc)) from None
    except GuardError as exc:
        raise ToolError(f"query refused: {exc}") from None


# --- list_timeseries ---------------------------------------------------------------------------------
class ListTimeseriesParams(BaseModel):
    entity: Entity | None = Field(None, description="also lists its busiest members")
    start: str | None = Field(None, description="For listing members: " + TIME_HELP)
    end: str | None = Field(None, description="For listing members: end of the range")
    limit: int = Field(20, ge=1, le=200, description="Max members listed for `entity`")


class MetricInfo(BaseModel):
    name: str
    unit: str
    kind: str = Field(description="counter (summed per bucket, charted as a rate) or gauge (averaged)")
    description: str


class SeriesInfo(BaseModel):
    entity: str
    description: str
    available: bool
    resolutions: list[str]
    metrics: list[MetricInfo]
    dimensions: dict[str, str] = Field(description="Filter / split keys and what they mean")
    key: str | None = Field(None, description="Dimension naming one member, e.g. host")
    storage: list[str]
    members: list[str] | None = Field(None, description="Busiest members in the range (entity given)")
    restricted_note: str | None = None


class ListTimeseriesResult(BaseModel):
    series: list[SeriesInfo]
    retention_days: dict[str, int]
    time_rule: str

    def text(self) -> str:
        lines = [self.time_rule, "retention (days): " + ", ".join(f"{k}={v}" for k, v in self.retention_days.items())]
        for s in self.series:
            state = "" if s.available else " (no data source yet)"
            lines.append(f"{s.entity}{state}: {s.description}")
            lines.append("  metrics: " + ", ".join(f"{m.name} [{m.unit}]" for m in s.metrics))
            lines.append(f"  filters: {', '.join(s.dimensions)}; resolutions: {', '.join(s.resolutions)}")
            if s.members is not None:
                lines.append(f"  members ({s.key}): " + (", ".join(s.members) or "none in range"))
        return "\n".join(lines)


@tool(returns=Returns.SERIES, title="List timeseries", example={"entity": "host", "limit": 10})
async def list_timeseries(call: ToolContext, params: ListTimeseriesParams) -> ListTimeseriesResult:
    """Available timeseries (entities, metrics, units, filters); with entity, its busiest members.

    Which timeseries exist: interface totals, per host, per application and category, per country
    and ASN, SNMP interface rates and active-monitoring probes — with their metrics, units, filters
    and resolutions (1m/5m/1h rollups). Give `entity` to also list its busiest members (e.g. which
    hosts or probes have data). Use get_timeseries to read them and chart to draw them."""

    def work() -> ListTimeseriesResult:
        from flowscope.services.timeseries import retention_days

        series = ts_query.listing(call.app, call.scope, params.entity, params.start, params.end, params.limit)
        return ListTimeseriesResult(series=[SeriesInfo.model_validate(x) for x in series],
                                    retention_days=retention_days(call.app),
                                    time_rule="A flow counts in the bucket of its LAST_SEEN (UTC buckets).")

    return await _run(work)


# --- get_timeseries -----------------------------------------------------------------------------------
class SeriesSpec(BaseModel):
    entity: Entity = Field("interface")
    metrics: list[str] = Field(default_factory=list, max_length=6,
                               description="default: the first (bytes)")
    filters: dict[str, str | list[str]] = Field(default_factory=dict,
                                                description="e.g. {\"host\": \"10.0.0.5\"}")
    split_by: str | None = Field(None, description="a series per value")
    top_n: int = Field(8, ge=1, le=25, description="with split_by: series before 'other'")


class GetTimeseriesParams(BaseModel):
    series: list[SeriesSpec] = Field(min_length=1, max_length=8)
    start: str | None = Field(None, description="Range start: " + TIME_HELP)
    end: str | None = Field(None, description="Range end (exclusive); default the newest data")
    resolution: Resolution = Field("auto", description="auto: from the range")
    max_points: int = Field(120, ge=2, le=2000, description="per series")
    include_points: bool = Field(True, description="false: summaries only")


class SeriesOut(BaseModel):
    entity: str
    metric: str
    label: str
    filters: dict[str, Any]
    unit: str = Field(description="Unit of `values`: per-bucket totals for counters, averages for gauges")
    kind: str
    summary: dict[str, Any] = Field(description="min, max, avg, last, total (counters), peak_time, rates")
    values: list[float | int | None] | None = None


class GetTimeseriesResult(BaseModel):
    start: str
    end: str
    step_s: int
    source: str = Field(description="rollup, flows (recomputed for your networks) or raw")
    tables: list[str]
    series: list[SeriesOut]
    times: list[str] | None = Field(None, description="Bucket start times, shared by every series' values")
    notes: list[str] = Field(default_factory=list)

    def text(self) -> str:
        lines = [f"{self.start} → {self.end} UTC, {self.step_s}s buckets, from {', '.join(self.tables)}"]
        lines += self.notes
        for s in self.series:
            sm = s.summary
            if not sm.get("points"):
                lines.append(f"{s.label}: no data")
                continue
            bits = [f"min {sm['min']}", f"max {sm['max']} at {sm['peak_time']}", f"avg {sm['avg']}",
                    f"last {sm['last']}"]
            if "total" in sm:
                bits.append(f"total {sm['total']}")
            if "peak_rate" in sm:
                bits.append(f"peak {sm['peak_rate']} {sm['rate_unit']}")
            lines.append(f"{s.label} [{s.unit}]: " + ", ".join(bits))
        if self.times:
            lines.append("points (time: " + " | ".join(s.label for s in self.series) + "):")
            for i, t in enumerate(self.times[:60]):
                lines.append(f"{t}: " + " | ".join(str(s.values[i]) if s.values else "" for s in self.series))
            if len(self.times) > 60:
                lines.append(f"... {len(self.times) - 60} more points in structured content")
        return "\n".join(lines)


@tool(returns=Returns.SERIES, title="Get timeseries", example={"series": [{"entity": "host", "metrics": ["bytes_sent", "bytes_rcvd"],
                                                     "filters": {"host": "192.168.1.10"}}], "start": "-6h"})
async def get_timeseries(call: ToolContext, params: GetTimeseriesParams) -> GetTimeseriesResult:
    """Timeseries over a range: each series' summary (min, max, avg, peak) and its values.

    Read one or more timeseries over a time range. The bucket size is chosen from the range
    (1-minute up to days) unless `resolution` is given; points are bounded by max_points. Each series
    comes with a summary first (min, max, avg, last, total, time of the peak, peak rate in bit/s for
    traffic), then its values aligned on the shared `times`. Counters are per-bucket totals (bytes,
    packets, flows); SNMP and probe series are averages. A flow counts in the bucket of its LAST_SEEN."""

    def work() -> GetTimeseriesResult:
        specs = [s.model_dump() for s in params.series]
        ss = ts_query.fetch(call.app, call.scope, specs, params.start, params.end, params.resolution,
                     params.max_points)
        out = [SeriesOut(entity=s.entity, metric=s.metric, label=s.label, filters=s.filters, unit=s.unit,
                         kind=s.kind, summary=ts_query.summarize(s, ss.times, ss.step),
                         values=s.values if params.include_points else None) for s in ss.series]
        return GetTimeseriesResult(
            start=ts_query.fmt_time(ss.start), end=ts_query.fmt_time(ss.end), step_s=ss.step, source=ss.source, tables=ss.tables,
            series=out, times=[ts_query.fmt_time(t) for t in ss.times] if params.include_points else None,
            notes=list(dict.fromkeys(ss.notes)))

    return await _run(work)


# --- chart ----------------------------------------------------------------------------------------------
class ChartParams(BaseModel):
    type: Literal["line", "area", "bar", "pie", "heatmap", "sankey"] = Field(
        "line")
    sql: str | None = Field(None, description=(
        "instead of a series; columns: line/area (time, [series,] value), bar/pie (label, value), heatmap (x, y, value), sankey (source, [middle,] target, value)"))
    entity: Entity | None = Field(None, description="default interface (application for bar/pie/sankey)")
    metric: str | None = Field(None, description="see list_timeseries")
    filters: dict[str, str | list[str]] = Field(default_factory=dict, description="dimension -> value(s)")
    split_by: str | None = Field(None, description="line/area: a series per value")
    dimension: str | None = Field(None, description="bar/pie: what to rank")
    top_n: int = Field(8, ge=1, le=25, description="items before 'other'")
    start: str | None = Field(None, description="Range start: " + TIME_HELP)
    end: str | None = Field(None, description="Range end (exclusive)")
    resolution: Resolution = Field("auto")
    title: str | None = Field(None, max_length=120)
    unit: Literal[SQL_UNITS] = Field("", description="SQL charts: unit of values")  # type: ignore[valid-type]


class ChartResult(BaseModel):
    title: str
    chart_type: str
    columns: list[str]
    rows: list[list[Any]] = Field(description="The data drawn, exactly")
    truncated: bool
    meta: dict[str, Any]
    image_bytes: int

    def text(self) -> str:
        lines = [f"{self.title} ({self.chart_type} chart, PNG attached)",
                 ", ".join(f"{k}: {v}" for k, v in self.meta.items() if k != "sql"), " | ".join(self.columns)]
        lines += [" | ".join("" if v is None else str(v) for v in r) for r in self.rows[:40]]
        if len(self.rows) > 40:
            lines.append(f"... {len(self.rows) - 40} more rows in structured content")
        return "\n".join(lines)


@tool(returns=Returns.SERIES, title="Chart", example={"type": "area", "entity": "application", "metric": "bytes", "start": "-24h"})
async def chart(call: ToolContext, params: ChartParams) -> ChartResult:
    """A PNG chart (line, area, bar, pie, heatmap, sankey) of a series or guarded SQL, with its numbers.

    Draw a chart as a PNG image, with the exact numbers behind it as a data table. Input: a named
    series (entity, metric, filters, split_by — as in get_timeseries) or read-only SQL guarded like
    `query`. Types: line, area (stacked, top N + other), bar (ranked top N), pie, heatmap (hour of day ×
    day), sankey (client → application → server). Traffic is drawn in bits/s. Everything is limited to
    your allowed networks."""
    if params.type not in CHART_TYPES:
        raise ToolError(f"type must be one of {', '.join(CHART_TYPES)}")

    def work():
        return build_chart(call.app, call.scope, params.type, sql=params.sql, entity=params.entity,
                           metric=params.metric, filters=params.filters, split_by=params.split_by,
                           dimension=params.dimension, top_n=params.top_n, start=params.start, end=params.end,
                           resolution=params.resolution, title=params.title, unit=params.unit)

    out = await _run(work)
    call.add_image(out.png)
    return ChartResult(title=out.title, chart_type=out.chart_type, columns=out.columns, rows=out.rows,
                       truncated=out.truncated, meta=out.meta, image_bytes=len(out.png))


# --- top applications / protocols ---------------------------------------------------------------------------
class TopParams(BaseModel):
    start: str | None = Field(None, description="Range start: " + TIME_HELP)
    end: str | None = Field(None, description="Range end (exclusive)")
    metric: Literal["bytes", "packets", "flows"] = Field("bytes")
    interface_id: int | None = Field(None, ge=0, description="Only this source (see get_interfaces)")
    limit: int = Field(10, ge=1, le=200, description="Max rows before 'other'")


class TopProtocolsParams(TopParams):
    level: Literal["l7", "l4"] = Field("l7", description="l7: nDPI master protocol; l4: TCP, UDP, ICMP")


class TopRow(BaseModel):
    name: str
    bytes: int
    packets: int
    flows: int
    share: float = Field(description="Share of the ranked metric over the range")


class TopResult(BaseModel):
    start: str
    end: str
    ranked_by: str
    rows: list[TopRow]
    total: int
    truncated: bool = Field(description="More names exist; they are added up in the 'other' row")
    source: str

    def text(self) -> str:
        lines = [f"{self.start} → {self.end} UTC, ranked by {self.ranked_by} (total {self.total}), from {self.source}"]
        lines += [f"{r.name}: {r.bytes} B, {r.packets} pkts, {r.flows} flows ({r.share:.1%})" for r in self.rows]
        return "\n".join(lines)


async def _top(call: ToolContext, p: TopParams, dimension: str) -> TopResult:
    def work() -> TopResult:
        filters = {"interface_id": str(p.interface_id)} if p.interface_id is not None else None
        others = [m for m in ("bytes", "packets", "flows") if m != p.metric]
        r = ts_query.rank(call.app, call.scope, "application", dimension, p.metric, p.start, p.end, filters, p.limit,
                   also=others)
        rows = []
        for i, (name, v) in enumerate(r.items):
            rows.append(TopRow(name=name, bytes=r.extra["bytes"][i] or 0, packets=r.extra["packets"][i] or 0,
                               flows=r.extra["flows"][i] or 0, share=round(v / r.total, 6) if r.total else 0.0))
        return TopResult(start=ts_query.fmt_time(r.start), end=ts_query.fmt_time(r.end), ranked_by=p.metric, rows=rows,
                         total=int(r.total or 0), truncated=any(x.name == "other" for x in rows) and
                         len(rows) > p.limit, source=r.table)

    return await _run(work)


@tool(returns=Returns.SERIES, title="Top applications", example={"start": "-24h", "metric": "bytes", "limit": 10})
async def get_top_applications(call: ToolContext, params: TopParams) -> TopResult:
    """Top nDPI applications by traffic over a range, with their share and the rest as 'other'.

    The nDPI applications (e.g. TLS.YouTube, DNS, QUIC.Google) with the most traffic over a time
    range, with bytes, packets, flows and share; the rest is added up as 'other'. Read from the
    application rollups (recomputed from flows inside your networks when you are limited to some)."""
    return await _top(call, params, "application")


@tool(returns=Returns.SERIES, title="Top protocols", example={"start": "-24h", "level": "l7", "limit": 10})
async def get_top_protocols(call: ToolContext, params: TopProtocolsParams) -> TopResult:
    """Top protocols (nDPI l7 or l4) by traffic over a range, with their share and the rest as 'other'.

    The protocols with the most traffic over a time range: nDPI master protocols (TLS, QUIC, DNS,
    HTTP...) with level=l7, or transport protocols (TCP, UDP, ICMP) with level=l4; with bytes,
    packets, flows and share, the rest as 'other'."""
    return await _top(call, params, "protocol" if params.level == "l7" else "l4_proto")
