"""From a chart request to a PNG plus the data table behind it (the exact numbers drawn).

Two inputs: a named series (entity + metric + filters, read through the series catalogue and
scoped to the caller's networks) or a read-only SQL query that goes through the same guard as
the `query` tool (`flowscope.store.guard.run_guarded`), so a refused query is refused the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flowscope.services import charts
from flowscope.services.timeseries import query as ts_query

CHART_TYPES = ("line", "area", "bar", "pie", "heatmap", "sankey")
SQL_UNITS = ("", "bytes", "bit/s", "packets", "packets/s", "flows", "ms", "%", "count", "score")
MAX_TABLE_ROWS = 5000


@dataclass
class ChartOutput:
    png: bytes
    title: str
    chart_type: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


def _bounded(rows: list[list[Any]]) -> tuple[list[list[Any]], bool]:
    return rows[:MAX_TABLE_ROWS], len(rows) > MAX_TABLE_ROWS


_METRIC_TITLES = {"bytes": "Traffic", "bytes_sent": "Traffic sent", "bytes_rcvd": "Traffic received",
                  "packets": "Packets", "flows": "Flows", "score": "Score", "drops": "Drops"}
_PLURALS = {"category": "categories", "country": "countries", "asn": "ASNs", "host": "hosts",
            "application": "applications", "protocol": "protocols", "l4_proto": "L4 protocols",
            "interface_id": "interfaces", "probe_id": "probes", "if_index": "interfaces"}


def metric_title(name: str) -> str:
    return _METRIC_TITLES.get(name, name.replace("_", " ").capitalize())


def plural(dimension: str) -> str:
    return _PLURALS.get(dimension, dimension.replace("_", " ") + "s")


def _range_text(t0: datetime, t1: datetime) -> str:
    return f"{ts_query.fmt_time(t0)} → {ts_query.fmt_time(t1)} UTC"


def build_chart(app, scope, chart_type: str, *, sql: str | None = None, entity: str | None = None,
                metric: str | None = None, filters: dict | None = None, split_by: str | None = None,
                dimension: str | None = None, top_n: int = 8, start=None, end=None,
                resolution: str | None = None, title: str | None = None, unit: str = "") -> ChartOutput:
    if chart_type not in CHART_TYPES:
        raise ts_query.TimeseriesError(f"unknown chart type {chart_type!r}; use one of {', '.join(CHART_TYPES)}")
    top_n = max(1, min(int(top_n), 25))
    if sql:
        return _sql_chart(app, scope, chart_type, sql, title, unit, top_n)
    entity = entity or ("application" if chart_type in ("bar", "pie", "sankey") else "interface")
    if chart_type in ("line", "area"):
        return _series_chart(app, scope, chart_type, entity, metric, filters, split_by, top_n, start, end,
                             resolution, title)
    if chart_type in ("bar", "pie"):
        return _ranking_chart(app, scope, chart_type, entity, metric, filters, dimension, top_n, start, end,
                              title)
    if chart_type == "heatmap":
        return _heatmap_chart(app, scope, entity, metric, filters, start, end, title)
    return _sankey_chart(app, scope, metric, filters, top_n, start, end, title)


# --- named series ----------------------------------------------------------------------------------
def _series_chart(app, scope, chart_type, entity, metric, filters, split_by, top_n, start, end, resolution,
                  title) -> ChartOutput:
    kind = ts_query.get_kind(entity)
    if chart_type == "area" and not split_by and kind.key and not (filters or {}).get(kind.key):
        split_by = kind.key if entity != "interface" else None
    ss = ts_query.fetch(app, scope, [{"entity": entity, "metrics": [metric] if metric else None,
                                   "filters": filters or {}, "split_by": split_by, "top_n": top_n}],
                 start=start, end=end, resolution=resolution, max_points=400, top_n=top_n)
    first = ss.series[0]
    what = " ".join(str(v) for v in (filters or {}).values())
    default_title = (f"{entity.replace('_', ' ').capitalize()} {metric_title(first.metric).lower()}"
                     if not split_by else f"{metric_title(first.metric)} by {split_by.replace('_', ' ')}")
    default_title += f" — {what}" if what else ""
    sub = f"{_range_text(ss.start, ss.end)} · {ts_query.step_label(ss.step)} buckets · source {', '.join(ss.tables)}"
    if ss.notes:
        sub += " · " + "; ".join(dict.fromkeys(ss.notes))
    png = charts.timeseries(title or default_title, ss.times,
                            [(s.filters.get(split_by, s.label) if split_by else s.label, s.rates())
                             for s in ss.series],
                            first.rate_unit, sub, stacked=chart_type == "area")
    rows = []
    for s in ss.series:
        for t, v, r in zip(ss.times, s.values, s.rates()):
            rows.append([ts_query.fmt_time(t), s.label, v, None if r is None else round(r, 6)])
    rows, trunc = _bounded(rows)
    return ChartOutput(png, title or default_title, chart_type,
                       ["time", "series", f"value ({first.unit} per bucket)" if first.kind == "counter"
                        else f"value ({first.unit})", f"plotted ({first.rate_unit})"], rows, trunc,
                       {"start": ts_query.fmt_time(ss.start), "end": ts_query.fmt_time(ss.end), "step_s": ss.step,
                        "source": ss.source, "tables": ss.tables, "unit": first.unit, "plotted_unit": first.rate_unit,
                        "time_rule": "a flow counts in the bucket of its LAST_SEEN"})


def _ranking_chart(app, scope, chart_type, entity, metric, filters, dimension, top_n, start, end,
                   title) -> ChartOutput:
    kind = ts_query.get_kind(entity)
    dimension = dimension or kind.key
    if not dimension:
        raise ts_query.TimeseriesError(f"give a dimension to rank {entity} by: {', '.join(d.name for d in kind.dimensions)}")
    r = ts_query.rank(app, scope, entity, dimension, metric or kind.metrics[0].name, start, end, filters, top_n)
    unit = {"bytes": "B"}.get(r.metric.unit, r.metric.unit)
    default_title = f"Top {plural(dimension)} by {metric_title(r.metric.name).lower()}"
    sub = f"{_range_text(r.start, r.end)} · total {charts.format_value(r.total, unit)} · source {r.table}"
    if chart_type == "bar":
        png = charts.bar(title or default_title, r.items, unit, sub, x_label=f"{r.metric.name} ({unit})")
    else:
        png = charts.pie(title or default_title, r.items, unit, sub)
    rows = [[lab, v, round(v / r.total, 6) if r.total else None] for lab, v in r.items]
    return ChartOutput(png, title or default_title, chart_type, [dimension, f"{r.metric.name} ({r.metric.unit})",
                                                                 "share"], rows, False,
                       {"start": ts_query.fmt_time(r.start), "end": ts_query.fmt_time(r.end), "total": r.total,
                        "source": r.source, "table": r.table})


def _heatmap_chart(app, scope, entity, metric, filters, start, end, title) -> ChartOutput:
    ss, s, ys, cells = ts_query.heatmap(app, scope, entity, metric or ts_query.get_kind(entity).metrics[0].name, filters,
                                 start, end)
    hours = list(range(24))
    matrix = [[cells.get((y, h)) for h in hours] for y in ys]
    default_title = f"{entity.replace('_', ' ').capitalize()} {metric_title(s.metric).lower()} by hour of day"
    unit = {"bytes": "B"}.get(s.unit, s.unit)
    sub = f"{_range_text(ss.start, ss.end)} · each cell: {s.metric} ({unit}) in that hour · source {', '.join(ss.tables)}"
    png = charts.heatmap(title or default_title, [f"{h:02d}" for h in hours], ys, matrix, unit, sub,
                         x_label="hour of day (UTC)", y_label="day" if ys and ys[0][0].isdigit() else "weekday")
    rows = [[y, h, cells[(y, h)]] for y in ys for h in hours if (y, h) in cells]
    return ChartOutput(png, title or default_title, "heatmap", ["day", "hour", f"{s.metric} ({s.unit})"], rows, False,
                       {"start": ts_query.fmt_time(ss.start), "end": ts_query.fmt_time(ss.end), "source": ss.source})


def _sankey_chart(app, scope, metric, filters, top_n, start, end, title) -> ChartOutput:
    metric = metric or "bytes"
    t0, t1, links = ts_query.sankey_links(app, scope, start, end, filters, top_n, metric)
    unit = {"bytes": "B"}.get(metric, metric)
    default_title = f"Who talks to whom: client → application → server ({metric})"
    sub = f"{_range_text(t0, t1)} · top {top_n} per column, the rest as 'other' · from flows"
    png = charts.sankey(title or default_title, [((a, b, c), v) for a, b, c, v in links],
                        ("client", "application", "server"), unit, sub)
    rows, trunc = _bounded([list(link) for link in links])
    return ChartOutput(png, title or default_title, "sankey", ["client", "application", "server", metric], rows,
                       trunc, {"start": ts_query.fmt_time(t0), "end": ts_query.fmt_time(t1), "source": "flows"})


# --- SQL --------------------------------------------------------------------------------------------
def _as_time(v) -> datetime | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return None
    try:
        dt = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


def _is_num(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def _f(v) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _sql_chart(app, scope, chart_type, sql, title, unit, top_n) -> ChartOutput:
    from flowscope.store.guard import run_guarded  # GuardError propagates unchanged to the caller

    if unit not in SQL_UNITS:
        raise ts_query.TimeseriesError(f"unit must be one of {', '.join(repr(u) for u in SQL_UNITS)}")
    out = run_guarded(app, scope.principal, sql, max_rows=MAX_TABLE_ROWS)
    cols, rows = out.columns, out.rows
    title = title or "Query result"
    sub = f"{len(rows)} rows from SQL" + (" (truncated)" if out.truncated else "")
    plot_unit = {"bytes": "B", "count": ""}.get(unit, unit)
    need = {"line": 2, "area": 2, "bar": 2, "pie": 2, "heatmap": 3, "sankey": 3}[chart_type]
    if len(cols) < need:
        raise ts_query.TimeseriesError(_shape_help(chart_type))
    if chart_type in ("line", "area"):
        if rows and _as_time(rows[0][0]) is None:
            raise ts_query.TimeseriesError(_shape_help(chart_type))
        times_idx: dict[str, int] = {}
        series: dict[str, dict[int, float | None]] = {}
        long_form = len(cols) >= 3 and rows and not _is_num(rows[0][1])
        for r in rows:
            ti = times_idx.setdefault(str(r[0]), len(times_idx))
            if long_form:
                series.setdefault(str(r[1]), {})[ti] = _f(r[2])
            else:
                for c in range(1, len(cols)):
                    series.setdefault(cols[c], {})[ti] = _f(r[c])
        times = [_as_time(t) for t in times_idx]
        fill = 0.0 if chart_type == "area" else None
        data = [(lab, [pts.get(i, fill) for i in range(len(times))]) for lab, pts in series.items()]
        order = sorted(range(len(times)), key=lambda i: times[i])
        times = [times[i] for i in order]
        data = [(lab, [vals[i] for i in order]) for lab, vals in data]
        png = charts.timeseries(title, times, data, plot_unit, sub, stacked=chart_type == "area",
                                y_label=unit or (cols[-1] if not long_form else None))
    elif chart_type in ("bar", "pie"):
        items = [(str(r[0]), _f(r[1]) or 0.0) for r in rows]
        items.sort(key=lambda kv: -kv[1])
        if len(items) > top_n:
            items = items[:top_n] + [("other", sum(v for _, v in items[top_n:]))]
        png = (charts.bar(title, items, plot_unit, sub, x_label=unit or cols[1]) if chart_type == "bar"
               else charts.pie(title, items, plot_unit, sub))
    elif chart_type == "heatmap":
        xs = list(dict.fromkeys(str(r[0]) for r in rows))
        ys = list(dict.fromkeys(str(r[1]) for r in rows))
        cell = {(str(r[0]), str(r[1])): _f(r[2]) for r in rows}
        matrix = [[cell.get((x, y)) for x in xs] for y in ys]
        png = charts.heatmap(title, xs, ys, matrix, plot_unit, sub, x_label=cols[0], y_label=cols[1])
    else:
        stages = cols[:-1] if len(cols) >= 4 else cols[:2]
        links = [(tuple(str(x) for x in r[:len(stages)]), _f(r[len(stages)]) or 0.0) for r in rows]
        png = charts.sankey(title, links, stages, plot_unit, sub)
    return ChartOutput(png, title, chart_type, cols, rows, out.truncated, {"sql": out.sql, "source": "sql"})


def _shape_help(chart_type: str) -> str:
    return {
        "line": "a line chart from SQL needs (time, value[, value...]) or (time, series, value) columns",
        "area": "an area chart from SQL needs (time, value[, value...]) or (time, series, value) columns",
        "bar": "a bar chart from SQL needs (label, value) columns",
        "pie": "a pie chart from SQL needs (label, value) columns",
        "heatmap": "a heatmap from SQL needs (x, y, value) columns, e.g. toHour(LAST_SEEN), toDate(LAST_SEEN), sum(BYTES)",
        "sankey": "a sankey from SQL needs (source, target, value) or (source, middle, target, value) columns",
    }[chart_type]
