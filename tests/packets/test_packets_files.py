"""Packets of flows read from capture files, through the real server and the MCP client: every
flow's packets are exactly its PACKETS and TOTAL_BYTES, tshark reads the pcap resource, layers
decode, paging works, and scope, read-only and payload rules hold."""

from __future__ import annotations

import base64
import ipaddress
import os
import shutil
import subprocess

import pytest

from fsharness import CORPUS, DEMO, cli, mcp_session

CAPTURES = ("ssl-cert-name-mismatch.pcap", "http_ipv6.pcap", "dns_doh.pcap", "imap.pcap", "http.pcapng")


def corpus_files() -> list[str]:
    paths = [CORPUS / "pcap" / name for name in CAPTURES]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"corpus captures missing: {missing}")
        pytest.skip("corpus not available (../shared/corpus)")
    return [str(p) for p in paths]


@pytest.fixture(scope="module")
def server(make_server):
    args = ["--pcap", str(DEMO)]
    for path in corpus_files():
        args += ["--pcap", path]
    s = make_server(args)
    s.wait_sources_done()
    return s


async def all_flows(session) -> list[dict]:
    res = await session.call_tool("get_historical_flow", {"limit": 1000})
    return res.structured_content["flows"]


async def packets(session, **args) -> dict:
    res = await session.call_tool("get_flow_packets", args)
    assert not res.is_error, res.content[0].text
    return res.structured_content


def tshark_fields(path, *fields: str, display_filter: str | None = None) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", str(path), "-T", "fields"] + (["-Y", display_filter] if display_filter else [])
    for f in fields:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


async def read_pcap(session, uri: str, tmp_path, name: str):
    res = await session.read_resource(uri)
    path = tmp_path / name
    path.write_bytes(base64.b64decode(res.contents[0].blob))
    return path


async def test_every_flow_gets_exactly_its_packets(server):
    async with mcp_session(server) as session:
        flows = await all_flows(session)
        assert len(flows) >= 40
        wrong = []
        for f in flows:
            got = await packets(session, flow_id=f["flow_id"], limit=1)
            if (got["total_packets"], got["total_bytes"]) != (f["packets"], f["bytes"]):
                wrong.append((f["l4_proto"], f["src_ip"], f["src_port"], f["dst_ip"], f["dst_port"],
                              got["total_packets"], f["packets"], got["total_bytes"], f["bytes"]))
        print(f"{len(flows) - len(wrong)}/{len(flows)} flows: packets and bytes equal the flow's")
        assert not wrong


async def test_pcap_resource_opens_in_tshark_and_pages(server, tmp_path):
    async with mcp_session(server) as session:
        big = max((f for f in await all_flows(session) if f["dst_port"] == 80), key=lambda f: f["packets"])
        first = await packets(session, flow_id=big["flow_id"], limit=10)
        assert [p["number"] for p in first["packets"]] == list(range(1, 11))
        assert first["truncated"] and first["next_offset"] == 10
        assert any("offset=10" in n for n in first["notes"])
        second = await packets(session, flow_id=big["flow_id"], limit=10, offset=10)
        assert [p["number"] for p in second["packets"]] == list(range(11, 21))
        assert first["packets"][0]["protocol"] == "TCP" and "SYN" in first["packets"][0]["info"]
        uri = first["flows"][0]["pcap_uri"]
        assert uri == f"flowscope://packets/flow/{big['flow_id']}"
        path = await read_pcap(session, uri, tmp_path, "flow.pcap")
        lens = [int(r[0]) for r in tshark_fields(path, "frame.len")]
        assert (len(lens), sum(lens)) == (big["packets"], big["bytes"])
        ports = {tuple(r) for r in tshark_fields(path, "tcp.srcport", "tcp.dstport")}
        assert ports == {(str(big["src_port"]), str(big["dst_port"])), (str(big["dst_port"]), str(big["src_port"]))}
        later = await read_pcap(session, uri + "?offset=60", tmp_path, "later.pcap")
        assert len(tshark_fields(later, "frame.number")) == big["packets"] - 60


