"""Settings precedence: command line > environment (FLOWSCOPE_*) > TOML file > defaults, for every
setting; bad values are refused with the key and the file (or variable) they came from."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from flowscope.cli import _config, build_parser
from flowscope.config import Config, SettingsError, type_fields

# setting -> (file value, environment text, command-line value, value the environment text means)
LAYERS = {
    "listen": ("127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003", "127.0.0.1:1002"),
    "metrics_listen": ("127.0.0.1:2001", "127.0.0.1:2002", "127.0.0.1:2003", "127.0.0.1:2002"),
    "clickhouse_url": ("http://file:8123", "http://env:8123", "http://cli:8123", "http://env:8123"),
    "pcaps": (["f.pcap"], "e1.pcap,e2.pcap", ["c.pcap"], ["e1.pcap", "e2.pcap"]),
    "interfaces": (["ffile0"], "eenv0", ["ccli0"], ["eenv0"]),
    "collect": (["udp://127.0.0.1:1"], "udp://127.0.0.1:2", ["udp://127.0.0.1:3"], ["udp://127.0.0.1:2"]),
    "local_networks": (["10.1.0.0/16"], "10.2.0.0/16,fd00::/8", ["10.3.0.0/16"], ["10.2.0.0/16", "fd00::/8"]),
    "allowed_hosts": (["file.lan:*"], "env.lan:*", ["cli.lan:*"], ["env.lan:*"]),
    "allowed_origins": (["http://file.lan"], "http://env.lan", ["http://cli.lan"], ["http://env.lan"]),
    "idle_timeout": (11, "12", 13, 12),
    "active_timeout": (21, "22", 23, 22),
    "file_idle_timeout": (31, "32", 33, 32),
    "file_active_timeout": (41, "42", 43, 42),
    "batch_rows": (51, "52", 53, 52),
    "batch_seconds": (0.5, "0.25", 0.125, 0.25),
    "max_live_flows": (61, "62", 63, 62),
    "query_timeout_s": (71, "72", 73, 72),
    "query_max_rows": (81, "82", 83, 82),
    "plugins": (["file_plugin"], "env_a,env_b", ["cli_plugin"], ["env_a", "env_b"]),
    "tls_cert": ("/f/cert.pem", "/e/cert.pem", "/c/cert.pem", "/e/cert.pem"),
    "tls_key": ("/f/key.pem", "/e/key.pem", "/c/key.pem", "/e/key.pem"),
    "max_sessions_per_token": (91, "92", 93, 92),
    "max_sessions": (101, "102", 103, 102),
    "session_idle_timeout": (111, "112", 113, 112),
    "query_max_memory": (121, "122", 123, 122),
    "query_max_rows_to_read": (131, "132", 133, 132),
    "query_max_bytes_to_read": (141, "142", 143, 142),
    "query_max_threads": (2, "3", 4, 3),
    "query_max_per_user": (5, "6", 7, 6),
    "query_sql_lane": (8, "9", 10, 9),
    "toolsets": (["flows"], "sql,hosts", ["alerts"], ["sql", "hosts"]),
    "retain_packets": ("1GiB", "2GiB", "3GiB", "2GiB"),
    "retain_packets_for": ("1h", "2h", "3h", "2h"),
}


def toml_value(value) -> str:
    return json.dumps(value)  # JSON scalars and lists of strings are valid TOML


@pytest.fixture
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.upper().startswith("FLOWSCOPE_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_every_setting_is_covered():
    assert set(LAYERS) | {"data_dir", "config_file"} == set(type_fields())


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_precedence(name, tmp_path, clean_env):
    file_value, env_text, cli_value, env_value = LAYERS[name]
    default = Config(data_dir=str(tmp_path))
    assert default.source_of(name) == "default"
    (tmp_path / "flowscope.toml").write_text(f"[flowscope]\n{name} = {toml_value(file_value)}\n")
    from_file = Config(data_dir=str(tmp_path))
    assert getattr(from_file, name) == file_value != getattr(default, name)
    assert from_file.source_of(name) == f"config file {tmp_path / 'flowscope.toml'}"
    clean_env.setenv("FLOWSCOPE_" + name.upper(), env_text)
    from_env = Config(data_dir=str(tmp_path))
    assert getattr(from_env, name) == env_value
    assert from_env.source_of(name) == "environment FLOWSCOPE_" + name.upper()
    from_cli = Config(data_dir=str(tmp_path), **{name: cli_value})
    assert getattr(from_cli, name) == cli_value
    assert from_cli.source_of(name) == "command line"


SERVE_FLAGS = {  # the settings `flowscope serve` takes as flags
    "listen": ["--listen", "127.0.0.1:1003"],
    "metrics_listen": ["--metrics-listen", "127.0.0.1:2003"],
    "clickhouse_url": ["--clickhouse", "http://cli:8123"],
    "pcaps": ["--pcap", "c.pcap"],
    "interfaces": ["--interface", "ccli0"],
    "collect": ["--collect", "udp://127.0.0.1:3"],
    "local_networks": ["--local-networks", "10.3.0.0/16"],
    "allowed_hosts": ["--allowed-host", "cli.lan:*"],
    "allowed_origins": ["--allowed-origin", "http://cli.lan"],
}


def serve_config(tmp_path, *flags: str) -> Config:
    args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path), *flags])
    return _config(args, listen=args.listen, clickhouse_url=args.clickhouse, pcaps=args.pcap,
                   interfaces=args.interface, collect=args.collect, local_networks=args.local_networks,
                   allowed_hosts=args.allowed_host, allowed_origins=args.allowed_origin,
                   metrics_listen=args.metrics_listen)


@pytest.mark.parametrize("name", sorted(SERVE_FLAGS))
def test_command_line_flags_win(name, tmp_path, clean_env):
    file_value, env_text, cli_value, env_value = LAYERS[name]
    (tmp_path / "flowscope.toml").write_text(f"[flowscope]\n{name} = {toml_value(file_value)}\n")
    clean_env.setenv("FLOWSCOPE_" + name.upper(), env_text)
    assert getattr(serve_config(tmp_path), name) == env_value  # a flag left out does not count
    cfg = serve_config(tmp_path, *SERVE_FLAGS[name])
    assert getattr(cfg, name) == cli_value and cfg.source_of(name) == "command line"


def test_data_dir_and_config_file(tmp_path, clean_env):
    env_dir, cli_dir = tmp_path / "env", tmp_path / "cli"
    clean_env.setenv("FLOWSCOPE_DATA_DIR", str(env_dir))
    assert Config().data_dir == str(env_dir)
    assert Config(data_dir=str(cli_dir)).data_dir == str(cli_dir)
    named = tmp_path / "named.toml"
    named.write_text("[flowscope]\nquery_timeout_s = 5\n")
    (cli_dir / "flowscope.toml").write_text("[flowscope]\nquery_timeout_s = 6\n")
    assert Config(data_dir=str(cli_dir)).query_timeout_s == 6
    assert Config(data_dir=str(cli_dir), config_file=str(named)).query_timeout_s == 5
    clean_env.setenv("FLOWSCOPE_CONFIG_FILE", str(named))
    assert Config(data_dir=str(cli_dir)).query_timeout_s == 5
    with pytest.raises(SettingsError, match="missing.toml: config file not found"):
        Config(data_dir=str(cli_dir), config_file=str(tmp_path / "missing.toml"))
    (cli_dir / "flowscope.toml").write_text(f"[flowscope]\ndata_dir = {json.dumps(str(tmp_path))}\n")
    clean_env.delenv("FLOWSCOPE_CONFIG_FILE")
    with pytest.raises(SettingsError, match=r"flowscope.toml: \[flowscope\] data_dir: cannot be set"):
        Config(data_dir=str(cli_dir))


@pytest.mark.parametrize("line, key, why", [
    ('query_timeout_s = "soon"', "query_timeout_s", "valid integer"),
    ("idle_timeout = 0", "idle_timeout", "greater than or equal to 1"),
    ('listen = "nowhere"', "listen", "HOST:PORT"),
    ('local_networks = ["10.0.0.0/33"]', "local_networks", "not a network"),
    ("qeury_timeout_s = 3", "qeury_timeout_s", "unknown setting"),
])
def test_bad_file_value_names_key_and_file(line, key, why, tmp_path, clean_env):
    path = tmp_path / "flowscope.toml"
    path.write_text(f"[flowscope]\n{line}\n")
    with pytest.raises(SettingsError) as err:
        Config(data_dir=str(tmp_path))
    assert f"{path}: [flowscope] {key}: " in str(err.value) and why in str(err.value)


def test_bad_environment_value_names_variable(tmp_path, clean_env):
    clean_env.setenv("FLOWSCOPE_BATCH_ROWS", "many")
    with pytest.raises(SettingsError, match="FLOWSCOPE_BATCH_ROWS: .*valid integer"):
        Config(data_dir=str(tmp_path))


def test_serve_refuses_bad_file_before_starting(tmp_path, clean_env):
    path = tmp_path / "flowscope.toml"
    path.write_text('[flowscope]\nquery_max_rows = "lots"\n')
    res = subprocess.run([sys.executable, "-m", "flowscope", "serve", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert f"{path}: [flowscope] query_max_rows: Input should be a valid integer" in res.stderr
