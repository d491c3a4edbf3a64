"""The Store: one ClickHouse (embedded or remote) with flowscope's schema applied."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from flowscope.store import schema
from flowscope.store.backend import QueryError, Result, open_backend
from flowscope.store.rollups import RollupFeed
from flowscope.store.scopes import Scopes

log = logging.getLogger(__name__)

_ROLLUP_NAME = re.compile(r"\b(scope_)?ts_\w+_(1m|5m|1h|1d)\b|\bhourly_flows\b|\bhost_days\b|\brollup_state\b")


@dataclass(frozen=True)
class QueryLimits:
    """Limits on every query of users' SQL; tool queries get the time and memory limits too."""

    timeout_s: int = 30
    max_memory: int = 1 << 30
    max_rows_to_read: int = 0  # 0: no limit
    max_bytes_to_read: int = 0
    max_threads: int = 0  # 0: ClickHouse's default (all cores)
    per_user: int = 2  # concurrent SQL queries per user
    sql_lane: int = 2  # concurrent SQL queries in all
    tools_lane: int = 4  # concurrent tool queries in all


class Store:
    def __init__(self, data_dir: str, clickhouse_url: str | None = None, limits: QueryLimits | None = None):
        self.limits = limits or QueryLimits()
        lanes = {"write": 2, "tools": self.limits.tools_lane, "sql": self.limits.sql_lane}
        self.backend = open_backend(f"{data_dir}/clickhouse", clickhouse_url, lanes)
        self.kind = self.backend.kind
        self.scopes = Scopes(self)
        self.rollups = RollupFeed(self)
        #: rows in `flows`: counted at start, then every insert through this Store (any writer)
        self.flows_stored = 0

    def migrate(self) -> None:
        """Apply the schema: every registered table, dictionary and view (idempotent). Skipped, for a
        faster start, when the digest of all those statements is the one last applied and every
        table is there. Scope databases are remade on first use."""
        import flowscope.store.tables  # noqa: F401  (registers the tables of every service)

        statements = schema.statements()
        digest = hashlib.sha256("\n".join(statements).encode()).hexdigest()
        if not self._schema_applied(digest):
            self.rollups.prepare()
            for stmt in statements:
                self.backend.command(stmt)
            self.insert(schema.SCHEMA_STATE.name, ["digest"], [[digest]])
        self.rollups.load()
        self.flows_stored = int(self.query("SELECT count() FROM flows", lane="write").scalar() or 0)
        self.load_ndpi_lookups()
        self.scopes.reset()

    def _schema_applied(self, digest: str) -> bool:
        try:
            last, present = self.query(
                f"SELECT (SELECT argMax(digest, applied) FROM `{schema.SCHEMA_STATE.name}`), (SELECT groupArray(name) "
                "FROM system.tables WHERE database = currentDatabase())", lane="write").rows[0]
        except QueryError:  # a new store, or one older than the digest
            return False
        return last == digest and set(schema.TABLES) <= set(present)

    def load_ndpi_lookups(self) -> None:
        """Fill the nDPI lookup tables behind L7_PROTO_NAME and L7_CATEGORY_NAME."""
        try:
            from flowscope.flows.ndpi_catalog import catalog

            cat = catalog()
        except Exception as exc:
            log.warning("nDPI catalogue unavailable, L7 names will show ids: %s", exc)
            return
        self.command("TRUNCATE TABLE ndpi_protocols_table")
        self.command("TRUNCATE TABLE ndpi_categories_table")
        self.insert("ndpi_protocols_table", ["id", "name", "category"],
                    [[p.id, p.name, p.category_id] for p in cat.protocols])
        self.insert("ndpi_categories_table", ["id", "name"], [[k, v] for k, v in cat.categories.items()])
        for name in ("ndpi_protocols", "ndpi_categories"):
            self.command(f"SYSTEM RELOAD DICTIONARY {name}")

    def query(self, sql: str, params: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
              *, lane: str = "tools", database: str | None = None, lane_wait_s: float | None = None) -> Result:
        """Run a read query. Tool queries (lane "tools") get the time and memory limits by default.

        A query naming a rollup first rolls up the flows stored so far, so it sees every one."""
        if lane != "write" and self.rollups.pending and _ROLLUP_NAME.search(sql):
            self.rollups.catch_up()
        if lane == "tools":
            settings = {"max_execution_time": self.limits.timeout_s, "max_memory_usage": self.limits.max_memory,
                        **(settings or {})}
        return self.backend.query(sql, params, settings, lane=lane, database=database, wait_s=lane_wait_s)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self.backend.command(sql, params)

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        if table != "flows":
            return self.backend.insert(table, columns, rows)
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return 0
        keep = [i for i, c in enumerate(columns) if c != "INSERT_SEQ"]
        names = [columns[i] for i in keep] + ["INSERT_SEQ"]
        with self.rollups.batch() as seq:  # numbered, so the rollups take each batch exactly once
            if len(keep) == len(columns):
                n = self.backend.insert(table, names, ([*r, seq] for r in rows))
            else:
                n = self.backend.insert(table, names, ([r[i] for i in keep] + [seq] for r in rows))
            self.flows_stored += n
            return n

    def insert_columns(self, table: str, names: Sequence[str], chunks: Sequence[tuple[int, Sequence[Any]]]) -> int:
        """Insert chunks of columns: (rows, one sequence or shared value per name). A big batch costs
        a fraction of `insert` (no per-row encoding in Python). `flows` batches are numbered as in `insert`."""
        if not sum(n for n, _ in chunks):
            return 0
        types = {c.name: c.type for c in schema.TABLES[table].columns}
        if table == "flows":
            names = [*names, "INSERT_SEQ"]
            with self.rollups.batch() as seq:
                n = self.backend.insert_columns(table, names, [(k, [*cols, seq]) for k, cols in chunks],
                                                [types[c] for c in names])
                self.flows_stored += n
                return n
        return self.backend.insert_columns(table, names, chunks, [types[c] for c in names])

    def insert_dicts(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert dict rows; missing columns take their DEFAULT."""
        if not rows:
            return 0
        stored = schema.TABLES[table].column_names()
        present = [c for c in stored if any(c in r for r in rows[:50])] or stored
        return self.insert(table, present, [[r.get(c) for c in present] for r in rows])

    def close(self) -> None:
        try:
            self.rollups.catch_up()  # e.g. `flowscope ingest` ending: its flows are in the rollups
        except Exception:
            log.exception("rollups: could not catch up before closing")
        self.backend.close()
