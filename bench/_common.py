"""Helpers shared by the benchmarks: timing, tables, the repository root on sys.path.

Every figure a benchmark reports is also given as a ratio against a baseline measured in the
same run, because the machine is shared (2 cores, other processes): absolute numbers drift,
ratios much less.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CORPUS_PCAPS = ROOT.parent / "shared" / "corpus" / "pcap"


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def best_of(fn, repeat: int) -> tuple[float, list[float], object]:
    """Run fn() `repeat` times; return (best seconds, all seconds, last result)."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def load() -> str:
    try:
        return "load avg " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f", {os.cpu_count()} cpu"
    except OSError:
        return f"{os.cpu_count()} cpu"


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    """Print a small fixed-width table."""
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, r in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def _fmt(c: object) -> str:
    if isinstance(c, float):
        if c != c:
            return "-"
        if abs(c) >= 1000:
            return f"{c:,.0f}"
        if abs(c) >= 10:
            return f"{c:.1f}"
        return f"{c:.2f}"
    if isinstance(c, int):
        return f"{c:,}"
    return str(c)


def verdict(value: float, goal: float, higher_is_better: bool = True) -> str:
    ok = value >= goal if higher_is_better else value <= goal
    return ("meets" if ok else "MISSES") + f" goal {'>=' if higher_is_better else '<='} {goal:g}"
