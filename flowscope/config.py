"""Settings: one validated model. Command line over environment (`FLOWSCOPE_<NAME>`) over the
`[flowscope]` table of the TOML file (`<data_dir>/flowscope.toml` or `--config FILE`) over defaults.

Other TOML tables (`[collector]`, `[timeseries]`, `[snmp]`, ...) belong to their components and are
read with `Config.section(name)`. A bad value is refused with the setting's name and where it came
from (the file's path, the environment variable or the command line).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

PRIVATE_NETWORKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10"]
ENV_PREFIX = "FLOWSCOPE_"
TOP_TABLE = "flowscope"
CLI, DEFAULT = "command line", "default"
LOCATING = ("data_dir", "config_file")  # settings that find the file cannot come from it


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the key and where it came from."""


def default_data_dir() -> str:
    env = os.environ.get(ENV_PREFIX + "DATA_DIR")
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "flowscope")


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise ValueError(f"wants HOST:PORT, e.g. 127.0.0.1:3000 (got {text!r})")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_networks(text: str | list[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else text
    out = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"not a network: {item!r} (use CIDR, e.g. 10.0.0.0/8 or 2001:db8::/32)") from None
    return out


def config_path(init: dict[str, Any]) -> tuple[Path, bool]:
    """The TOML file to read, and whether it was named explicitly (then it must exist)."""
    named = init.get("config_file") or os.environ.get(ENV_PREFIX + "CONFIG_FILE")
    if named:
        return Path(named), True
    return Path(init.get("data_dir") or default_data_dir()) / "flowscope.toml", False


def read_toml(path: Path, required: bool) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise SettingsError(f"{path}: config file not found")
        return {}
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    for name in LOCATING:
        if name in document.get(TOP_TABLE, {}):
            raise SettingsError(f"{path}: [{TOP_TABLE}] {name}: cannot be set in the file it locates; "
                                f"give it on the command line or as {ENV_PREFIX}{name.upper()}")
    return document


def file_values(document: dict[str, Any]) -> dict[str, Any]:
    """Settings the file gives: its [flowscope] table, and [collector] listen as `collect`."""
    values = dict(document.get(TOP_TABLE, {}))
    listen = document.get("collector", {}).get("listen")
    if listen is not None and "collect" not in values:
        values["collect"] = listen
    return values


class _FileSource(PydanticBaseSettingsSource):
    """The TOML file as a settings source (below the environment, above the defaults)."""

    def __init__(self, settings_cls: type[BaseSettings], init: dict[str, Any]):
        super().__init__(settings_cls)
        self.document = read_toml(*config_path(init))

    def get_field_value(self, field, field_name):  # required by the base class; __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return {**file_values(self.document), "file_settings": self.document}


def _split(value: Any) -> Any:
    """Lists from the environment or the command line may be comma-separated text."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


StrList = Annotated[list[str], NoDecode]


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    data_dir: str = Field(default_factory=default_data_dir, description="where the store, users and tokens live")
    config_file: str | None = Field(None, description="TOML file (default <data_dir>/flowscope.toml)")
    listen: str = Field("127.0.0.1:3000", description="HOST:PORT for MCP over HTTP")
    metrics_listen: str | None = Field(None, description="HOST:PORT serving /metrics without a token")
    clickhouse_url: str | None = Field(None, description="ClickHouse server URL; embedded chDB when unset")
    pcaps: StrList = Field(default_factory=list, description="capture files to meter")
    interfaces: StrList = Field(default_factory=list, description="live interfaces to meter")
    collect: StrList = Field(default_factory=list, description="collector listeners, e.g. udp://0.0.0.0:2055")
    local_networks: StrList = Field(default_factory=lambda: list(PRIVATE_NETWORKS), description="CIDRs")
    #: extra Host header values accepted besides localhost (DNS-rebinding protection)
    allowed_hosts: StrList = Field(default_factory=list)
    allowed_origins: StrList = Field(default_factory=list)
    idle_timeout: int = Field(120, ge=1, description="seconds of silence before a live flow is stored")
    active_timeout: int = Field(1800, ge=1, description="seconds after which a long live flow is cut")
    #: file sources: long timeouts keep each flow whole, as ndpiReader does
    file_idle_timeout: int = Field(3600, ge=1)
    file_active_timeout: int = Field(86400, ge=1)
    batch_rows: int = Field(50_000, ge=1, description="flows per insert (or batch_seconds, whichever first)")
    batch_seconds: float = Field(1.0, gt=0)
    max_live_flows: int = Field(1_000_000, ge=1)
    #: serve HTTPS with this certificate and key (PEM); needed to serve beyond loopback safely
    tls_cert: str | None = Field(None, description="PEM certificate for HTTPS")
    tls_key: str | None = Field(None, description="PEM private key of tls_cert")
    #: MCP sessions: per token (its least recently used idle one is closed beyond this), in all,
    #: and the idle time after which one ends
    max_sessions_per_token: int = Field(32, ge=1)
    max_sessions: int = Field(1024, ge=1)
    session_idle_timeout: int = Field(1800, ge=1)
    query_timeout_s: int = Field(30, ge=1)
    #: limits on every user query (see flowscope.store.store.QueryLimits); 0 means no limit
    query_max_memory: int = Field(1 << 30, ge=0, description="bytes of memory per user query")
    query_max_rows_to_read: int = Field(0, ge=0)
    query_max_bytes_to_read: int = Field(0, ge=0)
    #: users' SQL takes at most half the cores: query_sql_lane queries of query_max_threads threads
    query_max_threads: int = Field(1, ge=0)
    query_max_per_user: int = Field(2, ge=1, description="concurrent SQL queries per user")
    query_sql_lane: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1)
    query_max_rows: int = Field(10_000, ge=1)
    #: MCP toolsets served by default (flowscope.mcp.toolsets); empty: the default set
    toolsets: StrList = Field(default_factory=list)
    #: packet retention on live interfaces: ring size (e.g. "2GiB") and age (e.g. "24h"); None = off
    retain_packets: str | None = None
    retain_packets_for: str | None = None
    plugins: StrList = Field(default_factory=list, description="modules to load: their tools and components")
    #: the whole TOML document, for `section(name)`
    file_settings: dict[str, Any] = Field(default_factory=dict, exclude=True)

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls, init_settings.init_kwargs)

    def __init__(self, **values: Any):
        path, required = config_path(values)
        document = read_toml(path, required)
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_explain(exc, values, path, document)) from None
        self._sources = {name: _source(name, values, path, document) for name in type(self).model_fields}
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)

    def query_limits(self):
        from flowscope.store.store import QueryLimits

        return QueryLimits(timeout_s=self.query_timeout_s, max_memory=self.query_max_memory,
                           max_rows_to_read=self.query_max_rows_to_read,
                           max_bytes_to_read=self.query_max_bytes_to_read, max_threads=self.query_max_threads,
                           per_user=self.query_max_per_user, sql_lane=self.query_sql_lane)

    @field_validator("pcaps", "interfaces", "collect", "allowed_hosts", "allowed_origins", "plugins", "toolsets",
                     mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("local_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> list[str]:
        return parse_networks(_split(value))

    @field_validator("listen", "metrics_listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value

    # --- what other code reads ----------------------------------------------------------------------
    def section(self, name: str) -> dict[str, Any]:
        return dict(self.file_settings.get(name, {}))

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    def source_of(self, name: str) -> str:
        """Where a setting's value came from: command line, environment VAR, config file PATH, default."""
        return self._sources.get(name, DEFAULT)


def _env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _in_env(name: str) -> bool:
    wanted = _env_name(name)
    return any(k.upper() == wanted for k in os.environ)


def _source(name: str, init: dict[str, Any], path: Path, document: dict[str, Any]) -> str:
    if name in init:
        return CLI
    if _in_env(name):
        return f"environment {_env_name(name)}"
    if name in file_values(document):
        return f"config file {path}"
    return DEFAULT


def _explain(exc: ValidationError, init: dict[str, Any], path: Path, document: dict[str, Any]) -> str:
    problems = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        where = _source(name, init, path, document)
        if where == DEFAULT and name not in type_fields():
            where = f"config file {path}"
        if where.startswith("config file"):
            table = "collector] listen" if name == "collect" and "collect" not in document.get(TOP_TABLE, {}) \
                else f"{TOP_TABLE}] {name}"
            label = f"{path}: [{table}"
        elif where.startswith("environment"):
            label = where.removeprefix("environment ")
        else:
            label = f"{where} {name}"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown setting (known: {', '.join(sorted(type_fields()))})"
        elif "input" in err and not isinstance(err["input"], dict) and "(got " not in message:
            message += f" (got {err['input']!r})"
        problems.append(f"{label}: {message}")
    return "; ".join(problems)


def type_fields() -> list[str]:
    return [n for n in Config.model_fields if n != "file_settings"]


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
