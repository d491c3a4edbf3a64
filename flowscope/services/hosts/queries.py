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


# Both ends of every flow from one scan, keyed by the numeric address (text only for the answer)
_NUM_SIDES = (
    "SELECT IP_PROTOCOL_VERSION AS ver, side.1 AS a4, side.2 AS a6, VLAN_ID AS vlan, side.3 AS s_bytes, "
    "side.4 AS r_bytes, side.5 AS s_pkts, side.6 AS r_pkts, side.7 AS as_client, FIRST_SEEN, LAST_SEEN, SCORE, "
    "side.8 AS country FROM flows ARRAY JOIN ["
    "tuple(IPV4_SRC_ADDR, IPV6_SRC_ADDR, SRC2DST_BYTES, DST2SRC_BYTES, SRC2DST_PACKETS, DST2SRC_PACKETS, 1, "
    "SRC_COUNTRY_CODE), "
    "tuple(IPV4_DST_ADDR, IPV6_DST_ADDR, DST2SRC_BYTES, SRC2DST_BYTES, DST2SRC_PACKETS, SRC2DST_PACKETS, 0, "
    "DST_COUNTRY_CODE)] AS side WHERE {where}"
)
_IP_TEXT = "if(ver = 4, IPv4NumToString(a4), IPv6NumToString(a6))"


def host_totals_sql(where: str, host_where: str = "1") -> str:
    """Per-host totals (ip, vlan, TOTALS, bytes, packets, country_code) of the flows matching
    `where`; `host_where` is a condition on the host's text address `ip` (our own SQL only)."""
    return (f"SELECT {_IP_TEXT} AS ip, vlan, bytes_sent, bytes_rcvd, packets_sent, packets_rcvd, flows, "
            "flows_as_client, flows_as_server, first_seen, last_seen, score, bytes_sent + bytes_rcvd AS bytes, "
            "packets_sent + packets_rcvd AS packets, country_code FROM ("
            f"SELECT ver, a4, a6, vlan, {TOTALS}, max(country) AS country_code "
            f"FROM ({_NUM_SIDES.format(where=where)}) GROUP BY ver, a4, a6, vlan) WHERE {host_where}")


# What the client and the server side of a flow add to each ranking key
_SIDE_METRIC = {"bytes": ("SRC2DST_BYTES + DST2SRC_BYTES",) * 2, "packets": ("SRC2DST_PACKETS + DST2SRC_PACKETS",) * 2,
                "flows": ("1", "1"), "score": ("SCORE", "SCORE"), "bytes_sent": ("SRC2DST_BYTES", "DST2SRC_BYTES"),
                "bytes_rcvd": ("DST2SRC_BYTES", "SRC2DST_BYTES")}


def _top_keys(where: str, order: str) -> str:
    """SQL giving (ver, a4, a6, vlan) of the top {lim} hosts by `order` (ties kept): IPv4 hosts
    ranked on one 64-bit key (VLAN and address), IPv6 hosts apart; the overall top is among both."""
    src, dst = _SIDE_METRIC.get(order, _SIDE_METRIC["bytes"])

    def ranked(key: str, cols: str, ver: int) -> str:
        sides = " UNION ALL ".join(
            f"SELECT {key.format(d=d)}, {m} AS m FROM flows WHERE ({where}) AND IP_PROTOCOL_VERSION = {ver}"
            for d, m in (("SRC", src), ("DST", dst)))
        return f"SELECT {cols} FROM ({sides}) GROUP BY {cols} ORDER BY sum(m) DESC LIMIT {{lim:UInt32}} WITH TIES"

    v4 = ranked("bitOr(bitShiftLeft(toUInt64(VLAN_ID), 32), IPV4_{d}_ADDR) AS k", "k", 4)
    v6 = ranked("IPV6_{d}_ADDR AS a6, VLAN_ID AS vlan", "a6, vlan", 6)
    return (f"SELECT toUInt8(4) AS ver, toUInt32(bitAnd(k, 4294967295)) AS a4, toIPv6('::') AS a6, "
            f"toUInt16(bitShiftRight(k, 32)) AS vlan FROM ({v4}) "
            f"UNION ALL SELECT toUInt8(6), toUInt32(0), a6, vlan FROM ({v6})")


#: per-host aggregations over millions of hosts spill to disk rather than fail on the memory limit
HOST_SETTINGS = {"max_bytes_before_external_group_by": 700_000_000}


