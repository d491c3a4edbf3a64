"""The guard in front of user SQL (the `query` tool, charts and policies).

Three walls, outermost first:
1. sqlglot (ClickHouse dialect) admits one read statement without SETTINGS, FORMAT or INTO
   OUTFILE, and names only flowscope tables or a few system tables the principal may read.
2. ClickHouse's own parse tree (`EXPLAIN AST` of exactly the SQL that will run) is checked: every
   function must be on the allow-list (`sql_functions`), table functions only generate rows,
   and no identifier names a database.
3. The statement runs where the principal's scope puts it (`scopes`): its current database holds
   only filtered views, and `additional_table_filters` filter the base tables, so ClickHouse
   itself resolves every name and applies the allowed networks, whatever the SQL says.
Every query runs read-only with limits on time, memory, rows read and result size, in the `sql`
lane, with a cap on concurrent queries per user.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from flowscope.store import schema, sql_functions
from flowscope.store.backend import LaneBusy, QueryError
from flowscope.store.scopes import readable_tables, table_refusal

log = logging.getLogger(__name__)
logging.getLogger("sqlglot").setLevel(logging.ERROR)

PUBLIC_SYSTEM_TABLES = {"one", "numbers", "functions", "data_type_families"}
#: filtered to the principal's own scope database by the engine (see scopes.Scopes)
SCOPED_SYSTEM_TABLES = {"tables", "columns"}
EXPLAIN_RE = re.compile(r"^\s*EXPLAIN(\s+(AST|SYNTAX|QUERY\s+TREE|PLAN|PIPELINE|ESTIMATE))?\s+", re.IGNORECASE)
SHOW_RE = re.compile(r"^\s*SHOW\s+TABLES\s*;?\s*$", re.IGNORECASE)
AST_LINE = re.compile(r"^\s*(Function|TableIdentifier|Identifier) ([^\s(]+)")
DATABASE_NAMES = {"system", "information_schema", "default"}


class GuardError(Exception):
    """The SQL was refused; the message says why and what to do instead."""


@dataclass
class QueryOutcome:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_ms: float
    sql: str


def _hint(principal) -> str:
    names = ", ".join(sorted(t.name for t in readable_tables(principal)))
    return f"Tables you may query: {names}. Use list_tables and describe_table to see their columns."


def guard_sql(sql: str, principal) -> str:
    """Wall 1: return the SQL to run for `principal` (a Principal, or a Scope) regenerated from the
    checked tree."""
    principal = _principal_of(principal)
    if not isinstance(sql, str) or not sql.strip():
        raise GuardError("empty SQL: send one SELECT statement, e.g. SELECT count() FROM flows")
    if len(sql) > 20000:
        raise GuardError("SQL longer than 20000 characters; simplify the query")
    if SHOW_RE.match(sql):
        # system.tables is filtered to the principal's own scope database by the engine
        return "SELECT DISTINCT name FROM system.tables WHERE name IN ({names}) ORDER BY name".format(
            names=", ".join(schema.quote(t.name) for t in readable_tables(principal)) or "''")
    explain = EXPLAIN_RE.match(sql)
    if explain:
        return explain.group(0).strip() + " " + guard_sql(sql[explain.end():], principal)
    try:
        statements = [s for s in sqlglot.parse(sql, read="clickhouse") if s is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise GuardError(f"could not parse the SQL ({first}). Send one ClickHouse SELECT statement.") from None
    except RecursionError:
        raise GuardError("the SQL is nested too deeply; simplify it") from None
    if len(statements) != 1:
        raise GuardError("send exactly one statement (no ';' separated statements)")
    tree = statements[0]
    if isinstance(tree, exp.Describe):
        return _describe(tree, principal)
    if not isinstance(tree, (exp.Select, exp.SetOperation, exp.Subquery, exp.With)):
        kind = type(tree).__name__.upper()
        raise GuardError(f"only SELECT, WITH, DESCRIBE, SHOW TABLES and EXPLAIN are allowed (got {kind})")
    _check_tree(tree, principal)
    try:
        return tree.sql(dialect="clickhouse")
    except RecursionError:
        raise GuardError("the SQL is nested too deeply; simplify it") from None


def _principal_of(who):
    return getattr(who, "principal", who)


def _describe(tree: exp.Describe, principal) -> str:
    target = tree.this
    if not isinstance(target, exp.Table) or target.db or not isinstance(target.this, exp.Identifier):
        raise GuardError("DESCRIBE takes one flowscope table name, e.g. DESCRIBE TABLE flows")
    _check_table_name(target.name, principal)
    return f"DESCRIBE TABLE `{target.name}`"


def _check_table_name(name: str, principal) -> None:
    table = schema.TABLES.get(name)
    if table is None:
        raise GuardError(f"unknown table {name!r}. {_hint(principal)}")
    reason = table_refusal(table, principal)
    if reason:
        raise GuardError(reason)


def _check_tree(tree: exp.Expression, principal) -> None:
    for node in tree.walk():
        if node.args.get("settings"):
            raise GuardError("SETTINGS clauses are not allowed; flowscope sets limits itself")
        if node.args.get("format"):
            raise GuardError("FORMAT clauses are not allowed; results come back as JSON")
        if isinstance(node, (exp.Insert, exp.Delete, exp.Update, exp.Drop, exp.Create, exp.Alter, exp.Command,
                             exp.Merge, exp.TruncateTable, exp.Set, exp.Into)):
            raise GuardError("only read queries are allowed")
        if isinstance(node, exp.Table):
            _check_table(node, principal)
        elif (isinstance(node, exp.Anonymous) and not isinstance(node.parent, exp.Table)
              and not sql_functions.allowed(node.name)):
            raise GuardError(f"function {node.name}() is not allowed; flowscope allows aggregates, arithmetic, "
                             "string, date/time, IP, array, conditional and hashing functions")


def _check_table(node: exp.Table, principal) -> None:
    if not isinstance(node.this, exp.Identifier):  # a table function (wall 2 checks ClickHouse's own tree too)
        fn = node.this
        name = (fn.name if isinstance(fn, exp.Anonymous) else type(fn).__name__).lower()
        if name not in sql_functions.TABLE_FUNCTIONS:
            raise GuardError(f"table function {name}() is not allowed; query flowscope's tables. {_hint(principal)}")
        return
    if node.args.get("catalog"):
        raise GuardError("other databases are not allowed")
    if node.db:
        _check_system_table(node.db, node.name, principal)
        return
    # An unqualified name: a flowscope table or a CTE; ClickHouse resolves it in the scope database.
    table = schema.TABLES.get(node.name)
    if table is not None and table_refusal(table, principal):
        raise GuardError(table_refusal(table, principal))


def _check_system_table(db: str, name: str, principal) -> None:
    allowed = PUBLIC_SYSTEM_TABLES | SCOPED_SYSTEM_TABLES
    if db.lower() != "system":
        raise GuardError(f"other databases are not allowed ({db}.{name}): name flowscope tables without a "
                         f"database. {_hint(principal)}")
    if name.lower() not in allowed:
        raise GuardError(f"system.{name} is not allowed; allowed system tables: {', '.join(sorted(allowed))}")


def check_engine_tree(app, principal, sql: str, database: str | None) -> None:
    """Wall 2: ClickHouse's parse tree of exactly `sql` names only allowed functions and tables."""
    try:
        res = app.store.query("EXPLAIN AST " + sql, database=database)  # parsing only: the small lane
    except QueryError as exc:
        if exc.code == 81:
            raise _UnknownDatabase() from None
        raise GuardError(_public_message(str(exc), app, principal, sql)) from None
    databases = DATABASE_NAMES | {app.store.backend.base_database.lower()}
    for (line,) in res.rows:
        m = AST_LINE.match(str(line))
        if not m:
            continue
        kind, name = m.groups()
        if kind == "Function":
            if not (sql_functions.allowed(name) or name.lower() in sql_functions.TABLE_FUNCTIONS):
                raise GuardError(f"function {name}() is not allowed; flowscope allows aggregates, arithmetic, "
                                 "string, date/time, IP, array, conditional and hashing functions")
            continue
        parts = name.strip("`").split(".")
        if len(parts) > 1 and (parts[0].lower() in databases or parts[0].lower().startswith("fs_scope_")):
            if kind == "TableIdentifier" and parts[0].lower() == "system":
                _check_system_table(parts[0], parts[1], principal)
                continue
            raise GuardError(f"{name}: name flowscope tables without a database. {_hint(principal)}")


