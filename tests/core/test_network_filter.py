"""Allowed-network filters: the numeric form used on `flows` selects exactly what the text form does."""

from __future__ import annotations

import ipaddress
import random

from flowscope.auth import Principal
from flowscope.store import Store


def test_numeric_and_text_filters_agree(tmp_path):
    store = Store(str(tmp_path))
    store.migrate()
    rnd = random.Random(5)
    nets = ["10.0.0.0/8", "192.168.1.0/24", "203.0.113.7/32", "fd77::/64", "2001:db8::/32"]
    picks = ["10.1.2.3", "10.255.255.255", "11.0.0.0", "192.168.1.77", "192.168.2.1", "203.0.113.7",
             "203.0.113.8", "fd77::10", "fd78::1", "2001:db8:ffff::1", "2001:db9::1", "8.8.8.8", "::1"]
    rows = []
    for i in range(400):
        a, b = rnd.choice(picks), rnd.choice(picks)
        if ":" in a:
            b = b if ":" in b else "::2"
        else:
            b = b if ":" not in b else "1.1.1.1"
        v4 = ":" not in a
        rows.append({"FLOW_ID": i, "IP_PROTOCOL_VERSION": 4 if v4 else 6, "FIRST_SEEN": 1.7e9, "LAST_SEEN": 1.7e9,
                     "IPV4_SRC_ADDR": int(ipaddress.ip_address(a)) if v4 else 0,
                     "IPV4_DST_ADDR": int(ipaddress.ip_address(b)) if v4 else 0,
                     "IPV6_SRC_ADDR": "::" if v4 else a, "IPV6_DST_ADDR": "::" if v4 else b})
    store.insert_dicts("flows", rows)
    for k in range(1, len(nets) + 1):
        p = Principal("u", "user", allowed_networks=tuple(ipaddress.ip_network(n) for n in nets[:k]))
        numeric = store.query(f"SELECT groupArray(FLOW_ID) FROM (SELECT FLOW_ID FROM flows WHERE "
                              f"{p.flows_filter()} ORDER BY FLOW_ID)").scalar()
        text = store.query(f"SELECT groupArray(FLOW_ID) FROM (SELECT FLOW_ID FROM flows WHERE "
                           f"{p.sql_filter(['SRC_IP', 'DST_IP'])} ORDER BY FLOW_ID)").scalar()
        expected = [r["FLOW_ID"] for r in rows if p.can_see_flow(
            str(ipaddress.ip_address(r["IPV4_SRC_ADDR"])) if r["IP_PROTOCOL_VERSION"] == 4 else r["IPV6_SRC_ADDR"],
            str(ipaddress.ip_address(r["IPV4_DST_ADDR"])) if r["IP_PROTOCOL_VERSION"] == 4 else r["IPV6_DST_ADDR"])]
        assert numeric == text == expected, nets[:k]
        assert 0 < len(numeric) < len(rows)
    store.close()
