"""Two ways to reach ClickHouse behind one small interface.

`ChdbBackend` embeds chDB on a data directory (the default: nothing to install);
`ServerBackend` talks to a ClickHouse server or cluster through clickhouse-connect.
Both take the same SQL, with values passed as `{name:Type}` parameters, never pasted.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence


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


# A batch may span many days (old captures, exporters with bad clocks): one part per day is fine,
# a refused batch is not.
INSERT_SETTINGS = "async_insert = 0, max_partitions_per_insert_block = 0"


def _settings_clause(settings: dict[str, Any] | None) -> str:
    if not settings:
        return ""
    parts = []
    for k, v in settings.items():
        if not k.replace("_", "").isalnum():
            raise ValueError(f"bad setting name {k!r}")
        value = "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" if isinstance(v, str) else int(v)
        parts.append(f"{k} = {value}")
    return " SETTINGS " + ", ".join(parts)


def _error_code(text: str) -> int | None:
    """ClickHouse's error code from a message containing 'Code: N.' (chDB and server alike)."""
    m = re.search(r"Code: (\d+)\.", text)
    return int(m.group(1)) if m else None


class StoreUnavailable(RuntimeError):
    """The database could not be opened; the message says what to do."""


class ChdbBackend:
    kind = "chdb"

    def __init__(self, path: str):
        import chdb

        self.path = path
        try:
            self._conn = chdb.connect(path)
        except Exception as exc:
            raise StoreUnavailable(
                f"cannot open the embedded database in {path}: is another flowscope process using this data "
                f"directory? Stop it, or use another --data-dir ({str(exc).strip()[:200]})") from None
        self._lock = threading.RLock()

    def query(self, sql: str, params: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None) -> Result:
        text = sql + _settings_clause(settings)
        with self._lock:
            try:
                raw = self._conn.query(text, "JSONCompact", params=params or {})
            except Exception as exc:  # chdb raises its own error type
                msg = str(exc)
                raise QueryError(msg, _error_code(msg)) from None
        data = raw.bytes()
        if not data:
            return Result([], [])
        doc = json.loads(data)
        stats = doc.get("statistics", {})
        return Result([m["name"] for m in doc["meta"]], doc["data"], [m["type"] for m in doc["meta"]], stats)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with self._lock:
            try:
                self._conn.query(sql, "CSV", params=params or {})
            except Exception as exc:
                msg = str(exc)
                raise QueryError(msg, _error_code(msg)) from None

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert rows as JSONEachRow data: values travel as data, never as SQL text."""
        lines = [json.dumps(dict(zip(columns, r)), default=str, ensure_ascii=False) for r in rows]
        if not lines:
            return 0
        cols = ", ".join(f"`{c}`" for c in columns)
        body = "\n".join(lines)
        self.command(f"INSERT INTO `{table}` ({cols}) SETTINGS {INSERT_SETTINGS} FORMAT JSONEachRow\n{body}")
        return len(lines)

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except Exception:
                pass


class ServerBackend:
    kind = "clickhouse"

    def __init__(self, url: str):
        import clickhouse_connect

        self.url = url
        self._client = clickhouse_connect.get_client(dsn=url)
        self._lock = threading.RLock()

    def query(self, sql: str, params: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None) -> Result:
        with self._lock:
            try:
                res = self._client.query(sql, parameters=params or {}, settings=settings or {})
            except Exception as exc:
                msg = str(exc)
                raise QueryError(msg, _error_code(msg)) from None
        rows = [[_jsonable(v) for v in r] for r in res.result_rows]
        return Result(list(res.column_names), rows, [t.name for t in res.column_types], dict(res.summary or {}))

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with self._lock:
            try:
                self._client.command(sql, parameters=params or {})
            except Exception as exc:
                raise QueryError(str(exc)) from None

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        data = [list(r) for r in rows]
        if data:
            with self._lock:
                self._client.insert(table, data, column_names=list(columns),
                                    settings={"max_partitions_per_insert_block": 0})
        return len(data)

    def close(self) -> None:
        self._client.close()


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


def open_backend(data_dir: str, clickhouse_url: str | None = None):
    if clickhouse_url:
        return ServerBackend(clickhouse_url)
    return ChdbBackend(data_dir)
