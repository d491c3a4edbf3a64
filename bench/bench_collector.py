"""Flow collector benchmark: IPFIX records/s decoded and stored, and loss at a steady 100 k/s.

The load (flowscope/collector/loadgen.py) is data records generated for a real router's template
(MikroTik, 51-byte IPv4 records, from ../shared/corpus; a template of the same kind is made up when
the corpus is absent), 27 records per datagram, sent from a process of its own to 127.0.0.1.

Measured in one run:
  1. decode, record by record   Collector.handle with the columns path off (the decoder before issue 15)
  2. decode, columns            Collector.handle into pending sets, turned into columns 300 datagrams at a time
  3. insert only, JSON          Store.insert of the same rows as tuples (the insert before issue 15)
  4. insert only, Arrow         Store.insert_columns of the same rows as blocks (what the collector does)
  5. offered rates              sender -> listener -> decoder thread -> writer thread -> `flows`, at rising
                                paced rates for --seconds each: loss, and how far behind the collector ended
  5b. full path capacity        a burst sent as fast as the sender can (0.5 s), timed until every row is in
  6. 100 k records/s for --long seconds (60): offered (sent), stored, every loss counter, CPU per record
  7. server path                the App's writer on the same blocks, per 50 k-flow batch: per-minute volumes,
                                countries/ASNs, store, hosts learning, alerts, live table; columns (now)
                                against dict rows (the server path before issue 15) in the same run
Ratios: full path capacity against the decode-only (columns) and insert-only (Arrow) baselines.

Usage: .venv/bin/python bench/bench_collector.py [--seconds 5] [--rates 100000,200000,400000] [--long 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import tempfile
import threading
import time

from _common import ROOT, load, table, verdict

from flowscope.collector import netflow_v9_ipfix
from flowscope.collector.columnar import Block, Pending
from flowscope.collector.core import Collector
from flowscope.collector.loadgen import Load, send_in_process
from flowscope.collector.mapping import COLUMNS
from flowscope.collector.runtime import FlowCollector
from flowscope.store import Store

MIKROTIK = ROOT.parent / "shared" / "corpus" / "flow-exports" / "logstash-codec-netflow" / "ipfix_test_mikrotik_tpl.dat"
GOAL_STORED = 200_000
BURST_S = 0.5  # of sending as fast as possible: ~400k records, well within the 64 MB receive buffer


def make_load() -> tuple[Load, str]:
    if MIKROTIK.exists():
        return Load(MIKROTIK.read_bytes(), 258), "MikroTik template 258 (corpus)"
    fields = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (1, 4), (2, 4), (10, 4), (14, 4), (150, 4), (151, 4),
              (15, 4), (225, 4), (226, 4)]
    body = struct.pack("!HH", 258, len(fields)) + b"".join(struct.pack("!HH", f, n) for f, n in fields)
    tset = struct.pack("!HH", 2, 4 + len(body)) + body
    return Load(struct.pack("!HHIII", 10, 16 + len(tset), int(time.time()), 0, 1) + tset, 258), "made-up template"


def decode_rate(ld: Load, columns: bool, n: int = 6000) -> tuple[float, list]:
    """Records/s (wall, like every other figure here) decoding `n` datagrams; also the rows or blocks made."""
    c = Collector()
    c.handle(ld.tpl_datagram, ("127.0.0.1", 1))
    saved = netflow_v9_ipfix.plan_for
    if not columns:
        netflow_v9_ipfix.plan_for = lambda tpl: None
    try:
        pending, out, records = Pending(), [], 0
        t = time.perf_counter()
        for i in range(n):
            rows, _ = c.handle(ld.datagrams[i % len(ld.datagrams)], ("127.0.0.1", 1), pending=pending)
            out += rows
            if i % 300 == 299:
                out += pending.blocks()
        out += pending.blocks()
        dt = time.perf_counter() - t
    finally:
        netflow_v9_ipfix.plan_for = saved
    records = sum(x.n if isinstance(x, Block) else 1 for x in out)
    return records / dt, out


def insert_rate(store: Store, rows: list[tuple], blocks: list[Block]) -> tuple[float, float]:
    """Rows/s (wall) inserting the same rows as JSON tuples and as Arrow columns, 20k per insert."""
    t = time.perf_counter()
    for i in range(0, len(rows), 20_000):
        store.insert("flows", COLUMNS, rows[i:i + 20_000])
    json_rate = len(rows) / (time.perf_counter() - t)
    t = time.perf_counter()
    n = 0
    for i in range(0, len(blocks), 20):
        b = Block.concat(blocks[i:i + 20])
        store.insert_columns("flows", COLUMNS, [(b.n, b.columns)])
        n += b.n
    return json_rate, n / (time.perf_counter() - t)


def server_path_rates(blocks: list[Block]) -> tuple[float, float]:
    """Flows/s through everything `flowscope serve` does with a collected batch, as columns and as
    dict rows (hooks run inline here, on their threads in the server)."""
    from flowscope.app import App
    from flowscope.collector.writer import CollectorWriter
    from flowscope.config import Config
    from flowscope.store.columns import FlowColumns

    rates = []
    with tempfile.TemporaryDirectory() as d:
        app = App(Config(data_dir=d))
        app.writer.hooks = []  # run below, inline
        hosts, alerts = app.components["hosts"], app.components["alerts"]
        shown = CollectorWriter(app.store, live=app.live)
        batches, part = [], []
        for b in blocks:  # batches of ~50 k flows, as the collector's writer makes them at 100 k/s
            part.append(b)
            if sum(x.n for x in part) >= 50_000:
                batches.append(Block.concat(part))
                part = []
        for columns in (True, False):
            n, t = 0, time.perf_counter()
            for b in batches if columns else batches[:1]:  # the dict rows take ~7 s per batch
                batch = FlowColumns(b.n, dict(zip(COLUMNS, b.columns)))
                if columns:
                    shown._show_live(batch)
                    app.writer._store_columns(batch)
                    hosts.feed_flows(batch)
                    alerts.process_flow_columns(batch)
                else:
                    from flowscope.collector.mapping import live_row

                    rows = [dict(r, SRC_COUNTRY_CODE="", DST_COUNTRY_CODE="") for r in batch.rows()]
                    app.live.add_finished([live_row(r) for r in rows])
                    app.writer._store(rows)
                    hosts.feed_flows(rows)
                    alerts.process_flows(rows)
                n += b.n
            rates.append(n / (time.perf_counter() - t))
        app.store.close()
    return rates[0], rates[1]


def count(store: Store) -> int:
    return int(store.query("SELECT count() FROM flows", lane="write").scalar())


class Running:
    def __init__(self, store: Store):
        self.fc = FlowCollector(store, ["udp://127.0.0.1:0"], batch_rows=50_000, batch_seconds=0.5)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self.fc.start(), self.loop).result(30)
        self.port = self.fc.listeners[0].bound[1]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fc.stop(), self.loop).result(120)
        self.loop.call_soon_threadsafe(self.loop.stop)


def losses(fc: FlowCollector) -> dict[str, int]:
    st = fc.status()
    return {k: st[k] for k in ("socket_drops", "queue_dropped", "rows_dropped", "rows_failed")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rates", default="100000,200000,400000")
    ap.add_argument("--long", type=float, default=60.0, help="seconds at 100k records/s (0: skip)")
    args = ap.parse_args()
    ld, what = make_load()
    print(f"collector benchmark; {load()}; load: {what}, {ld.records} records per datagram")

    dec_rec, rows = decode_rate(ld, columns=False)
    dec_col, blocks = decode_rate(ld, columns=True)
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        store.migrate()
        ins_json, ins_arrow = insert_rate(store, rows, blocks)
        store.command("TRUNCATE TABLE flows")
        table("baselines (same run)", ["stage", "records/s", "vs before"], [
            ["decode, record by record (before)", dec_rec, 1.0],
            ["decode, columns (now)", dec_col, dec_col / dec_rec],
            ["insert only, JSON rows (before)", ins_json, 1.0],
            ["insert only, Arrow columns (now)", ins_arrow, ins_arrow / ins_json]])

        run = Running(store)
        print(f"\nlistener receive buffer granted: {run.fc.listeners[0].rcvbuf():,} bytes")
        out = []
        for rate in [float(x) for x in args.rates.split(",")]:
            before = count(store)
            sent = send_in_process(ld, run.port, rate, args.seconds)
            t0 = time.perf_counter()
            run.fc.flush(300)
            stored = count(store) - before
            out.append([f"{rate:,.0f}", sent["rate"], sent["records"], stored,
                        100 * (1 - stored / sent["records"]), time.perf_counter() - t0])
        table(f"offered rates, {args.seconds:g} s each",
              ["offered rec/s", "sent rec/s", "sent", "stored", "loss %", "behind at end (s)"], out)
        print(f"  loss counters: {losses(run.fc)}")

        # capacity: a burst sent as fast as the sender can (the receive buffer holds it), timed until stored
        before = count(store)
        cpu0, t0 = os.times(), time.perf_counter()
        sent = send_in_process(ld, run.port, 0, BURST_S)
        run.fc.flush(300)
        cpu1, elapsed = os.times(), time.perf_counter() - t0
        stored = count(store) - before
        through = stored / elapsed
        cpu_us = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / max(stored, 1) * 1e6
        table("full path over UDP: burst decoded and stored", ["sent", "stored", "seconds", "stored rec/s",
                                                                "vs decode", "vs insert", "CPU us/rec"],
              [[sent["records"], stored, elapsed, through, through / dec_col, through / ins_arrow, cpu_us]])
        print(f"decoded+stored: {through:,.0f} records/s ({verdict(through, GOAL_STORED)}); "
              f"loss counters: {losses(run.fc)}")

        if args.long:
            before = count(store)
            cpu0, t0 = os.times(), time.perf_counter()
            sent = send_in_process(ld, run.port, 100_000, args.long)
            run.fc.flush(300)
            cpu1, wall = os.times(), time.perf_counter() - t0
            stored = count(store) - before
            cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
            lost = sent["records"] - stored
            print(f"\n{args.long:g} s at 100k records/s offered: sent {sent['records']:,} at {sent['rate']:,.0f} rec/s, "
                  f"stored {stored:,}, lost {lost:,} ({'meets' if lost == 0 else 'MISSES'} goal 0); "
                  f"collector CPU {cpu / max(stored, 1) * 1e6:.2f} us/record ({cpu / wall:.2f} cores); {load()}")
            print(f"  loss counters: {losses(run.fc)}")
        run.stop()
        store.close()
    cols, dicts = server_path_rates(blocks)
    table("server path (flowscope serve --collect): writer, enrichment, hooks, live table",
          ["input", "flows/s", "vs before"], [["dict rows (before)", dicts, 1.0], ["columns (now)", cols, cols / dicts]])


if __name__ == "__main__":
    main()
