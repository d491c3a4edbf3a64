"""The `query` tool's guard+run path against chDB running the same SQL, over 10M flows.

A real Store in a temp dir is filled inside ClickHouse (INSERT INTO flows SELECT ... FROM
numbers(N)) with random addresses, ports and byte counts; half of the client addresses are in
192.168.0.0/16 so the restricted user sees about half the rows. The flowscope materialised
views that feed the timeseries tables are dropped first in that temp store: they do not take
part in reading `flows` and would only slow the fill.

Each case runs the top-10 talkers query; cases are interleaved round after round and the
median is kept:

  chdb-direct      the same SQL text on the Store's chDB connection, JSONCompact bytes fetched
  store.query      Store.query (adds JSON decoding into Result)
  guarded-admin    flowscope.store.guard.run_guarded(app, admin principal, sql)
  chdb-direct-1t   the same, with the thread budget users' SQL gets (query_max_threads, default 1):
                   the baseline for the guarded cases
  guarded-restr    run_guarded for a user with allowed_networks=192.168.0.0/16 (its SQL runs in
                   the user's scope database of filtered views, with additional_table_filters)
  chdb-numeric-restr  informational: the same restriction written by hand as IPv4 integer ranges
                   on IPV4_SRC_ADDR/IPV4_DST_ADDR, chDB direct, same thread budget

    .venv/bin/python bench/bench_query.py      # BENCH_QUERY_ROWS (10000000), BENCH_QUERY_ROUNDS (7)
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_int, load, median, table, verdict  # noqa: E402

SQL = ("SELECT SRC_IP, sum(TOTAL_BYTES) AS bytes, count() AS flows FROM flows "
       "GROUP BY SRC_IP ORDER BY bytes DESC LIMIT 10")

# What the restricted rewrite could be for IPv4 (integer ranges on the stored columns instead of
# text addresses); informational, same answer on this IPv4-only data
NUMERIC_RESTRICTED = SQL.replace("FROM flows", "FROM (SELECT *, SRC_IP FROM flows WHERE IP_PROTOCOL_VERSION = 4 AND "
                                 "(IPV4_SRC_ADDR BETWEEN 3232235520 AND 3232301055 OR "
                                 "IPV4_DST_ADDR BETWEEN 3232235520 AND 3232301055)) AS flows")

#: FIRST_SEEN .. DST2SRC_PACKETS of flow `number`: evenly over the last 7 days, random counters
TIMES_AND_COUNTERS = """
    toDateTime64(now() - 7 * 86400 + (number * 7 * 86400) / {rows:UInt64}, 3, 'UTC') AS fs,
    fs + toIntervalMillisecond(rand(1) % 60000),
    1 + rand(2) % 200 AS pk,
    pk * (60 + rand(3) % 1400) AS b,
    intDiv(b, 3),
    b - intDiv(b, 3),
    intDiv(pk, 2),
    pk - intDiv(pk, 2),"""

FILL = """
INSERT INTO flows (FLOW_ID, IP_PROTOCOL_VERSION, FIRST_SEEN, LAST_SEEN, PACKETS, TOTAL_BYTES, SRC2DST_BYTES,
                   DST2SRC_BYTES, SRC2DST_PACKETS, DST2SRC_PACKETS, PROTOCOL, IPV4_SRC_ADDR, IPV4_DST_ADDR,
                   IP_SRC_PORT, IP_DST_PORT, L7_PROTO, L7_CATEGORY, INTERFACE_ID, SOURCE_TYPE, CLASSIFIED_BY)
SELECT
    number AS FLOW_ID,
    4,""" + TIMES_AND_COUNTERS + """
    if(rand(4) % 4 = 0, 17, 6),
    if(rand(5) % 2 = 0, 3232235520 + rand(6) % 65536, 167772160 + rand(7) % 200000),
    if(rand(8) % 3 = 0, 3232235520 + rand(9) % 65536, rand(10)),
    1024 + rand(11) % 60000,
    [443, 80, 53, 123, 22, 8080][1 + rand(12) % 6],
    rand(13) % 300,
    rand(14) % 40,
    rand(15) % 4,
    'pcap',
    'ndpi'
