"""Helpers for the flow collector tests: corpus paths, exporters (softflowd), a running FlowCollector."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from fsharness import CORPUS, need_tool, unavailable

EXPORTS = CORPUS / "flow-exports" / "logstash-codec-netflow"


def need_exports() -> Path:
    if not EXPORTS.is_dir():
        unavailable("flow export corpus absent (../shared/corpus)")
    return EXPORTS


def payload(name: str) -> bytes:
    return (need_exports() / name).read_bytes()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def unblock_signals() -> None:
    """The embedded ClickHouse blocks signals in this process; softflowd waits on them."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def softflowd(pcap: Path, port: int, version: str, tmp: Path) -> tuple[int, int]:
    """Run softflowd on a capture; returns its own (packets, octets) totals."""
    exe = need_tool("softflowd")
    short = Path(tempfile.mkdtemp(prefix="sf", dir="/tmp"))    # softflowd hangs on long socket paths
    args = [exe, "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", version, "-a", "-d",
            "-c", str(short / "c"), "-p", str(short / "p")]
    if version == "10":
        args += ["-A", "milli"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, preexec_fn=unblock_signals, start_new_session=True,
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    try:
        text = None
        for _ in range(60):
            try:
                text, _ = proc.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                # Under some parents softflowd blocks in accept() on its control socket before
                # reading the capture; a harmless control command lets its loop go on.
                ctl = shutil.which("softflowctl")
                if ctl:
                    subprocess.run([ctl, "-c", str(short / "c"), "statistics"], capture_output=True,
                                   timeout=10, stdin=subprocess.DEVNULL)
        if text is None:
            proc.send_signal(signal.SIGTERM)
            text, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(short, ignore_errors=True)
    pkts = octets = 0
    for m in re.finditer(r"^\s+\S+ \(\d+\):\s+(\d+)\s+(\d+)", text, re.M):
        octets += int(m.group(1))
        pkts += int(m.group(2))
    assert "Flows exported" in text, text
    return pkts, octets


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A datagram with a few bytes changed, cut short, grown or given odd lengths."""
    b = bytearray(data)
    op = rng.randrange(4)
    if op == 0:
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif op == 1:
        b = b[:rng.randrange(len(b))]
    elif op == 2:
        pos = rng.randrange(len(b))
        b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:
        pos = rng.randrange(max(1, len(b) - 4))
        b[pos:pos + 2] = rng.choice([b"\xff\xff", b"\x00\x00", b"\x00\x04", b"\x01\x00"])
    return bytes(b)