def all_hosts(store, begin: float | None = None, end: float | None = None, visible_sql: str = "1",
              order: str = "bytes", limit: int = 100, local_sql: str | None = None,
              extra_where: str = "1", extra_params: dict[str, Any] | None = None,
              principal: Any = None) -> list[dict[str, Any]]:
    """Per-host totals over `flows` (grouped by ip and VLAN), ordered and limited.

    `visible_sql` / `local_sql` are boolean SQL over the column `ip` built by our own code
    (Principal.sql_filter(["ip"]) / local_sql_filter). Hosts are grouped by their numeric address
    and formatted as text only when a filter needs it, or for the answer; given the `principal`,
    flows are first narrowed to those with an end inside its networks (numeric, cheap). Without a
    host filter the top hosts are found on the ranking metric alone (ties kept), and only they are
    totalled."""
    params: dict[str, Any] = dict(extra_params or {})
    params["lim"] = int(limit)
    flows_scope = principal.flows_filter() if principal is not None else "1"
    where = f"({time_where(begin, end, params)}) AND ({extra_where}) AND ({flows_scope})"
    key = ORDER.get(order, "bytes")
    hw = visible_sql if local_sql is None else f"({visible_sql}) AND ({local_sql})"
    if hw.strip() in ("1", "(1)"):
        where = f"({where}) AND (IP_PROTOCOL_VERSION, side.1, side.2, VLAN_ID) IN ({_top_keys(where, key)})"
    totals = host_totals_sql(where, hw)
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
    stored on its side of its flows; every total is summed over those sides (one scan each)."""
    params: dict[str, Any] = {"lim": int(limit) + 1}
    where = f"({time_where(begin, end, params)}) AND ({principal.flows_filter()})"
    visible = principal.sql_filter(["ip"], {"ip": ("ver", "a4", "a6")})
    sides = f"({_NUM_SIDES.format(where=where)}) WHERE ({visible})"
    key = {"hosts": "hosts", "score": "score", "flows": "flows"}.get(order, "bytes")
    rows = store.query(
        "SELECT country AS country_code, uniqExact(ver, a4, a6, vlan) AS hosts, sum(s_bytes + r_bytes) AS bytes, "
        "sum(s_bytes) AS bytes_sent, sum(r_bytes) AS bytes_rcvd, count() AS flows, sum(SCORE) AS score "
        f"FROM {sides} AND country != '' GROUP BY country ORDER BY {key} DESC, country_code LIMIT {{lim:UInt32}}",
        params, settings=HOST_SETTINGS).dicts()
    rows, more = rows[:limit], len(rows) > limit
    if rows:
        for i, r in enumerate(rows):
            params[f"c{i}"] = r["country_code"]
        codes = ", ".join(f"{{c{i}:String}}" for i in range(len(rows)))
        # per (country, host) bytes: IPv4 hosts on one 64-bit key, formatted after the top 5 are kept
        key = "if(ver = 4, bitOr(bitShiftLeft(toUInt64(vlan), 32), a4), 0) AS k4, if(ver = 4, toIPv6('::'), a6) AS k6"
        top = store.query(
            "SELECT country, if(k4 != 0 OR k6 = toIPv6('::'), IPv4NumToString(toUInt32(bitAnd(k4, 4294967295))), "
            f"IPv6NumToString(k6)) AS ip FROM (SELECT country, {key}, sum(s_bytes + r_bytes) AS b "
            f"FROM {sides} AND country IN ({codes}) GROUP BY country, k4, k6 ORDER BY country, b DESC, k4, k6 "
            "LIMIT 5 BY country)", params, settings=HOST_SETTINGS).rows
        by_country: dict[str, list[str]] = {}
        for cc, ip in top:
            by_country.setdefault(cc, []).append(ip)
        for r in rows:
            r["top_hosts"] = by_country.get(r["country_code"], [])
    unknown = store.query(
        f"SELECT uniqExact(ver, a4, a6, vlan) FROM {sides} AND country = '' AND NOT "
        f"{cidr_sql(_IP_TEXT, NOT_GLOBAL)}", params, settings=HOST_SETTINGS).scalar()
    return rows, int(unknown or 0), more


def network_totals(store, network: Any, principal: Any) -> dict[str, int]:
    """Hosts seen inside `network` and the bytes they sent and received (numeric comparisons)."""
    net = ipaddress.ip_network(str(network), strict=False)
    lo, hi = net.network_address, net.broadcast_address
    inside = (f"ver = 4 AND a4 BETWEEN {int(lo)} AND {int(hi)}" if net.version == 4 else
              f"ver = 6 AND a6 BETWEEN toIPv6('{lo}') AND toIPv6('{hi}')")
    sides = _NUM_SIDES.format(where=principal.flows_filter())
    vis = principal.sql_filter(["ip"], {"ip": ("ver", "a4", "a6")})
    r = store.query(f"SELECT uniqExact(ver, a4, a6) AS hosts, sum(s_bytes) AS s, sum(r_bytes) AS r FROM ({sides}) "
                    f"WHERE ({inside}) AND ({vis})").dicts()[0]
    return {"hosts": int(r["hosts"]), "bytes_sent": int(r["s"]), "bytes_rcvd": int(r["r"])}


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
