"""Reading timeseries: resolution choice, scoping to allowed networks, summaries and rankings.

Bucket rule (the same as the rollups): a flow row counts in the bucket holding its LAST_SEEN.
Ranges are aligned outward to whole buckets of the chosen step, so a series over [start, end)
equals `SELECT ... FROM flows WHERE LAST_SEEN >= start AND LAST_SEEN < end` for the aligned
start/end that every answer reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from flowscope.auth import Scope
from flowscope.services import flows
from flowscope.services.timeseries.catalogue import (
    APP_LABEL,
    CATALOGUE,
    FROM_FLOWS,
    RESOLUTIONS,
    Metric,
    SeriesKind,
    unit_column,
)
from flowscope.store import schema, scopes

#: steps an automatic choice may use, in seconds (all multiples of the 1-minute rollup)
STEPS = (60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800)
MAX_POINTS = 2000
MAX_ROWS = 200_000
#: dimensions whose values are addresses: restricted users may only name ones inside their networks
IP_DIMENSIONS = {"host", "client", "server", "device", "target"}


class TimeseriesError(Exception):
    """A request that cannot be answered; the message says what to change."""


# --- time ---------------------------------------------------------------------------------------
def parse_time(text: str | int | float | None, now: datetime) -> datetime | None:
    """The tools' shared time syntax (flowscope.services.flows.parse_time), as a UTC datetime."""
    try:
        ts = flows.parse_time(text, now=now.timestamp())
    except flows.FlowQueryError as exc:
        raise TimeseriesError(str(exc)) from None
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc)


