"""Shared fixtures: a real flowscope server in a subprocess, users and tokens made with the real
CLI, and the SDK's real Streamable HTTP client speaking to it."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
PCAPS = CORPUS / "pcap"
DEMO = ROOT / "demo" / "demo.pcap"


IN_CI = os.environ.get("CI") == "true"


def unavailable(reason: str) -> NoReturn:
    """Something a test needs is missing: skip, except in CI (CI=true), where the corpus and the
    Debian packages are always there, so a missing one is a failure."""
    if IN_CI:
        pytest.fail(f"{reason}; in CI (CI=true) it must be there")
    pytest.skip(reason)


def corpus_pcap(name: str) -> Path:
    path = PCAPS / name
    if not path.exists():
        unavailable(f"corpus capture {name} not available (../shared/corpus absent)")
    return path


def need_tool(name: str) -> str:
    """The path of a program from a Debian package (make test installs them)."""
    import shutil

    path = shutil.which(name)
    if not path:
        unavailable(f"{name} not installed (Debian package; make deps installs it)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(data_dir: Path | str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "FLOWSCOPE_DATA_DIR": str(data_dir)}
    res = subprocess.run([sys.executable, "-m", "flowscope", *args], env=env, capture_output=True, text=True,
                         timeout=300)
    if check and res.returncode != 0:
        raise AssertionError(f"flowscope {' '.join(args)} failed: {res.stderr}")
    return res


class Server:
    """A running `flowscope serve` with the users asked for (tests use STANDARD_USERS).

    `python_args` go before `-m flowscope`, e.g. ("-m", "cProfile", "-o", FILE) in benchmarks;
    `prefix` before the interpreter, e.g. ("ip", "netns", "exec", NS) with `host` the address the
    server listens on there."""

    def __init__(self, data_dir: Path, args: list[str], users: dict[str, dict[str, Any]] | None = None,
                 python_args: tuple[str, ...] = (), prefix: tuple[str, ...] = (), host: str = "127.0.0.1",
                 tls: tuple[Path, Path] | None = None):
        self.data_dir = data_dir
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self.port}/mcp"
        self.base = f"{scheme}://{host}:{self.port}"
        #: httpx `verify`: trust the (self-signed) certificate served
        self.verify: Any = ssl.create_default_context(cafile=str(tls[0])) if tls else True
        if tls:
            args = [*args, "--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        self.tokens: dict[str, str] = {}
        for name, spec in (users or {}).items():
            extra = ["--allowed-networks", spec["networks"]] if spec.get("networks") else []
            if not any(u.split("\t")[0] == spec["user"] for u in cli(data_dir, "user", "list").stdout.splitlines()):
                cli(data_dir, "user", "add", spec["user"], "--role", spec.get("role", "user"), *extra)
            ro = ["--read-only"] if spec.get("read_only") else []
            self.tokens[name] = cli(data_dir, "token", "create", spec["user"], *ro).stdout.strip().splitlines()[-1]
        env = {**os.environ, "FLOWSCOPE_DATA_DIR": str(data_dir)}
        self.log = open(data_dir / "server.log", "w")
        self.proc = subprocess.Popen([*prefix, sys.executable, *python_args, "-m", "flowscope", "serve", "--listen",
                                      f"{host}:{self.port}", *args], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {(self.data_dir / 'server.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/health", timeout=2, verify=self.verify).status_code == 200:
                    return
            time.sleep(0.3)
        raise AssertionError("server did not become ready")

    def health(self, token: str | None = None, anonymous: bool = False) -> dict:
        """/health as `token` (a name in `tokens` or a secret) sees it; by default as this server's
        admin (or first user), since sources and counters need a token."""
        if anonymous:
            secret = None
        elif token:
            secret = self.tokens.get(token, token)
        else:
            secret = self.tokens.get("admin") or next(iter(self.tokens.values()), None)
        headers = {"Authorization": f"Token {secret}"} if secret else {}
        return httpx.get(self.base + "/health", timeout=5, headers=headers, verify=self.verify).json()

    def wait_sources_done(self, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = self.health()
            if all(s["state"] in ("done", "failed") for s in h["sources"]) and h.get("writer_idle", True):
                time.sleep(0.3)
                h = self.health()  # still idle a moment later: the last batch is stored
                if h.get("writer_idle", True):
                    return h
            time.sleep(0.3)
        raise AssertionError("sources did not finish")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


STANDARD_USERS = {
    "admin": {"user": "admin", "role": "admin"},
    "readonly": {"user": "admin", "read_only": True},
    "analyst": {"user": "analyst", "role": "user"},
    "restricted": {"user": "restricted", "role": "user", "networks": "192.168.0.0/16"},
}


@pytest.fixture(scope="session")
def make_server(tmp_path_factory):
    started: list[Server] = []

    def make(args: list[str], users: dict | None = None, data_dir: Path | None = None) -> Server:
        d = data_dir or tmp_path_factory.mktemp("server")
        s = Server(d, args, STANDARD_USERS if users is None else users)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


#: Tool-behaviour tests see every toolset; tests of the default listing pass path="/mcp".
ALL_TOOLSETS = "/mcp/x/all"


async def call_tool(server: Server, name: str, args: dict | None = None, *, token: str = "admin",
                    era: str = "2025-11-25", path: str = ALL_TOOLSETS):
    """Call one tool through the SDK's Streamable HTTP client; returns the CallToolResult."""
    async with mcp_session(server, token=token, era=era, path=path) as session:
        return await session.call_tool(name, args or {})


@contextlib.asynccontextmanager
async def mcp_session(server: Server, *, token: str = "admin", era: str = "2025-11-25", path: str = ALL_TOOLSETS,
                      scheme: str = "Token", headers: dict | None = None, **session_kwargs):
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    secret = server.tokens.get(token, token)
    headers = {"Authorization": f"{scheme} {secret}", **(headers or {})}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=300), verify=server.verify) as http:
        async with streamable_http_client(server.base + path, http_client=http) as (read, write):
            async with ClientSession(read, write, **session_kwargs) as session:
                if era == "2025-11-25":
                    await session.initialize()
                else:
                    await session.discover()
                yield session
