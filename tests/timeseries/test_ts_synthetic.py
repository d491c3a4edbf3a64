"""Rollups, series, rankings and every chart type against independent SQL over `flows`
(synthetic flows inserted into a real App), plus scoping, the SQL guard, retention and PNGs."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone

import pytest

from flowscope.auth import Principal
from flowscope.services.timeseries import apply_retention, backfill, record_interface_drops, retention_days
from flowscope.services.timeseries import query as q
from flowscope.services.timeseries.charting import build_chart
from flowscope.store.guard import GuardError, guard_sql

from ts_helpers import (
    app_name_sql, check_png, ref_buckets, ref_group, ref_host_buckets, ref_host_totals, synthetic_flows,
    table_map, with_other,
)

ADMIN = Principal("admin", "admin").scope
LIMITED = Principal("lim", "user", allowed_networks=(ipaddress.ip_network("192.168.1.0/27"),)).scope
NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from flowscope.app import App
    from flowscope.config import Config

    d = tmp_path_factory.mktemp("ts")
    (d / "flowscope.toml").write_text("[timeseries]\nretention_1m_days = 3\nretention_1h_days = 400\n")
    a = App(Config(data_dir=str(d)))
    a.store.insert_dicts("flows", synthetic_flows(now=NOW))
    yield a
    a.store.close()


def _range(hours: int) -> tuple[str, str]:
    end = NOW + timedelta(minutes=1)
    return q.fmt_time(end - timedelta(hours=hours)), q.fmt_time(end)


# --- rollups and series -----------------------------------------------------------------------------------
@pytest.mark.parametrize("resolution,step", [("1m", 60), ("5m", 300), ("1h", 3600)])
def test_interface_series_equal_flows(app, resolution, step):
    start, end = _range(26)
    ss = q.fetch(app, ADMIN, [{"entity": "interface", "metrics": ["bytes", "packets", "flows"]}], start, end,
                 resolution, max_points=2000)
    assert ss.step == step and ss.tables == [f"ts_interface_{resolution}"]
    a, b = q.fmt_time(ss.start), q.fmt_time(ss.end)
    for s, value in zip(ss.series, ("sum(TOTAL_BYTES)", "sum(PACKETS)", "count()")):
        ref = ref_buckets(app.store, a, b, step, value)
        got = {q.fmt_time(t): v for t, v in zip(ss.times, s.values) if v}
        assert got == ref, s.metric
        assert q.summarize(s, ss.times, ss.step)["total"] == sum(ref.values())


def test_every_rollup_table_matches_flows(app):
    """Whole-range totals of each rollup family at each resolution equal `flows`."""
    from flowscope.store import schema

    total = app.store.query("SELECT sum(TOTAL_BYTES), count() FROM flows").rows[0]
    for kind, rollup in schema.TS_ROLLUPS.items():
        for res in rollup.resolutions:
            cols = [m for m, _e, _c in rollup.metrics]
            got = app.store.query(f"SELECT {', '.join(f'sum({c})' for c in cols)} FROM {rollup.table(res)}").rows[0]
            got = dict(zip(cols, got))
            if kind in ("interface", "application", "category"):
                assert (got["bytes"], got["flows"]) == (total[0], total[1]), (kind, res)
            elif kind == "host":
                assert got["bytes_sent"] + got["bytes_rcvd"] == 2 * total[0]
                assert got["flows_as_client"] == got["flows_as_server"] == total[1]
    hf = app.store.query("SELECT sum(NUM_FLOWS), sum(TOTAL_BYTES), groupBitOr(FLOW_RISK) FROM hourly_flows").rows[0]
    ref = app.store.query("SELECT count(), sum(TOTAL_BYTES), groupBitOr(FLOW_RISK) FROM flows").rows[0]
    assert hf == ref
    per_hour = app.store.query(
        "SELECT toString(FLOW_TIME), SRC_IP, DST_IP, sum(NUM_FLOWS) FROM hourly_flows GROUP BY 1, 2, 3 "
        "ORDER BY 1, 2, 3").rows
    ref = app.store.query(
        "SELECT toString(toStartOfHour(LAST_SEEN)), SRC_IP, DST_IP, count() FROM flows GROUP BY 1, 2, 3 "
        "ORDER BY 1, 2, 3").rows
    assert per_hour == ref


def test_host_series_equal_flows(app):
    start, end = _range(12)
    host = "192.168.1.7"
    ss = q.fetch(app, ADMIN, [{"entity": "host", "metrics": ["bytes_sent", "bytes_rcvd", "flows"],
                               "filters": {"host": host}}], start, end, "5m", max_points=2000)
    ref = ref_host_buckets(app.store, q.fmt_time(ss.start), q.fmt_time(ss.end), 300, host)
    for s in ss.series:
        got = {q.fmt_time(t): v for t, v in zip(ss.times, s.values) if v}
        assert got == {k: v[s.metric] for k, v in ref.items() if v[s.metric]}, s.metric


def test_split_by_application_with_other(app):
    start, end = _range(6)
    ss = q.fetch(app, ADMIN, [{"entity": "application", "metrics": ["bytes"], "split_by": "application",
                               "top_n": 3}], start, end, "5m", max_points=500)
    assert [s.label.split(" ")[0] for s in ss.series][-1] == "other" and len(ss.series) == 4
    a, b = q.fmt_time(ss.start), q.fmt_time(ss.end)
    ref = ref_buckets(app.store, a, b, 300)
    for i, t in enumerate(ss.times):  # the split series add up to the total in every bucket
        assert sum(s.values[i] for s in ss.series) == ref.get(q.fmt_time(t), 0)


def test_resolution_is_chosen_from_range(app):
    kind = q.get_kind("interface")
    t0 = NOW - timedelta(hours=2)
    assert q.choose_step(kind, t0, NOW, None, 300) == (60, "ts_interface_1m")
    assert q.choose_step(kind, NOW - timedelta(days=1), NOW, None, 300)[1] == "ts_interface_5m"
    assert q.choose_step(kind, NOW - timedelta(days=30), NOW, None, 300)[1] == "ts_interface_1h"
    assert q.choose_step(kind, NOW - timedelta(days=30), NOW, "1m", 300)[0] % 60 == 0


# --- charts: data table = independent SQL ---------------------------------------------------------------
def test_line_chart_table_equals_flows(app):
    start, end = _range(3)
    out = build_chart(app, ADMIN, "line", entity="interface", metric="bytes", start=start, end=end)
    check_png(out.png)
    step = out.meta["step_s"]
    ref = ref_buckets(app.store, out.meta["start"], out.meta["end"], step)
    got = {t: v for (t, _s), v in table_map(out).items() if v}
    assert got == ref
    for row in out.rows:  # plotted value is the rate in bit/s
        assert row[3] == pytest.approx(row[2] * 8 / step)


def test_area_chart_per_application_equals_flows(app):
    start, end = _range(6)
    out = build_chart(app, ADMIN, "area", entity="application", metric="packets", start=start, end=end, top_n=25)
    check_png(out.png)
    step = out.meta["step_s"]
    got = {(t, lab.rsplit(" ", 1)[0]): v for (t, lab), v in table_map(out).items() if v}
    sql = (f"SELECT toString(toStartOfInterval(LAST_SEEN, toIntervalSecond({step}))), {app_name_sql()}, "
           f"sum(PACKETS) FROM flows WHERE LAST_SEEN >= {{a:DateTime64(3, 'UTC')}} AND LAST_SEEN < "
           f"{{b:DateTime64(3, 'UTC')}} GROUP BY 1, 2")
    ref = {(r[0], r[1]): r[2] for r in app.store.query(sql, {"a": out.meta["start"], "b": out.meta["end"]}).rows}
    assert got == ref


def test_bar_and_pie_tables_equal_flows(app):
    start, end = _range(24)
    bar = build_chart(app, ADMIN, "bar", entity="host", metric="bytes", start=start, end=end, top_n=5)
    check_png(bar.png)
    with_other(ref_host_totals(app.store, bar.meta["start"], bar.meta["end"]), bar.rows)
    pie = build_chart(app, ADMIN, "pie", entity="category", metric="flows", start=start, end=end)
    check_png(pie.png)
    key = "dictGetOrDefault('ndpi_categories', 'name', toUInt64(L7_CATEGORY), toString(L7_CATEGORY))"
    with_other(ref_group(app.store, pie.meta["start"], pie.meta["end"], key, "count()"), pie.rows)
    assert sum(r[2] for r in pie.rows) == pytest.approx(1.0)


def test_heatmap_table_equals_flows(app):
    out = build_chart(app, ADMIN, "heatmap", entity="interface", metric="bytes", start="-3d")
    check_png(out.png)
    ref = {tuple(r[:2]): r[2] for r in app.store.query(
        "SELECT toString(toDate(LAST_SEEN)), toHour(LAST_SEEN), sum(TOTAL_BYTES) FROM flows WHERE LAST_SEEN >= "
        "{a:DateTime64(3, 'UTC')} AND LAST_SEEN < {b:DateTime64(3, 'UTC')} GROUP BY 1, 2",
        {"a": out.meta["start"], "b": out.meta["end"]}).rows}
    assert {(r[0], r[1]): r[2] for r in out.rows if r[2]} == ref


def test_sankey_table_equals_flows(app):
    start, end = _range(24)
    out = build_chart(app, ADMIN, "sankey", start=start, end=end, top_n=25)
    check_png(out.png)
    sql = (f"SELECT SRC_IP, {app_name_sql()}, DST_IP, sum(TOTAL_BYTES) FROM flows WHERE LAST_SEEN >= "
           f"{{a:DateTime64(3, 'UTC')}} AND LAST_SEEN < {{b:DateTime64(3, 'UTC')}} GROUP BY 1, 2, 3")
    ref = {tuple(r[:3]): r[3] for r in app.store.query(sql, {"a": out.meta["start"], "b": out.meta["end"]}).rows}
    # independently: keep the top N of each column by total, fold the rest into 'other'
    tops = []
    for col in range(3):
        tot: dict[str, int] = {}
        for k, v in ref.items():
            tot[k[col]] = tot.get(k[col], 0) + v
        tops.append(set(sorted(tot, key=lambda x: -tot[x])[:25]))
    folded: dict[tuple, int] = {}
    for k, v in ref.items():
        key = tuple(x if x in tops[i] else "other" for i, x in enumerate(k))
        folded[key] = folded.get(key, 0) + v
    assert {tuple(r[:3]): r[3] for r in out.rows} == folded
    small = build_chart(app, ADMIN, "sankey", start=start, end=end, top_n=3)
    assert sum(r[3] for r in small.rows) == sum(ref.values())
    assert len({r[0] for r in small.rows}) <= 4


def test_sql_charts(app):
    sql = ("SELECT toStartOfHour(LAST_SEEN) AS t, sum(TOTAL_BYTES) AS bytes FROM flows "
           "GROUP BY t ORDER BY t")
    out = build_chart(app, ADMIN, "line", sql=sql, unit="bytes", title="Bytes per hour")
    check_png(out.png)
    ref = app.store.query(sql).rows
    assert out.rows == ref
    for kind, sql in [("bar", "SELECT DST_IP, sum(TOTAL_BYTES) FROM flows GROUP BY 1"),
                      ("pie", "SELECT L4_PROTO_NAME, count() FROM flows GROUP BY 1"),
                      ("heatmap", "SELECT toHour(LAST_SEEN), toDayOfWeek(LAST_SEEN), sum(BYTES) FROM flows "
                                  "GROUP BY 1, 2"),
                      ("sankey", "SELECT SRC_IP, L7_PROTO_NAME, DST_IP, sum(BYTES) FROM flows GROUP BY 1, 2, 3"),
                      ("area", "SELECT toStartOfHour(LAST_SEEN) t, L4_PROTO_NAME, sum(BYTES) FROM flows "
                               "GROUP BY 1, 2 ORDER BY 1")]:
        out = build_chart(app, ADMIN, kind, sql=sql, unit="bytes")
        check_png(out.png)
        assert sorted(map(str, out.rows)) == sorted(map(str, app.store.query(sql).rows)), kind


# --- scoping and refusals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sql", [
    "DROP TABLE flows",
    "SELECT * FROM file('/etc/passwd')",
    "SELECT count() FROM system.users",
    "SELECT 1; SELECT 2",
    "SELECT count() FROM flows SETTINGS max_threads = 1",
])
def test_sql_chart_refused_like_query(app, sql):
    with pytest.raises(GuardError) as direct:
        guard_sql(sql, ADMIN)
    with pytest.raises(GuardError) as charted:
        build_chart(app, ADMIN, "bar", sql=sql)
    assert str(charted.value) == str(direct.value)


def test_sql_chart_rollup_refused_to_restricted(app):
    with pytest.raises(GuardError, match="cannot be limited"):
        build_chart(app, LIMITED, "line", sql="SELECT time, sum(bytes) FROM ts_interface_1m GROUP BY time")


def test_restricted_sql_chart_sees_only_its_networks(app):
    sql = "SELECT DST_IP, sum(TOTAL_BYTES) FROM flows GROUP BY 1"
    out = build_chart(app, LIMITED, "pie", sql=sql, top_n=100)
    ref = {r[0]: r[1] for r in app.store.query(
        f"SELECT DST_IP, sum(TOTAL_BYTES) FROM flows WHERE {LIMITED.sql(['SRC_IP', 'DST_IP'])} GROUP BY 1").rows}
    assert {r[0]: r[1] for r in out.rows} == ref
    assert "2001:db8::53" not in ref


def test_restricted_totals_equal_their_flows(app):
    """Read from the scope's own rollups (scope_ts_*), equal to what their flows give."""
    start, end = _range(24)
    out = build_chart(app, LIMITED, "line", entity="interface", metric="bytes", start=start, end=end)
    assert out.meta["source"] == "rollup"
    ref = ref_buckets(app.store, out.meta["start"], out.meta["end"], out.meta["step_s"], principal=LIMITED)
    assert {t: v for (t, _s), v in table_map(out).items() if v} == ref
    full = ref_buckets(app.store, out.meta["start"], out.meta["end"], out.meta["step_s"])
    assert sum(ref.values()) < sum(full.values())
    top = q.rank(app, LIMITED, "application", "application", "bytes", start, end, limit=50)
    with_other(ref_group(app.store, q.fmt_time(top.start), q.fmt_time(top.end), app_name_sql(), principal=LIMITED),
               [[lab, v] for lab, v in top.items])
    assert top.table.startswith("scope_ts_application_")
    proto = q.rank(app, LIMITED, "application", "protocol", "packets", start, end, limit=3)
    name = "dictGetOrDefault('ndpi_protocols', 'name', toUInt64(if(L7_PROTO_MASTER = 0, L7_PROTO, L7_PROTO_MASTER)), '')"
    with_other(ref_group(app.store, q.fmt_time(proto.start), q.fmt_time(proto.end), name, "sum(PACKETS)",
                         principal=LIMITED), [[lab, v] for lab, v in proto.items])
    bar = build_chart(app, LIMITED, "bar", entity="host", start=start, end=end, top_n=50)
    hosts = {r[0] for r in bar.rows} - {"other"}
    assert hosts and all(LIMITED.visible(h) for h in hosts)
    with_other(ref_host_totals(app.store, bar.meta["start"], bar.meta["end"], principal=LIMITED), bar.rows)


