"""MCP round trip over Streamable HTTP with the real server, against a bare /health GET.

A real `flowscope serve` runs in a subprocess on 127.0.0.1 (temp data dir, an admin user and
token made with the real CLI, as tests/conftest.py's Server does). The client is the MCP SDK's
streamable_http_client + ClientSession (sessions are opened and initialised before timing);
the tool is `get_interfaces` (no arguments, no database query).

Baseline, same run, same client process and HTTP library (httpx2, which the SDK client uses):
GET /health (a plain Starlette JSON route of the same server, token check skipped).

Phases: 1 client (sequential calls: latency), health then mcp; then BENCH_RPC_ROUNDS (3) rounds of
16 concurrent clients (each its own session / connection, each calling in a loop for a fixed count:
throughput), health then mcp in each round, so each ratio compares phases seconds apart:
  health    GET /health
  mcp       tools/call get_interfaces
Goals (issue 15): the 16-client rate ratio (median of the rounds) >= 0.3, p50 at 1 client <= 3 ms.
The client runs in one asyncio process on the same 2 cores as the server, so its CPU use is
part of what is measured; server and client CPU seconds are printed to show who saturates.

    .venv/bin/python bench/bench_rpc.py      # BENCH_RPC_CALLS (per client at 16, default 60),
                                             # BENCH_RPC_SEQ (sequential calls, default 300)
    BENCH_RPC_PROFILE=1 ...                  # also run the server under cProfile, print its top
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pstats
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fsharness  # noqa: E402  (the tests' real-server harness)
from _common import env_int, load, percentile, table, verdict  # noqa: E402

CONCURRENCY = 16
TOOL = "get_interfaces"


class Server(fsharness.Server):
    """The tests' real server, plus its CPU time."""

    def __init__(self, data_dir: Path, profile: str | None):
        prof = ("-m", "cProfile", "-o", profile) if profile else ()
        super().__init__(data_dir, [], {"bench": {"user": "bench", "role": "admin"}}, python_args=prof)

    def cpu(self) -> float:
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system


def mcp_session(server: Server):
    return fsharness.mcp_session(server, token="bench")


async def health_caller(server: Server):
    import httpx2

    client = httpx2.AsyncClient(timeout=60)

    async def call():
        r = await client.get(server.base + "/health")
        r.raise_for_status()
    return client, call


async def run_phase(server: Server, make_callers, n_clients: int, calls_each: int) -> tuple:
    """Each client calls `calls_each` times; returns (latencies s, wall s, server cpu s, client cpu s)
    of the timed part (sessions are opened and warmed up before)."""
    async with contextlib.AsyncExitStack() as stack:
        callers = [await make_callers(stack) for _ in range(n_clients)]
        for c in callers:  # warm-up: connections, first-call caches
            for _ in range(3):
                await c()
        lat: list[float] = []

        async def loop(call):
            for _ in range(calls_each):
                t = time.perf_counter()
                await call()
                lat.append(time.perf_counter() - t)
        cpu0, ccpu0 = server.cpu(), time.process_time()
        t0 = time.perf_counter()
        await asyncio.gather(*(loop(c) for c in callers))
        wall = time.perf_counter() - t0
        return lat, wall, server.cpu() - cpu0, time.process_time() - ccpu0


async def bench(server: Server, seq_calls: int, calls_each: int, rounds: int) -> list[dict]:
    """1 client: health then mcp; then `rounds` rounds of 16 clients, health then mcp in each, so
    both sides of each ratio see the same load from other processes."""
    async def health_factory(stack):
        client, call = await health_caller(server)
        stack.push_async_callback(client.aclose)
        return call

    async def mcp_factory(stack):
        session = await stack.enter_async_context(mcp_session(server))

        async def call():
            res = await session.call_tool(TOOL, {})
            if res.is_error:
                raise SystemExit(f"{TOOL} failed: {res.content}")
        return call

    plan = [(1, seq_calls, 0)] + [(CONCURRENCY, calls_each, r + 1) for r in range(rounds)]
    out = []
    for n, each, round_no in plan:
        for name, factory in (("health", health_factory), ("mcp " + TOOL, mcp_factory)):
            lat, wall, scpu, ccpu = await run_phase(server, factory, n, each)
            out.append({"name": name, "clients": n, "round": round_no, "calls": len(lat), "p50": percentile(lat, 50),
                        "p95": percentile(lat, 95), "rate": len(lat) / wall, "wall": wall,
                        "server_cpu": scpu, "client_cpu": ccpu})
    return out


