"""The running server's runtime file: how `flowscope stdio` and `flowscope ingest` find a
`flowscope serve` that holds the data directory, and the credential they show it.

`serve` writes `<data_dir>/run/serve.json` (directory 0700, file 0600, owned by the server's
account): its loopback URL, its pid and a random secret made at start. The server keeps only the
secret's hash, in memory, and accepts it only on connections from this machine (see
`flowscope.auth.Auth.authenticate_local`): whoever can read the file is the data directory's
owner, who could open the database anyway. The file is removed when `serve` stops; a stale one
(its pid gone) is ignored, and its secret died with the process.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LOCAL_SCHEME = "Local"  # Authorization: Local <secret>
USER_HEADER = "x-flowscope-user"  # the user a local client acts as
INGEST_PATH = "/local/ingest"


@dataclass(frozen=True)
class Runtime:
    url: str  # scheme://host:port, reachable from this machine
    pid: int
    secret: str
    cafile: str | None = None  # the server's TLS certificate, when it serves HTTPS

    @property
    def mcp_url(self) -> str:
        return self.url + "/mcp"

    @property
    def ingest_url(self) -> str:
        return self.url + INGEST_PATH

    def verify(self) -> ssl.SSLContext | bool:
        """TLS verification for HTTP clients: the server's own certificate, whatever name it bears
        (the connection is to this machine)."""
        if not self.cafile:
            return True
        context = ssl.create_default_context(cafile=self.cafile)
        context.check_hostname = False
        return context


def path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "run" / "serve.json"


def local_url(host: str, port: int, tls: bool) -> str:
    """Where a client on this machine reaches a server listening on host:port."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def publish(data_dir: str | Path, url: str, cafile: str | None = None) -> Runtime:
    """Write a fresh runtime file (atomically, owner-only) and return what it holds."""
    target = path(data_dir)
    target.parent.mkdir(mode=0o700, exist_ok=True)
    os.chmod(target.parent, 0o700)
    runtime = Runtime(url=url, pid=os.getpid(), secret=secrets.token_urlsafe(32),
                      cafile=os.path.abspath(cafile) if cafile else None)
    tmp = target.with_name(f".serve.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(runtime), fh)
    os.replace(tmp, target)
    return runtime


def withdraw(data_dir: str | Path, runtime: Runtime) -> None:
    """Remove the runtime file if it is still ours."""
    current = _read(path(data_dir))
    if current is not None and current.secret == runtime.secret:
        path(data_dir).unlink(missing_ok=True)


def find(data_dir: str | Path) -> Runtime | None:
    """The running server of this data directory, or None (no file, a stale one, or a file this
    account does not own alone)."""
    runtime = _read(path(data_dir))
    return runtime if runtime is not None and pid_alive(runtime.pid) else None


def wait_for(data_dir: str | Path, timeout_s: float) -> Runtime | None:
    """`find`, retried while a server that holds the database is still starting."""
    deadline = time.monotonic() + timeout_s
    while True:
        runtime = find(data_dir)
        if runtime is not None or time.monotonic() >= deadline:
            return runtime
        time.sleep(0.25)


def wait_ready(runtime: Runtime, timeout_s: float = 30.0) -> bool:
    """True once the server answers (it publishes the file just before it starts listening)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pid_alive(runtime.pid):
        try:
            if httpx.get(runtime.url + "/health", timeout=2, verify=runtime.verify()).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(file: Path) -> Runtime | None:
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd) as fh:
        info = os.fstat(fh.fileno())
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            return None  # not written by this account's server
        try:
            data = json.load(fh)
            return Runtime(url=str(data["url"]), pid=int(data["pid"]), secret=str(data["secret"]),
                           cafile=data.get("cafile"))
        except (ValueError, KeyError, TypeError):
            return None
