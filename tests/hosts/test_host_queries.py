"""Per-host, per-country and per-network totals (whole days from the host_days rollup, the edges of
the range from `flows`) equal independent SQL over `flows` written with text addresses and UNION ALL
of both ends, for admins and restricted users, over ranges that cut days and ranges that don't."""

from __future__ import annotations

import ipaddress
import sys
import time
from pathlib import Path

import pytest

from flowscope.auth import Principal
from flowscope.services.hosts import queries as q
from flowscope.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "timeseries"))
from ts_helpers import synthetic_flows  # noqa: E402

ADMIN = Principal("a", "admin")
LIMITED = Principal("l", "user", allowed_networks=(ipaddress.ip_network("192.168.1.0/27"),))
SIDES = ("(SELECT SRC_IP AS ip, SRC2DST_BYTES AS s, DST2SRC_BYTES AS r, SRC_COUNTRY_CODE AS cc, SCORE AS sc FROM flows "
         "WHERE {w} UNION ALL SELECT DST_IP, DST2SRC_BYTES, SRC2DST_BYTES, DST_COUNTRY_CODE, SCORE FROM flows WHERE {w})")
NOW = time.time()
#: (begin, end) relative to now in hours: open, cutting one or two days, inside one day, whole days only
RANGES = [(None, None), (-20, None), (-26.3, -3.7), (-5.5, -1.2), (None, -13), (-48, -24)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(str(tmp_path_factory.mktemp("hq")))
    s.migrate()
    s.insert_dicts("flows", synthetic_flows(n=3000))
    yield s
    s.close()


def _range(rng):
    begin, end = (None if h is None else NOW + h * 3600 for h in rng)
    if begin is not None and rng == (-48, -24):  # exactly whole UTC days
        begin, end = (NOW // 86400 - 2) * 86400, (NOW // 86400 - 1) * 86400
    terms = ([f"LAST_SEEN >= toDateTime64({begin}, 3, 'UTC')"] if begin is not None else []) + \
        ([f"FIRST_SEEN <= toDateTime64({end}, 3, 'UTC')"] if end is not None else [])
    return begin, end, " AND ".join(terms) or "1"


@pytest.mark.parametrize("rng", RANGES, ids=[str(r) for r in RANGES])
@pytest.mark.parametrize("who", [ADMIN, LIMITED], ids=["admin", "restricted"])
def test_top_hosts_countries_and_networks_equal_text_sql(store, who, rng):
    begin, end, w = _range(rng)
    vis = who.sql_filter(["ip"])
    sides = SIDES.format(w=w)
    for by, m in (("bytes", "sum(s + r)"), ("score", "sum(sc)")):
        ref = store.query(f"SELECT ip, {m} AS b, count() FROM {sides} WHERE {vis} GROUP BY ip "
                          f"ORDER BY b DESC, ip LIMIT 5").rows
        got = q.all_hosts(store, begin, end, who, by, 5)
        assert [[h["ip"], h[by], h["flows"]] for h in got] == [[ip, int(b), int(n)] for ip, b, n in ref], by
    local = q.numeric_in([ipaddress.ip_network("192.168.0.0/16")])
    ref = store.query(f"SELECT ip, sum(s) AS b FROM {sides} WHERE {vis} AND NOT "
                      f"{q.cidr_sql('ip', [ipaddress.ip_network('192.168.0.0/16')])} GROUP BY ip "
                      "ORDER BY b DESC, ip LIMIT 3").rows
    got = q.all_hosts(store, begin, end, who, "bytes_sent", 3, f"NOT {local}")
    assert [[h["ip"], h["bytes_sent"]] for h in got] == [[ip, int(b)] for ip, b in ref]

    ref = store.query(f"SELECT cc, uniqExact(ip), sum(s + r) FROM {sides} WHERE {vis} AND cc != '' GROUP BY cc "
                      "ORDER BY 3 DESC, cc").rows
    rows, unknown, more = q.country_totals(store, begin, end, who, "bytes", 50)
    assert [[r["country_code"], r["hosts"], r["bytes"]] for r in rows] == [[c, int(n), int(b)] for c, n, b in ref]
    assert not more
    for r in rows:  # top hosts: the country's biggest, in order
        top = store.query(f"SELECT ip FROM {sides} WHERE {vis} AND cc = {{c:String}} GROUP BY ip "
                          "ORDER BY sum(s + r) DESC, ip LIMIT 5", {"c": r["country_code"]}).rows
        assert r["top_hosts"] == [x[0] for x in top]
    ref_unknown = store.query(f"SELECT uniqExact(ip) FROM {sides} WHERE {vis} AND cc = '' AND NOT "
                              f"{q.cidr_sql('ip', q.NOT_GLOBAL)}").scalar()
    assert unknown == int(ref_unknown)

    if rng != (None, None):
        return
    nets = [ipaddress.ip_network(n) for n in ("192.168.1.0/24", "192.168.1.0/28", "2001:db8::/32")]
    for net, got in zip(nets, q.network_totals(store, nets, who)):
        ref = store.query(f"SELECT uniqExact(ip), sum(s), sum(r) FROM {sides} WHERE "
                          f"{q.cidr_sql('ip', [net])} AND {vis}").rows[0]
        assert [got["hosts"], got["bytes_sent"], got["bytes_rcvd"]] == [int(x) for x in ref], net


def test_host_days_equal_flows(store):
    """The rollup itself, per day, host, VLAN and country, against `flows`."""
    cols = "sum(s), sum(r), sum(p), sum(q), sum(c), count() - sum(c), sum(sc), min(f), max(l)"
    raw = ("(SELECT LAST_SEEN AS t, SRC_IP AS ip, VLAN_ID AS v, SRC_COUNTRY_CODE AS cc, SRC2DST_BYTES AS s, "
           "DST2SRC_BYTES AS r, SRC2DST_PACKETS AS p, DST2SRC_PACKETS AS q, 1 AS c, SCORE AS sc, FIRST_SEEN AS f, "
           "LAST_SEEN AS l FROM flows UNION ALL SELECT LAST_SEEN, DST_IP, VLAN_ID, DST_COUNTRY_CODE, DST2SRC_BYTES, "
           "SRC2DST_BYTES, DST2SRC_PACKETS, SRC2DST_PACKETS, 0, SCORE, FIRST_SEEN, LAST_SEEN FROM flows)")
    want = store.query(f"SELECT toString(toStartOfDay(t)) AS d, ip, v, cc, {cols} FROM {raw} GROUP BY d, ip, v, cc "
                       "ORDER BY d, ip, v, cc").rows
    got = store.query("SELECT toString(day) AS d, ip, VLAN_ID, country, sum(bytes_sent), sum(bytes_rcvd), "
                      "sum(packets_sent), sum(packets_rcvd), sum(flows_as_client), sum(flows_as_server), sum(score), "
                      "min(FIRST_SEEN), max(LAST_SEEN) FROM host_days GROUP BY d, ip, VLAN_ID, country "
                      "ORDER BY d, ip, VLAN_ID, country").rows
    assert got == want and len(got) > 100
