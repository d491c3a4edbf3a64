"""Read tools over many stored flows, admin and restricted user, against chDB running an
equivalent SQL directly (the `query` baseline the issue asks for).

A real App in a temp dir (every component attached, as `serve` builds it). Flows are generated
inside ClickHouse (bench_store.fill_sql: the realistic data set by default, BENCH_TOOLS_DATA=distinct
for ~7 M distinct hosts in 10 M flows; bench/README.md gives both) and stored as the flow writer
stores them, in numbered batches of 50,000, with the rollups filled from them every 10 batches
(RollupFeed.catch_up, what the filler does every 2 s), as real use does.

Each tool is called in-process through its registered MCP function (validation, authorization
and the service, no HTTP), after one warm-up, interleaved for BENCH_TOOLS_ROUNDS rounds; the
median is kept. Baseline: `SELECT … top 10 talkers` on chDB directly (same data, same
connection kind), median of the same rounds.

    .venv/bin/python bench/bench_tools.py      # BENCH_TOOLS_ROWS (2000000), BENCH_TOOLS_ROUNDS (3),
                                               # BENCH_TOOLS_DATA (realistic)
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_int, load, median, table, verdict  # noqa: E402
from bench_store import BATCH, fill_sql  # noqa: E402

BASELINE = ("SELECT ip, sum(b) AS bytes FROM (SELECT arrayJoin([(SRC_IP, TOTAL_BYTES), (DST_IP, TOTAL_BYTES)]) AS s, "
            "s.1 AS ip, s.2 AS b FROM flows) GROUP BY ip ORDER BY bytes DESC LIMIT 10")

_SIDES = ("(SELECT s.1 AS ip, s.2 AS cc, s.3 AS b FROM (SELECT arrayJoin([(SRC_IP, SRC_COUNTRY_CODE, TOTAL_BYTES), "
          "(DST_IP, DST_COUNTRY_CODE, TOTAL_BYTES)]) AS s FROM flows))")
#: what a user of `query` would write for the same answer, run on chDB directly (per tool)
EQUIVALENT = {
    "get_top_talkers": BASELINE,
    "get_country_stats": f"SELECT cc, uniqExact(ip), sum(b) AS bytes FROM {_SIDES} WHERE cc != '' GROUP BY cc "
                         "ORDER BY bytes DESC LIMIT 20",
    "list_networks": f"SELECT uniqExact(ip), sum(b) FROM {_SIDES} WHERE isIPAddressInRange(ip, '192.168.0.0/16') "
                     "OR isIPAddressInRange(ip, '10.0.0.0/8')",
    "list_timeseries": f"SELECT ip, sum(b) AS bytes FROM {_SIDES} GROUP BY ip ORDER BY bytes DESC LIMIT 20",
}

CALLS = [
    ("get_top_talkers", {"by": "bytes", "limit": 10, "begin": "-30d"}),
    ("get_top_talkers", {"by": "bytes", "where": "local", "limit": 10, "begin": "-30d"}),
    ("get_country_stats", {"begin": "-30d"}),
    ("list_networks", {"with_traffic": True}),
    ("get_host_info", {"ip": "192.168.1.10", "begin": "-30d"}),
    ("list_expected_servers", {}),
    ("list_timeseries", {"entity": "host", "start": "-7d"}),
    ("get_timeseries", {"series": [{"entity": "interface", "metrics": ["bytes"]}], "start": "-7d"}),
    ("get_timeseries", {"series": [{"entity": "host", "metrics": ["bytes_sent"], "filters": {"host": "192.168.1.10"}}],
                        "start": "-7d"}),
    ("get_top_applications", {"start": "-7d", "limit": 10}),
    ("get_top_protocols", {"start": "-7d", "level": "l7", "limit": 10}),
    ("chart", {"entity": "application", "metrics": ["bytes"], "split_by": "application", "start": "-7d"}),
    ("get_interfaces", {}),
]


def main() -> None:
    n = env_int("BENCH_TOOLS_ROWS", 2_000_000)
    rounds = env_int("BENCH_TOOLS_ROUNDS", 3)
    data = os.environ.get("BENCH_TOOLS_DATA", "realistic")
    from flowscope.app import App
    from flowscope.auth import Principal
    from flowscope.config import Config
    from flowscope.mcp.server import load_tools
    from flowscope.mcp.toolkit import ToolContext, parse_arguments

    tmp = Path(tempfile.mkdtemp(prefix="flowscope-bench-tools-"))
    app = App(Config(data_dir=str(tmp)))
    store = app.store
    try:
        t0 = time.perf_counter()
        fill = 0.0
        for first in range(0, n, BATCH):
            with store.rollups.batch() as seq:
                store.command(fill_sql("flows", data), {"rows": n, "first": first, "count": min(BATCH, n - first),
                                                        "seq": seq})
            if seq % 10 == 0 or first + BATCH >= n:
                t = time.perf_counter()
                store.rollups.catch_up()
                fill += time.perf_counter() - t
        print(f"{n:,} flows ({data} data set) stored in {time.perf_counter() - t0 - fill:.1f} s, rolled up in "
              f"{fill:.1f} s; {load()}")
        tools = load_tools()
        admin = Principal(name="a", role="admin")
        restricted = Principal(name="r", role="user", allowed_networks=(ipaddress.ip_network("192.168.0.0/16"),))

        def call(name: str, args: dict, who):
            spec = tools[name]
            ctx = ToolContext(app=app, principal=who, tool=name)
            return asyncio.run(spec.fn(ctx, parse_arguments(spec, dict(args))))

        conn = store.backend.pool._open(None)

        def baseline():
            return conn.query(BASELINE, "JSONCompact").bytes()

        cases = [("baseline (chDB direct)", "-", baseline)]
        cases += [(f"{name} equivalent SQL", "-", lambda sql=sql: conn.query(sql, "JSONCompact").bytes())
                  for name, sql in EQUIVALENT.items() if name != "get_top_talkers"]
        for name, args in CALLS:
            for label, who in (("admin", admin), ("restricted", restricted)):
                shown = {**args, **(args.get("series") or [{}])[0]}
                tag = ",".join(f"{k}={v}" for k, v in shown.items() if k in ("where", "entity"))
                cases.append((name + (" " + tag if tag else ""), label,
                              lambda name=name, args=args, who=who: call(name, args, who)))
        times: dict[tuple[str, str], list[float]] = {}
        for label, who, fn in cases:  # warm-up (and errors surface here)
            try:
                fn()
            except Exception as exc:
                print(f"  {label} ({who}) failed: {exc!r}")
        for _ in range(rounds):
            for label, who, fn in cases:
                t = time.perf_counter()
                try:
                    fn()
                except Exception:
                    continue
                times.setdefault((label, who), []).append(time.perf_counter() - t)
        base = median(times[("baseline (chDB direct)", "-")])
        rows = []
        worst = 0.0
        for (label, who), v in times.items():
            m = median(v)
            admin_m = median(times.get((label, "admin"), v))
            name = label.split(" ")[0]
            equiv = median(times.get((f"{name} equivalent SQL", "-"), [])) if name in EQUIVALENT else float("nan")
            if name == "get_top_talkers":
                equiv = base
            rows.append([label, who, m * 1000, m / base, m / equiv if who != "-" else float("nan"),
                         m / admin_m if who == "restricted" else float("nan")])
            if who != "-":
                worst = max(worst, m)
        table(f"read tools over {n:,} flows (median of {rounds}; ratio vs chDB direct top-10 talkers, "
              f"{base * 1000:.0f} ms, and vs the tool's equivalent SQL on chDB directly)",
              ["tool", "user", "p50 ms", "vs baseline", "vs equiv SQL", "restr/admin"], rows)
        print(f"\nslowest tool p50: {worst * 1000:.0f} ms ({verdict(worst * 1000, 500, higher_is_better=False)})")
    finally:
        app.store.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
