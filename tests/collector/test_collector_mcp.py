"""The collector through the real server and the real MCP client: softflowd exports the project's
own demo capture as IPFIX, and the core flow tools answer on the collected flows."""

from __future__ import annotations

import asyncio

from fsharness import DEMO, mcp_session
from collector_harness import free_udp_port, softflowd


async def test_collected_flows_through_the_flow_tools(make_server, tmp_path):
    port = free_udp_port()
    server = make_server(["--collect", f"udp://127.0.0.1:{port}"])
    packets, octets = softflowd(DEMO, port, "10", tmp_path)
    assert packets > 0
    async with mcp_session(server) as session:
        totals = None
        for _ in range(40):  # the collector stores a batch every second
            q = await session.call_tool("query", {"sql": "SELECT count(), sum(PACKETS), sum(TOTAL_BYTES) FROM flows "
                                                         "WHERE SOURCE_TYPE = 'ipfix'"})
            totals = [int(v) for v in q.structured_content["rows"][0]]
            if totals[1] >= packets:
                break
            await asyncio.sleep(0.5)
        count, stored_packets, stored_bytes = totals
        assert (stored_packets, stored_bytes) == (packets, octets)  # softflowd's own totals

        for _ in range(20):  # the listener's counters follow the insert a moment later
            sources = (await session.call_tool("get_interfaces", {})).structured_content["interfaces"]
            if sources and sources[0]["flows"] >= count:
                break
            await asyncio.sleep(0.25)
        assert [(i["kind"], i["name"], i["state"]) for i in sources] == [
            ("collector", f"udp://127.0.0.1:{port}", "running")]
        assert (sources[0]["flows"], sources[0]["packets"], sources[0]["bytes"]) == (count, packets, octets)

        exporters = (await session.call_tool("list_flow_exporters", {})).structured_content["exporters"]
        assert [e["type"] for e in exporters] == ["ipfix"] and exporters[0]["address"] == "127.0.0.1"
        assert exporters[0]["records"] == count and exporters[0]["undecodable"] == 0

        hist = (await session.call_tool("get_historical_flow", {"limit": 1000})).structured_content
        assert len(hist["flows"]) == count and {f["source_type"] for f in hist["flows"]} == {"ipfix"}
        live = (await session.call_tool("get_live_flows", {"limit": 1000})).structured_content
        assert live["total"] == count and {f["source_type"] for f in live["flows"]} == {"ipfix"}
        assert sum(f["bytes"] for f in live["flows"]) == octets
        dns = (await session.call_tool("get_live_flows", {"port": 53, "limit": 100})).structured_content
        assert dns["flows"] and all(53 in (f["src_port"], f["dst_port"]) for f in dns["flows"])
        summary = (await session.call_tool("get_live_flows_summary", {"group_by": "destination"})).structured_content
        assert "10.77.0.1" in {r["key"] for r in summary["rows"]}

    async with mcp_session(server, token="restricted") as session:  # allowed 192.168.0.0/16 only
        res = (await session.call_tool("get_live_flows", {"limit": 1000})).structured_content
        assert res["flows"] == []


async def test_collected_flows_get_countries(make_server, tmp_path):
    """Exporter flows go through the same writer as packet flows: countries and ASNs are filled,
    the country rollups and get_country_stats see them."""
    from fsharness import corpus_pcap

    pcap = corpus_pcap("teams.pcap")  # public addresses
    port = free_udp_port()
    server = make_server(["--collect", f"udp://127.0.0.1:{port}"])
    packets, _ = softflowd(pcap, port, "10", tmp_path)
    assert packets > 0
    async with mcp_session(server) as session:
        rows = []
        for _ in range(40):
            q = await session.call_tool("query", {"sql": (
                "SELECT count(), countIf(SRC_COUNTRY_CODE != '' OR DST_COUNTRY_CODE != ''), sum(PACKETS), "
                "groupUniqArrayIf(DST_COUNTRY_CODE, DST_COUNTRY_CODE != '') FROM flows WHERE SOURCE_TYPE = 'ipfix'")})
            rows = q.structured_content["rows"][0]
            if int(rows[2]) >= packets:
                break
            await asyncio.sleep(0.5)
        count, located, stored_packets, countries = int(rows[0]), int(rows[1]), int(rows[2]), rows[3]
        assert stored_packets == packets and located > 0 and countries
        rollup = await session.call_tool("query", {"sql": "SELECT groupUniqArray(country) FROM ts_country_1m"})
        assert set(countries) <= set(rollup.structured_content["rows"][0][0])
        stats = (await session.call_tool("get_country_stats", {"limit": 50})).structured_content
        assert set(countries) <= {c["country_code"] for c in stats["countries"]}
        # spread over the minutes the exporter's flows span, totals unchanged
        q = await session.call_tool("query", {"sql": "SELECT sum(packets) FROM ts_interface_1m"})
        assert int(q.structured_content["rows"][0][0]) == packets
    print(f"\n{count} collected flows, {located} with a country: {sorted(countries)}")
