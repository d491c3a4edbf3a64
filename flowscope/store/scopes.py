"""What a principal's SQL can name, decided by ClickHouse rather than by reading the SQL.

Every non-admin scope (a role and a set of allowed networks) gets a database of its own,
`fs_scope_<hash>`, holding one view per table the scope may read; a view of a table with
network columns keeps only rows with an address inside the allowed networks, compared on the
numeric address columns. A principal's SQL runs on a connection whose current database is that
database, so every unqualified name (a table, a CTE named like one, a bare table after IN) is
resolved there by ClickHouse itself.

A second wall covers what is named with a database: every query of a restricted principal
carries `additional_table_filters` for every flowscope table in the base database (the network
filter, or `0` for a table the scope may not read) and for `system.tables` and `system.columns`
(only the scope's own database), so even `x IN default.audit_log` reads nothing it should not.

Restricted scopes also get rollups of their own (`schema.SCOPE_ROLLUPS`: scope_ts_<kind>_<res>,
rows keyed by the scope's id, filled by views with the scope's `flows` filter, see
`RollupFeed.add_scope`), read through the scope database's view of those tables (`scope = id`).

The scope databases and rollups are derived data: they are dropped at start (`reset`) and remade
on first use (the rollups backfilled from `flows`), so a schema change reaches them.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from flowscope.store import schema

PREFIX = "fs_scope_"


@dataclass(frozen=True)
class Scope:
    #: the current database for the principal's SQL; None = the base database (unrestricted admin)
    database: str | None
    #: additional_table_filters for every query of this principal (empty for an unrestricted admin)
    table_filters: dict[str, str]
    #: tables the principal may read, by name
    tables: tuple[str, ...]


def table_refusal(table: schema.Table, principal) -> str | None:
    """Why `principal` may not read `table`, or None when it may."""
    if table.admin_only and not principal.is_admin:
        return f"table {table.name} is for admins only"
    if principal.restricted and not table.network_columns and not table.public and not table.scope_column:
        return f"table {table.name} cannot be limited to your allowed networks, so it is not available to you"
    return None


def readable_tables(principal) -> list[schema.Table]:
    return [t for t in schema.TABLES.values() if table_refusal(t, principal) is None]


def row_filter(table: schema.Table, principal) -> str:
    """The SQL condition a scope view applies to `table` ('1' when nothing is filtered)."""
    if principal.restricted and table.scope_column:
        return f"`{table.scope_column}` = {scope_id(principal)}"
    if not principal.restricted or not table.network_columns:
        return "1"
    return principal.sql_filter(table.network_columns, table.address_columns)


def _key(principal) -> tuple:
    return (principal.is_admin, tuple(sorted(str(n) for n in principal.allowed_networks)))


def scope_id(principal) -> int:
    """The number of the principal's scope (its database is fs_scope_<hex>; its rollup rows `scope`)."""
    return int(hashlib.sha256(repr(_key(principal)).encode()).hexdigest()[:16], 16)


class Scopes:
    def __init__(self, store):
        self.store = store
        self._ready: dict[tuple, Scope] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Drop every scope database and scope rollup (remade on first use, from the current schema)."""
        res = self.store.query("SELECT name FROM system.databases WHERE startsWith(name, {p:String})",
                               {"p": PREFIX})
        for (name,) in res.rows:
            self.store.command(f"DROP DATABASE IF EXISTS `{name}`")
            self.store.backend.pool.forget(name)
        self.store.rollups.drop_scopes()
        with self._lock:
            self._ready.clear()

    def for_principal(self, principal) -> Scope:
        key = _key(principal)
        scope = self._ready.get(key)
        if scope is None:
            with self._lock:
                scope = self._ready.get(key) or self._build(principal)
                self._ready[key] = scope
        return scope

    def forget(self, principal) -> None:
        """Remake this principal's scope on next use (e.g. another process dropped its database)."""
        with self._lock:
            self._ready.pop(_key(principal), None)

    def _build(self, principal) -> Scope:
        base = self.store.backend.base_database
        readable = readable_tables(principal)
        if principal.is_admin and not principal.restricted:
            return Scope(None, {}, tuple(t.name for t in readable))
        database = f"{PREFIX}{scope_id(principal):016x}"
        if principal.restricted:
            self.store.rollups.add_scope(scope_id(principal), row_filter(schema.FLOWS, principal))
        self.store.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        for table in readable:
            columns = ", ".join(["*"] + [f"`{c}`" for c in table.alias_names()])
            self.store.command(
                f"CREATE OR REPLACE VIEW `{database}`.`{table.name}` AS SELECT {columns} "
                f"FROM `{base}`.`{table.name}` WHERE {row_filter(table, principal)}")
        filters = {}
        readable_names = {t.name for t in readable}
        for table in schema.TABLES.values():
            condition = row_filter(table, principal) if table.name in readable_names else "0"
            if condition != "1":
                filters[f"{base}.{table.name}"] = condition
        own = schema.quote(database)
        filters["system.tables"] = f"database = {own}"
        filters["system.columns"] = f"database = {own}"
        return Scope(database, filters, tuple(sorted(readable_names)))
