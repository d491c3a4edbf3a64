"""Fixtures for the flow collector tests (helpers in collector_harness.py): a real Store and a
running FlowCollector."""

from __future__ import annotations

import pytest

from collector_harness import Running


@pytest.fixture
def store(tmp_path):
    from flowscope.store import Store

    s = Store(str(tmp_path / "data"))
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def collector(store):
    r = Running(store, ["udp://127.0.0.1:0"])
    yield r
    r.stop()
