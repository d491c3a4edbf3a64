"""Host traffic as aggregations over the `flows` history and the live table.

A flow gives its client "sent = SRC2DST, received = DST2SRC" and its server the reverse, so a
host's totals are sums over the flows where it is either end: the same per-host Tx/Rx that
`tshark -z endpoints,ip` counts from packets (bytes are link-layer frame bytes on both sides).
All values travel as `{name:Type}` parameters; principal filters come from `Principal.sql_filter`.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from flowscope.services.flows import time_where

L4 = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMPv6", 2: "IGMP", 47: "GRE", 50: "ESP", 132: "SCTP"}

# One row per (flow, end): the host's view of each flow.
_SIDE_COLS = (
    "{h}_IP AS ip, VLAN_ID AS vlan, {p}_IP AS peer, {h}2{p}_BYTES AS s_bytes, {p}2{h}_BYTES AS r_bytes, "
    "{h}2{p}_PACKETS AS s_pkts, {p}2{h}_PACKETS AS r_pkts, {client} AS as_client, "
    "FIRST_SEEN, LAST_SEEN, SCORE, PROTOCOL, L7_PROTO_NAME AS app, {h}_COUNTRY_CODE AS country, {h}_ASN AS asn"
)


def host_sides(where: str = "1", src_where: str = "1", dst_where: str = "1") -> str:
    """SQL subquery text: both ends of every flow matching `where` (our own SQL with params only)."""
    a = _SIDE_COLS.format(h="SRC", p="DST", client=1)
    b = _SIDE_COLS.format(h="DST", p="SRC", client=0)
    return (f"(SELECT {a} FROM flows WHERE ({where}) AND ({src_where}) "
            f"UNION ALL SELECT {b} FROM flows WHERE ({where}) AND ({dst_where}))")


def _host_params(ip: str, vlan: int | None, params: dict[str, Any]) -> tuple[str, str, str]:
    """(common where, src where, dst where) selecting one host by address (and VLAN)."""
    a = ipaddress.ip_address(ip)
    params["hip"] = str(a)
    common = "1"
    if vlan is not None:
        params["hvlan"] = int(vlan)
        common = "VLAN_ID = {hvlan:UInt16}"
    if a.version == 4:
        params["hnum"] = int(a)
        s = "IP_PROTOCOL_VERSION = 4 AND IPV4_SRC_ADDR = {hnum:UInt32}"
        d = "IP_PROTOCOL_VERSION = 4 AND IPV4_DST_ADDR = {hnum:UInt32}"
    else:
        s = "IP_PROTOCOL_VERSION = 6 AND IPV6_SRC_ADDR = toIPv6({hip:String})"
        d = "IP_PROTOCOL_VERSION = 6 AND IPV6_DST_ADDR = toIPv6({hip:String})"
    return common, s, d


TOTALS = (
    "sum(s_bytes) AS bytes_sent, sum(r_bytes) AS bytes_rcvd, sum(s_pkts) AS packets_sent, "
    "sum(r_pkts) AS packets_rcvd, count() AS flows, sum(as_client) AS flows_as_client, "
    "count() - sum(as_client) AS flows_as_server, toUnixTimestamp64Milli(min(FIRST_SEEN)) / 1000 AS first_seen, "
    "toUnixTimestamp64Milli(max(LAST_SEEN)) / 1000 AS last_seen, sum(SCORE) AS score"
)


def mac_traffic(store, mac: str, begin: float | None, end: float | None,
                visible: str) -> tuple[dict[str, Any], list[list[Any]]]:
    """Totals of the flows with this MAC on either side, and the addresses seen behind it
    (ip, last seen epoch), newest first. `visible` is the caller's SQL filter on `ip`."""
    params: dict[str, Any] = {"mac": int(mac.replace(":", ""), 16)}
    tw = time_where(begin, end, params)
    sides = ("(SELECT SRC_IP AS ip, SRC2DST_BYTES AS s_bytes, DST2SRC_BYTES AS r_bytes, SRC2DST_PACKETS AS "
             "s_pkts, DST2SRC_PACKETS AS r_pkts, 1 AS as_client, FIRST_SEEN, LAST_SEEN, SCORE FROM flows "
             f"WHERE SRC_MAC = {{mac:UInt64}} AND {tw} UNION ALL SELECT DST_IP AS ip, DST2SRC_BYTES, SRC2DST_BYTES, "
             "DST2SRC_PACKETS, SRC2DST_PACKETS, 0, FIRST_SEEN, LAST_SEEN, SCORE FROM flows "
             f"WHERE DST_MAC = {{mac:UInt64}} AND {tw})")
    totals = store.query(f"SELECT {TOTALS} FROM {sides} WHERE {visible}", params).dicts()[0]
    ips = store.query(f"SELECT ip, toUnixTimestamp64Milli(max(LAST_SEEN)) / 1000 AS last FROM {sides} "
                      f"WHERE {visible} GROUP BY ip ORDER BY last DESC LIMIT 5000", params).rows
    return totals, ips


