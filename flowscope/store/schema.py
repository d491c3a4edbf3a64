"""The schema registry: how a table is declared, and the DDL that `Store.migrate` applies.

Each domain declares its tables in its own module under `flowscope/store/tables/` (flows,
hosts, snmp, timeseries, alerts, monitoring, collector, audit) with `register(Table(...))`,
`register_view(...)` and `register_dictionary(...)`; `statements()` gives them all, in order,
to `Store.migrate`, the one place that applies them (same DDL for chDB and a ClickHouse server).
Every table and column carries a COMMENT, so `describe_table` can explain it to an agent.

`schema.TABLES` (every table) and each domain's names (`schema.FLOWS`, `schema.TS_ROLLUPS`, ...)
load the domain modules on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str
    alias: str | None = None  # ALIAS expression: computed on read, never stored
    default: str | None = None
    codec: str | None = None  # compression, e.g. "Delta, ZSTD(1)"; else the table's

    def ddl(self, codec: str | None = None) -> str:
        text = f"`{self.name}` {self.type}"
        if self.alias:
            text += f" ALIAS {self.alias}"
        elif self.default:
            text += f" DEFAULT {self.default}"
        text += f" COMMENT {quote(self.comment)}"
        codec = None if self.alias else (self.codec or codec)
        return text + (f" CODEC({codec})" if codec else "")


@dataclass(frozen=True)
class Table:
    name: str
    comment: str
    columns: tuple[Column, ...]
    engine: str = "MergeTree"
    order_by: str = "tuple()"
    partition_by: str | None = None
    ttl: str | None = None
    #: columns holding IP strings, used to scope rows to a user's allowed networks
    network_columns: tuple[str, ...] = ()
    #: network columns that are ALIASes of numeric ones: name -> (version, IPv4 UInt32, IPv6)
    #: columns, so that network filters compare numbers instead of formatting text
    address_columns: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: readable by users with allowed networks although it has no network column (lookups)
    public: bool = False
    #: only admins may read it (e.g. the audit log)
    admin_only: bool = False
    #: rows belong to one restricted scope each (this UInt64 column): a scope reads only its own
    scope_column: str | None = None
    extra: tuple[str, ...] = field(default=())
    #: compression of the columns without a codec of their own (None: the server's, LZ4)
    codec: str | None = None

    def ddl(self) -> str:
        cols = ",\n  ".join(c.ddl(self.codec) for c in self.columns)
        parts = [f"CREATE TABLE IF NOT EXISTS `{self.name}` (\n  {cols}\n) ENGINE = {self.engine}"]
        if self.partition_by:
            parts.append(f"PARTITION BY {self.partition_by}")
        parts.append(f"ORDER BY {self.order_by}")
        if self.ttl:
            parts.append(f"TTL {self.ttl}")
        parts.extend(self.extra)
        parts.append(f"COMMENT {quote(self.comment)}")
        return "\n".join(parts)

    def column_names(self, include_alias: bool = False) -> list[str]:
        return [c.name for c in self.columns if include_alias or not c.alias]

    def alias_names(self) -> list[str]:
        return [c.name for c in self.columns if c.alias]


def quote(text: str) -> str:
    """A ClickHouse string literal for text we wrote ourselves (comments, CIDRs we normalised)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_TABLES: dict[str, Table] = {}
#: extra DDL run after every table exists, e.g. materialised views (`register_view`)
_VIEWS: list[str] = []
#: (DDL, table it reads): dictionaries are created after their table, before the other tables
_DICTIONARIES: list[tuple[str, Table]] = []
DOMAINS = "flowscope.store.tables"


def register(table: Table) -> Table:
    _TABLES[table.name] = table
    return table


#: the digest of the DDL `Store.migrate` last applied: an unchanged schema is not applied again
SCHEMA_STATE = register(Table(
    name="schema_state",
    comment="Digest of the DDL last applied at start; a schema that changed is applied again.",
    columns=(Column("digest", "String", "SHA-256 of every DDL statement of the schema, in order"),
             Column("applied", "DateTime64(3, 'UTC')", "When it was applied", default="now64(3)")),
    order_by="applied",
    admin_only=True,
))


def register_view(ddl: str) -> str:
    """Register a `CREATE ... VIEW IF NOT EXISTS` statement; it runs after all tables."""
    _VIEWS.append(ddl)
    return ddl


def register_dictionary(ddl: str, source: Table) -> str:
    """Register a `CREATE DICTIONARY IF NOT EXISTS` over `source`; other tables' ALIASes may use it."""
    _DICTIONARIES.append((ddl, source))
    return ddl


def views() -> list[str]:
    """The statements that run after every table exists (views, ALTERs, the rollup feed), in order."""
    importlib.import_module(DOMAINS)  # each domain registers its views when imported
    return list(_VIEWS)


def statements() -> list[str]:
    """All DDL statements, in order: dictionary tables, dictionaries, the other tables, views."""
    importlib.import_module(DOMAINS)  # each domain registers its tables when imported
    first = [source for _, source in _DICTIONARIES]
    rest = [t for t in _TABLES.values() if t not in first]
    return [t.ddl() for t in first] + [ddl for ddl, _ in _DICTIONARIES] + [t.ddl() for t in rest] + list(_VIEWS)


def C(name: str, type_: str, comment: str, **kw) -> Column:
    return Column(name, type_, comment, **kw)


def columns(text: str) -> tuple[Column, ...]:
    """Plain columns written as a text table, one a line: name, ClickHouse type, comment.
    A type may hold spaces inside parentheses, e.g. DateTime64(3, 'UTC')."""
    out = []
    for line in text.strip().splitlines():
        name, rest = line.split(None, 1)
        depth = end = 0
        while end < len(rest) and (depth or not rest[end].isspace()):
            depth += {"(": 1, ")": -1}.get(rest[end], 0)
            end += 1
        out.append(Column(name, rest[:end], rest[end:].strip()))
    return tuple(out)


def __getattr__(name: str) -> Any:
    """`TABLES` and the domain modules' names, loading the domains on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    domains = importlib.import_module(DOMAINS)
    if name == "TABLES":
        return _TABLES
    for module in domains.MODULES:
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
