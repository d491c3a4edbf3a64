"""Inserting flows with the rollups in place, and disk per stored flow (all rollups included).

A real Store in a temp dir. Flows are generated inside ClickHouse (`fill_sql`: the realistic data
set by default, BENCH_STORE_DATA=distinct for the worst case of ~7 M distinct hosts in 10 M flows;
bench/README.md gives both distributions) and stored in batches of 50,000 rows, as the flow writer
does. Cases, in the same run:

  bare       the same batches into a copy of `flows` with nothing attached (the baseline)
  inline     each batch into the bare copy and through the rollup views inside the same insert
             (what every insert into `flows` did before the rollups moved off the insert path)
  flows      each batch into `flows` (numbered; nothing else runs in the insert)
  + fill     the rollups filled afterwards from the new batches (RollupFeed.catch_up), timed
             apart; `flows+fill` is the end-to-end rate

Disk per flow: active parts' bytes on disk of `flows` and of every rollup table after the fill
(and after OPTIMIZE FINAL of the rollups, as background merges would end), divided by the flows.

    .venv/bin/python bench/bench_store.py      # BENCH_STORE_ROWS (1000000), BENCH_STORE_DATA (realistic),
                                               # BENCH_STORE_INLINE (1; 0 skips the inline case)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_int, load, table, verdict  # noqa: E402
from bench_query import FILL, TIMES_AND_COUNTERS  # noqa: E402

BATCH = 50_000

#: the realistic data set (default): 7 days; clients from 265,536 local addresses (192.168.0.0/16 and
#: 200,000 of 10.0.0.0/8, uniform); servers: 1 flow in 10 to one of 2,000 local servers, the rest to
#: 100,000 public addresses drawn log-uniformly (Zipf-like, s ≈ 1: rank r has weight ~1/r), each with
#: its own country (9 codes, 1 in 10 unknown), ASN, port and nDPI application
REALISTIC = """
INSERT INTO `{target}` (INSERT_SEQ, FLOW_ID, IP_PROTOCOL_VERSION, FIRST_SEEN, LAST_SEEN, PACKETS, TOTAL_BYTES,
                   SRC2DST_BYTES, DST2SRC_BYTES, SRC2DST_PACKETS, DST2SRC_PACKETS, PROTOCOL, IPV4_SRC_ADDR,
                   IPV4_DST_ADDR, IP_SRC_PORT, IP_DST_PORT, L7_PROTO, L7_CATEGORY, INTERFACE_ID, SOURCE_TYPE,
                   CLASSIFIED_BY, DST_COUNTRY_CODE, DST_ASN, SCORE)
SELECT
    {seq:UInt64},
    number AS FLOW_ID,
    4,""" + TIMES_AND_COUNTERS + """
    if(srv % 4 = 0, 17, 6),
    if(rand(5) % 2 = 0, 3232235520 + rand(6) % 65536, 167772160 + rand(7) % 200000),
    if(local, 3232235520 + srv, 134217728 + srv * 97) AS dst,
    1024 + rand(11) % 60000,
    [443, 80, 53, 123, 22, 8080][1 + srv % 6],
    srv % 300,
    srv % 40,
    rand(15) % 4,
    'pcap',
    'ndpi',
    if(local, '', ['US', 'DE', 'FR', 'CN', 'IE', 'JP', 'GB', 'NL', 'BR', ''][1 + srv % 10]),
    if(local, 0, 15169 + srv % 500),
    [0, 0, 0, 10, 60][1 + rand(16) % 5]
FROM (SELECT number, rand(8) % 10 = 0 AS local,
             if(local, rand(9) % 2000, toUInt32(pow(100000, rand(10) / 4294967296.0)) - 1) AS srv
      FROM numbers({first:UInt64}, {count:UInt64}))