def host_history(store, ip: str, vlan: int | None = None, begin: float | None = None, end: float | None = None,
                 top: int = 10) -> dict[str, Any]:
    """Totals, applications, L4 protocols, peers and listening services of one host from `flows`."""
    params: dict[str, Any] = {"top": int(top)}
    common, s, d = _host_params(ip, vlan, params)
    where = f"({common}) AND ({time_where(begin, end, params)})"
    sides = host_sides(where, s, d)
    totals = store.query(f"SELECT {TOTALS} FROM {sides}", params).dicts()
    out: dict[str, Any] = {"totals": totals[0] if totals and totals[0]["flows"] else _empty_totals()}
    if not out["totals"]["flows"]:
        out.update(applications=[], l4_protocols=[], peers=[], services=[], vlans=[])
        return out
    out["applications"] = store.query(
        f"SELECT app AS application, sum(s_bytes + r_bytes) AS bytes, sum(s_bytes) AS bytes_sent, "
        f"sum(r_bytes) AS bytes_rcvd, count() AS flows FROM {sides} GROUP BY app ORDER BY bytes DESC, "
        "application LIMIT {top:UInt32}", params).dicts()
    l4 = store.query(
        f"SELECT PROTOCOL AS proto, sum(s_bytes + r_bytes) AS bytes, sum(s_bytes) AS bytes_sent, "
        f"sum(r_bytes) AS bytes_rcvd, count() AS flows FROM {sides} GROUP BY PROTOCOL ORDER BY bytes DESC "
        "LIMIT {top:UInt32}", params).dicts()
    for r in l4:
        num = r.pop("proto")
        r["l4_proto"] = L4.get(num) or str(num)
    out["l4_protocols"] = l4
    out["peers"] = store.query(
        f"SELECT peer AS ip, sum(s_bytes + r_bytes) AS bytes, sum(s_bytes) AS bytes_sent, "
        f"sum(r_bytes) AS bytes_rcvd, count() AS flows, groupUniqArray(5)(app) AS applications "
        f"FROM {sides} GROUP BY peer ORDER BY bytes DESC, ip LIMIT {{top:UInt32}}", params).dicts()
    out["peers_total"] = store.query(f"SELECT uniqExact(peer) FROM {sides}", params).scalar() or 0
    out["services"] = store.query(
        "SELECT multiIf(PROTOCOL = 6, 'tcp', PROTOCOL = 17, 'udp', toString(PROTOCOL)) AS proto, "
        "IP_DST_PORT AS port, anyHeavy(L7_PROTO_NAME) AS application, count() AS flows, "
        "uniqExact(SRC_IP) AS clients, sum(TOTAL_BYTES) AS bytes FROM flows "
        f"WHERE ({where}) AND ({d}) AND DST2SRC_PACKETS > 0 AND IP_DST_PORT > 0 AND "
        "(PROTOCOL = 17 OR (PROTOCOL = 6 AND (bitAnd(DST2SRC_TCP_FLAGS, 18) = 18 OR "
        "(DST2SRC_TCP_FLAGS = 0 AND IP_DST_PORT < IP_SRC_PORT)))) "
        "GROUP BY proto, port ORDER BY flows DESC, port LIMIT {top:UInt32}", params).dicts()
    out["vlans"] = [r[0] for r in store.query(f"SELECT DISTINCT vlan FROM {sides} ORDER BY vlan", params).rows]
    return out


