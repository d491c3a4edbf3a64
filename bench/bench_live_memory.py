"""Memory per live flow in flowscope.flows.live.LiveTable at 1M flows, against a dict per flow.

Rows look like what flowscope.flows.record.flow_row makes for live traffic: distinct client
and server IPv4 strings, a 63-bit FLOW_ID, timestamps, byte/packet counters, MAC numbers, a
Community ID, and for some flows an SNI/DNS name, JA4/JA3S fingerprints or a User-Agent.
Strings that come out of nfstream for every flow (addresses, application names, SNI, ...)
are fresh objects per row, as they are in the real pipeline.

Each case runs in its own subprocess and is filled through its public entry point, one row at
a time (rows are dropped after being added, as the meter's are), then measured two ways:
  RSS delta      resident memory after filling minus before (what the OS sees; allocator
                 overhead and free lists included)
  tracemalloc    Python allocations still alive after filling (a separate run, with
                 BENCH_LIVE_TRACE_FLOWS flows, default 200000: tracemalloc's own bookkeeping
                 would inflate RSS and it is slow; bytes per flow hardly depend on the count)
Cases:
  LiveTable      LiveTable.merge_segment(row) (live interfaces: keyed by 5-tuple)
  dict/flow      baseline: {flow_key(row): dict(row)} with the very same rows

    .venv/bin/python bench/bench_live_memory.py     # BENCH_LIVE_FLOWS (default 1000000),
                                                    # BENCH_LIVE_TRACE_FLOWS (default 200000)
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, env_int, load, table, verdict  # noqa: E402

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
        yield {
            "FLOW_ID": rnd.getrandbits(63),
            "IP_PROTOCOL_VERSION": 4,
            "FIRST_SEEN": first,
            "LAST_SEEN": first + rnd.random() * 30,
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
        }


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def one(kind: str, n: int, trace: bool) -> dict:
    import gc
    import time
    import tracemalloc

    from flowscope.flows.live import LiveTable, flow_key

    gen = rows(n)
    next(rows(1))  # import and warm everything the generator needs
    gc.collect()
    if trace:
        tracemalloc.start()
    before_rss, before_tr = rss(), tracemalloc.get_traced_memory()[0] if trace else 0
    t = time.perf_counter()
    if kind == "LiveTable":
        holder = LiveTable(max_flows=n + 1)
        for row in gen:
            holder.merge_segment(row)
        size = len(holder)
    else:
        holder = {}
        for row in gen:
            holder[flow_key(row)] = dict(row)
        size = len(holder)
    seconds = time.perf_counter() - t
    gc.collect()
    after_tr = tracemalloc.get_traced_memory()[0] if trace else 0
    out = {"flows": size, "seconds": seconds, "rss": rss() - before_rss, "traced": after_tr - before_tr}
    if kind == "LiveTable" and not trace:
        f = next(iter(holder.flows()))
        out["slots_object"] = sys.getsizeof(f)
    return out


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
    res = {}
    for kind in ("dict/flow", "LiveTable"):
        res[kind] = (child(kind, n, False), child(kind, n_trace, True))
    base_rss, base_tr = res["dict/flow"][0]["rss"], res["dict/flow"][1]["traced"]
    rows_out = []
    for kind, (plain, traced) in res.items():
        rows_out.append([kind, plain["flows"], plain["rss"] / plain["flows"], plain["rss"] / base_rss,
                         traced["traced"] / traced["flows"], traced["traced"] / base_tr, plain["seconds"],
                         plain["flows"] / plain["seconds"]])
    table("memory per live flow (bytes; ratios vs a plain dict per flow in this run)",
          ["case", "flows (RSS)", "RSS B/flow", "RSS ratio", "traced B/flow", "traced ratio", "fill s", "rows/s"],
          rows_out)
    live_rss = res["LiveTable"][0]["rss"] / res["LiveTable"][0]["flows"]
    live_tr = res["LiveTable"][1]["traced"] / res["LiveTable"][1]["flows"]
    print(f"\nLiveFlow object alone (sys.getsizeof, {len(__import__('flowscope.flows.live', fromlist=['x']).LiveFlow.__slots__)} "
          f"slots): {res['LiveTable'][0]['slots_object']} B")
    print(f"LiveTable: {live_rss:.0f} B/flow RSS, {live_tr:.0f} B/flow traced "
          f"({verdict(max(live_rss, live_tr), 1024, higher_is_better=False)} B)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(one(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")))
    else:
        main()
