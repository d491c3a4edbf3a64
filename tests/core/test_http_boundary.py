"""The HTTP trust boundary on the real server: sessions belong to their token and are bounded per
token, errors reach clients short with an id (details in the server log), hostile JSON-RPC gets
short answers, /health shows only "ok" without a token, and TLS."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import logging
import os
import re
import subprocess
import sys

import httpx
import pytest

from fsharness import DEMO, Server, call_tool, cli, free_port, mcp_session

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
#: what internal text looks like: exception names, tracebacks, pydantic's and ClickHouse's wording
LEAK = re.compile(r"Traceback|File \"|\w+(Error|Exception)\b|errors\.pydantic|validation errors? for|Code: \d+")
ERROR_ID = re.compile(r"error id ([0-9a-f]{12})")


@pytest.fixture(scope="module")
def server(make_server):
    s = make_server(["--pcap", str(DEMO)])
    s.wait_sources_done()
    return s


class Raw:
    """A bare HTTP client for one token: the requests an attacker would hand-craft."""

    def __init__(self, server: Server, token: str):
        self.server = server
        self.headers = {"Authorization": f"Token {server.tokens.get(token, token)}",
                        "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        self.http = httpx.AsyncClient(timeout=30, verify=server.verify)

    async def send(self, method: str, body: bytes | str | dict | None = None, sid: str | None = None,
                   **headers: str) -> httpx.Response:
        h = {**self.headers, **headers, **({"mcp-session-id": sid} if sid else {})}
        content = json.dumps(body) if isinstance(body, dict) else body
        if method == "GET":  # a stream: the answer's status is all we need
            h["Accept"] = "text/event-stream"
            async with self.http.stream("GET", self.server.url, headers=h) as res:
                return res
        return await self.http.request(method, self.server.url, content=content, headers=h)

    async def open(self) -> str:
        res = await self.send("POST", INIT)
        assert res.status_code == 200, res.text
        sid = res.headers["mcp-session-id"]
        assert (await self.send("POST", INITIALIZED, sid)).status_code == 202
        return sid

    async def alive(self, sid: str) -> bool:
        res = await self.send("POST", PING, sid)
        assert res.status_code in (200, 404), res.text
        return res.status_code == 200


def log_entry(server: Server, error_id: str) -> str:
    """The server log's lines from the one naming `error_id` to the next log line."""
    text = (server.data_dir / "server.log").read_text(errors="replace")
    start = text.index(f"error id {error_id}")
    nxt = re.search(r"\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text[start:])
    return text[start:start + nxt.start()] if nxt else text[start:]


# --- sessions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("intruder", ["admin", "readonly"])  # another user; the same user's other token
async def test_session_of_another_token_is_not_found(server, intruder):
    owner = Raw(server, "analyst")
    sid = await owner.open()
    other = Raw(server, intruder)
    assert (await other.send("POST", PING, sid)).status_code == 404
    assert (await other.send("GET", None, sid)).status_code == 404
    assert (await other.send("DELETE", None, sid)).status_code == 404
    assert await owner.alive(sid)  # the refusals left the owner's session alone
    assert (await owner.send("DELETE", None, sid)).status_code == 200
    assert not await owner.alive(sid)


async def test_one_token_opening_sessions_in_a_loop_recycles_only_its_own(server):
    cap = 32  # the default max_sessions_per_token
    victim = Raw(server, "analyst")
    kept = await victim.open()
    flood = Raw(server, "readonly")
    sids: list[str] = []
    for _ in range(30):  # 300 sessions, 10 at a time
        sids += await asyncio.gather(*(flood.open() for _ in range(10)))
    alive = [sid for sid in sids if await flood.alive(sid)]
    # the cap, and the least recently used went first (within a batch, the order is the server's)
    assert len(alive) == cap and set(sids[-30:]) <= set(alive) <= set(sids[-40:])
    assert await victim.alive(kept)
    res = await call_tool(server, "get_interfaces", {}, token="analyst")
    assert not res.is_error and res.structured_content["interfaces"]
    assert server.health()["status"] == "ok"


async def test_later_era_requests_open_no_session_and_evict_none(server):
    token = cli(server.data_dir, "token", "create", "analyst").stdout.strip().splitlines()[-1]
    legacy = Raw(server, token)
    sids = [await legacy.open() for _ in range(32)]  # this token's whole allowance
    async with mcp_session(server, token=token, era="2026-07-28") as session:
        for _ in range(5):
            assert not (await session.call_tool("list_tables", {})).is_error
    assert all([await legacy.alive(sid) for sid in sids])


# --- errors -----------------------------------------------------------------------------------------
async def test_unexpected_tool_failure_gives_an_id_and_logs_the_details(caplog):
    """The tool wrapper in-process, with a real tool whose function fails: no test tool is
    registered in the server for this."""
    from flowscope.auth import Principal
    from flowscope.mcp import toolkit
    from flowscope.mcp.server import _wrapper, load_tools

    spec = load_tools()["list_tables"]

    async def fails(ctx, params):
        raise OverflowError("secret internal detail 1e309")

    async def wraps(ctx, params):  # a tool passing an internal error's text on
        try:
            raise TypeError("secret internal detail: 'int' and 'str'")
        except TypeError as exc:
            raise toolkit.ToolError(f"cannot list: {exc}") from None

    async def explains(ctx, params):  # a message of its own, written while handling one
        try:
            raise TypeError("secret")
        except TypeError:
            raise toolkit.ToolError("no tables match; try list_tables without arguments") from None

    toolkit.current_principal.set(Principal("analyst", "user", token_id="t1"))
    for fn in (fails, wraps):
        call = _wrapper(None, dataclasses.replace(spec, fn=fn))
        with caplog.at_level(logging.ERROR, logger="flowscope.errors"):
            res = await call()
        text = res.content[0].text
        assert res.is_error and "secret" not in text and not LEAK.search(text), text
        error_id = ERROR_ID.search(text).group(1)
        logged = [r for r in caplog.records if error_id in r.getMessage()]
        assert logged and "secret" in logged[0].getMessage()
        assert isinstance(logged[0].exc_info[1], (OverflowError, TypeError))  # the traceback of the cause
    res = await _wrapper(None, dataclasses.replace(spec, fn=explains))()
    assert res.is_error and res.content[0].text == "no tables match; try list_tables without arguments"


HOSTILE_BODIES = {
    "deep arrays": "[" * 100_000 + "]" * 100_000,
    "deep objects": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "huge integer id": '{"jsonrpc":"2.0","id":' + "9" * 5000 + ',"method":"ping"}',
    "huge integer argument": ('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_live_flows",'
                              '"arguments":{"limit":' + "9" * 5000 + "}}}"),
    "batch": json.dumps([PING, PING]),
    "arguments not an object": '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"query","arguments":[1]}}',
    "lone surrogate": '{"jsonrpc":"2.0","id":5,"method":"ping","params":{"x":"\\ud800"}}',
    "not utf-8": b'{"jsonrpc":"2.0","id":6,"method":"\xff\xfe"}',
    "wrong types": '{"jsonrpc":"2.0","id":{"a":[1]},"method":7,"params":"x"}',
}


@pytest.mark.parametrize("name", HOSTILE_BODIES)
async def test_hostile_jsonrpc_gets_a_short_clean_answer(server, name):
    raw = Raw(server, "analyst")
    sid = await raw.open()
    res = await raw.send("POST", HOSTILE_BODIES[name], sid)
    assert res.status_code < 500, res.text
    assert len(res.text) < 400 and not LEAK.search(res.text), res.text
    if res.status_code >= 400:
        assert res.json()["error"]["message"]
    for error_id in ERROR_ID.findall(res.text):
        assert log_entry(server, error_id)  # what was held back is in the log
    assert await raw.alive(sid)


HOSTILE = {"number": [10**300, -1, 1e308], "string": ["1e309", "-99999999999999d", "\x00../../etc/x" + "x" * 5000],
           "other": [{"a": [[[[1]]]]}, [1, None]]}


def hostile_values(prop: dict) -> list:
    """Values to try on a field, by the types its schema allows (wrong types are refused early)."""
    types = {t.get("type") for t in [prop, *prop.get("anyOf", [])]}
    kinds = ["number"] * bool(types & {"integer", "number"}) + ["string"] * ("string" in types)
    return [v for k in kinds or list(HOSTILE) for v in HOSTILE[k]]


async def test_hostile_arguments_to_every_tool_get_clean_answers(server):
    """Every field of every tool, one hostile value at a time: answers hold no internal text, and an
    error id in an answer is found in the server log with the details."""
    ids: list[str] = []
    async with mcp_session(server, token="analyst") as session:
        tools = (await session.list_tools()).tools
        assert len(tools) > 30
        for t in tools:
            for field, prop in t.input_schema.get("properties", {}).items():
                for value in hostile_values(prop) if field != "content" else ["{", "[1]"]:
                    res = await session.call_tool(t.name, {field: value})
                    text = " ".join(getattr(c, "text", "") for c in res.content)
                    if res.is_error:
                        assert not LEAK.search(text), (t.name, field, value, text)
                    ids += ERROR_ID.findall(text)
    for error_id in ids:
        assert "Traceback" in log_entry(server, error_id)


@pytest.mark.parametrize("when", ["1e309", "99999999999999999999", "-99999999999999d", "0001-01-01"])
async def test_times_beyond_the_calendar_are_refused_in_plain_words(server, when):
    res = await call_tool(server, "get_top_applications", {"start": when}, token="analyst")
    assert res.is_error and "out of range" in res.content[0].text and "error id" not in res.content[0].text


async def test_long_transport_errors_are_cut_to_a_message_and_an_id(server):
    res = await Raw(server, "analyst").send("POST", json.dumps([PING, PING]))
    error_id = ERROR_ID.search(res.json()["error"]["message"]).group(1)
    assert "validation error" in log_entry(server, error_id)


# --- /health ----------------------------------------------------------------------------------------
def test_health_tells_strangers_only_that_it_is_up(server):
    assert httpx.get(server.base + "/health").json() == {"status": "ok"}
    assert server.health(anonymous=True) == {"status": "ok"}
    assert server.health(token="fs_not_a_token") == {"status": "ok"}
    admin = server.health()
    assert admin["sources"][0]["name"] == str(DEMO) and admin["flows_written"] > 0
    user = server.health(token="analyst")
    assert user["sources"][0]["name"] == DEMO.name and user["flows_written"] == admin["flows_written"]


# --- transport ---------------------------------------------------------------------------------------
def _self_signed(directory) -> tuple:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """TLS and session limits set in flowscope.toml (the settings file), not on the command line."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(d)
    (d / "flowscope.toml").write_text(f'[flowscope]\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
                                      "max_sessions_per_token = 16\nmax_sessions = 24\n")
    from fsharness import STANDARD_USERS

    s = Server(d, [], STANDARD_USERS, tls=(cert, key))
    yield s
    s.stop()


async def test_tls_serves_https_and_not_plain_http(tls_server):
    res = await call_tool(tls_server, "list_tables", {}, token="analyst")
    assert not res.is_error and tls_server.url.startswith("https://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_server.port}/health", timeout=5)
    with pytest.raises(httpx.ConnectError):  # an unknown certificate is refused by a checking client
        httpx.get(tls_server.base + "/health", timeout=5)


async def test_server_wide_session_limit_takes_from_the_largest_holder(tls_server):
    flood, other = Raw(tls_server, "readonly"), Raw(tls_server, "analyst")
    flooded = [await flood.open() for _ in range(16)]
    others = [await other.open() for _ in range(16)]  # the total (24) is reached after 8 of these
    alive_flood = [s for s in flooded if await flood.alive(s)]
    alive_other = [s for s in others if await other.alive(s)]
    assert len(alive_flood) + len(alive_other) == 24
    assert len(alive_other) >= 12 and alive_other == others[-len(alive_other):]
    res = await call_tool(tls_server, "list_tables", {}, token="admin")  # a third token still gets in
    assert not res.is_error


def test_plain_http_beyond_loopback_warns_and_bad_tls_settings_are_refused(tmp_path):
    """0.0.0.0 is the listen address that needs the warning most; the process is stopped as soon
    as it has printed it."""
    cert, key = _self_signed(tmp_path)
    assert "go together" in cli(tmp_path, "serve", "--tls-cert", str(cert), check=False).stderr
    bad = cli(tmp_path, "serve", "--tls-cert", str(key), "--tls-key", str(key), check=False)
    assert bad.returncode == 2 and "cannot use TLS certificate" in bad.stderr
    proc = subprocess.Popen([sys.executable, "-m", "flowscope", "serve", "--listen", f"0.0.0.0:{free_port()}"],
                            env={**os.environ, "FLOWSCOPE_DATA_DIR": str(tmp_path)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # printed before anything starts
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert "warning" in line and "without TLS" in line and "0.0.0.0" in line


def test_no_warning_on_loopback(server):
    log = (server.data_dir / "server.log").read_text(errors="replace")
    assert "serving MCP on http://127.0.0.1" in log and "without TLS" not in log