class _UnknownDatabase(Exception):
    pass


class UserSlots:
    """At most `limit` queries at once per user."""

    def __init__(self):
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, user: str, limit: int) -> None:
        with self._lock:
            if self._running.get(user, 0) >= limit:
                raise GuardError(f"you already have {limit} queries running (the limit per user); wait for one "
                                 "to finish, or make them cheaper (a time range, fewer columns)")
            self._running[user] = self._running.get(user, 0) + 1

    def release(self, user: str) -> None:
        with self._lock:
            self._running[user] -= 1


SLOTS = UserSlots()


def run_guarded(app, principal, sql: str, max_rows: int = 1000, timeout_s: int | None = None) -> QueryOutcome:
    """Guard then run `sql` for `principal` (a Principal, or a Scope) within its scope and the limits."""
    principal = _principal_of(principal)
    final = guard_sql(sql, principal)
    scope = app.store.scopes.for_principal(principal)
    try:
        check_engine_tree(app, principal, final, scope.database)
    except _UnknownDatabase:  # a shared ClickHouse server: another flowscope process reset the scopes
        app.store.scopes.forget(principal)
        scope = app.store.scopes.for_principal(principal)
        check_engine_tree(app, principal, final, scope.database)
    limits = app.store.limits
    timeout = timeout_s or limits.timeout_s
    settings: dict[str, Any] = {
        "max_execution_time": timeout,
        "timeout_overflow_mode": "throw",
        "max_memory_usage": limits.max_memory,
        "max_rows_to_read": limits.max_rows_to_read,
        "max_bytes_to_read": limits.max_bytes_to_read,
        "read_overflow_mode": "throw",
        "max_result_rows": max_rows + 1,
        "max_result_bytes": 64 * 1024 * 1024,
        "result_overflow_mode": "break",
    }
    if limits.max_threads:
        settings["max_threads"] = limits.max_threads
    if scope.table_filters:
        settings["additional_table_filters"] = scope.table_filters
    settings["readonly"] = 1
    SLOTS.acquire(principal.name, limits.per_user)
    start = time.monotonic()
    try:
        result = app.store.query(final, settings=settings, lane="sql", database=scope.database,
                                 lane_wait_s=timeout)
    except LaneBusy:
        raise GuardError("the server is busy with other queries; try again in a moment") from None
    except QueryError as exc:
        text = str(exc)
        if exc.code == 159 or "TIMEOUT_EXCEEDED" in text:
            raise GuardError(f"the query ran longer than {timeout} s and was stopped; add a time range "
                             f"(FIRST_SEEN >= now() - INTERVAL 1 HOUR) or aggregate more") from None
        if exc.code == 241 or "MEMORY_LIMIT_EXCEEDED" in text:
            raise GuardError(f"the query needed more than {limits.max_memory // 2**20} MiB of memory and was "
                             "stopped; aggregate on fewer keys, add a time range or a LIMIT") from None
        if exc.code == 158 or "TOO_MANY_ROWS" in text or "TOO_MANY_BYTES" in text:
            raise GuardError("the query would read more rows than allowed; add a time range") from None
        raise GuardError(_public_message(text, app, principal, final)) from None
    finally:
        SLOTS.release(principal.name)
    elapsed = (time.monotonic() - start) * 1000
    rows = result.rows
    truncated = len(rows) > max_rows
    return QueryOutcome(result.columns, rows[:max_rows], truncated, round(elapsed, 2), final)


_CUT = re.compile(r"(\.?\s+in scope |\s+while processing|: while executing|\. Stack trace| \(version |\n)",
                  re.IGNORECASE)


def _public_message(text: str, app, principal, sql: str) -> str:
    """A short reason for the user; the whole text (with internal SQL) goes to the log under an id."""
    error_id = secrets.token_hex(4)
    log.warning("query error %s for %s: %s | SQL: %s", error_id, principal.name, text, sql)
    code = re.search(r"\(([A-Z_]{4,})\)\s*$", text.strip())
    hint = re.search(r"Maybe you meant: \[[^\]]{0,200}\]", text)
    short = re.sub(r"^.*?DB::Exception: ", "", text, flags=re.S)
    short = _CUT.split(short, 1)[0]
    short = re.sub(r"`?fs_scope_[0-9a-f]+`?\.", "", short).strip().rstrip(".")[:300]
    parts = [f"ClickHouse refused the query: {short}"]
    if hint and hint.group(0) not in short:
        parts.append(hint.group(0))
    if code and code.group(1) not in short:
        parts.append(f"({code.group(1)})")
    return " ".join(parts) + f" [error id {error_id}]"