def _empty_totals() -> dict[str, Any]:
    return {"bytes_sent": 0, "bytes_rcvd": 0, "packets_sent": 0, "packets_rcvd": 0, "flows": 0,
            "flows_as_client": 0, "flows_as_server": 0, "first_seen": None, "last_seen": None, "score": 0}


ORDER = {"bytes": "bytes", "flows": "flows", "score": "score", "packets": "packets",
         "bytes_sent": "bytes_sent", "bytes_rcvd": "bytes_rcvd"}


# Both ends of every flow from one scan, keyed by the numeric address (text only for the answer);
# one row per flow end (n_flows = 1), in the same columns as the whole-day rows of host_days
_RAW_SIDES = (
    "SELECT IP_PROTOCOL_VERSION AS ver, side.1 AS a4, side.2 AS a6, VLAN_ID AS vlan, toString(side.8) AS country, "
    "side.3 AS s_bytes, side.4 AS r_bytes, side.5 AS s_pkts, side.6 AS r_pkts, toUInt64(1) AS n_flows, "
    "toUInt64(side.7) AS as_client, FIRST_SEEN, LAST_SEEN, toUInt64(SCORE) AS SCORE FROM flows ARRAY JOIN ["
    "tuple(IPV4_SRC_ADDR, IPV6_SRC_ADDR, SRC2DST_BYTES, DST2SRC_BYTES, SRC2DST_PACKETS, DST2SRC_PACKETS, 1, "
    "SRC_COUNTRY_CODE), "
    "tuple(IPV4_DST_ADDR, IPV6_DST_ADDR, DST2SRC_BYTES, SRC2DST_BYTES, DST2SRC_PACKETS, SRC2DST_PACKETS, 0, "
    "DST_COUNTRY_CODE)] AS side WHERE {where}"
)
_DAY_SIDES = (
    "SELECT IP_PROTOCOL_VERSION AS ver, IPV4_ADDR AS a4, IPV6_ADDR AS a6, VLAN_ID AS vlan, toString(country) AS country, "
    "toUInt64(bytes_sent) AS s_bytes, toUInt64(bytes_rcvd) AS r_bytes, toUInt64(packets_sent) AS s_pkts, "
    "toUInt64(packets_rcvd) AS r_pkts, toUInt64(flows_as_client + flows_as_server) AS n_flows, "
    "toUInt64(flows_as_client) AS as_client, CAST(FIRST_SEEN AS DateTime64(3, 'UTC')) AS FIRST_SEEN, "
    "CAST(LAST_SEEN AS DateTime64(3, 'UTC')) AS LAST_SEEN, toUInt64(score) AS SCORE FROM host_days WHERE {where}"
)
_IP_TEXT = "if(ver = 4, IPv4NumToString(a4), IPv6NumToString(a6))"
_DAY = 86400
_SIDE_TOTALS = (
    "sum(s_bytes) AS bytes_sent, sum(r_bytes) AS bytes_rcvd, sum(s_pkts) AS packets_sent, "
    "sum(r_pkts) AS packets_rcvd, sum(n_flows) AS flows, sum(as_client) AS flows_as_client, "
    "sum(n_flows) - sum(as_client) AS flows_as_server, toUnixTimestamp64Milli(min(FIRST_SEEN)) / 1000 AS first_seen, "
    "toUnixTimestamp64Milli(max(LAST_SEEN)) / 1000 AS last_seen, sum(SCORE) AS score"
)


