"""Two ways to reach ClickHouse behind one small interface.

`ChdbBackend` embeds chDB on a data directory (the default: nothing to install);
`ServerBackend` talks to a ClickHouse server or cluster through clickhouse-connect.
Both take the same SQL, with values passed as `{name:Type}` parameters, never pasted.

Each query borrows a connection of its own from a pool, in a *lane*: the writer, flowscope's
own tool queries and users' SQL each have a bounded lane, so a heavy user query never queues a
small lookup. A connection is opened in a given current database (a principal's scope database,
see `flowscope.store.scopes`), so ClickHouse itself resolves the names a statement uses. A
connection whose query failed is closed, never reused: chDB keeps the unread output of a failed
query on its connection and hands it to the next query (the root cause of one user's error
breaking the next user's call).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    columns: list[str]
    rows: list[list[Any]]
    types: list[str] = field(default_factory=list)
    #: rows read and elapsed seconds, when the engine reports them
    stats: dict[str, Any] = field(default_factory=dict)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


class QueryError(Exception):
    """ClickHouse refused or failed a query; `code` is ClickHouse's error code when known."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class LaneBusy(RuntimeError):
    """A lane stayed full for longer than the caller would wait."""


# A batch may span many days (old captures, exporters with bad clocks): one part per day is fine,
# a refused batch is not.
INSERT_SETTINGS = "async_insert = 0, max_partitions_per_insert_block = 0"

#: lane name -> how many queries may run in it at once
DEFAULT_LANES = {"write": 2, "tools": 4, "sql": 2}


def sql_literal(value: Any) -> str:
    """A ClickHouse literal for a setting value: numbers, strings, and maps of strings."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{sql_literal(str(k))}: {sql_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"unsupported setting value {value!r}")


def settings_clause(settings: dict[str, Any] | None) -> str:
    if not settings:
        return ""
    for name in settings:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"bad setting name {name!r}")
    return " SETTINGS " + ", ".join(f"{k} = {sql_literal(v)}" for k, v in settings.items())


def _error_code(text: str) -> int | None:
    """ClickHouse's error code from a message containing 'Code: N.' (chDB and server alike)."""
    m = re.search(r"Code: (\d+)\.", text)
    return int(m.group(1)) if m else None


class StoreUnavailable(RuntimeError):
    """The database could not be opened; the message says what to do."""


class Pool:
    """Connections by current database, handed out one query at a time, within lanes."""

    def __init__(self, opener: Callable[[str | None], Any], closer: Callable[[Any], None],
                 lanes: dict[str, int] | None = None, max_idle: int = 4):
        self._open, self._close = opener, closer
        self._idle: dict[str | None, list[Any]] = {}
        self._lock = threading.Lock()
        self._max_idle = max_idle
        self.lanes = {name: threading.BoundedSemaphore(size) for name, size in (lanes or DEFAULT_LANES).items()}

    @contextmanager
    def connection(self, lane: str, database: str | None, wait_s: float | None = None) -> Iterator[Any]:
        gate = self.lanes[lane]
        if not gate.acquire(timeout=wait_s):
            raise LaneBusy(lane)
        try:
            with self._lock:
                idle = self._idle.get(database)
                conn = idle.pop() if idle else None
            if conn is None:
                conn = self._open(database)
            healthy = False
            try:
                yield conn
                healthy = True
            finally:
                self._give_back(conn, database, healthy)
        finally:
            gate.release()

    def _give_back(self, conn: Any, database: str | None, healthy: bool) -> None:
        with self._lock:
            idle = self._idle.setdefault(database, [])
            if healthy and len(idle) < self._max_idle:
                idle.append(conn)
                return
        self._close(conn)

    def forget(self, database: str) -> None:
        with self._lock:
            conns = self._idle.pop(database, [])
        for conn in conns:
            self._close(conn)

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            self._close(conn)


def _quiet_close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass


