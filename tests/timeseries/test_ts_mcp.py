"""The timeseries tools through the real server (corpus capture), against SQL over `flows`
run through the `query` tool on the same server."""

from __future__ import annotations

import base64

import pytest

from fsharness import call_tool, corpus_pcap
from ts_helpers import check_png

CAPTURE = "teams.pcap"


@pytest.fixture(scope="module")
def server(make_server):
    s = make_server(["--pcap", str(corpus_pcap(CAPTURE))])
    s.wait_sources_done()
    return s


async def sql(server, text: str, token: str = "admin") -> list[list]:
    res = await call_tool(server, "query", {"sql": text, "limit": 10000}, token=token)
    assert not res.is_error, res.content[0].text
    return res.structured_content["rows"]


async def flow_range(server) -> tuple[str, str]:
    lo, hi = (await sql(server, "SELECT toString(min(LAST_SEEN)), toString(max(LAST_SEEN) + INTERVAL 1 SECOND) "
                                "FROM flows"))[0]
    return lo[:19].replace(" ", "T") + "Z", hi[:19].replace(" ", "T") + "Z"


def image_of(res) -> bytes:
    imgs = [c for c in res.content if c.type == "image"]
    assert len(imgs) == 1 and imgs[0].mime_type == "image/png"
    return base64.b64decode(imgs[0].data)


async def test_line_chart_equals_flows(server):
    start, end = await flow_range(server)
    res = await call_tool(server, "chart", {"type": "line", "entity": "interface", "metric": "bytes",
                                            "start": start, "end": end})
    assert not res.is_error, res.content[0].text
    check_png(image_of(res))
    sc = res.structured_content
    step, a, b = sc["meta"]["step_s"], sc["meta"]["start"], sc["meta"]["end"]
    # interface volumes are every frame of the capture (frame_counters), ARP included, by minute
    ref = await sql(server, f"SELECT toString(toStartOfInterval(time, toIntervalSecond({step}))) t, "
                            f"sum(bytes) FROM frame_counters WHERE time >= '{a}' AND time < '{b}' GROUP BY t")
    assert {r[0]: r[2] for r in sc["rows"] if r[2]} == {t[:19]: v for t, v in ref}
    assert sum(r[2] for r in sc["rows"]) > 0


async def test_bar_and_top_applications_equal_flows(server):
    start, end = await flow_range(server)
    res = await call_tool(server, "chart", {"type": "bar", "entity": "application", "metric": "bytes",
                                            "start": start, "end": end, "top_n": 25})
    assert not res.is_error, res.content[0].text
    check_png(image_of(res))
    sc = res.structured_content
    ref = dict(await sql(server, f"SELECT L7_PROTO_NAME, sum(TOTAL_BYTES) FROM flows WHERE LAST_SEEN >= "
                                 f"'{sc['meta']['start']}' AND LAST_SEEN < '{sc['meta']['end']}' GROUP BY 1"))
    top = {r[0]: r[1] for r in sc["rows"] if r[0] != "other"}
    assert all(ref[k] == v for k, v in top.items()), (top, ref)
    assert sum(r[1] for r in sc["rows"]) == sum(ref.values())
    res = await call_tool(server, "get_top_applications", {"start": start, "end": end, "limit": 200})
    assert not res.is_error, res.content[0].text
    rows = res.structured_content["rows"]
    assert {r["name"]: r["bytes"] for r in rows} == ref
    flows = dict(await sql(server, f"SELECT L7_PROTO_NAME, count() FROM flows WHERE LAST_SEEN >= "
                                   f"'{sc['meta']['start']}' AND LAST_SEEN < '{sc['meta']['end']}' GROUP BY 1"))
    assert {r["name"]: r["flows"] for r in rows} == flows


async def test_get_and_list_timeseries(server):
    start, end = await flow_range(server)
    res = await call_tool(server, "get_timeseries", {"series": [{"entity": "interface", "metrics": ["bytes", "flows"]}],
                                                     "start": start, "end": end})
    assert not res.is_error, res.content[0].text
    sc = res.structured_content
    window = f"'{sc['start']}' AND {{t}} < '{sc['end']}'"
    total_bytes = (await sql(server, "SELECT sum(bytes) FROM frame_counters WHERE time >= "
                                     + window.format(t="time")))[0][0]
    total_flows = (await sql(server, "SELECT count() FROM flows WHERE LAST_SEEN >= "
                                     + window.format(t="LAST_SEEN")))[0][0]
    assert [s["summary"]["total"] for s in sc["series"]] == [total_bytes, total_flows]
    lines = res.content[0].text.splitlines()
    assert lines[0].startswith("Window: ")  # the window header every history answer starts with
    assert lines[2].startswith("interface bytes")  # summary before points
    res = await call_tool(server, "list_timeseries", {"entity": "host", "start": start, "end": end})
    assert not res.is_error
    assert res.structured_content["series"][0]["members"]


async def test_sql_chart_refused_like_query(server):
    bad = "SELECT * FROM file('/etc/passwd')"
    q = await call_tool(server, "query", {"sql": bad})
    c = await call_tool(server, "chart", {"type": "bar", "sql": bad})
    assert q.is_error and c.is_error
    assert c.content[0].text == q.content[0].text


async def test_restricted_user(server):
    start, end = await flow_range(server)
    res = await call_tool(server, "chart", {"type": "line", "entity": "host", "filters": {"host": "8.8.8.8"},
                                            "start": start, "end": end}, token="restricted")
    assert res.is_error and "outside your allowed networks" in res.content[0].text
    res = await call_tool(server, "chart", {"type": "pie", "entity": "application", "start": start, "end": end,
                                            "top_n": 25}, token="restricted")
    assert not res.is_error, res.content[0].text
    sc = res.structured_content
    ref = dict(await sql(server, f"SELECT L7_PROTO_NAME, sum(TOTAL_BYTES) FROM flows WHERE LAST_SEEN >= "
                                 f"'{sc['meta']['start']}' AND LAST_SEEN < '{sc['meta']['end']}' GROUP BY 1",
                         token="restricted"))
    assert sum(r[1] for r in sc["rows"]) == sum(ref.values())
    assert sc["meta"]["source"] == "rollup"  # the scope's own rollups
    res = await call_tool(server, "chart", {"type": "line", "sql": "SELECT time, sum(bytes) FROM ts_interface_1m "
                                                                   "GROUP BY time"}, token="restricted")
    assert res.is_error and "cannot be limited" in res.content[0].text
