"""Inserting flows with the rollups in place, and disk per stored flow (all rollups included).

A real Store in a temp dir. Flows are generated inside ClickHouse (bench_query's generator:
random ports, counters, 265 k client and ~all-distinct server addresses over 7 days) and stored
in batches of 50,000 rows, as the flow writer does. Cases, in the same run:

  bare       the same batches into a copy of `flows` with nothing attached (the baseline)
  inline     each batch into the bare copy and through the rollup views inside the same insert
             (what every insert into `flows` did before the rollups moved off the insert path)
  flows      each batch into `flows` (numbered; nothing else runs in the insert)
  + fill     the rollups filled afterwards from the new batches (RollupFeed.catch_up), timed
             apart; `flows+fill` is the end-to-end rate

Disk per flow: active parts' bytes on disk of `flows` and of every rollup table after the fill
(and after OPTIMIZE FINAL of the rollups, as background merges would end), divided by the flows.

    .venv/bin/python bench/bench_store.py      # BENCH_STORE_ROWS (1000000)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_int, load, table, verdict  # noqa: E402
from bench_query import FILL  # noqa: E402

BATCH = 50_000


def fill_sql(target: str) -> str:
    """bench_query's generator, numbered, with a country on 3 servers in 4 (as geolocation sets)."""
    sql = FILL.replace("INSERT INTO flows (", f"INSERT INTO `{target}` (INSERT_SEQ, DST_COUNTRY_CODE, ")
    sql = sql.replace("SELECT\n    number AS FLOW_ID", "SELECT\n    {seq:UInt64},\n    ['US', 'DE', 'FR', 'CN', "
                      "'IE', 'JP', '', ''][1 + number % 8],\n    number AS FLOW_ID")
    return sql.replace("FROM numbers({rows:UInt64})", "FROM numbers({first:UInt64}, {count:UInt64}) "
                                                       "SETTINGS max_partitions_per_insert_block = 0")


def main() -> None:
    n = env_int("BENCH_STORE_ROWS", 1_000_000)
    from flowscope.store import Store, schema

    tmp = Path(tempfile.mkdtemp(prefix="flowscope-bench-store-"))
    store = Store(str(tmp))
    try:
        store.migrate()
        store.command("CREATE TABLE flows_bare AS flows")
        print(f"{n:,} flows in batches of {BATCH:,}; {load()}")

        def batches(target: str, numbered: bool = False) -> float:
            t = time.perf_counter()
            for first in range(0, n, BATCH):
                params = {"rows": n, "first": first, "count": min(BATCH, n - first), "seq": 0}
                if numbered:
                    with store.rollups.batch() as seq:
                        store.command(fill_sql(target), params | {"seq": seq})
                else:
                    store.command(fill_sql(target), params)
            return time.perf_counter() - t

        bare = batches("flows_bare")
        store.command("TRUNCATE TABLE flows_bare")
        inline = batches("flows_bare") + batches(schema.ROLLUP_FEED)  # rows through every view, in the insert
        for t in [r.table(res) for r in schema.TS_ROLLUPS.values() for res in ("1m", "5m", "1h")] + ["hourly_flows",
                                                                                                    "rollup_state"]:
            store.command(f"TRUNCATE TABLE `{t}`")
        flows = batches("flows", numbered=True)
        t = time.perf_counter()
        store.rollups.catch_up()
        fill = time.perf_counter() - t
        rows = [["bare", bare, n / bare, 1.0], ["inline", inline, n / inline, bare / inline],
                ["flows", flows, n / flows, bare / flows], ["+ fill", fill, n / fill, bare / fill],
                ["flows+fill", flows + fill, n / (flows + fill), bare / (flows + fill)]]
        table("storing flows (ratio: rate vs bare in this run)", ["case", "s", "rows/s", "ratio"], rows)

        rollups = [r.table(res) for r in schema.TS_ROLLUPS.values() for res in ("1m", "5m", "1h")] + ["hourly_flows"]
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
