"""Memory per live flow in flowscope.flows.live.LiveTable at 1M flows, against a dict per flow,
and the CPU cost per flow of its updates and sweep against the former object-per-flow table.

Rows look like what flowscope.flows.record.flow_row makes for live traffic: distinct client
and server IPv4 strings, a 63-bit FLOW_ID, timestamps, byte/packet counters, MAC numbers, a
Community ID, per-minute volumes (PER_MINUTE: one cell, two for the flows that cross a minute,
about a quarter here; in the corpus 91 % of flows lie in one minute), and for some flows an
SNI/DNS name, JA4/JA3S fingerprints or a User-Agent. Strings that come out of nfstream for every
flow (addresses, application names, SNI, ...) are fresh objects per row, as they are in the real
pipeline.

Each case runs in its own subprocess and is filled through its public entry point, one row at
a time (rows are made in chunks outside the timing and dropped after being added, as the
meter's are), then measured two ways:
  RSS delta      resident memory after filling minus before (what the OS sees; allocator
                 overhead and free lists included)
  tracemalloc    Python allocations still alive after filling (a separate run, with
                 BENCH_LIVE_TRACE_FLOWS flows, default 200000: tracemalloc's own bookkeeping
                 would inflate RSS and it is slow; bytes per flow hardly depend on the count)
and, for the tables, the CPU time per flow of: a new flow (fill), a second segment merged into
every flow (update), and one sweep taking every flow out as rows for the writer (sweep).
Cases:
  LiveTable      LiveTable.merge_segment(row) (live interfaces: keyed by 5-tuple)
  objects        the former LiveTable, one object per flow (flowscope/flows/live.py at commit
                 OBJECTS_COMMIT, read from git; skipped when git cannot show it)
  dict/flow      baseline: {flow_key(row): dict(row)} with the very same rows

    .venv/bin/python bench/bench_live_memory.py     # BENCH_LIVE_FLOWS (default 1000000),
                                                    # BENCH_LIVE_TRACE_FLOWS (default 200000)
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import types
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, env_int, load, table, verdict  # noqa: E402

OBJECTS_COMMIT = "c1697ed"  # the last object-per-flow live table (with per-minute volumes)
CHUNK = 10_000

APPS = [("TLS.Google", "Web"), ("DNS", "Network"), ("HTTP", "Web"), ("QUIC.YouTube", "Media"),
        ("TLS.Microsoft", "Cloud"), ("NTP", "System"), ("Unknown", ""), ("SSH", "RemoteAccess")]


def fresh(s: str) -> str:
    """A new str object with the same text (nfstream hands out a new one per flow)."""
    return (s + ".")[:-1] if s else ""


def rows(n: int, seed: int = 1):
    from flowscope.flows.record import community_id

    rnd = random.Random(seed)
    t0 = 1_764_000_000.0
    for i in range(n):
        src = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        d = rnd.getrandbits(32)
        dst = f"{1 + (d >> 24) % 223}.{(d >> 16) & 255}.{(d >> 8) & 255}.{1 + (d & 255) % 254}"
        sport, dport = 1024 + rnd.getrandbits(16) % 64512, (443, 443, 443, 80, 53, 123, 22)[rnd.getrandbits(8) % 7]
        proto = 17 if dport in (53, 123) or rnd.random() < 0.1 else 6
        app, cat = APPS[rnd.getrandbits(3)]
        tls = app.startswith(("TLS", "QUIC"))
        name = f"host{rnd.getrandbits(17)}.example{rnd.getrandbits(10)}.com" if tls or app in ("DNS", "HTTP") else ""
        pk_s, pk_d = 1 + rnd.getrandbits(9), rnd.getrandbits(9)
        by_s, by_d = pk_s * (60 + rnd.getrandbits(10)), pk_d * (60 + rnd.getrandbits(10))
        first = t0 + i * 0.001
        last = first + rnd.random() * 30
        yield {
            "FLOW_ID": rnd.getrandbits(63),
            "IP_PROTOCOL_VERSION": 4,
            "FIRST_SEEN": first,
            "LAST_SEEN": last,
            "VLAN_ID": 0,
            "PACKETS": pk_s + pk_d,
            "TOTAL_BYTES": by_s + by_d,
            "SRC2DST_BYTES": by_s,
            "DST2SRC_BYTES": by_d,
            "SRC2DST_PACKETS": pk_s,
            "DST2SRC_PACKETS": pk_d,
            "PROTOCOL": proto,
            "IPV4_SRC_ADDR": 167772160 + i,
            "IPV4_DST_ADDR": rnd.getrandbits(32),
            "IPV6_SRC_ADDR": "::",
            "IPV6_DST_ADDR": "::",
            "IP_SRC_PORT": sport,
            "IP_DST_PORT": dport,
            "L7_PROTO": rnd.getrandbits(9) % 400,
            "L7_PROTO_MASTER": 91 if tls else 0,
            "L7_CATEGORY": rnd.getrandbits(5),
            "FLOW_RISK": 0 if rnd.getrandbits(2) else 1 << (rnd.getrandbits(6) % 50),
            "SCORE": 0,
            "INFO": name,
            "DOMAIN_NAME": name,
            "CLIENT_FINGERPRINT": f"t13d1516h2_8daaf6152771_{rnd.getrandbits(48):012x}" if tls else "",
            "SERVER_FINGERPRINT": f"{rnd.getrandbits(128):032x}" if tls else "",
            "USER_AGENT": fresh("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0") if app == "HTTP" else "",
            "SRC_MAC": 0x02_00_00_00_00_00 + (i & 0xFFFF),
            "DST_MAC": 0x02_42_AC_11_00_02,
            "COMMUNITY_ID": community_id(src, dst, proto, sport, dport),
            "INTERFACE_ID": 1,
            "SRC2DST_TCP_FLAGS": 0x1B if proto == 6 else 0,
            "DST2SRC_TCP_FLAGS": 0x1A if proto == 6 else 0,
            "SOURCE_TYPE": "interface",
            "CLASSIFIED_BY": "ndpi",
            "SRC_IP": src,
            "DST_IP": dst,
            "L7_PROTO_NAME": fresh(app),
            "L7_CATEGORY_NAME": fresh(cat),
            "PER_MINUTE": minutes(first, last, pk_s, by_s, pk_d, by_d),
        }


def minutes(first: float, last: float, pk_s: int, by_s: int, pk_d: int, by_d: int) -> list[tuple]:
    """PER_MINUTE cells as the meter makes them: one per clock minute the flow's packets fall in
    (a flow crossing a minute has its first packet in the first cell, the rest in the second)."""
    a, b = int(first // 60) * 60, int(last // 60) * 60
    if a == b or pk_s + pk_d < 2:
        return [(a, pk_s, by_s, pk_d, by_d)]
    return [(a, 1, by_s // pk_s, 0, 0), (b, pk_s - 1, by_s - by_s // pk_s, pk_d, by_d)]


def objects_table():
    """The former object-per-flow LiveTable class, from git history (None when unavailable)."""
    res = subprocess.run(["git", "show", f"{OBJECTS_COMMIT}:flowscope/flows/live.py"], cwd=ROOT,
                         capture_output=True, text=True)
    if res.returncode != 0:
        return None
    module = types.ModuleType("live_objects")
    exec(compile(res.stdout, f"live.py@{OBJECTS_COMMIT}", "exec"), module.__dict__)
    return module.LiveTable


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def one(kind: str, n: int, trace: bool) -> dict:
    import gc
    import time
    import tracemalloc

    from flowscope.flows.live import LiveTable, flow_key

    make = {"LiveTable": LiveTable, "objects": objects_table()}.get(kind)
    gen = rows(n)
    next(rows(1))  # import and warm everything the generator needs
    gc.collect()
    if trace:
        tracemalloc.start()
    before_rss, before_tr = rss(), tracemalloc.get_traced_memory()[0] if trace else 0
    holder = make(max_flows=n + 1) if make else {}
    add = holder.merge_segment if make else (lambda row: holder.__setitem__(flow_key(row), dict(row)))
    seconds = timed_chunks(gen, add)
    size = len(holder)
    gc.collect()
    after_tr = tracemalloc.get_traced_memory()[0] if trace else 0
    out = {"flows": size, "seconds": seconds, "rss": rss() - before_rss, "traced": after_tr - before_tr}
    if make and not trace:
        out["update_s"] = timed_chunks(rows(n), holder.merge_segment)  # a second segment of every flow
        t = time.perf_counter()
        swept = [f.as_row() for f in holder.sweep()]  # as the sweeper hands them to the writer
        out["sweep_s"] = time.perf_counter() - t
        assert len(swept) == size and len(holder) == 0
    return out


def timed_chunks(gen, add) -> float:
    """Seconds spent in add(row) over all rows, made CHUNK at a time outside the timing."""
    import time

    seconds = 0.0
    while chunk := list(islice(gen, CHUNK)):
        t = time.perf_counter()
        for row in chunk:
            add(row)
        seconds += time.perf_counter() - t
    return seconds


def child(kind: str, n: int, trace: bool) -> dict:
    res = subprocess.run([sys.executable, __file__, "--one", kind, str(n), "1" if trace else "0"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    n = env_int("BENCH_LIVE_FLOWS", 1_000_000)
    n_trace = env_int("BENCH_LIVE_TRACE_FLOWS", 200_000)
    print(f"{n:,} flows per case for RSS, {n_trace:,} for tracemalloc; {load()}")
    kinds = ["dict/flow", "LiveTable"] + (["objects"] if objects_table() else [])
    res = {kind: (child(kind, n, False), child(kind, n_trace, True)) for kind in kinds}
    base_rss, base_tr = res["dict/flow"][0]["rss"], res["dict/flow"][1]["traced"]
    rows_out = []
    for kind, (plain, traced) in res.items():
        rows_out.append([kind, plain["flows"], plain["rss"] / plain["flows"], plain["rss"] / base_rss,
                         traced["traced"] / traced["flows"], traced["traced"] / base_tr])
    table("memory per live flow (bytes; ratios vs a plain dict per flow in this run)",
          ["case", "flows (RSS)", "RSS B/flow", "RSS ratio", "traced B/flow", "traced ratio"], rows_out)
    us = {kind: {k: res[kind][0][k] / res[kind][0]["flows"] * 1e6 for k in ("seconds", "update_s", "sweep_s")}
          for kind in kinds if kind != "dict/flow"}
    ref = us.get("objects")
    table("CPU per flow (µs; ratio vs the former object-per-flow table in this run)",
          ["case", "new flow", "ratio", "update", "ratio", "sweep", "ratio"],
          [[kind] + [x for k in ("seconds", "update_s", "sweep_s")
                     for x in (v[k], v[k] / ref[k] if ref else float("nan"))] for kind, v in us.items()])
    live_rss = res["LiveTable"][0]["rss"] / res["LiveTable"][0]["flows"]
    live_tr = res["LiveTable"][1]["traced"] / res["LiveTable"][1]["flows"]
    print("\nLiveTable keeps numbers in typed arrays by slot, IPv4 addresses as numbers, shared names as codes, "
          "one per-minute cell per slot, and an index by packed 5-tuple")
    print(f"LiveTable: {live_rss:.0f} B/flow RSS ({live_rss / (base_rss / res['dict/flow'][0]['flows']):.2f}x a dict "
          f"per flow), {live_tr:.0f} B/flow traced ({verdict(max(live_rss, live_tr), 512, higher_is_better=False)} B)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(one(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")))
    else:
        main()
