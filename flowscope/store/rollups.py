"""Rollups filled off the insert path, exactly once per flow row.

Inserting into `flows` runs nothing but the insert. Each insert into `flows` gets the next
`INSERT_SEQ` (a batch number) under a lock, so when the lock is free every batch up to the last
number is stored. `catch_up()` then copies the batches after the watermark with one
`INSERT INTO flows_rollup_feed SELECT … FROM flows WHERE INSERT_SEQ IN (watermark, last]`: the feed
is a Null table (it keeps nothing) whose materialised views fill every rollup (ts_*_1m and their
5m/1h chains, hourly_flows) and record the new watermark in `rollup_state`, in the same insert.
A restart resumes from that watermark, so no batch is counted twice or missed.

`catch_up()` runs on a timer (the timeseries component) and before any read of a rollup
(`flowscope.services.timeseries` and the hosts queries), so answers always cover every stored flow.
Rows stored without a batch number (INSERT_SEQ = 0: data written before this scheme) were rolled
up by the old insert-time views and are left alone.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator

log = logging.getLogger(__name__)

FEED = "flows_rollup_feed"
STATE = "rollup_state"
SCOPE_VIEW = "mv_for_scope_"  # + scope id + kind: see `RollupFeed.add_scope`


class RollupFeed:
    def __init__(self, store: Any):
        self.store = store
        self._insert_lock = threading.Lock()  # held from taking a batch number to the insert's end
        self._fill_lock = threading.Lock()
        self.last_seq = 0  # last batch number handed out (its insert may be running)
        self.done_seq = 0  # every batch up to here is in the rollups
        self.filled_rows = 0
        self.fill_seconds = 0.0
        self._new_rollups: set[str] = set()  # fed from the feed but missing before migrate: to backfill

    def prepare(self) -> None:
        """Before the schema is applied: drop what an older layout left (views that rolled up
        inside every insert into `flows`, a feed whose columns no longer match `flows`)."""
        rows = self.store.query(
            "SELECT name, engine, create_table_query FROM system.tables WHERE database = currentDatabase() "
            "AND (engine = 'MaterializedView' OR name = {feed:String})", {"feed": FEED}, lane="write").rows
        feed_stale = False
        if any(name == FEED for name, _e, _q in rows):
            cols = self.store.query(
                "SELECT table, groupArray(name) FROM (SELECT table, name FROM system.columns WHERE database = "
                "currentDatabase() AND table IN ('flows', {feed:String}) ORDER BY position) GROUP BY table",
                {"feed": FEED}, lane="write").rows
            by_table = {t: c for t, c in cols}
            feed_stale = by_table.get("flows") != by_table.get(FEED) or not schema_has_seq(by_table.get("flows"))
        for name, engine, create in rows:
            if engine != "MaterializedView":
                continue
            reads_flows = f"`{FEED}`" not in create and FEED not in create and name.startswith(("mv_ts_", "mv_hourly"))
            if reads_flows and name.endswith(("_1m", "hourly_flows")) or (feed_stale and FEED in create):
                self.store.command(f"DROP VIEW IF EXISTS `{name}`")
        if feed_stale:
            self.store.command(f"DROP TABLE IF EXISTS `{FEED}`")
        tables = {r[0] for r in self.store.query("SELECT name FROM system.tables WHERE database = currentDatabase()",
                                                 lane="write").rows}
        if "flows" in tables:  # an existing store: rollups added since must take in the flows it holds
            self._new_rollups = {target for _view, target, _sel in feed_views() if target not in tables}

    def load(self) -> None:
        """Batch numbers and watermark from the store (at start)."""
        # lane "write": these reads must not trigger a catch-up themselves
        self.done_seq = int(self.store.query(f"SELECT max(seq) FROM `{STATE}`", lane="write").scalar() or 0)
        self.last_seq = int(self.store.query("SELECT max(INSERT_SEQ) FROM flows", lane="write").scalar() or 0)
        self._backfill()

    def _backfill(self) -> None:
        """Fill rollups new to this store (an upgrade) from every flow already rolled up elsewhere:
        batches up to the watermark and rows stored before batch numbers; later ones come with
        `catch_up()` like for every rollup."""
        new, self._new_rollups = self._new_rollups, set()
        for _view, target, select in feed_views():
            if target in new:
                log.info("rollups: filling the new %s from the stored flows", target)
                rows = f"(SELECT * FROM flows WHERE INSERT_SEQ <= {int(self.done_seq)})"
                self.store.command(f"INSERT INTO `{target}` {select.replace(f'`{FEED}`', rows)} "
                                   "SETTINGS max_partitions_per_insert_block = 0")

    def add_scope(self, scope: int, flows_where: str) -> None:
        """Give a restricted scope rollups of its own (`schema.SCOPE_ROLLUPS`): a view per kind on the
        feed keeping the flows matching `flows_where`, made while no batch is being fed, then the batches
        up to the watermark seen then (and rows without a batch number) copied from `flows`. Later
        batches reach the views through the feed: each flow row is counted once. Nothing is done
        when the scope's views exist (they and the rows are dropped together: `drop_scopes`)."""
        from flowscope.store import schema

        views = {kind: scope_view(scope, kind) for kind in schema.SCOPE_ROLLUPS}
        with self._fill_lock:
            present = {r[0] for r in self.store.query(
                "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, {p:String})",
                {"p": scope_view(scope, "")}, lane="write").rows}
            if present >= set(views.values()):
                return
            for kind, rollup in schema.SCOPE_ROLLUPS.items():
                self.store.command(
                    f"CREATE MATERIALIZED VIEW IF NOT EXISTS `{views[kind]}` TO `{rollup.scope_table(rollup.resolutions[0])}` "
                    f"AS {rollup.feed_select(scope, flows_where)}")
            upto = self.done_seq
        try:
            rows = f"(SELECT * FROM flows WHERE INSERT_SEQ <= {int(upto)})"
            for rollup in schema.SCOPE_ROLLUPS.values():
                self.store.command(f"INSERT INTO `{rollup.scope_table(rollup.resolutions[0])}` "
                                   f"{rollup.feed_select(scope, flows_where, rows)} "
                                   "SETTINGS max_partitions_per_insert_block = 0")
        except Exception:  # no half-filled rollup: the scope is made again on next use
            self._remove_scope(scope, views.values())
            raise

    def _remove_scope(self, scope: int, views) -> None:
        from flowscope.store import schema

        with self._fill_lock:
            for view in views:
                self.store.command(f"DROP VIEW IF EXISTS `{view}`")
        for rollup in schema.SCOPE_ROLLUPS.values():
            for res in rollup.resolutions:
                self.store.command(f"DELETE FROM `{rollup.scope_table(res)}` WHERE scope = {int(scope)}")

    def drop_scopes(self) -> None:
        """Drop every scope's views and rollup rows (at start: scopes are remade on first use)."""
        from flowscope.store import schema

        with self._fill_lock:
            for (name,) in self.store.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                                            "AND startsWith(name, {p:String})", {"p": SCOPE_VIEW}, lane="write").rows:
                self.store.command(f"DROP VIEW IF EXISTS `{name}`")
            for rollup in schema.SCOPE_ROLLUPS.values():
                for res in rollup.resolutions:
                    self.store.command(f"TRUNCATE TABLE IF EXISTS `{rollup.scope_table(res)}`")

    @contextmanager
    def batch(self) -> Iterator[int]:
        """The batch number of one insert into `flows`; the insert must run inside the block."""
        with self._insert_lock:
            self.last_seq += 1
            yield self.last_seq

    @property
    def pending(self) -> bool:
        return self.last_seq > self.done_seq

    def catch_up(self) -> int:
        """Roll up every stored batch not yet rolled up; returns the flow rows rolled up."""
        if not self.pending:
            return 0
        with self._fill_lock:
            with self._insert_lock:  # no insert in flight: every batch up to last_seq is stored
                hi = self.last_seq
            lo = self.done_seq
            if hi <= lo:
                return 0
            t0 = time.perf_counter()
            n = int(self.store.query("SELECT count() FROM flows WHERE INSERT_SEQ > {lo:UInt64} AND "
                                     "INSERT_SEQ <= {hi:UInt64}", {"lo": lo, "hi": hi}, lane="write").scalar() or 0)
            if n:
                cols = ", ".join(f"`{c}`" for c in feed_columns())
                self.store.command(
                    f"INSERT INTO `{FEED}` ({cols}) SELECT {cols} FROM flows WHERE INSERT_SEQ > {{lo:UInt64}} "
                    f"AND INSERT_SEQ <= {{hi:UInt64}} SETTINGS max_partitions_per_insert_block = 0",
                    {"lo": lo, "hi": hi})
            else:  # batches that stored nothing: just move the watermark
                self.store.insert(STATE, ["seq"], [[hi]])
            self.done_seq = hi
            self.filled_rows += n
            self.fill_seconds += time.perf_counter() - t0
            return n