class ChdbBackend:
    kind = "chdb"

    def __init__(self, path: str, lanes: dict[str, int] | None = None):
        import chdb

        self.path = path
        self._chdb = chdb
        try:
            self._keeper = chdb.connect(path)  # holds the data directory for the process's lifetime
        except Exception as exc:
            raise StoreUnavailable(
                f"cannot open the embedded database in {path}: is another flowscope process using this data "
                f"directory? Stop it, or use another --data-dir ({str(exc).strip()[:200]})") from None
        self.base_database = "default"
        self.pool = Pool(self._connect, _quiet_close, lanes)

    def _connect(self, database: str | None):
        conn = self._chdb.connect(self.path)
        if database:
            try:
                conn.query(f"USE `{database}`")
            except Exception as exc:
                _quiet_close(conn)
                raise QueryError(str(exc), _error_code(str(exc))) from None
        return conn

    def query(self, sql: str, params: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
              *, lane: str = "tools", database: str | None = None, wait_s: float | None = None) -> Result:
        text = sql + settings_clause(settings)
        with self.pool.connection(lane, database, wait_s) as conn:
            try:
                raw = conn.query(text, "JSONCompact", params=params or {})
            except Exception as exc:  # chdb raises its own error type
                msg = str(exc)
                raise QueryError(msg, _error_code(msg)) from None
            data = raw.bytes()
        if not data:
            return Result([], [])
        doc = json.loads(data)
        stats = doc.get("statistics", {})
        return Result([m["name"] for m in doc["meta"]], doc["data"], [m["type"] for m in doc["meta"]], stats)

    def command(self, sql: str, params: dict[str, Any] | None = None, *, lane: str = "write") -> None:
        with self.pool.connection(lane, None) as conn:
            try:
                conn.query(sql, "CSV", params=params or {})
            except Exception as exc:
                msg = str(exc)
                raise QueryError(msg, _error_code(msg)) from None

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert rows as JSONCompactEachRow data (a JSON array a row, in `columns` order: half the
        CPU of JSONEachRow's objects, to encode and to parse): values travel as data, never as SQL text."""
        lines = [json.dumps(r if isinstance(r, list) else list(r), default=str, ensure_ascii=False) for r in rows]
        if not lines:
            return 0
        cols = ", ".join(f"`{c}`" for c in columns)
        body = "\n".join(lines)
        self.command(f"INSERT INTO `{table}` ({cols}) SETTINGS {INSERT_SETTINGS} FORMAT JSONCompactEachRow\n{body}")
        return len(lines)

    def insert_columns(self, table: str, names: Sequence[str], chunks: Sequence[tuple[int, Sequence[Any]]],
                       ch_types: Sequence[str]) -> int:
        """Insert chunks of columns, (rows, columns in `names` order), as one Arrow stream."""
        from flowscope.store.arrow import stream

        n = sum(k for k, _ in chunks)
        if not n:
            return 0
        data = stream(names, [c for _, c in chunks], [k for k, _ in chunks], ch_types)
        cols = ", ".join(f"`{c}`" for c in names)
        with self.pool.connection("write", None) as conn:
            try:
                with conn.send_insert(f"INSERT INTO `{table}` ({cols}) SETTINGS {INSERT_SETTINGS}", "ArrowStream") as ins:
                    ins.append(data)
                    ins.finish()
            except Exception as exc:
                msg = str(exc)
                raise QueryError(msg, _error_code(msg)) from None
        return n

    def close(self) -> None:
        self.pool.close()
        _quiet_close(self._keeper)


class ServerBackend:
    kind = "clickhouse"

    def __init__(self, url: str, lanes: dict[str, int] | None = None):
        import clickhouse_connect

        self.url = url
        self._connect_fn = clickhouse_connect.get_client
        probe = self._connect_fn(dsn=url)
        self.base_database = probe.database or "default"
        probe.close()
        self.pool = Pool(self._connect, _quiet_close, lanes)

    def _connect(self, database: str | None):
        # one client per borrowed connection: no shared session, so queries never serialise
        return self._connect_fn(dsn=self.url, database=database or self.base_database,
                                autogenerate_session_id=False)

    def query(self, sql: str, params: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
              *, lane: str = "tools", database: str | None = None, wait_s: float | None = None) -> Result:
        wire = {k: (sql_literal(v) if isinstance(v, dict) else v) for k, v in (settings or {}).items()}
        with self.pool.connection(lane, database, wait_s) as client:
            try:
                res = client.query(sql, parameters=params or {}, settings=wire)
            except Exception as exc:
                msg = str(exc)
                raise QueryError(msg, _error_code(msg)) from None
        rows = [[_jsonable(v) for v in r] for r in res.result_rows]
        return Result(list(res.column_names), rows, [t.name for t in res.column_types], dict(res.summary or {}))

    def command(self, sql: str, params: dict[str, Any] | None = None, *, lane: str = "write") -> None:
        with self.pool.connection(lane, None) as client:
            try:
                client.command(sql, parameters=params or {})
            except Exception as exc:
                msg = str(exc)
                raise QueryError(msg, _error_code(msg)) from None

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        data = [list(r) for r in rows]
        if data:
            with self.pool.connection("write", None) as client:
                client.insert(table, data, column_names=list(columns),
                              settings={"max_partitions_per_insert_block": 0})
        return len(data)

    def insert_columns(self, table: str, names: Sequence[str], chunks: Sequence[tuple[int, Sequence[Any]]],
                       ch_types: Sequence[str]) -> int:
        def seq(c: Any, n: int, ch_type: str) -> Sequence[Any]:
            if ch_type.startswith("Array(Tuple("):  # (offsets, one array per tuple element)
                offsets, *parts = (list(map(int, p)) for p in c)
                cells = list(zip(*parts))
                return [cells[a:b] for a, b in zip(offsets, offsets[1:])]
            values = c.tolist() if hasattr(c, "tolist") else c
            if not hasattr(values, "__len__") or isinstance(values, str):
                values = [values] * n
            if ch_type.startswith("DateTime64(3") and values and isinstance(values[0], int):
                values = [ms_text(v) for v in values]  # epoch ms, as the rows path sends them: text
            return values

        rows = [r for n, cols in chunks for r in zip(*(seq(c, n, t) for c, t in zip(cols, ch_types)))]
        return self.insert(table, names, rows)

    def close(self) -> None:
        self.pool.close()


def ms_text(ms: int) -> str:
    """Epoch milliseconds as 'YYYY-MM-DD hh:mm:ss.fff' (UTC)."""
    s, frac = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s)) + f".{frac:03d}"


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


def open_backend(data_dir: str, clickhouse_url: str | None = None, lanes: dict[str, int] | None = None):
    if clickhouse_url:
        return ServerBackend(clickhouse_url, lanes)
    return ChdbBackend(data_dir, lanes)
