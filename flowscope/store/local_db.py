"""Small SQLite registries in the data directory (users, tokens, probes, policies, exclusions,
SNMP devices): readable by the CLI while the server holds the embedded ClickHouse."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: str | Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    return db