@pytest.mark.parametrize("kw", [
    {"type": "line", "entity": "host", "filters": {"host": "8.8.8.8"}},
    {"type": "line", "entity": "host", "filters": {"host": "192.168.1.7"}, "resolution": "1m",
     "metric": "bytes", "network": "10.0.0.0/8"},
    {"type": "sankey", "filters": {"server": "8.8.8.8"}},
    {"type": "line", "entity": "interface", "metric": "drops"},
])
def test_chart_outside_networks_refused(app, kw):
    kw = dict(kw)
    principal = LIMITED
    if "network" in kw:
        principal = Principal("other", "user", allowed_networks=(ipaddress.ip_network(kw.pop("network")),)).scope
    with pytest.raises(q.TimeseriesError, match="outside your allowed networks|cannot be limited"):
        build_chart(app, principal, kw.pop("type"), **kw)


# --- retention, drops, backfill -----------------------------------------------------------------------------
def test_retention_from_config(app):
    days = retention_days(app)
    assert days == {"1m": 3, "5m": 30, "1h": 400, "1d": 365, "hourly_flows": 365, "host_days": 365}
    engines = dict(app.store.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() "
        "AND name IN ('ts_asn_1m', 'ts_asn_1h', 'ts_country_5m')").rows)
    assert "toIntervalDay(3)" in engines["ts_asn_1m"] and "toIntervalDay(400)" in engines["ts_asn_1h"]
    assert "toIntervalDay(30)" in engines["ts_country_5m"]
    assert apply_retention(app.store, days) == []
    comment = app.store.query("SELECT comment FROM system.tables WHERE name = 'ts_interface_5m'").scalar()
    assert "LAST_SEEN" in comment and "retention_5m_days" in comment


