"""The guard in front of user SQL (the `query` tool, charts and policies).

The SQL is parsed with sqlglot's ClickHouse dialect and only read statements over flowscope's
own tables get through. What runs is the SQL regenerated from the checked tree, never the text
as sent. For a user with allowed networks, every table reference becomes a subquery filtered
to those networks, so no SQL can see outside them.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from flowscope.store import schema
from flowscope.store.backend import QueryError

logging.getLogger("sqlglot").setLevel(logging.ERROR)

SAFE_SYSTEM_TABLES = {"one", "numbers", "columns", "tables", "functions", "data_type_families"}
SAFE_TABLE_FUNCTIONS = {"numbers", "zeros", "generate_series"}
DENIED_FUNCTIONS = {
    "file", "url", "remote", "remotesecure", "s3", "s3cluster", "hdfs", "mysql", "postgresql", "jdbc", "odbc",
    "input", "cluster", "clusterallreplicas", "executable", "azureblobstorage", "gcs", "mongodb", "redis",
    "sqlite", "iceberg", "deltalake", "hudi", "python", "arrowflight", "view", "merge", "dictionary", "url",
    "urlcluster", "filecluster", "loop", "fuzzjson", "fuzzquery", "format", "ytsaurus", "hive", "paimon",
    "getsetting", "getmergetreesetting", "currentdatabase", "hostname", "getserverport",
}
EXPLAIN_RE = re.compile(r"^\s*EXPLAIN(\s+(AST|SYNTAX|QUERY\s+TREE|PLAN|PIPELINE|ESTIMATE|TABLE\s+OVERRIDE))?\s+",
                        re.IGNORECASE)
SHOW_RE = re.compile(r"^\s*SHOW\s+(TABLES|DICTIONARIES)\s*;?\s*$", re.IGNORECASE)


class GuardError(Exception):
    """The SQL was refused; the message says why and what to do instead."""


@dataclass
class QueryOutcome:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_ms: float
    sql: str


def _hint() -> str:
    names = ", ".join(sorted(schema.TABLES))
    return f"Allowed tables: {names}. Use list_tables and describe_table to see their columns."


def guard_sql(sql: str, principal) -> str:
    """Return the SQL to run for `principal`, or raise GuardError."""
    if not isinstance(sql, str) or not sql.strip():
        raise GuardError("empty SQL: send one SELECT statement, e.g. SELECT count() FROM flows")
    if len(sql) > 20000:
        raise GuardError("SQL longer than 20000 characters; simplify the query")
    if SHOW_RE.match(sql):
        return "SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN ({names})".format(
            names=", ".join(schema.quote(t) for t in sorted(_visible_tables(principal))))
    explain = EXPLAIN_RE.match(sql)
    if explain:
        return explain.group(0).strip() + " " + guard_sql(sql[explain.end():], principal)
    try:
        statements = [s for s in sqlglot.parse(sql, read="clickhouse") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = str(exc).splitlines()[0]
        raise GuardError(f"could not parse the SQL ({first}). Send one ClickHouse SELECT statement.") from None
    if len(statements) != 1:
        raise GuardError("send exactly one statement (no ';' separated statements)")
    tree = statements[0]
    if isinstance(tree, exp.Describe):
        return _describe(tree, principal)
    if not isinstance(tree, (exp.Select, exp.SetOperation, exp.Subquery)) and not (
            isinstance(tree, exp.With)):
        kind = type(tree).__name__.upper()
        raise GuardError(f"only SELECT, WITH, DESCRIBE, SHOW TABLES and EXPLAIN are allowed (got {kind})")
    _check_tree(tree, principal)
    tree = _scope_tables(tree, principal)
    return tree.sql(dialect="clickhouse")


def _visible_tables(principal) -> list[str]:
    return [t.name for t in schema.TABLES.values() if _table_allowed(t, principal) is None]


def _table_allowed(table: schema.Table, principal) -> str | None:
    if table.admin_only and not principal.is_admin:
        return f"table {table.name} is for admins only"
    if principal.restricted and not table.network_columns and not table.public:
        return f"table {table.name} cannot be limited to your allowed networks, so it is not available to you"
    return None


def _describe(tree: exp.Describe, principal) -> str:
    target = tree.this
    if not isinstance(target, exp.Table) or target.db or not isinstance(target.this, exp.Identifier):
        raise GuardError("DESCRIBE takes one flowscope table name, e.g. DESCRIBE TABLE flows")
    _check_table_name(target.name, principal)
    return f"DESCRIBE TABLE `{target.name}`"


def _check_table_name(name: str, principal) -> None:
    table = schema.TABLES.get(name)
    if table is None:
        raise GuardError(f"unknown table {name!r}. {_hint()}")
    reason = _table_allowed(table, principal)
    if reason:
        raise GuardError(reason)


def _check_tree(tree: exp.Expression, principal) -> None:
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for node in tree.walk():
        if node.args.get("settings"):
            raise GuardError("SETTINGS clauses are not allowed; flowscope sets limits itself")
        if node.args.get("format"):
            raise GuardError("FORMAT clauses are not allowed; results come back as JSON")
        if isinstance(node, (exp.Insert, exp.Delete, exp.Update, exp.Drop, exp.Create, exp.Alter, exp.Command,
                             exp.Merge, exp.TruncateTable, exp.Set)):
            raise GuardError("only read queries are allowed")
        if isinstance(node, (exp.Func)):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in DENIED_FUNCTIONS:
                raise GuardError(f"function {name}() is not allowed")
        if isinstance(node, exp.Table):
            _check_table(node, ctes, principal)


def _check_table(node: exp.Table, ctes: set[str], principal) -> None:
    if not isinstance(node.this, exp.Identifier):
        fn = node.this
        name = (fn.name if isinstance(fn, exp.Anonymous) else type(fn).__name__).lower()
        if name in SAFE_TABLE_FUNCTIONS:
            return
        raise GuardError(f"table function {name}() is not allowed; query flowscope's tables. {_hint()}")
    if node.args.get("catalog"):
        raise GuardError("other databases are not allowed")
    db = node.db
    if db:
        if db.lower() == "system" and node.name.lower() in SAFE_SYSTEM_TABLES:
            return
        if db.lower() == "system":
            raise GuardError(f"system.{node.name} is not allowed; allowed system tables: "
                             f"{', '.join(sorted(SAFE_SYSTEM_TABLES))}")
        raise GuardError(f"other databases are not allowed ({db}.{node.name}). {_hint()}")
    if node.name in ctes:
        return
    _check_table_name(node.name, principal)


def _scope_tables(tree: exp.Expression, principal) -> exp.Expression:
    if not principal.restricted:
        return tree
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}

    def rewrite(node: exp.Expression) -> exp.Expression:
        if (isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier) and not node.db
                and node.name not in ctes and node.name in schema.TABLES):
            table = schema.TABLES[node.name]
            if not table.network_columns:
                return node
            cols = ", ".join(["*"] + table.alias_names())
            where = principal.sql_filter(table.network_columns, table.address_columns)
            sub = sqlglot.parse_one(f"(SELECT {cols} FROM `{table.name}` WHERE {where})", read="clickhouse")
            alias = node.alias or table.name
            return exp.Subquery(this=sub.this if isinstance(sub, exp.Subquery) else sub,
                                alias=exp.TableAlias(this=exp.to_identifier(alias)))
        return node

    return tree.transform(rewrite)


def run_guarded(app, principal, sql: str, max_rows: int = 1000, timeout_s: int | None = None) -> QueryOutcome:
    """Guard then run `sql` read-only with time and size limits."""
    final = guard_sql(sql, principal)
    timeout = timeout_s or app.config.query_timeout_s
    settings = {
        "readonly": 2,
        "max_execution_time": timeout,
        "timeout_overflow_mode": "throw",
        "max_result_rows": max_rows + 1,
        "max_result_bytes": 64 * 1024 * 1024,
        "result_overflow_mode": "break",
    }
    start = time.monotonic()
    try:
        result = app.store.query(final, settings=settings)
    except QueryError as exc:
        text = str(exc)
        if exc.code == 159 or "TIMEOUT_EXCEEDED" in text:
            raise GuardError(f"the query ran longer than {timeout} s and was stopped; add a time range "
                             f"(FIRST_SEEN >= now() - INTERVAL 1 HOUR) or aggregate more") from None
        raise GuardError("ClickHouse refused the query: " + _short(text)) from None
    elapsed = (time.monotonic() - start) * 1000
    rows = result.rows
    truncated = len(rows) > max_rows
    return QueryOutcome(result.columns, rows[:max_rows], truncated, round(elapsed, 2), final)


def _short(text: str) -> str:
    text = text.replace("DB::Exception: ", "")
    text = re.sub(r"\s*\(version [^)]*\)", "", text)
    text = re.sub(r"Stack trace.*", "", text, flags=re.S)
    return text.strip()[:500]