SETTINGS max_partitions_per_insert_block = 0
"""


def fill_sql(target: str, data: str = "realistic") -> str:
    """One batch of flows into `target`: the realistic data set or, with data="distinct",
    bench_query's generator (random ports and counters, 265 k clients, nearly every server
    address distinct: ~7 M hosts in 10 M flows, the worst case for per-host rollups), with a
    country on 3 servers in 4."""
    if data == "realistic":
        return REALISTIC.replace("{target}", target)
    sql = FILL.replace("INSERT INTO flows (", f"INSERT INTO `{target}` (INSERT_SEQ, DST_COUNTRY_CODE, ")
    sql = sql.replace("SELECT\n    number AS FLOW_ID", "SELECT\n    {seq:UInt64},\n    ['US', 'DE', 'FR', 'CN', "
                      "'IE', 'JP', '', ''][1 + number % 8],\n    number AS FLOW_ID")
    return sql.replace("FROM numbers({rows:UInt64})", "FROM numbers({first:UInt64}, {count:UInt64}) "
                                                       "SETTINGS max_partitions_per_insert_block = 0")


def rollup_tables() -> list[str]:
    """Every table the rollup feed fills."""
    from flowscope.store.rollups import feed_views
    from flowscope.store import schema

    fed = [t for _v, t, _s in feed_views()]
    return fed + [t for r in schema.TS_ROLLUPS.values() for t in r.tables() if t not in fed]


def main() -> None:
    n = env_int("BENCH_STORE_ROWS", 1_000_000)
    data = os.environ.get("BENCH_STORE_DATA", "realistic")
    from flowscope.store import Store, schema

    tmp = Path(tempfile.mkdtemp(prefix="flowscope-bench-store-"))
    store = Store(str(tmp))
    try:
        store.migrate()
        store.command("CREATE TABLE flows_bare AS flows")
        print(f"{n:,} flows ({data} data set) in batches of {BATCH:,}; {load()}")

        def batches(target: str, numbered: bool = False) -> float:
            t = time.perf_counter()
            for first in range(0, n, BATCH):
                params = {"rows": n, "first": first, "count": min(BATCH, n - first), "seq": 0}
                if numbered:
                    with store.rollups.batch() as seq:
                        store.command(fill_sql(target, data), params | {"seq": seq})
                else:
                    store.command(fill_sql(target, data), params)
            return time.perf_counter() - t

        bare = batches("flows_bare")
        store.command("TRUNCATE TABLE flows_bare")
        inline = float("nan")
        if env_int("BENCH_STORE_INLINE", 1):  # rows through every view, in the insert (slow: skip at 10 M)
            inline = batches("flows_bare") + batches(schema.ROLLUP_FEED)
        for t in rollup_tables() + ["rollup_state"]:
            store.command(f"TRUNCATE TABLE `{t}`")
        flows = batches("flows", numbered=True)
        t = time.perf_counter()
        store.rollups.catch_up()
        fill = time.perf_counter() - t
        rows = [["bare", bare, n / bare, 1.0], ["inline", inline, n / inline, bare / inline],
                ["flows", flows, n / flows, bare / flows], ["+ fill", fill, n / fill, bare / fill],
                ["flows+fill", flows + fill, n / (flows + fill), bare / (flows + fill)]]
        table("storing flows (ratio: rate vs bare in this run)", ["case", "s", "rows/s", "ratio"], rows)

        rollups = rollup_tables()
        for t in rollups:
            store.command(f"OPTIMIZE TABLE `{t}` FINAL")
        sizes = dict(store.query(
            "SELECT table, sum(bytes_on_disk) FROM system.parts WHERE active AND database = currentDatabase() "
            "GROUP BY table").rows)
        counts = {t: store.query(f"SELECT count() FROM `{t}`", lane="write").scalar() for t in rollups + ["flows"]}
        out = [[t, int(counts[t]), int(counts[t]) / n, int(sizes.get(t, 0)) / n] for t in ["flows"] + rollups]
        total = sum(int(sizes.get(t, 0)) for t in ["flows"] + rollups)
        out.append(["total", sum(int(c) for c in counts.values()), None, total / n])
        table("disk per stored flow (rows and bytes on disk per flow)", ["table", "rows", "rows/flow", "B/flow"],
              [[a, b, float("nan") if c is None else c, d] for a, b, c, d in out])
        print(f"\nend to end (flows+fill): {bare / (flows + fill):.2f}x bare; inserts alone {bare / flows:.2f}x bare "
              f"(inline views: {bare / inline:.2f}x)")
        print(f"disk per flow: {total / n:.0f} B ({verdict(total / n, 80, higher_is_better=False)})")
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