def report(res: list[dict]) -> None:
    base = {r["round"]: r for r in res if r["name"] == "health"}
    rows, ratios, cpu_ratios = [], [], []

    def cpu(r: dict) -> float:  # server + client CPU seconds per call
        return (r["server_cpu"] + r["client_cpu"]) / r["calls"]

    for r in res:
        b = base[r["round"]]
        rows.append([r["name"], r["clients"], r["round"] or "-", r["calls"], r["p50"] * 1000, r["p95"] * 1000,
                     r["p50"] / b["p50"], r["rate"], r["rate"] / b["rate"],
                     r["server_cpu"] / r["calls"] * 1000, r["client_cpu"] / r["calls"] * 1000])
        if r["name"] != "health" and r["clients"] == CONCURRENCY:
            ratios.append(r["rate"] / b["rate"])
            cpu_ratios.append(cpu(b) / cpu(r))
    table("round trips (ratios vs GET /health at the same concurrency, measured just before)",
          ["case", "clients", "round", "calls", "p50 ms", "p95 ms", "p50 ratio", "calls/s", "rate ratio",
           "srv cpu ms/call", "cli cpu ms/call"], rows)
    seq = next(r for r in res if r["name"] != "health" and r["clients"] == 1)
    conc = sorted((r for r in res if r["name"] != "health" and r["clients"] == CONCURRENCY), key=lambda r: r["rate"])
    mid = conc[len(conc) // 2]
    ratio = sorted(ratios)[len(ratios) // 2]
    print(f"\n{TOOL} p50, 1 client: {seq['p50'] * 1000:.2f} ms = {seq['p50'] / base[0]['p50']:.2f}x /health's "
          f"({verdict(seq['p50'] * 1000, 3, False)} ms)")
    print(f"{TOOL} at {CONCURRENCY} clients: {ratio:.2f}x /health's rate, median of {len(ratios)} rounds "
          f"({', '.join(f'{x:.2f}' for x in ratios)}; {verdict(ratio, 0.3)}x); "
          f"{mid['rate']:.0f} calls/s, p50 {mid['p50'] * 1000:.1f} ms")
    print(f"CPU per call (server + client), /health's over {TOOL}'s: median {sorted(cpu_ratios)[len(cpu_ratios) // 2]:.2f} "
          "(steadier than the rate ratio under load, though load inflates /health's CPU per call more)")


def main() -> None:
    seq_calls = env_int("BENCH_RPC_SEQ", 300)
    calls_each = env_int("BENCH_RPC_CALLS", 60)
    rounds = env_int("BENCH_RPC_ROUNDS", 3)
    profile = os.environ.get("BENCH_RPC_PROFILE")
    tmp = Path(tempfile.mkdtemp(prefix="flowscope-bench-rpc-"))
    server = None
    try:
        server = Server(tmp, str(tmp / "server.prof") if profile else None)
        print(f"server on {server.base}; {load()}")
        report(asyncio.run(bench(server, seq_calls, calls_each, rounds)))
        print(load())
    finally:
        if server:
            if profile:  # cProfile writes its file on a clean exit: SIGINT, as Ctrl-C
                server.proc.send_signal(signal.SIGINT)
                server.proc.wait(60)
            server.stop()
        if profile and (tmp / "server.prof").exists():
            print("\nserver profile (own time, top 40):")
            pstats.Stats(str(tmp / "server.prof")).sort_stats("tottime").print_stats(40)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