FROM numbers({rows:UInt64})
"""


def main() -> None:
    n_rows = env_int("BENCH_QUERY_ROWS", 10_000_000)
    rounds = env_int("BENCH_QUERY_ROUNDS", 7)
    from flowscope.auth import Principal
    from flowscope.store import Store
    from flowscope.store.guard import guard_sql, run_guarded

    tmp = Path(tempfile.mkdtemp(prefix="flowscope-bench-query-"))
    store = Store(str(tmp))
    try:
        store.migrate()
        for (name,) in store.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                                   "AND engine = 'MaterializedView'").rows:
            store.command(f"DROP VIEW `{name}`")
        t0 = time.perf_counter()
        store.command(FILL, {"rows": n_rows})
        store.command("OPTIMIZE TABLE flows FINAL")
        count = store.query("SELECT count() FROM flows").scalar()
        print(f"flows: {int(count):,} rows generated in {time.perf_counter() - t0:.1f} s; {load()}")

        app = SimpleNamespace(store=store)
        admin = Principal(name="b", role="admin")
        restricted = Principal(name="r", role="user", allowed_networks=(ipaddress.ip_network("192.168.0.0/16"),))
        threads = store.limits.max_threads
        conn = store.backend.pool._open(None)  # a connection of the Store's own pool

        def direct(sql: str, suffix: str = ""):
            def run():
                return conn.query(sql + suffix, "JSONCompact").bytes()
            return run

        same_threads = f" SETTINGS max_threads = {threads}" if threads else ""

        cases = {
            "chdb-direct": direct(SQL),
            "store.query": lambda: store.query(SQL),
            "guarded-admin": lambda: run_guarded(app, admin, SQL),
            "guarded-restr": lambda: run_guarded(app, restricted, SQL),
            "chdb-direct-1t": direct(SQL, same_threads),
            "chdb-numeric-restr": direct(NUMERIC_RESTRICTED, same_threads),
        }
        results = {}
        for name, fn in cases.items():  # warm-up: caches, dictionaries, page cache
            results[name] = fn()
        assert results["guarded-admin"].rows == store.query(SQL).rows, "guarded answer differs"
        assert json.loads(results["chdb-numeric-restr"])["data"] == run_guarded(app, restricted, SQL).rows, \
            "the scoped answer differs from the hand-filtered one"
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(rounds):
            for name, fn in cases.items():
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        guard_times = []
        for _ in range(200):
            t = time.perf_counter()
            guard_sql(SQL, restricted)
            guard_times.append(time.perf_counter() - t)

        base = median(times["chdb-direct"])
        rows = [[k, median(v) * 1000, min(v) * 1000, max(v) * 1000, median(v) / base] for k, v in times.items()]
        table(f"top-10 talkers over {int(count):,} flows (median of {rounds}; ratio vs chdb-direct)",
              ["case", "median ms", "min ms", "max ms", "ratio"], rows)
        same = median(times["chdb-direct-1t"])
        g = median(times["guarded-admin"]) / same
        r = median(times["guarded-restr"]) / same
        rn = median(times["guarded-restr"]) / median(times["chdb-numeric-restr"])
        print(f"\nguard_sql alone (restricted user): {median(guard_times) * 1000:.2f} ms median")
        print(f"guarded admin: {g:.2f}x chDB direct, same threads ({verdict(g, 1.2, higher_is_better=False)})")
        print(f"guarded restricted: {r:.2f}x chDB direct on the same SQL, same threads "
              f"({verdict(r, 1.2, higher_is_better=False)}); {rn:.2f}x the hand-filtered SQL")
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
