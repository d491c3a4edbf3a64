"""The real server (`flowscope serve --collect`) keeps every record of a router's IPFIX at 100 k
records/s for 60 s, sent from a process of its own: records offered = rows in `flows` = what
get_interfaces counts, every drop counter at zero, each flow enriched as packet flows are (country
of its public address, PER_MINUTE), and the rollups equal the raw rows afterwards."""

from __future__ import annotations

import asyncio
import re

import httpx
from collector_harness import free_udp_port, payload
from fsharness import free_port, mcp_session
from rollup_check import assert_rollups_equal_flows

from flowscope.collector.loadgen import Load, send_in_process

RATE = 100_000
SECONDS = 60


async def _stored(session) -> list[int]:
    q = await session.call_tool("query", {"sql": (
        "SELECT count(), countIf(DST_COUNTRY_CODE != ''), countIf(empty(PER_MINUTE)), "
        "sum(arraySum(m -> m.3 + m.5, PER_MINUTE)) = sum(TOTAL_BYTES) FROM flows")})
    return [int(v) for v in q.structured_content["rows"][0]]


async def test_server_keeps_100k_records_per_second_for_60_s(make_server):
    port, metrics = free_udp_port(), free_port()
    server = make_server(["--collect", f"udp://127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics}"])
    load = Load(payload("ipfix_test_mikrotik_tpl.dat"), 258)  # a MikroTik router's IPv4 template
    sent = await asyncio.to_thread(send_in_process, load, port, RATE, SECONDS)
    assert sent["rate"] >= 0.95 * RATE and sent["seconds"] >= 0.99 * SECONDS, sent
    async with mcp_session(server) as session:
        for _ in range(120):  # what was received is stored within a few batches
            stored = await _stored(session)
            if stored[0] >= sent["records"]:
                break
            await asyncio.sleep(0.5)
        count, located, no_minutes, minutes_add_up = stored
        assert count == sent["records"], (stored, sent)
        assert (located, no_minutes, minutes_add_up) == (count, 0, 1)  # 1.1.1.x has a country
        [iface] = (await session.call_tool("get_interfaces", {})).structured_content["interfaces"]
        assert (iface["flows"], iface["drops"]) == (count, 0)
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{metrics}/metrics", timeout=10)).text
    drops = dict(re.findall(r'^flowscope_collector_dropped_total\{stage="(\w+)"\} (\S+)$', text, re.MULTILINE))
    assert drops and set(map(float, drops.values())) == {0.0}, drops
    server.stop()  # the rollups catch up as the store closes

    from flowscope.store import Store

    store = Store(str(server.data_dir))
    try:
        assert_rollups_equal_flows(store)
    finally:
        store.close()
