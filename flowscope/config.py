"""Settings: command line over environment over `<data_dir>/flowscope.toml` over defaults."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRIVATE_NETWORKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10"]


def default_data_dir() -> str:
    env = os.environ.get("FLOWSCOPE_DATA_DIR")
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "flowscope")


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise ValueError(f"--listen wants HOST:PORT, e.g. 127.0.0.1:3000 (got {text!r})")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_networks(text: str | list[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else text
    out = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"not a network: {item!r} (use CIDR, e.g. 10.0.0.0/8 or 2001:db8::/32)") from None
    return out


@dataclass
class Config:
    data_dir: str = field(default_factory=default_data_dir)
    listen: str = "127.0.0.1:3000"
    clickhouse_url: str | None = None
    pcaps: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    collect: list[str] = field(default_factory=list)
    local_networks: list[str] = field(default_factory=lambda: list(PRIVATE_NETWORKS))
    #: extra Host header values accepted besides localhost (DNS-rebinding protection)
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    idle_timeout: int = 120
    active_timeout: int = 1800
    #: file sources: long timeouts keep each flow whole, as ndpiReader does
    file_idle_timeout: int = 3600
    file_active_timeout: int = 86400
    batch_rows: int = 50_000  # or batch_seconds, whichever comes first
    batch_seconds: float = 1.0
    max_live_flows: int = 1_000_000
    #: serve HTTPS with this certificate and key (PEM); needed to serve beyond loopback safely
    tls_cert: str | None = None
    tls_key: str | None = None
    #: MCP sessions: per token (its least recently used idle one is closed beyond this), in all,
    #: and the idle time after which one ends
    max_sessions_per_token: int = 32
    max_sessions: int = 1024
    session_idle_timeout: int = 1800
    query_timeout_s: int = 30
    #: limits on every user query (see flowscope.store.store.QueryLimits); 0 means no limit
    query_max_memory: int = 1 << 30
    query_max_rows_to_read: int = 0
    query_max_bytes_to_read: int = 0
    #: users' SQL takes at most half the cores: query_sql_lane queries of query_max_threads threads
    query_max_threads: int = 1
    query_max_per_user: int = 2
    query_sql_lane: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))
    query_max_rows: int = 10_000
    #: MCP toolsets served by default (flowscope.mcp.toolsets); empty: the default set
    toolsets: list[str] = field(default_factory=list)
    #: packet retention on live interfaces: ring size (e.g. "2GiB") and age (e.g. "24h"); None = off
    retain_packets: str | None = None
    retain_packets_for: str | None = None
    config_file: str | None = None
    file_settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        path = Path(self.config_file) if self.config_file else Path(self.data_dir) / "flowscope.toml"
        if path.is_file():
            with path.open("rb") as fh:
                self.file_settings = tomllib.load(fh)
            top = self.file_settings.get("flowscope", {})
            for key, value in top.items():
                if hasattr(self, key) and key not in ("data_dir", "file_settings", "config_file"):
                    setattr(self, key, value)
            self.collect += self.section("collector").get("listen", [])
        self.local_networks = parse_networks(self.local_networks)

    def query_limits(self):
        from flowscope.store.store import QueryLimits

        return QueryLimits(timeout_s=self.query_timeout_s, max_memory=self.query_max_memory,
                           max_rows_to_read=self.query_max_rows_to_read,
                           max_bytes_to_read=self.query_max_bytes_to_read, max_threads=self.query_max_threads,
                           per_user=self.query_max_per_user, sql_lane=self.query_sql_lane)

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.file_settings.get(name, {}))

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_listen(self.listen)


_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
               "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "t": 1000**4, "tb": 1000**4, "tib": 1024**4}
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str | int) -> int:
    """Bytes from '2GiB', '500MB', '1.5G' or a number of bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if not m or unit not in _SIZE_UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 2GiB, 500MB or a number of bytes)")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def parse_age(text: str | int) -> int:
    """Seconds from '24h', '7d', '90m', '30s' or a number of seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdwSMHDW]?)\s*", str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 24h, 7d, 90m or a number of seconds)")
    return int(float(m.group(1)) * _AGE_UNITS[(m.group(2) or "s").lower()])