async def test_layers_of_http_dns_and_tls(server):
    async with mcp_session(server) as session:
        flows = await all_flows(session)
        http = next(f for f in flows if f["dst_ip"] == "10.77.0.1" and f["dst_port"] == 80)
        got = await packets(session, flow_id=http["flow_id"], detail=[4])
        layers = got["details"][0]["layers"]
        assert layers["http"]["http.request.method"] == "GET" and layers["http"]["http.host"] == "www.demo.lan"
        assert got["payload"] == "full" and "tcp.payload" in layers["tcp"]  # an admin sees payload
        dns = next(f for f in flows if f["application"].startswith("DNS") and f["dst_ip"] == "10.77.0.1")
        got = await packets(session, flow_id=dns["flow_id"], detail=[1, 2])
        names = [d["layers"]["dns"]["dns.qry.name"] for d in got["details"]]
        assert names[0] == names[1] and names[0].endswith("demo.lan")
        assert "dns.resp.name" in got["details"][1]["layers"]["dns"]
        tls = next(f for f in flows if f["src_ip"] == "192.168.2.222")
        got = await packets(session, flow_id=tls["flow_id"], limit=100)
        hello = next(p["number"] for p in got["packets"] if "Client Hello" in p["info"])
        cert = next(p["number"] for p in got["packets"] if "Certificate" in p["info"])
        got = await packets(session, flow_id=tls["flow_id"], detail=[hello, cert])
        by_number = {d["number"]: d["layers"]["tls"] for d in got["details"]}
        assert by_number[hello]["tls.handshake.extensions_server_name"] == "wrong.host.badssl.com"
        assert "badssl.com" in by_number[cert]["x509ce.dNSName"]


async def test_headers_only_for_users(server, tmp_path):
    async with mcp_session(server, token="analyst") as session:
        flows = await all_flows(session)
        http = next(f for f in flows if f["dst_ip"] == "10.77.0.1" and f["dst_port"] == 80)
        got = await packets(session, flow_id=http["flow_id"], detail=[4])
        assert got["payload"] == "headers" and any("payload" in n for n in got["notes"])
        layers = got["details"][0]["layers"]
        assert layers["http"]["http.request.method"] == "GET"
        assert "tcp.payload" not in layers["tcp"] and "http.request.line" not in layers["http"]
        path = await read_pcap(session, got["flows"][0]["pcap_uri"], tmp_path, "user.pcap")
        rows = tshark_fields(path, "frame.len", "frame.cap_len", "tcp.hdr_len", "tcp.len")
        assert len(rows) == http["packets"] and sum(int(r[0]) for r in rows) == http["bytes"]
        assert all(int(r[1]) == 14 + 20 + int(r[2]) for r in rows)  # Ethernet, IPv4, TCP headers: nothing after
        imap = next(f for f in flows if f["dst_port"] == 143 or f["src_port"] == 143)
        got = await packets(session, flow_id=imap["flow_id"], limit=100, detail=[4])
        assert all("payload hidden" in p["info"] for p in got["packets"] if p["protocol"] == "IMAP")
        assert "hidden" in got["details"][0]["layers"].get("imap", {"hidden": 1})


async def test_scope_and_read_only(server, tmp_path):
    async with mcp_session(server) as session:
        flows = await all_flows(session)
    outside = next(f for f in flows if f["src_ip"].startswith("10.77."))
    inside = next(f for f in flows if f["src_ip"] == "192.168.2.222")
    async with mcp_session(server, token="restricted") as session:
        res = await session.call_tool("get_flow_packets", {"flow_id": outside["flow_id"]})
        assert res.is_error and "outside your allowed networks" in res.content[0].text
        with pytest.raises(Exception):
            await session.read_resource(f"flowscope://packets/flow/{outside['flow_id']}")
        got = await packets(session, host="10.77.0.1", begin="0")
        assert got["total_packets"] == 0 and not got["flows"]
        got = await packets(session, port=80, begin="0", limit=1000)  # matches demo flows: none is visible
        mine = ipaddress.ip_network("192.168.0.0/16")
        assert got["flows"] and all(ipaddress.ip_address(f["src_ip"]) in mine or ipaddress.ip_address(f["dst_ip"])
                                    in mine for f in got["flows"])
        got = await packets(session, host="192.168.2.222", begin="0")
        assert got["total_packets"] == inside["packets"]
        got = await packets(session, flow_id=inside["flow_id"])
        assert got["total_bytes"] == inside["bytes"]
    async with mcp_session(server, token="readonly") as session:
        got = await packets(session, flow_id=outside["flow_id"])
        assert got["total_packets"] == outside["packets"]


async def test_ingested_file_is_the_packet_store_and_a_moved_file_is_named(make_server, tmp_path):
    copy = tmp_path / "capture.pcap"
    shutil.copy(DEMO, copy)
    data = tmp_path / "data"
    cli(data, "ingest", "--workers", "1", str(copy))
    server = make_server([], data_dir=data)
    async with mcp_session(server) as session:
        flows = [f for f in await all_flows(session) if f["l4_proto"] in ("TCP", "UDP")]
        got = await packets(session, flow_id=flows[0]["flow_id"])
        assert (got["total_packets"], got["total_bytes"]) == (flows[0]["packets"], flows[0]["bytes"])
        copy.rename(tmp_path / "moved.pcap")
        res = await session.call_tool("get_flow_packets", {"flow_id": flows[1]["flow_id"]})
        assert res.is_error and "moved" in res.content[0].text and str(copy) in res.content[0].text
