"""Flow collector benchmark: records/s decoded and stored on generated IPFIX.

Measures, in one run:
  1. decode only            (Collector.handle on prebuilt datagrams, no socket, no store)
  2. chDB insert only       (Store.insert of prebuilt flows rows)
  3. full path over UDP     (sender process -> asyncio listener -> decoder thread -> store), at
                            increasing offered rates; reports where loss starts.
Ratios are printed against the decode-only and insert-only baselines.

Usage: .venv/bin/python bench/bench_collector.py [--seconds 3] [--rates 25000,50000,100000,200000,400000]
Sends only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flowscope.collector.core import Collector  # noqa: E402
from flowscope.collector.mapping import COLUMNS  # noqa: E402
from flowscope.collector.runtime import FlowCollector  # noqa: E402
from flowscope.store import Store  # noqa: E402

PER_DATAGRAM = 30
TPL_ID = 400
FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (1, 8), (2, 8), (10, 4), (14, 4), (152, 8), (153, 8)]
REC = struct.Struct("!IIHHBBQQIIQQ")


def template_set() -> bytes:
    body = struct.pack("!HH", TPL_ID, len(FIELDS)) + b"".join(struct.pack("!HH", f, n) for f, n in FIELDS)
    return struct.pack("!HH", 2, 4 + len(body)) + body


def datagram(seq: int, i: int, with_template: bool = False) -> bytes:
    now_ms = int(time.time() * 1000)
    recs = b"".join(REC.pack(0x0A000000 | ((i + k) & 0xFFFF), 0xC0A80001, 1024 + k, 443, 6, 0x18,
                             1500 * (k + 1), k + 1, 1, 2, now_ms - 1000, now_ms) for k in range(PER_DATAGRAM))
    sets = (template_set() if with_template else b"") + struct.pack("!HH", TPL_ID, 4 + len(recs)) + recs
    return struct.pack("!HHIII", 10, 16 + len(sets), now_ms // 1000, seq, 1) + sets


def sender(port: int, rate: float, seconds: float, out: mp.Queue) -> None:
    """Send `rate` records/s for `seconds`, in 5 ms bursts; reports datagrams sent."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pre = [datagram(0, j) for j in range(64)]
    dg_per_s = rate / PER_DATAGRAM
    start = time.perf_counter()
    sent = 0
    seq = 0
    s.sendto(datagram(0, 0, with_template=True), ("127.0.0.1", port))
    sent += 1
    seq += PER_DATAGRAM
    end = start + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int((now - start) * dg_per_s) + 1
        while sent < due:
            d = bytearray(pre[sent % 64])
            struct.pack_into("!I", d, 8, seq)
            s.sendto(d, ("127.0.0.1", port))
            sent += 1
            seq += PER_DATAGRAM
        time.sleep(0.005)
    out.put(sent)


def bench_decode(n_datagrams: int = 20000) -> float:
    c = Collector()
    c.handle(datagram(0, 0, True), ("127.0.0.1", 1))
    data = [datagram(i * PER_DATAGRAM, i) for i in range(256)]
    t = time.perf_counter()
    rows = 0
    for i in range(n_datagrams):
        r, _ = c.handle(data[i & 255], ("127.0.0.1", 1))
        rows += len(r)
    return rows / (time.perf_counter() - t)


def bench_insert(store: Store, n: int = 200_000) -> float:
    c = Collector()
    c.handle(datagram(0, 0, True), ("127.0.0.1", 1))
    rows = []
    while len(rows) < n:
        rows.extend(c.handle(datagram(len(rows), len(rows)), ("127.0.0.1", 1))[0])
    t = time.perf_counter()
    for i in range(0, n, 5000):
        store.insert("flows", COLUMNS, rows[i:i + 5000])
    return n / (time.perf_counter() - t)


def count(store: Store) -> int:
    return int(store.query("SELECT count() FROM flows").scalar())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rates", default="25000,50000,100000,200000,400000")
    args = ap.parse_args()
    rates = [float(x) for x in args.rates.split(",")]

    dec = bench_decode()
    print(f"baseline decode only      : {dec:12,.0f} records/s")
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        store.migrate()
        ins = bench_insert(store)
        print(f"baseline chDB insert only : {ins:12,.0f} rows/s")
        store.command("TRUNCATE TABLE flows")

        fc = FlowCollector(store, ["udp://127.0.0.1:0"], batch_rows=20000, batch_seconds=1.0)
        loop = asyncio.new_event_loop()
        th = threading.Thread(target=loop.run_forever, daemon=True)
        th.start()
        asyncio.run_coroutine_threadsafe(fc.start(), loop).result(30)
        port = fc.listeners[0].bound[1]
        print(f"listener rcvbuf {fc.listeners[0].rcvbuf():,} bytes; {PER_DATAGRAM} records per datagram")
        print(f"{'offered rec/s':>14} {'sent':>10} {'stored':>10} {'loss %':>7} {'stored rec/s':>13} "
              f"{'vs decode':>9} {'vs insert':>9}")
        loss_at = None
        best = 0.0
        for rate in rates:
            before = count(store)
            q: mp.Queue = mp.Queue()
            t0 = time.perf_counter()
            p = mp.get_context("fork").Process(target=sender, args=(port, rate, args.seconds, q))
            p.start()
            sent_dg = q.get(timeout=args.seconds + 60)
            p.join(10)
            fc.flush(120)
            elapsed = time.perf_counter() - t0
            stored = count(store) - before
            sent = sent_dg * PER_DATAGRAM
            loss = max(0.0, 1 - stored / sent) * 100 if sent else 0.0
            through = stored / elapsed
            best = max(best, through)
            print(f"{rate:14,.0f} {sent:10,d} {stored:10,d} {loss:7.2f} {through:13,.0f} "
                  f"{through / dec:9.2f} {through / ins:9.2f}")
            if loss > 0.1 and loss_at is None:
                loss_at = rate
        st = fc.status()
        print(f"collector: queue_dropped={st['queue_dropped']} undecodable={st['undecodable']} "
              f"rows_failed={st['rows_failed']}")
        print(f"loss starts at offered rate: {loss_at:,.0f} records/s" if loss_at else
              "no loss at any offered rate")
        print(f"best sustained decoded+stored: {best:,.0f} records/s (goal 200,000; no loss at 50,000)")
        asyncio.run_coroutine_threadsafe(fc.stop(), loop).result(120)
        loop.call_soon_threadsafe(loop.stop)
        store.close()


if __name__ == "__main__":
    main()
