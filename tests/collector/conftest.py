"""Fixtures for the flow collector tests: corpus paths, a real Store, a running FlowCollector."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
EXPORTS = CORPUS / "flow-exports" / "logstash-codec-netflow"
PCAPS = CORPUS / "pcap"


def need_exports() -> Path:
    if not EXPORTS.is_dir():
        pytest.skip("flow export corpus absent (../shared/corpus)")
    return EXPORTS


def payload(name: str) -> bytes:
    return (need_exports() / name).read_bytes()


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.skip(f"{name} not installed (Debian package)")
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def store(tmp_path):
    from flowscope.store import Store

    s = Store(str(tmp_path / "data"))
    s.migrate()
    yield s
    s.close()


class Running:
    """A FlowCollector started on an event loop of its own thread."""

    def __init__(self, store, urls):
        from flowscope.collector.runtime import FlowCollector

        self.fc = FlowCollector(store, urls, batch_seconds=0.2)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.fc.start(), self.loop).result(30)

    def port(self, i: int = 0) -> int:
        return self.fc.listeners[i].bound[1]

    def flush(self) -> None:
        assert self.fc.flush(60)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fc.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def collector(store):
    r = Running(store, ["udp://127.0.0.1:0"])
    yield r
    r.stop()
