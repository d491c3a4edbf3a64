"""History in ClickHouse: the schema, the backends and the batch writer."""

from flowscope.store.backend import QueryError, Result, StoreUnavailable
from flowscope.store.store import Store

__all__ = ["Store", "Result", "QueryError", "StoreUnavailable"]