def test_drops_and_backfill(app):
    when = NOW - timedelta(minutes=3)
    record_interface_drops(app.store, 0, 42, when)
    ss = q.fetch(app, ADMIN, [{"entity": "interface", "metrics": ["drops"], "filters": {"interface_id": "0"}}],
                 q.fmt_time(NOW - timedelta(minutes=10)), q.fmt_time(NOW + timedelta(minutes=1)), "1m")
    assert sum(ss.series[0].values) == 42
    hourly = q.fetch(app, ADMIN, [{"entity": "interface", "metrics": ["drops"]}], "-1d", q.fmt_time(NOW), "1h")
    assert sum(hourly.series[0].values) == 42  # cascaded 1m -> 5m -> 1h
    # empty rollups (e.g. flows stored before the views existed) are backfilled from flows, once
    for res in ("1m", "5m", "1h"):
        app.store.command(f"TRUNCATE TABLE ts_asn_{res}")
    assert backfill(app.store) == ["ts_asn_1m"]
    for res in ("1m", "1h"):
        got = dict(app.store.query(f"SELECT toString(asn), sum(bytes_sent) FROM ts_asn_{res} GROUP BY 1").rows)
        assert got == ref_group(app.store, "2000-01-01 00:00:00", "2100-01-01 00:00:00", "SRC_ASN",
                                "sum(SRC2DST_BYTES)", where="SRC_ASN != 0") | {
            k: v for k, v in ref_group(app.store, "2000-01-01 00:00:00", "2100-01-01 00:00:00", "DST_ASN",
                                       "sum(DST2SRC_BYTES)", where="DST_ASN != 0").items()}
    assert backfill(app.store) == []


