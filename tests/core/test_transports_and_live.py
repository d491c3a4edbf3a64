"""MCP over stdio, and live capture on a real interface with real traffic on loopback."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fsharness import DEMO, cli, mcp_session


async def test_stdio_transport(tmp_path):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    data = tmp_path / "stdio"
    cli(data, "user", "add", "local", "--role", "user", "--allowed-networks", "10.77.0.0/24")
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "flowscope", "stdio", "--user", "local", "--pcap", str(DEMO)],
                                   env={**os.environ, "FLOWSCOPE_DATA_DIR": str(data)})
    with open(tmp_path / "stderr.log", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                names = {t.name for t in (await session.list_tools()).tools}
                assert {"get_live_flows", "query", "get_historical_flow"} <= names
                deadline = time.monotonic() + 60
                while True:  # the capture is metered in the background
                    res = await session.call_tool("query", {"sql": "SELECT count() FROM flows"})
                    if int(res.structured_content["rows"][0][0]) >= 20 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.5)
                assert int(res.structured_content["rows"][0][0]) >= 20
                # the stdio user is who it says: a user, with their networks, not an admin
                res = await session.call_tool("set_host_label", {"ip": "10.77.0.1", "label": "x"})
                assert res.is_error and "admin" in res.content[0].text


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = b"x" * 20000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


async def test_live_interface_flows_within_seconds(make_server):
    """Real HTTP requests on lo: the live table shows them, with growing counters, within ~5 s."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    server = make_server(["--interface", "lo"])
    stop = threading.Event()

    def traffic():  # one request every 0.2 s, bounded to 60 s
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
            time.sleep(0.2)

    t = threading.Thread(target=traffic, daemon=True)
    try:
        async with mcp_session(server) as session:
            await asyncio.sleep(2)  # the capture thread opens the interface
            t.start()
            found = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not found:
                await asyncio.sleep(1)
                res = await session.call_tool("get_live_flows", {"port": port, "limit": 100})
                found = res.structured_content["flows"]
            print(f"first live flow after {20 - (deadline - time.monotonic()):.1f} s")
            assert found, "no live flow for the HTTP server within 20 s"
            assert all(f["dst_port"] == port and f["src_ip"] == "127.0.0.1" for f in found)
            total = sum(f["bytes"] for f in found)
            await asyncio.sleep(7)
            res = await session.call_tool("get_live_flows", {"port": port, "limit": 1000})
            later = sum(f["bytes"] for f in res.structured_content["flows"]) + sum(
                f["bytes"] for f in (await session.call_tool(
                    "get_historical_flow", {"port": port, "limit": 1000})).structured_content["flows"])
            assert later > total  # counters keep coming while traffic flows
            iface = (await session.call_tool("get_interfaces", {})).structured_content["interfaces"][0]
            assert iface["kind"] == "interface" and iface["name"] == "lo" and iface["state"] == "running"
            assert iface["packets"] > 0
        # stopping the server ends nfstream's meter processes too (a quiet interface kept them alive)
        import psutil

        children = psutil.Process(server.proc.pid).children(recursive=True)
        assert children  # the meter
        server.stop()
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        stop.set()
        httpd.shutdown()
