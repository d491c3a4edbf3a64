"""The Store: one ClickHouse (embedded or remote) with flowscope's schema applied."""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping, Sequence

from flowscope.store import schema
from flowscope.store.backend import Result, open_backend

log = logging.getLogger(__name__)


class Store:
    def __init__(self, data_dir: str, clickhouse_url: str | None = None):
        self.backend = open_backend(f"{data_dir}/clickhouse", clickhouse_url)
        self.kind = self.backend.kind

    def migrate(self) -> None:
        """Create every registered table (idempotent)."""
        import flowscope.store.tables  # noqa: F401  (registers the tables of every service)

        for stmt in schema.statements():
            self.backend.command(stmt)

    def query(self, sql: str, params: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None) -> Result:
        return self.backend.query(sql, params, settings)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self.backend.command(sql, params)

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        return self.backend.insert(table, columns, rows)

    def insert_dicts(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert dict rows; missing columns take their DEFAULT."""
        if not rows:
            return 0
        stored = schema.TABLES[table].column_names()
        present = [c for c in stored if any(c in r for r in rows[:50])] or stored
        return self.backend.insert(table, present, ([r.get(c) for c in present] for r in rows))

    def close(self) -> None:
        self.backend.close()
