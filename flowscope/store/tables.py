"""Imports every module that registers tables, so `Store.migrate` sees them all."""

from flowscope.store import schema  # noqa: F401
