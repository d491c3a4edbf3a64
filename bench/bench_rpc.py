"""MCP round trip over Streamable HTTP with the real server, against a bare /health GET.

A real `flowscope serve` runs in a subprocess on 127.0.0.1 (temp data dir, an admin user and
token made with the real CLI, as tests/conftest.py's Server does). The client is the MCP SDK's
streamable_http_client + ClientSession (sessions are opened and initialised before timing);
the tool is `get_interfaces` (no arguments, no database query).

Baseline, same run, same client process and HTTP library (httpx2, which the SDK client uses):
GET /health (a plain Starlette JSON route of the same server, token check skipped).

Phases, each with 1 client (sequential calls: latency) and with 16 concurrent clients (each
its own session / connection, each calling in a loop for a fixed count: throughput):
  health    GET /health
  mcp       tools/call get_interfaces
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
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, env_int, load, median, percentile, table, verdict  # noqa: E402

CONCURRENCY = 16
TOOL = "get_interfaces"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(data_dir: Path, *args: str) -> str:
    env = {**os.environ, "FLOWSCOPE_DATA_DIR": str(data_dir)}
    res = subprocess.run([sys.executable, "-m", "flowscope", *args], env=env, capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f"flowscope {' '.join(args)} failed: {res.stderr}")
    return res.stdout


class Server:
    def __init__(self, data_dir: Path, profile: str | None):
        import httpx

        cli(data_dir, "user", "add", "bench", "--role", "admin")
        self.token = cli(data_dir, "token", "create", "bench").strip().splitlines()[-1]
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "FLOWSCOPE_DATA_DIR": str(data_dir)}
        pre = ["-m", "cProfile", "-o", profile] if profile else []
        self.log = open(data_dir / "server.log", "w")
        self.proc = subprocess.Popen([sys.executable, *pre, "-m", "flowscope", "serve", "--listen",
                                      f"127.0.0.1:{self.port}"], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=ROOT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {(data_dir / 'server.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise SystemExit("server did not become ready")

    def cpu(self) -> float:
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextlib.asynccontextmanager
async def mcp_session(server: Server):
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Token {server.token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=300)) as http:
        async with streamable_http_client(server.base + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


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


async def bench(server: Server, seq_calls: int, calls_each: int) -> list[list]:
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

    out = []
    for name, factory in (("health", health_factory), ("mcp " + TOOL, mcp_factory)):
        for n, each in ((1, seq_calls), (CONCURRENCY, calls_each)):
            lat, wall, scpu, ccpu = await run_phase(server, factory, n, each)
            out.append({"name": name, "clients": n, "calls": len(lat), "p50": percentile(lat, 50),
                        "p95": percentile(lat, 95), "rate": len(lat) / wall, "wall": wall,
                        "server_cpu": scpu, "client_cpu": ccpu})
    return out


def main() -> None:
    seq_calls = env_int("BENCH_RPC_SEQ", 300)
    calls_each = env_int("BENCH_RPC_CALLS", 60)
    profile = os.environ.get("BENCH_RPC_PROFILE")
    tmp = Path(tempfile.mkdtemp(prefix="flowscope-bench-rpc-"))
    server = None
    try:
        server = Server(tmp, str(tmp / "server.prof") if profile else None)
        print(f"server on {server.base}; {load()}")
        res = asyncio.run(bench(server, seq_calls, calls_each))
        base = {r["clients"]: r for r in res if r["name"] == "health"}
        rows = []
        for r in res:
            b = base[r["clients"]]
            rows.append([r["name"], r["clients"], r["calls"], r["p50"] * 1000, r["p95"] * 1000,
                         r["p50"] / b["p50"], r["rate"], r["rate"] / b["rate"],
                         r["server_cpu"] / r["calls"] * 1000, r["client_cpu"] / r["calls"] * 1000])
        table("round trips (ratios vs GET /health at the same concurrency, this run)",
              ["case", "clients", "calls", "p50 ms", "p95 ms", "p50 ratio", "calls/s", "rate ratio",
               "srv cpu ms/call", "cli cpu ms/call"], rows)
        seq = next(r for r in res if r["name"] != "health" and r["clients"] == 1)
        conc = next(r for r in res if r["name"] != "health" and r["clients"] == CONCURRENCY)
        print(f"\n{TOOL} p50, 1 client: {seq['p50'] * 1000:.2f} ms ({verdict(seq['p50'] * 1000, 5, False)}); "
              f"p50 at {CONCURRENCY} clients: {conc['p50'] * 1000:.2f} ms")
        print(f"{TOOL} at {CONCURRENCY} clients: {conc['rate']:.0f} calls/s ({verdict(conc['rate'], 500)})")
    finally:
        if server:
            server.stop()
        if profile and (tmp / "server.prof").exists():
            print("\nserver profile (cumulative, top 25):")
            pstats.Stats(str(tmp / "server.prof")).sort_stats("tottime").print_stats(25)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
