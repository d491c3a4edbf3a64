"""Timeseries: rollups of `flows` at 1 min / 5 min / 1 h, ntopng's hourly_flows, and charts.

Storage (DDL in flowscope/store/tables/timeseries.py):
  * `ts_<kind>_<res>` for kind in interface, host, application, category, country, asn and
    res in 1m, 5m, 1h: AggregatingMergeTree tables of SimpleAggregateFunction(sum) counters,
    fed by materialised views chained feed -> 1m -> 5m -> 1h.
  * `hourly_flows`: one row per hour, host pair, L4/L7 protocol and server port.
  * Filled off the insert path (flowscope/store/rollups.py): every `rollup_seconds` (default 2)
    and before any query naming a rollup, so answers cover every stored flow.
  * A flow row counts entirely in the bucket of its LAST_SEEN (ntopng-style).
  * Retention is a ClickHouse TTL per resolution, counted from when rows were written
    (`written`), so imported old captures are not dropped on arrival. Configure it in the
    `[timeseries]` config section: retention_1m_days, retention_5m_days, retention_1h_days,
    retention_hourly_flows_days; `attach` applies changes with ALTER TABLE ... MODIFY TTL.

Series from other components (SNMP interface rates, active-monitoring probes) are raw tables in
the series catalogue (`catalogue.register_series`), bucketed on the fly.

Restricted users (allowed networks): per-host series are filtered on the host column; interface
and application totals (and protocols, from the application rollup) are read from rollups of
their scope's own (`scope_ts_<kind>_<res>`, rows of their scope id only: flowscope/store/scopes.py,
made and backfilled on first use after each start); the other totals that aggregate across hosts
(category, country, ASN) are recomputed from `flows` limited to their networks with the same
bucket rule; interface drops are refused.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone

from flowscope.store import schema
from flowscope.store.rollups import RollupFiller

log = logging.getLogger(__name__)

DEFAULT_RETENTION = {res: days for res, _secs, days in schema.TS_RESOLUTIONS} | {"hourly_flows": 365, "host_days": 365}


class TimeseriesService:
    def __init__(self, app):
        self.app = app
        self.retention = retention_days(app)
        section = _section(app)
        self.filler = RollupFiller(app.store.rollups, float(section.get("rollup_seconds", 2)))

    async def start(self) -> None:
        self.filler.start()

    async def stop(self) -> None:
        self.filler.stop()
        self.app.store.rollups.catch_up()

    def record_interface_drops(self, interface_id: int, drops: int, when: datetime | None = None) -> None:
        """Capture components call this with packets dropped since their last call."""
        record_interface_drops(self.app.store, interface_id, drops, when)


def _section(app) -> dict:
    try:
        return app.config.section("timeseries") or {}
    except Exception:
        return {}


def retention_days(app) -> dict[str, int]:
    section = _section(app)
    out = {}
    for key, default in DEFAULT_RETENTION.items():
        value = section.get(f"retention_{key}_days", default)
        try:
            days = int(value)
        except (TypeError, ValueError):
            log.warning("[timeseries] retention_%s_days=%r is not a number; using %s", key, value, default)
            days = default
        out[key] = max(1, min(days, 36500))
    return out


def _tables_by_retention() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {res: [] for res, _s, _d in schema.TS_RESOLUTIONS}
    for rollup in schema.TS_ROLLUPS.values():
        for res in rollup.resolutions:
            groups[res].append(rollup.table(res))
    for rollup in schema.SCOPE_ROLLUPS.values():
        for res in rollup.resolutions:
            groups[res].append(rollup.scope_table(res))
    groups["hourly_flows"] = ["hourly_flows"]
    groups["host_days"] = ["host_days"]
    return groups


def apply_retention(store, days: dict[str, int]) -> list[str]:
    """ALTER the TTL of every rollup whose retention differs from `days`; returns changed tables."""
    changed = []
    current = {r[0]: r[1] for r in store.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND "
        "(name LIKE 'ts\\\\_%' OR name LIKE 'scope\\\\_ts\\\\_%' OR name IN ('hourly_flows', 'host_days'))").rows}
    for key, tables in _tables_by_retention().items():
        want = int(days[key])
        for table in tables:
            m = re.search(r"TTL written \+ toIntervalDay\((\d+)\)", current.get(table, ""))
            if table in current and (m is None or int(m.group(1)) != want):
                store.command(f"ALTER TABLE `{table}` MODIFY TTL written + INTERVAL {want} DAY")
                changed.append(table)
    return changed


def backfill(store) -> list[str]:
    """Fill empty rollups from `flows` (e.g. flows stored before the views existed)."""
    done = []
    if not store.query("SELECT count() FROM flows").scalar():
        return done
    views = {r[0]: r[1] for r in store.query(
        "SELECT name, as_select FROM system.tables WHERE database = currentDatabase() AND engine = 'MaterializedView'"
    ).rows}
    targets = [(r.tables()[0], r.tables()[-1]) for r in schema.TS_ROLLUPS.values()] + [("hourly_flows", "hourly_flows")]
    for first, last in targets:
        select = views.get(f"mv_{first}")
        if not select or store.query(f"SELECT count() FROM `{last}`").scalar():
            continue
        # the view reads new batches from the feed; the backfill reads every stored flow instead
        select = re.sub(rf"(\w+\.)?`?{schema.ROLLUP_FEED}`?", "flows", select)
        store.command(f"INSERT INTO `{first}` {select}")  # cascades to 5m and 1h through the views
        done.append(first)
    return done


def record_interface_drops(store, interface_id: int, drops: int, when: datetime | None = None) -> None:
    when = when or datetime.now(timezone.utc)
    minute = when.astimezone(timezone.utc).replace(second=0, microsecond=0)
    store.insert("ts_interface_1m", ["time", "INTERFACE_ID", "bytes", "packets", "flows", "drops", "written"],
                 [[minute.strftime("%Y-%m-%d %H:%M:%S"), int(interface_id), 0, 0, 0, int(drops),
                   datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")]])


def attach(app):
    service = TimeseriesService(app)
    try:
        changed = apply_retention(app.store, service.retention)
        if changed:
            log.info("timeseries retention applied to %d tables", len(changed))
    except Exception:
        log.exception("could not apply timeseries retention")
    try:
        filled = backfill(app.store)
        if filled:
            log.info("timeseries rollups backfilled from flows: %s", ", ".join(filled))
    except Exception:
        log.exception("could not backfill timeseries rollups")
    return service