@lru_cache(maxsize=1)
def feed_columns() -> tuple[str, ...]:
    """The stored columns of `flows` that the rollup views read (others are left out of the copy)."""
    from flowscope.store import schema

    words = set(re.findall(r"\w+", " ".join(v for v in schema.views() if FEED in v)))
    # the scopes' views (`add_scope`) keep the flows of their networks: the numeric address columns
    words |= {c for forms in schema.FLOWS.address_columns.values() for c in forms}
    for col in schema.FLOWS.columns:
        if col.alias and col.name in words:
            words |= set(re.findall(r"\w+", col.alias))
    return tuple(c.name for c in schema.FLOWS.columns if not c.alias and c.name in words)


def feed_views() -> list[tuple[str, str, str]]:
    """(view, target table, SELECT) of every materialised view reading the feed."""
    from flowscope.store import schema

    out = []
    for ddl in schema.views():
        m = re.match(r"CREATE MATERIALIZED VIEW IF NOT EXISTS `(\w+)` TO `(\w+)` AS (SELECT .*) COMMENT '", ddl, re.DOTALL)
        if m and f"`{FEED}`" in m.group(3):
            out.append((m.group(1), m.group(2), m.group(3)))
    return out


def scope_view(scope: int, kind: str) -> str:
    """The view feeding one restricted scope's rollup of `kind`."""
    return f"{SCOPE_VIEW}{int(scope):016x}_{kind}"


def schema_has_seq(columns) -> bool:
    return bool(columns) and "INSERT_SEQ" in columns


class RollupFiller:
    """Calls `catch_up()` every `interval` seconds in a thread of its own."""

    def __init__(self, feed: RollupFeed, interval: float = 2.0):
        self.feed = feed
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rollup-filler", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.feed.catch_up()
            except Exception:
                log.exception("rollups: could not catch up (will retry)")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
