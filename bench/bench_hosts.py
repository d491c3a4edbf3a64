"""Host learning: flows/s fed to the hosts component's model, flat as hosts accumulate.

Rows shaped like `flow_row`'s (65,536 LAN clients behind one router MAC talking to remote
servers, a share of them TLS with an SNI, some HTTP with a User-Agent, servers answering) are fed
in batches to `learn_from_flow_rows`, the hosts component's per-batch work. The rate is measured
per slice of the run, so a rate that falls as hosts accumulate shows. Two workloads: `typical`
(servers from a skewed pool: popular ones recur, new ones keep appearing) and `worst` (a server
never seen before in every flow, so every flow creates a host).

`flows/cpu-s` divides by the process's CPU time: on a shared machine it is the figure that does
not depend on what else runs (the goal is read against it).

Baseline (same run): encoding the same rows for the store (`json.dumps` per row, what the
writer's insert does for every flow anyway). A ratio >= 1 means learning keeps up with storing.

    .venv/bin/python bench/bench_hosts.py     # BENCH_HOSTS_FLOWS (400000), BENCH_HOSTS_SLICES (4)
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_int, load, table, verdict  # noqa: E402

APPS = (("TLS.Google", 443, 6), ("HTTP", 80, 6), ("DNS", 53, 17), ("QUIC.YouTube", 443, 17), ("SSH", 22, 6))


def make_rows(n: int, seed: int = 1, worst: bool = False) -> list[dict]:
    """Typical: servers drawn from a skewed pool (a few popular, a long tail of new ones).
    Worst (`worst=True`): a server never seen before in every flow."""
    rnd = random.Random(seed)
    router = 0x0000_5E00_0101
    rows = []
    t0 = time.time() - 86400
    for i in range(n):
        local = (192 << 24) | (168 << 16) | rnd.randrange(1 << 16)  # 65,536 LAN hosts
        remote = (23 << 24) + (i if worst else int(rnd.paretovariate(0.5)) % (1 << 22))
        app, port, proto = APPS[i % len(APPS)]
        ts = t0 + i * 0.01
        rows.append({
            "FLOW_ID": rnd.getrandbits(63), "IP_PROTOCOL_VERSION": 4, "FIRST_SEEN": ts - 1, "LAST_SEEN": ts,
            "VLAN_ID": 0, "PACKETS": 10, "TOTAL_BYTES": 4000, "SRC2DST_BYTES": 1000, "DST2SRC_BYTES": 3000,
            "SRC2DST_PACKETS": 5, "DST2SRC_PACKETS": 5, "PROTOCOL": proto,
            "IPV4_SRC_ADDR": local, "IPV4_DST_ADDR": remote, "IPV6_SRC_ADDR": "::", "IPV6_DST_ADDR": "::",
            "IP_SRC_PORT": 40000 + i % 20000, "IP_DST_PORT": port, "L7_PROTO": 0, "L7_PROTO_MASTER": 0,
            "DOMAIN_NAME": f"s{remote % 5000}.example.com" if port == 443 else "",
            "USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0" if app == "HTTP" else "",
            "SRC_MAC": 0x0200_0000_0000 + (local & 0xFFFF), "DST_MAC": router,
            "DST2SRC_TCP_FLAGS": 0x12 if proto == 6 else 0, "SRC2DST_TCP_FLAGS": 0x02 if proto == 6 else 0,
            "SOURCE_TYPE": "interface", "L7_PROTO_NAME": app,
            "SRC_IP": ".".join(str((local >> s) & 255) for s in (24, 16, 8, 0)),
            "DST_IP": ".".join(str((remote >> s) & 255) for s in (24, 16, 8, 0)),
        })
    return rows


def main() -> None:
    n = env_int("BENCH_HOSTS_FLOWS", 400_000)
    slices = env_int("BENCH_HOSTS_SLICES", 4)
    batch = 5_000
    from flowscope.services.hosts.identity import learn_from_flow_rows
    from flowscope.services.hosts.model import HostModel

    print(f"{n:,} flows per workload, {slices} slices, batches of {batch:,}; {load()}")
    out, summary = [], []
    for workload in ("typical", "worst"):
        rows = make_rows(n, worst=workload == "worst")
        t = time.perf_counter()
        for r in rows:
            json.dumps(r, default=str)
        base = n / (time.perf_counter() - t)
        model = HostModel(max_hosts=10_000_000)
        per = n // slices
        rates = []
        for s in range(slices):
            part = rows[s * per:(s + 1) * per]
            t, c = time.perf_counter(), time.process_time()
            for i in range(0, len(part), batch):
                learn_from_flow_rows(model, part[i:i + batch])
            rate = len(part) / (time.perf_counter() - t)
            cpu_rate = len(part) / (time.process_time() - c)
            rates.append(cpu_rate)
            out.append([workload, s + 1, len(model.hosts), len(model.macs), rate, cpu_rate, base, rate / base])
        summary.append((workload, rates))
    table("host learning (ratio vs json.dumps of the same rows, timed just before)",
          ["workload", "slice", "hosts after", "macs after", "flows/s", "flows/cpu-s", "json rows/s", "ratio"], out)
    print()
    for workload, rates in summary:
        print(f"{workload}: {rates[-1]:,.0f} flows per CPU second in the last slice ({verdict(rates[-1], 50_000)}); "
              f"last/first slice {rates[-1] / rates[0]:.2f}x (flat is ~1)")


if __name__ == "__main__":
    main()
