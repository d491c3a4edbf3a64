"""/metrics during a capture import and a collector run: the Prometheus counters equal what
get_interfaces and list_flow_exporters report; tool calls are counted by outcome; the endpoint
needs an admin token on the MCP listener and none on --metrics-listen."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fsharness import DEMO, free_port, mcp_session

RECORDS_PER_DATAGRAM = 10
DATAGRAMS = 3


def netflow_v5(seq: int, records: int) -> bytes:
    """A NetFlow v5 datagram: 10.9.0.1 talking to 10.9.1.N over TCP, 2 packets / 120 bytes each."""
    now = int(time.time())
    head = struct.pack("!HHIIIIBBH", 5, records, 100_000, now, 0, seq, 0, 0, 0)
    body = b"".join(struct.pack("!IIIHHIIIIHHBBBBHHBBH", 0x0A090001, 0x0A090100 + i, 0, 1, 2, 2, 120,
                                90_000, 95_000, 40_000 + i, 443, 0, 0x18, 6, 0, 0, 0, 24, 24, 0)
                    for i in range(records))
    return head + body


def scrape(url: str, token: str | None = None) -> dict[tuple[str, tuple], float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    res = httpx.get(url, headers=headers, timeout=10)
    assert res.status_code == 200, res.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(res.text) for s in family.samples}


def sample(metrics, metric: str, **labels) -> float | None:
    return metrics.get((metric, tuple(sorted(labels.items()))))


async def test_metrics_match_get_interfaces(make_server):
    port, metrics_port = free_port(), free_port()
    server = make_server(["--pcap", str(DEMO), "--collect", f"udp://127.0.0.1:{port}",
                          "--metrics-listen", f"127.0.0.1:{metrics_port}", "--local-networks", "10.0.0.0/8"])
    admin = server.tokens["admin"]
    during = scrape(server.base + "/metrics", admin)  # while the capture is being imported
    assert sample(during, "flowscope_source_packets_total", id="1", kind="pcap", name=str(DEMO)) is not None

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for seq in range(DATAGRAMS):
            sock.sendto(netflow_v5(seq * RECORDS_PER_DATAGRAM, RECORDS_PER_DATAGRAM), ("127.0.0.1", port))
    collected = RECORDS_PER_DATAGRAM * DATAGRAMS
    async with mcp_session(server) as session:
        for _ in range(60):
            sources = (await session.call_tool("get_interfaces", {})).structured_content
            by_kind = {i["kind"]: i for i in sources["interfaces"]}
            if by_kind["pcap"]["state"] == "done" and by_kind["collector"]["flows"] == collected:
                break
            await asyncio.sleep(0.5)
        assert by_kind["collector"]["flows"] == collected and by_kind["collector"]["packets"] == 2 * collected
        server.wait_sources_done()
        sources = (await session.call_tool("get_interfaces", {})).structured_content
        exporters = (await session.call_tool("list_flow_exporters", {})).structured_content["exporters"]
        bad = await session.call_tool("describe_table", {"table": "no_such_table"})
        assert bad.is_error
        networks = (await session.call_tool("list_networks", {})).structured_content

    assert networks["source"] == "command line"
    metrics = scrape(server.base + "/metrics", admin)
    assert scrape(f"http://127.0.0.1:{metrics_port}/metrics").keys() >= {
        k for k in metrics if k[0].startswith("flowscope_source_")}
    for src in sources["interfaces"]:
        labels = dict(id=str(src["id"]), kind=src["kind"], name=src["name"])
        for what in ("packets", "bytes", "flows", "drops"):
            assert sample(metrics, f"flowscope_source_{what}_total", **labels) == src[what], (what, src)
    assert sources["interfaces"][0]["packets"] > 0 and len(sources["interfaces"]) == 2

    [exporter] = exporters
    assert (exporter["datagrams"], exporter["records"]) == (DATAGRAMS, collected)
    for what in ("datagrams", "records", "lost", "undecodable", "dropped_sets"):
        assert sample(metrics, f"flowscope_exporter_{what}_total", address="127.0.0.1",
                      type="netflow5") == exporter[what]
    assert sample(metrics, "flowscope_collector_dropped_total", stage="queue") == 0

    health = server.health()
    assert sample(metrics, "flowscope_live_flows") == health["live_flows"] > 0
    stored = sum(i["flows"] for i in sources["interfaces"])
    assert sample(metrics, "flowscope_rows_written_total", table="flows") == stored
    assert sample(metrics, "flowscope_tool_call_seconds_count", tool="get_interfaces", outcome="ok") >= 2
    assert sample(metrics, "flowscope_tool_call_seconds_count", tool="describe_table", outcome="error") == 1
    assert sample(metrics, "flowscope_store_query_seconds_count", kind="insert", outcome="ok") > 0


def test_metrics_need_an_admin_token(make_server):
    server = make_server([])
    assert httpx.get(server.base + "/metrics", timeout=10).status_code == 401
    analyst = {"Authorization": f"Bearer {server.tokens['analyst']}"}
    assert httpx.get(server.base + "/metrics", headers=analyst, timeout=10).status_code == 403
    assert "flowscope_live_flows 0.0" in httpx.get(
        server.base + "/metrics", headers={"Authorization": f"Token {server.tokens['admin']}"}, timeout=10).text
