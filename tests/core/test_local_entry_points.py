"""One data directory, every entry point: while `flowscope serve` holds it, `flowscope stdio`
relays to the server as the user named (their rights, no more) and `flowscope ingest` hands its
files to the server, with no extra flags. Real server, real CLI, the SDK's stdio client."""

from __future__ import annotations

import json
import os
import re
import stat
import sys

import httpx
import pytest

from fsharness import CORPUS, DEMO, STANDARD_USERS, Server, call_tool, cli, corpus_pcap

ERAS = ["2025-11-25", "2026-07-28"]
USERS = {**STANDARD_USERS, "local11": {"user": "local11", "role": "user", "networks": "10.77.0.11/32"}}
COUNT = "SELECT count() FROM flows"


@pytest.fixture(scope="module")
def server(make_server):
    s = make_server(["--pcap", str(DEMO)], users=USERS)
    s.wait_sources_done()
    return s


def runtime_file(server) -> dict:
    return json.loads((server.data_dir / "run" / "serve.json").read_text())


async def count(server, token="admin") -> int:
    res = await call_tool(server, "query", {"sql": COUNT}, token=token)
    return int(res.structured_content["rows"][0][0])


async def stdio_session(server, user, era, body, errlog):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "flowscope", "stdio", "--user", user],
                                   env={**os.environ, "FLOWSCOPE_DATA_DIR": str(server.data_dir)})
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        await (session.initialize() if era == "2025-11-25" else session.discover())
        return await body(session)


def test_runtime_file_is_the_owners_alone(server):
    path = server.data_dir / "run" / "serve.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    info = runtime_file(server)
    assert info["pid"] == server.proc.pid and info["url"] == server.base and len(info["secret"]) >= 32


@pytest.mark.parametrize("era", ERAS)
async def test_stdio_relays_as_the_user_with_their_rights(server, tmp_path, era):
    total, visible = await count(server), None

    async def as_restricted(session):
        names = {t.name for t in (await session.list_tools()).tools}
        assert {"get_live_flows", "query"} <= names and "set_host_label" not in names  # the user's list
        rows = (await session.call_tool("query", {"sql": COUNT})).structured_content["rows"]
        refused = await session.call_tool("set_host_label", {"host": "10.77.0.11", "label": "x"})
        outside = await session.call_tool("get_host_info", {"host": "10.77.0.10"})
        return int(rows[0][0]), refused, outside

    with open(tmp_path / "stderr.log", "w") as errlog:
        visible, refused, outside = await stdio_session(server, "local11", era, as_restricted, errlog)
    assert 0 < visible < total  # only the flows of 10.77.0.11
    assert refused.is_error and "admin" in refused.content[0].text
    assert outside.is_error and "outside your allowed networks" in outside.content[0].text

    async def as_admin(session):
        res = await session.call_tool("query", {"sql": COUNT})
        names = {t.name for t in (await session.list_tools()).tools}
        return int(res.structured_content["rows"][0][0]), names

    with open(tmp_path / "stderr-admin.log", "w") as errlog:
        seen, names = await stdio_session(server, "admin", era, as_admin, errlog)
    assert seen == total and "set_host_label" in names


def test_stdio_for_an_unknown_user_fails_plainly(server):
    res = cli(server.data_dir, "stdio", "--user", "nobody", check=False)
    assert res.returncode == 2 and "no user 'nobody'" in res.stderr


async def test_ingest_hands_files_to_the_running_server(server):
    bfd = corpus_pcap("bfd.pcap")
    ref = (CORPUS / "pcap-expected" / "bfd.pcap.out").read_text()
    packets, octets, flows = map(int, re.search(r"Acceptable\s+(\d+)\s+(\d+)\s+(\d+)", ref).groups())
    before = await count(server)
    res = cli(server.data_dir, "ingest", str(bfd))
    assert "Another server" not in res.stderr and "Cannot lock" not in res.stderr
    summary = re.fullmatch(r"1 file\(s\): (\d+) flows, (\d+) packets, (\d+) bytes in [\d.]+ s \([\d,]+ packets/s\); "
                           r"\d+ frames, \d+ bytes read", res.stdout.strip())
    assert summary, res.stdout
    assert tuple(map(int, summary.groups())) == (flows, packets, octets)  # as nDPI's reader counts them
    assert await count(server) == before + flows  # stored in the running server, queryable at once
    sources = (await call_tool(server, "get_interfaces", {})).structured_content
    assert os.path.realpath(bfd) in json.dumps(sources)  # one of the server's sources now


def test_ingest_refuses_what_is_not_a_capture(server, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a capture")
    res = cli(server.data_dir, "ingest", str(text), check=False)
    assert res.returncode == 2 and "not a pcap or pcapng capture" in res.stderr


def test_local_endpoints_want_the_owners_secret_and_clean_paths(server, tmp_path):
    url = server.base + "/local/ingest"
    secret = runtime_file(server)["secret"]
    assert httpx.post(url, json={"files": [str(DEMO)]}).status_code == 401
    assert httpx.post(url, json={"files": [str(DEMO)]}, headers={"Authorization": "Local wrong"}).status_code == 401
    owner = {"Authorization": f"Local {secret}"}
    relative = httpx.post(url, json={"files": ["demo/demo.pcap"]}, headers=owner)
    assert relative.status_code == 400 and "absolute" in relative.json()["error"]
    sneaky = httpx.post(url, json={"files": [str(tmp_path / ".." / ".." / "etc" / "shadow")]}, headers=owner)
    assert sneaky.status_code == 400
    # the MCP endpoint: the secret and an existing user, or nothing
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    for headers in ({"Authorization": "Local wrong", "X-Flowscope-User": "admin"},
                    {**owner, "X-Flowscope-User": "nobody"}, owner):
        assert httpx.post(server.url, json=init, headers={**accept, **headers}).status_code == 401
    assert httpx.post(server.url, json=init, headers={**accept, **owner, "X-Flowscope-User": "admin"}).status_code == 200


def test_runtime_file_goes_with_the_server(tmp_path):
    s = Server(tmp_path, [], {"admin": {"user": "admin", "role": "admin"}})
    try:
        secret = runtime_file(s)["secret"]
    finally:
        s.stop()
    assert not (tmp_path / "run" / "serve.json").exists()
    # without a server, stdio and ingest open the data directory themselves
    res = cli(tmp_path, "ingest", str(DEMO))
    assert re.match(r"1 file\(s\): [1-9]\d* flows", res.stdout)
    assert secret not in res.stdout + res.stderr
