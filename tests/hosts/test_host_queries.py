"""Per-host, per-country and per-network totals (numeric, one scan) equal independent SQL over
`flows` written with text addresses and UNION ALL of both ends, for admins and restricted users."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import pytest

from flowscope.auth import Principal
from flowscope.services.hosts import queries as q
from flowscope.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "timeseries"))
from ts_helpers import synthetic_flows  # noqa: E402

ADMIN = Principal("a", "admin")
LIMITED = Principal("l", "user", allowed_networks=(ipaddress.ip_network("192.168.1.0/27"),))
SIDES = ("(SELECT SRC_IP AS ip, SRC2DST_BYTES AS s, DST2SRC_BYTES AS r, SRC_COUNTRY_CODE AS cc, {w} AS keep FROM flows "
         "UNION ALL SELECT DST_IP, DST2SRC_BYTES, SRC2DST_BYTES, DST_COUNTRY_CODE, {w} FROM flows)")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(str(tmp_path_factory.mktemp("hq")))
    s.migrate()
    s.insert_dicts("flows", synthetic_flows(n=3000))
    yield s
    s.close()


@pytest.mark.parametrize("who", [ADMIN, LIMITED], ids=["admin", "restricted"])
def test_top_hosts_countries_and_networks_equal_text_sql(store, who):
    vis = who.sql_filter(["ip"])
    sides = SIDES.format(w="1")
    ref = store.query(f"SELECT ip, sum(s + r) AS b FROM {sides} WHERE {vis} GROUP BY ip ORDER BY b DESC, ip LIMIT 5").rows
    got = q.all_hosts(store, None, None, vis, "bytes", 5, principal=who)
    assert [[h["ip"], h["bytes"]] for h in got] == [[ip, int(b)] for ip, b in ref]

    ref = store.query(f"SELECT cc, uniqExact(ip), sum(s + r) FROM {sides} WHERE {vis} AND cc != '' GROUP BY cc "
                      "ORDER BY 3 DESC, cc").rows
    rows, unknown, more = q.country_totals(store, None, None, who, "bytes", 50)
    assert [[r["country_code"], r["hosts"], r["bytes"]] for r in rows] == [[c, int(n), int(b)] for c, n, b in ref]
    assert not more
    for r in rows:  # top hosts: the country's biggest, in order
        top = store.query(f"SELECT ip FROM {sides} WHERE {vis} AND cc = {{c:String}} GROUP BY ip "
                          "ORDER BY sum(s + r) DESC, ip LIMIT 5", {"c": r["country_code"]}).rows
        assert r["top_hosts"] == [x[0] for x in top]
    ref_unknown = store.query(f"SELECT uniqExact(ip) FROM {sides} WHERE {vis} AND cc = '' AND NOT "
                              f"{q.cidr_sql('ip', q.NOT_GLOBAL)}").scalar()
    assert unknown == int(ref_unknown)

    for net in ("192.168.1.0/24", "192.168.1.0/28", "2001:db8::/32"):
        ref = store.query(f"SELECT uniqExact(ip), sum(s), sum(r) FROM {sides} WHERE "
                          f"{q.cidr_sql('ip', [ipaddress.ip_network(net)])} AND {vis}").rows[0]
        got = q.network_totals(store, net, who)
        assert [got["hosts"], got["bytes_sent"], got["bytes_rcvd"]] == [int(x) for x in ref], net