def host_sides_sql(begin: float | None, end: float | None, params: dict[str, Any], principal: Any) -> str:
    """SQL subquery: per-host rows of the flows overlapping [begin, end] (`time_where`), only hosts the
    principal may see, columns (ver, a4, a6, vlan, country, s_bytes, r_bytes, s_pkts, r_pkts, n_flows,
    as_client, FIRST_SEEN, LAST_SEEN, SCORE) to be summed. The UTC days wholly inside the range come
    from the host_days rollup (their flows all overlap the range), the rest from `flows`: the same
    sums as over `flows` alone. A host's totals count all its flows (its peers need not be visible)."""
    raw = f"({time_where(begin, end, params)}) AND ({principal.flows_filter() if principal else 1})"
    d0 = 0 if begin is None else -(-int(begin) // _DAY) * _DAY
    d1 = None if end is None else int(end) // _DAY * _DAY
    parts = []
    if d1 is None or d1 > d0:
        params.update(d0=d0, d1=d1 or 0)
        days = "day >= toDateTime({d0:UInt32}, 'UTC')"
        edges = "LAST_SEEN < toDateTime64({d0:UInt32}, 3, 'UTC')"
        if d1 is not None:
            days += " AND day < toDateTime({d1:UInt32}, 'UTC')"
            edges += " OR LAST_SEEN >= toDateTime64({d1:UInt32}, 3, 'UTC')"
        parts.append(_DAY_SIDES.format(where=days))
        raw = f"{raw} AND ({edges})"
    parts.append(_RAW_SIDES.format(where=raw))
    visible = principal.sql_filter(["ip"], {"ip": ("ver", "a4", "a6")}) if principal else "1"
    return f"(SELECT * FROM ({' UNION ALL '.join(parts)}) WHERE {visible})"


# What each ranking key sums over host rows
_SIDE_METRIC = {"bytes": "s_bytes + r_bytes", "packets": "s_pkts + r_pkts", "flows": "n_flows", "score": "SCORE",
                "bytes_sent": "s_bytes", "bytes_rcvd": "r_bytes"}
_HOST = "ver, a4, a6, vlan"

#: per-host aggregations over millions of hosts spill to disk rather than fail on the memory limit
HOST_SETTINGS = {"max_bytes_before_external_group_by": 700_000_000}


def all_hosts(store, begin: float | None = None, end: float | None = None, principal: Any = None,
              order: str = "bytes", limit: int = 100, host_where: str = "1") -> list[dict[str, Any]]:
    """Per-host totals (grouped by address and VLAN) of the hosts the principal may see, ordered and
    limited. `host_where` is boolean SQL over the numeric address (ver, a4, a6) built by our own code
    (numeric_in). The top hosts are found on the ranking metric alone (ties kept), and only they are
    totalled."""
    params: dict[str, Any] = {"lim": int(limit)}
    sides = f"(SELECT * FROM {host_sides_sql(begin, end, params, principal)} WHERE {host_where})"
    key = ORDER.get(order, "bytes")
    top = (f"SELECT {_HOST} FROM {sides} GROUP BY {_HOST} ORDER BY sum({_SIDE_METRIC.get(key, 's_bytes + r_bytes')}) "
           "DESC LIMIT {lim:UInt32} WITH TIES")
    sides = f"(SELECT * FROM {sides} WHERE ({_HOST}) IN ({top}))"
    totals = (f"SELECT {_IP_TEXT} AS ip, vlan, bytes_sent, bytes_rcvd, packets_sent, packets_rcvd, flows, "
              "flows_as_client, flows_as_server, first_seen, last_seen, score, bytes_sent + bytes_rcvd AS bytes, "
              "packets_sent + packets_rcvd AS packets, country_code FROM ("
              f"SELECT {_HOST}, {_SIDE_TOTALS}, max(country) AS country_code FROM {sides} GROUP BY {_HOST})")
    return store.query(f"SELECT * FROM ({totals}) ORDER BY {key} DESC, ip LIMIT {{lim:UInt32}}", params,
                       settings=HOST_SETTINGS).dicts()


# Address ranges that are not global (Python's ipaddress `is_global` false): hosts there have no country
NOT_GLOBAL = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
              "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
              "203.0.113.0/24", "224.0.0.0/3", "::/127", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64",
              "2001::/23", "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "ff00::/8")


def country_totals(store, begin: float | None, end: float | None, principal: Any, order: str = "bytes",
                   limit: int = 10) -> tuple[list[dict[str, Any]], int, bool]:
    """Countries of the hosts in the flows history, from the country codes stored with each flow:
    ([{country_code, hosts, bytes, bytes_sent, bytes_rcvd, flows, score, top_hosts}], hosts with a
    global address but no country, more countries than `limit`). A host's country is the code
    stored on its side of its flows; every total is summed over those sides."""
    params: dict[str, Any] = {"lim": int(limit) + 1}
    sides = host_sides_sql(begin, end, params, principal)
    key = {"hosts": "hosts", "score": "score", "flows": "flows"}.get(order, "bytes")
    rows = store.query(
        f"SELECT country AS country_code, uniqExact({_HOST}) AS hosts, sum(s_bytes + r_bytes) AS bytes, "
        "sum(s_bytes) AS bytes_sent, sum(r_bytes) AS bytes_rcvd, sum(n_flows) AS flows, sum(SCORE) AS score "
        f"FROM {sides} WHERE country != '' GROUP BY country ORDER BY {key} DESC, country_code LIMIT {{lim:UInt32}}",
        params, settings=HOST_SETTINGS).dicts()
    rows, more = rows[:limit], len(rows) > limit
    if rows:
        for i, r in enumerate(rows):
            params[f"c{i}"] = r["country_code"]
        codes = ", ".join(f"{{c{i}:String}}" for i in range(len(rows)))
        top = store.query(
            f"SELECT country, {_IP_TEXT} AS ip FROM (SELECT country, {_HOST}, sum(s_bytes + r_bytes) AS b "
            f"FROM {sides} WHERE country IN ({codes}) GROUP BY country, {_HOST} ORDER BY country, b DESC, {_HOST} "
            "LIMIT 5 BY country)", params, settings=HOST_SETTINGS).rows
        by_country: dict[str, list[str]] = {}
        for cc, ip in top:
            by_country.setdefault(cc, []).append(ip)
        for r in rows:
            r["top_hosts"] = by_country.get(r["country_code"], [])
    unknown = store.query(
        f"SELECT uniqExact({_HOST}) FROM {sides} WHERE country = '' AND NOT {numeric_in(NOT_GLOBAL)}",
        params, settings=HOST_SETTINGS).scalar()
    return rows, int(unknown or 0), more


def network_totals(store, networks: list[Any], principal: Any) -> list[dict[str, int]]:
    """For each network: hosts seen inside it and the bytes they sent and received (one scan)."""
    if not networks:
        return []
    params: dict[str, Any] = {}
    sides = host_sides_sql(None, None, params, principal)
    cols = []
    for i, n in enumerate(networks):
        inside = numeric_in([n])
        cols.append(f"uniqExactIf(ver, a4, a6, {inside}) AS h{i}, sumIf(s_bytes, {inside}) AS s{i}, "
                    f"sumIf(r_bytes, {inside}) AS r{i}")
    r = store.query(f"SELECT {', '.join(cols)} FROM {sides} WHERE {numeric_in(networks)}", params,
                    settings=HOST_SETTINGS).dicts()[0]
    return [{"hosts": int(r[f"h{i}"]), "bytes_sent": int(r[f"s{i}"]), "bytes_rcvd": int(r[f"r{i}"])}
            for i in range(len(networks))]


def numeric_in(networks: Iterable[Any]) -> str:
    """SQL boolean: the host row's numeric address (ver, a4, a6) inside one of `networks`
    (normalised CIDRs only, never request text)."""
    terms = []
    for n in networks:
        net = ipaddress.ip_network(str(n), strict=False)
        lo, hi = net.network_address, net.broadcast_address
        terms.append(f"(ver = 4 AND a4 BETWEEN {int(lo)} AND {int(hi)})" if net.version == 4 else
                     f"(ver = 6 AND a6 BETWEEN toIPv6('{lo}') AND toIPv6('{hi}'))")
    return "(" + " OR ".join(terms) + ")" if terms else "0"


def cidr_sql(column: str, networks: Iterable[Any]) -> str:
    """SQL boolean: `column` inside one of `networks` (normalised CIDRs only, never request text)."""
    terms = []
    for n in networks:
        net = ipaddress.ip_network(str(n), strict=False)
        terms.append(f"isIPAddressInRange({column}, '{net}')")
    return "(" + " OR ".join(terms) + ")" if terms else "0"


# ---- live table -----------------------------------------------------------------------------

def _blank() -> dict[str, Any]:
    return {"bytes_sent": 0, "bytes_rcvd": 0, "packets_sent": 0, "packets_rcvd": 0, "flows": 0,
            "flows_as_client": 0, "flows_as_server": 0, "first_seen": None, "last_seen": None, "score": 0,
            "active_flows": 0}


def _add(t: dict[str, Any], r: dict[str, Any], client: bool) -> None:
    s, d = ("SRC", "DST") if client else ("DST", "SRC")
    t["bytes_sent"] += int(r.get(f"{s}2{d}_BYTES") or 0)
    t["bytes_rcvd"] += int(r.get(f"{d}2{s}_BYTES") or 0)
    t["packets_sent"] += int(r.get(f"{s}2{d}_PACKETS") or 0)
    t["packets_rcvd"] += int(r.get(f"{d}2{s}_PACKETS") or 0)
    t["flows"] += 1
    t["flows_as_client" if client else "flows_as_server"] += 1
    t["score"] += int(r.get("SCORE") or 0)
    if r.get("active"):
        t["active_flows"] += 1
    fs, ls = r.get("FIRST_SEEN"), r.get("LAST_SEEN")
    if isinstance(fs, (int, float)) and fs:
        t["first_seen"] = fs if t["first_seen"] is None else min(t["first_seen"], fs)
    if isinstance(ls, (int, float)) and ls:
        t["last_seen"] = ls if t["last_seen"] is None else max(t["last_seen"], ls)


def live_rows(app) -> list[dict[str, Any]]:
    live = getattr(app, "live", None)
    if live is None:
        return []
    try:
        return live.snapshot()
    except Exception:
        return []


def live_host(rows: list[dict[str, Any]], ip: str, vlan: int | None = None, top: int = 10) -> dict[str, Any]:
    """One host's live totals, applications and peers from live flow dicts."""
    ip = str(ipaddress.ip_address(ip))
    t = _blank()
    apps: dict[str, int] = {}
    peers: dict[str, int] = {}
    for r in rows:
        if vlan is not None and int(r.get("VLAN_ID") or 0) != vlan:
            continue
        for client in (True, False):
            if r.get("SRC_IP" if client else "DST_IP") != ip:
                continue
            _add(t, r, client)
            b = int(r.get("SRC2DST_BYTES") or 0) + int(r.get("DST2SRC_BYTES") or 0)
            app_name = r.get("L7_PROTO_NAME") or "Unknown"
            apps[app_name] = apps.get(app_name, 0) + b
            peer = r.get("DST_IP" if client else "SRC_IP") or ""
            peers[peer] = peers.get(peer, 0) + b
    return {
        "totals": t,
        "applications": [{"application": k, "bytes": v} for k, v in sorted(apps.items(), key=lambda kv: -kv[1])[:top]],
        "peers": [{"ip": k, "bytes": v} for k, v in sorted(peers.items(), key=lambda kv: -kv[1])[:top]],
    }


def live_hosts(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        vlan = int(r.get("VLAN_ID") or 0)
        for client in (True, False):
            ip = r.get("SRC_IP" if client else "DST_IP")
            if not ip:
                continue
            t = out.setdefault((ip, vlan), _blank())
            _add(t, r, client)
    for t in out.values():
        t["bytes"] = t["bytes_sent"] + t["bytes_rcvd"]
        t["packets"] = t["packets_sent"] + t["packets_rcvd"]
    return out