def fmt_time(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _param_time(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _from_db(text: str) -> datetime:
    return datetime.fromisoformat(text[:19]).replace(tzinfo=timezone.utc)


def latest_time(app, kind: SeriesKind) -> datetime | None:
    """Time of the newest data for `kind` (used when no end is given)."""
    if kind.tables:
        try:
            v = app.store.query("SELECT max(LAST_SEEN) FROM flows WHERE LAST_SEEN > toDateTime64(0, 3, 'UTC')").scalar()
        except Exception:
            v = None
    else:
        if not table_exists(app, kind.raw_table):
            return None
        v = app.store.query(f"SELECT max(`{kind.time_column}`) FROM `{kind.raw_table}`").scalar()
    if not v or str(v).startswith("1970-01-01 00:00:00"):
        return None
    return _from_db(str(v)) + timedelta(seconds=1)


def resolve_range(app, kind: SeriesKind, start, end, default_span_s: int = 3600) -> tuple[datetime, datetime]:
    now = datetime.now(timezone.utc)
    t_end = parse_time(end, now)
    t_start = parse_time(start, now)
    if t_end is None:
        t_end = (latest_time(app, kind) or now) if t_start is None else now
    if t_start is None:
        t_start = t_end - timedelta(seconds=default_span_s)
    if t_start >= t_end:
        raise TimeseriesError(f"start ({fmt_time(t_start)}) must be before end ({fmt_time(t_end)})")
    return t_start, t_end


def choose_step(kind: SeriesKind, start: datetime, end: datetime, resolution: str | None,
                max_points: int) -> tuple[int, str | None]:
    """(step seconds, rollup table or None). Coarsest rollup that divides the step is read."""
    span = (end - start).total_seconds()
    if resolution and resolution != "auto":
        if resolution == "raw":
            if kind.tables:
                raise TimeseriesError(f"{kind.entity} series are rollups: use one of {', '.join(kind.resolutions)}")
            base = 60
        elif resolution in RESOLUTIONS:
            base = RESOLUTIONS[resolution]
        else:
            raise TimeseriesError(f"unknown resolution {resolution!r}: use auto, {', '.join(kind.resolutions)}")
        step = base * max(1, math.ceil(span / base / max_points))
        if step != base:  # keep the point count bounded: coarsen to a whole multiple
            step = next((s for s in STEPS if s >= step and s % base == 0), step)
    else:
        step = next((s for s in STEPS if span / s <= max_points), STEPS[-1])
        while span / step > max_points:
            step *= 2
    return step, table_for_step(kind, step)


def table_for_step(kind: SeriesKind, step: int) -> str | None:
    """The coarsest stored rollup whose buckets divide `step` (FROM_FLOWS when none does)."""
    if not kind.tables:
        return None
    stored = [r for r, t in kind.tables.items() if t != FROM_FLOWS and step % RESOLUTIONS[r] == 0]
    return kind.tables[max(stored, key=lambda r: RESOLUTIONS[r])] if stored else FROM_FLOWS


def align(start: datetime, end: datetime, step: int) -> tuple[datetime, datetime]:
    s = int(start.timestamp()) // step * step
    e = -(-math.ceil(end.timestamp()) // step) * step
    if e <= s:
        e = s + step
    return datetime.fromtimestamp(s, timezone.utc), datetime.fromtimestamp(e, timezone.utc)


# --- catalogue checks ---------------------------------------------------------------------------
def table_exists(app, table: str | None) -> bool:
    if not table:
        return False
    r = app.store.query("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
                        {"t": table})
    return bool(r.scalar())


def table_columns(app, table: str) -> set[str]:
    r = app.store.query("SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String}",
                        {"t": table})
    return {row[0] for row in r.rows}


def available_metrics(app, kind: SeriesKind) -> list[Metric]:
    if kind.tables:
        return list(kind.metrics)
    if not table_exists(app, kind.raw_table):
        return []
    cols = table_columns(app, kind.raw_table)
    return [m for m in kind.metrics if set(m.columns) <= cols]


def get_kind(entity: str) -> SeriesKind:
    kind = CATALOGUE.get(entity)
    if kind is None:
        raise TimeseriesError(f"unknown entity {entity!r}; use one of {', '.join(CATALOGUE)} (see list_timeseries)")
    return kind


def _metrics(app, kind: SeriesKind, names: list[str] | None, scope) -> list[Metric]:
    avail = available_metrics(app, kind)
    if not avail:
        raise TimeseriesError(f"no {kind.entity} series stored yet (table {kind.raw_table} missing or empty schema)")
    if not names:
        names = [avail[0].name]
    out = []
    for n in names:
        m = next((x for x in avail if x.name == n), None)
        if m is None:
            raise TimeseriesError(f"{kind.entity} has no metric {n!r}; available: {', '.join(x.name for x in avail)}")
        if scope.restricted and kind.scope == "flows" and not m.from_flows:
            raise TimeseriesError(f"{kind.entity} metric {n!r} is an interface-wide counter that cannot be limited "
                                  f"to your allowed networks; use bytes, packets or flows")
        out.append(m)
    return out


# --- SQL ----------------------------------------------------------------------------------------
@dataclass
class Source:
    sql: str  # FROM clause body (table or subquery)
    time: str  # time column in it
    kind: str  # rollup | flows | raw
    table: str
    scope: str = "1"


def own_rollups(kind: SeriesKind, scope: Scope) -> bool:
    """A restricted caller's series of `kind` come from its scope's own rollups (schema.SCOPE_ROLLUPS)."""
    return scope.restricted and kind.scope == "flows" and kind.rollup in schema.SCOPE_ROLLUPS


def from_flows(kind: SeriesKind, scope: Scope) -> bool:
    """A restricted caller's totals of `kind` are computed from the flows it sees (no rollup of its own)."""
    return scope.restricted and kind.scope == "flows" and not own_rollups(kind, scope)


def prepare(app, kind: SeriesKind, scope: Scope) -> None:
    """Before reading: a restricted caller's own rollups exist (made and filled on first use)."""
    if own_rollups(kind, scope):
        app.store.scopes.for_principal(scope.principal)


def source_for(kind: SeriesKind, table: str | None, scope: Scope,
               bounds: tuple[str, str] = ("t_start", "t_end")) -> Source:
    """Where a series is read: its rollup table (a restricted caller's own, for kinds summed across
    hosts), or its rows computed from the flows that may hold minutes in [bounds] (restricted users
    of kinds without rollups of their own; resolutions not stored)."""
    if kind.tables:
        assert table is not None
        rows = scope.sql(list(kind.scope_columns)) if kind.scope == "columns" else "1"
        restricted = scope.restricted and kind.scope == "flows"
        if own_rollups(kind, scope) and table != FROM_FLOWS:
            own = f"scope_{table}"
            return Source(f"`{own}`", "time", "rollup", own, f"scope = {scopes.scope_id(scope.principal)}")
        if restricted or table == FROM_FLOWS:
            # a flow's minutes lie within [FIRST_SEEN, LAST_SEEN]: read only flows overlapping the range
            near = (f"LAST_SEEN >= {{{bounds[0]}:DateTime64(3, 'UTC')}} - INTERVAL 1 MINUTE AND "
                    f"FIRST_SEEN < {{{bounds[1]}:DateTime64(3, 'UTC')}} + INTERVAL 1 MINUTE")
            sub = schema.TS_ROLLUPS[kind.rollup].rows_sql(f"({scope.flows_sql() if restricted else 1}) AND {near}")
            return Source(f"({sub}) AS src", "time", "flows", "flows", rows)
        return Source(f"`{table}`", "time", "rollup", table, rows)
    rows = "1"
    if scope.restricted:
        rows = " AND ".join(
            f"if(isIPv4String(toString({c})) OR isIPv6String(toString({c})), {scope.sql([c])}, 0)"
            for c in kind.scope_columns) or "0"
    return Source(f"`{kind.raw_table}`", kind.time_column, "raw", kind.raw_table, rows)


def check_visible(scope, name: str, values: list) -> None:
    if not scope.restricted or name not in IP_DIMENSIONS:
        return
    for v in values:
        if not scope.visible(str(v)):
            raise TimeseriesError(f"{name} {v} is outside your allowed networks")


def _in_params(params: dict, prefix: str, values: list) -> str:
    if not values or len(values) > 100:
        raise TimeseriesError("give 1 to 100 values per filter")
    names = []
    for j, v in enumerate(values):
        params[f"{prefix}_{j}"] = str(v)
        names.append(f"{{{prefix}_{j}:String}}")
    return ", ".join(names)


def _where(kind: SeriesKind, src: Source, filters: dict[str, Any] | None, params: dict, scope,
           bounds: tuple[str, str] = ("t_start", "t_end")) -> str:
    terms = [f"`{src.time}` >= {{{bounds[0]}:DateTime64(3, 'UTC')}}",
             f"`{src.time}` < {{{bounds[1]}:DateTime64(3, 'UTC')}}", src.scope]
    for i, (name, value) in enumerate((filters or {}).items()):
        dim = kind.dimension(name)
        if dim is None:
            raise TimeseriesError(f"{kind.entity} cannot be filtered by {name!r}; filters: "
                                  f"{', '.join(d.name for d in kind.dimensions)}")
        values = value if isinstance(value, list) else [value]
        check_visible(scope, name, values)
        terms.append(f"toString({dim.expr}) IN ({_in_params(params, f'f{i}', values)})")
    return " AND ".join(f"({t})" for t in terms)


def rate_of(metric: Metric, step: int) -> tuple[float, str]:
    """(factor, unit) turning a bucket value into what charts plot."""
    if metric.kind == "gauge":
        return 1.0, {"bps": "bit/s", "pps": "packets/s", "percent": "%"}.get(metric.unit, metric.unit)
    if metric.unit == "bytes":
        return 8.0 / step, "bit/s"
    if metric.unit == "packets":
        return 1.0 / step, "packets/s"
    return 1.0, f"{metric.unit} per {step_label(step)}"


def step_label(step: int) -> str:
    for secs, name in ((604800, "week"), (86400, "day"), (3600, "h"), (60, "min")):
        if step % secs == 0:
            n = step // secs
            return f"{n} {name}" if n != 1 else {"h": "hour", "min": "minute"}.get(name, name)
    return f"{step} s"


# --- series -------------------------------------------------------------------------------------
@dataclass
class Series:
    entity: str
    metric: str
    label: str
    unit: str  # unit of `values` (bucket totals for counters, averages for gauges)
    kind: str
    values: list[float | None]
    rate_unit: str
    rate_factor: float
    filters: dict[str, Any] = field(default_factory=dict)

    def rates(self) -> list[float | None]:
        return [None if v is None else v * self.rate_factor for v in self.values]


@dataclass
class SeriesSet:
    start: datetime
    end: datetime
    step: int
    source: str
    tables: list[str]
    times: list[datetime]
    series: list[Series]
    notes: list[str] = field(default_factory=list)


def fetch(app, scope, specs: list[dict], start=None, end=None, resolution: str | None = None,
          max_points: int = 300, top_n: int = 8) -> SeriesSet:
    """specs: [{entity, metrics: [..], filters: {dim: value}, split_by: dim|None, top_n}]"""
    if not specs:
        raise TimeseriesError("ask for at least one series: {entity, metrics, filters}")
    max_points = max(2, min(int(max_points), MAX_POINTS))
    kinds = [get_kind(s.get("entity") or "interface") for s in specs]
    t0, t1 = resolve_range(app, kinds[0], start, end)
    step = 0
    for kind in kinds:
        s, _ = choose_step(kind, t0, t1, resolution, max_points)
        step = max(step, s)
    t0, t1 = align(t0, t1, step)
    n = int((t1 - t0).total_seconds() // step)
    times = [t0 + timedelta(seconds=i * step) for i in range(n)]
    out = SeriesSet(t0, t1, step, "", [], times, [])
    for spec, kind in zip(specs, kinds):
        prepare(app, kind, scope)
        table = table_for_step(kind, step)  # the step is common to all specs
        src = source_for(kind, table, scope)
        metrics = _metrics(app, kind, spec.get("metrics") or ([spec["metric"]] if spec.get("metric") else None),
                           scope)
        split = spec.get("split_by")
        if split and kind.dimension(split) is None:
            raise TimeseriesError(f"{kind.entity} cannot be split by {split!r}; use one of "
                                  f"{', '.join(d.name for d in kind.dimensions)}")
        params: dict[str, Any] = {"t_start": _param_time(t0), "t_end": _param_time(t1), "step": step}
        where = _where(kind, src, spec.get("filters"), params, scope)
        group = f"toString({kind.dimension(split).expr})" if split else "''"
        unit_col = unit_column(kind)
        aggs = ", ".join(f"{m.agg} AS m{i}" for i, m in enumerate(metrics))
        sql = (f"SELECT toUnixTimestamp(`{src.time}`) DIV {{step:UInt32}} * {{step:UInt32}} AS t, {group} AS g, "
               f"{aggs}{', any(toString(`' + unit_col + '`)) AS u' if unit_col else ''} "
               f"FROM {src.sql} WHERE {where} GROUP BY t, g ORDER BY t")
        res = app.store.query(sql, params, settings={"max_result_rows": MAX_ROWS, "result_overflow_mode": "break"})
        out.source = src.kind if not out.source or out.source == src.kind else "mixed"
        if src.table not in out.tables:
            out.tables.append(src.table)
        if scope.restricted and src.kind == "flows" and kind.scope == "flows":
            out.notes.append(f"{kind.entity} totals computed from flows limited to your allowed networks")
        index = {int(t.timestamp()): i for i, t in enumerate(times)}
        spec_top = int(spec.get("top_n") or top_n)
        for mi, metric in enumerate(metrics):
            per_label: dict[str, list] = {}
            units: dict[str, str] = {}
            for row in res.rows:
                t, g, val = int(row[0]), row[1], row[2 + mi]
                if t not in index:
                    continue
                fill = 0 if metric.kind == "counter" else None
                vals = per_label.setdefault(g, [fill] * n)
                vals[index[t]] = _num(val)
                if unit_col:
                    units[g] = row[-1]
            labels = sorted(per_label, key=lambda g: -_total(per_label[g]))
            if split and len(labels) > spec_top:
                keep, rest = labels[:spec_top], labels[spec_top:]
                other = [0] * n if metric.kind == "counter" else [None] * n
                if metric.kind == "counter":
                    for g in rest:
                        other = [a + (b or 0) for a, b in zip(other, per_label[g])]
                    per_label = {g: per_label[g] for g in keep} | {"other": other}
                else:  # averages cannot be added up: drop the rest, say so
                    per_label = {g: per_label[g] for g in keep}
                    out.notes.append(f"{len(rest)} smaller {split} series left out")
                labels = list(per_label)
            if not labels:
                labels = [""]
                per_label[""] = [0 if metric.kind == "counter" else None] * n
            for g in labels:
                factor, rate_unit = rate_of(metric, step)
                unit = metric.unit
                if unit_col and units.get(g):
                    unit = rate_unit = units[g]
                label = _series_label(kind, metric, spec.get("filters") or {}, split, g)
                filt = dict(spec.get("filters") or {})
                if split:
                    filt[split] = g
                out.series.append(Series(kind.entity, metric.name, label, unit, metric.kind, per_label[g],
                                         rate_unit, factor, filt))
    return out


def _num(v):
    if v is None:
        return None
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return None
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 2 ** 53 else v


def _total(vals) -> float:
    return sum(v for v in vals if v is not None)


def _series_label(kind: SeriesKind, metric: Metric, filters: dict, split: str | None, g: str) -> str:
    parts = [g] if split else [str(v) for v in filters.values()] or [kind.entity]
    return f"{' '.join(parts)} {metric.name}".strip()


def summarize(series: Series, times: list[datetime], step: int) -> dict[str, Any]:
    pts = [(t, v) for t, v in zip(times, series.values) if v is not None]
    if not pts:
        return {"points": 0}
    vals = [v for _, v in pts]
    peak_t, peak_v = max(pts, key=lambda p: p[1])
    out: dict[str, Any] = {"min": min(vals), "max": peak_v, "avg": round(sum(vals) / len(vals), 3),
                           "last": vals[-1], "peak_time": fmt_time(peak_t), "points": len(vals)}
    if series.kind == "counter":
        out["total"] = sum(vals)
        if series.rate_factor != 1.0:
            out["avg_rate"] = round(out["total"] * series.rate_factor / len(series.values), 3)
            out["peak_rate"] = round(peak_v * series.rate_factor, 3)
            out["rate_unit"] = series.rate_unit
    return out


# --- rankings -----------------------------------------------------------------------------------
@dataclass
class Ranking:
    start: datetime
    end: datetime
    entity: str
    dimension: str
    metric: Metric
    items: list[tuple[str, float]]  # top items, then ('other', rest) when any
    total: float
    source: str
    table: str
    extra: dict[str, list] = field(default_factory=dict)  # other metrics per item, same order


def rank(app, scope, entity: str, dimension: str, metric: str, start=None, end=None,
         filters: dict | None = None, limit: int = 10, also: list[str] | None = None) -> Ranking:
    """Top `limit` values of `dimension` by `metric` over [start, end) (minute-aligned), plus 'other'."""
    kind = get_kind(entity)
    dim = kind.dimension(dimension)
    if dim is None:
        raise TimeseriesError(f"{entity} cannot be ranked by {dimension!r}; use one of "
                              f"{', '.join(d.name for d in kind.dimensions)}")
    metrics = _metrics(app, kind, [metric] + [a for a in (also or []) if a != metric], scope)
    t0, t1 = resolve_range(app, kind, start, end)
    t0, t1 = align(t0, t1, 60)
    pieces = tiles(kind, int(t0.timestamp()), int(t1.timestamp())) if kind.tables else [(None, 0, 0)]
    prepare(app, kind, scope)
    if len(pieces) > 1 and (from_flows(kind, scope) or any(
            m.kind != "counter" or not m.agg.startswith("sum(") for m in metrics)):
        # one source: flows (restricted), or metrics that cannot be summed piecewise: the coarsest
        # rollup whose buckets tile the whole range
        a, b = int(t0.timestamp()), int(t1.timestamp())
        pieces = [(table_for_step(kind, math.gcd(a, b)), a, b)]
    params: dict[str, Any] = {"t_start": _param_time(t0), "t_end": _param_time(t1)}
    aggs = ", ".join(f"{m.agg} AS m{i}" for i, m in enumerate(metrics))
    parts = []
    for i, (table, a, b) in enumerate(pieces):
        bounds = ("t_start", "t_end")
        if len(pieces) > 1:
            bounds = (f"t{i}a", f"t{i}b")
            params.update({bounds[0]: _param_time(datetime.fromtimestamp(a, timezone.utc)),
                           bounds[1]: _param_time(datetime.fromtimestamp(b, timezone.utc))})
        src = source_for(kind, table, scope, bounds)
        where = _where(kind, src, filters, params, scope, bounds)
        parts.append(f"SELECT toString({dim.expr}) AS g, {aggs} FROM {src.sql} WHERE {where} GROUP BY g")
    if len(parts) > 1:  # each piece summed, then the pieces added up
        sums = ", ".join(f"sum(m{i}) AS m{i}" for i in range(len(metrics)))
        parts = [f"SELECT g, {sums} FROM ({' UNION ALL '.join(parts)}) GROUP BY g"]
    # the top rows only, each with the totals over every value and how many values there are
    limit = max(1, int(limit))
    k = len(metrics)
    totals = ", ".join(f"sum(m{i}) OVER () AS t{i}" for i in range(k))
    top_rows = app.store.query(f"SELECT *, {totals}, count() OVER () AS n FROM ({parts[0]}) ORDER BY m0 DESC, g "
                               f"LIMIT {limit}", params).rows
    items = [(r[0], _num(r[1])) for r in top_rows]
    extra = {m.name: [_num(r[1 + i]) for r in top_rows] for i, m in enumerate(metrics)}
    total = _num(top_rows[0][1 + k]) or 0 if top_rows else 0
    if top_rows and int(top_rows[0][-1]) > len(top_rows) and metrics[0].kind == "counter":
        for i, m in enumerate(metrics):
            rest = (_num(top_rows[0][1 + k + i]) or 0) - sum(_num(r[1 + i]) or 0 for r in top_rows)
            extra[m.name].append(rest)
            if i == 0:
                items.append(("other", rest))
    return Ranking(t0, t1, entity, dimension, metrics[0], items, total, src.kind,
                   "+".join(dict.fromkeys(source_for(kind, t, scope).table for t, _a, _b in pieces)), extra)


def tiles(kind: SeriesKind, a: int, b: int) -> list[tuple[str, int, int]]:
    """[(rollup table, start, end)] covering [a, b) (minute-aligned) exactly: the coarsest buckets
    that fit inside, finer ones only at the edges."""
    for res in sorted((r for r, t in kind.tables.items() if t != FROM_FLOWS), key=lambda r: -RESOLUTIONS[r]):
        size = RESOLUTIONS[res]
        lo, hi = -(-a // size) * size, b // size * size
        if lo < hi:
            edges = [(x, y) for x, y in ((a, lo), (hi, b)) if x < y]
            return [(kind.tables[res], lo, hi)] + [p for x, y in edges for p in tiles(kind, x, y)]
    return [(FROM_FLOWS, a, b)]  # less than the finest stored bucket


# --- matrices for heatmaps and sankeys ------------------------------------------------------------
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def heatmap(app, scope, entity: str, metric: str, filters: dict | None = None, start=None, end=None):
    """Hour of day (x) × day (y) of a metric; days become weekdays (summed) beyond 62 days."""
    kind = get_kind(entity)
    span_default = 7 * 86400
    t0, t1 = resolve_range(app, kind, start, end, default_span_s=span_default)
    ss = fetch(app, scope, [{"entity": entity, "metrics": [metric], "filters": filters or {}}],
               start=t0, end=t1, resolution="1h", max_points=MAX_POINTS)
    s = ss.series[0]
    by_day = (ss.end - ss.start).days <= 62
    cells: dict[tuple[str, int], float] = {}
    for t, v in zip(ss.times, s.values):
        if v is None:
            continue
        y = t.strftime("%Y-%m-%d") if by_day else _WEEKDAYS[t.weekday()]
        cells[(y, t.hour)] = cells.get((y, t.hour), 0) + v
    ys = sorted({y for y, _ in cells}) if by_day else [d for d in _WEEKDAYS if any(k[0] == d for k in cells)]
    return ss, s, ys, cells


def sankey_links(app, scope, start=None, end=None, filters: dict | None = None, top_n: int = 8,
                 metric: str = "bytes"):
    """Client → application → server links from `flows` (LAST_SEEN in range), top N per column."""
    kind = get_kind("application")
    t0, t1 = resolve_range(app, kind, start, end)
    t0, t1 = align(t0, t1, 60)
    value = {"bytes": "sum(TOTAL_BYTES)", "packets": "sum(PACKETS)", "flows": "count()"}.get(metric)
    if value is None:
        raise TimeseriesError("sankey metric must be bytes, packets or flows")
    params: dict[str, Any] = {"t_start": _param_time(t0), "t_end": _param_time(t1)}
    terms = ["LAST_SEEN >= {t_start:DateTime64(3, 'UTC')}", "LAST_SEEN < {t_end:DateTime64(3, 'UTC')}",
             scope.flows_sql()]
    allowed = {"application": APP_LABEL, "client": "SRC_IP", "server": "DST_IP",
               "interface_id": "INTERFACE_ID", "l4_proto": "L4_PROTO_NAME"}
    for i, (name, val) in enumerate((filters or {}).items()):
        if name not in allowed:
            raise TimeseriesError(f"sankey filters: {', '.join(allowed)}")
        vals = val if isinstance(val, list) else [val]
        check_visible(scope, name, vals)
        terms.append(f"toString({allowed[name]}) IN ({_in_params(params, f'f{i}', vals)})")
    sql = (f"SELECT SRC_IP, {APP_LABEL} AS app, DST_IP, {value} AS v FROM flows WHERE "
           + " AND ".join(f"({t})" for t in terms) + " GROUP BY SRC_IP, app, DST_IP ORDER BY v DESC LIMIT 200000")
    rows = [(r[0], r[1], r[2], _num(r[3])) for r in app.store.query(sql, params).rows]

    def top(col: int) -> set[str]:
        tot: dict[str, float] = {}
        for r in rows:
            tot[r[col]] = tot.get(r[col], 0) + r[3]
        return set(sorted(tot, key=lambda k: -tot[k])[:top_n])

    keep = [top(0), top(1), top(2)]
    links: dict[tuple[str, str, str], float] = {}
    for r in rows:
        key = tuple(r[i] if r[i] in keep[i] else "other" for i in range(3))
        links[key] = links.get(key, 0) + r[3]
    ordered = sorted(links.items(), key=lambda kv: -kv[1])
    return t0, t1, [(a, b, c, v) for (a, b, c), v in ordered]


def listing(app, scope: Scope, entity: str | None = None, start=None, end=None, limit: int = 20) -> list[dict]:
    """The catalogue as the caller may read it: each kind's metrics (those with data first),
    dimensions and storage; with `entity`, its busiest members in the range."""
    out = []
    for kind in CATALOGUE.values():
        if entity and kind.entity != entity:
            continue
        metrics = available_metrics(app, kind)
        info: dict[str, Any] = {
            "entity": kind.entity, "description": kind.description, "available": bool(metrics),
            "resolutions": kind.resolutions, "key": kind.key,
            "metrics": [{"name": m.name, "unit": m.unit, "kind": m.kind, "description": m.description}
                        for m in (metrics or kind.metrics)],
            "dimensions": {d.name: d.description for d in kind.dimensions},
            "storage": list(kind.tables.values()) if kind.tables else [kind.raw_table or ""],
        }
        if kind.scope == "flows":
            info["restricted_note"] = ("for users limited to networks, " + (
                "from rollups of their own of the flows inside them" if kind.rollup in schema.SCOPE_ROLLUPS
                else "computed from flows inside them")
                                       + ("; drops not available" if kind.entity == "interface" else ""))
        if entity and kind.key and metrics:
            counter = next((m for m in metrics if m.kind == "counter"), metrics[0])
            r = rank(app, scope, kind.entity, kind.key, counter.name, start, end, limit=limit)
            info["members"] = [lab for lab, _ in r.items if lab != "other"]
        out.append(info)
    return out