def test_list_and_units(app):
    from flowscope.services import charts

    assert charts.format_value(1_234_567, "bit/s") == "1.23 Mbit/s"
    assert charts.format_value(1500, "B") == "1.5 kB"
    avail = {k: bool(q.available_metrics(app, kind)) for k, kind in q.CATALOGUE.items()}
    assert avail["interface"] and avail["host"] and avail["probe"]  # am_measurements exists


def test_empty_range_still_draws(app):
    out = build_chart(app, ADMIN, "line", entity="interface", start="2001-01-01T00:00:00Z",
                      end="2001-01-01T01:00:00Z")
    check_png(out.png)
    assert all(r[2] == 0 for r in out.rows)


@pytest.mark.parametrize("who", [ADMIN, LIMITED], ids=["admin", "restricted"])
def test_rank_over_unaligned_range_reads_coarse_rollups_exactly(app, who):
    """A range that is not whole hours: hours from the 1h rollup, its edges from 5m and 1m."""
    start, end = NOW - timedelta(hours=7, minutes=13), NOW - timedelta(minutes=17)
    r = q.rank(app, who, "host", "host", "bytes", q.fmt_time(start), q.fmt_time(end), limit=5)
    assert "ts_host_1h" in r.table and "+" in r.table
    with_other(ref_host_totals(app.store, q.fmt_time(r.start), q.fmt_time(r.end), who),
               [[k, v] for k, v in r.items])
    r = q.rank(app, who, "application", "application", "flows", q.fmt_time(start), q.fmt_time(end), limit=3)
    ref = ref_group(app.store, q.fmt_time(r.start), q.fmt_time(r.end), app_name_sql(), "count()",
                    who if who.restricted else None)
    with_other(ref, [[k, v] for k, v in r.items])
