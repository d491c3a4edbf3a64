"""Hosts ranked: top talkers, countries, and the local networks with their traffic. A user
limited to networks sees only hosts inside them (their totals count all their flows)."""

from __future__ import annotations

import ipaddress
from typing import Any

from flowscope.auth import Scope
from flowscope.services.flows import parse_time
from flowscope.services.hosts import geo as geo_mod
from flowscope.services.hosts import queries as host_queries
from flowscope.services.hosts import service
from flowscope.services.hosts.details import name_of

COUNTRY_TOTALS = ("hosts", "bytes", "bytes_sent", "bytes_rcvd", "flows", "score")


def countries(app, scope: Scope, by: str = "bytes", begin: str | None = None, end: str | None = None,
              limit: int = 20) -> dict[str, Any]:
    """Countries of the visible hosts, ranked by `by`, with each one's top 5 hosts."""
    hosts = host_queries.all_hosts(app.store, parse_time(begin), parse_time(end), scope.sql(["ip"]), "bytes", 200_000)
    agg: dict[str, dict[str, Any]] = {}
    unknown = 0
    g = geo_mod.geo()
    for h in hosts:
        info = g.lookup(h["ip"])
        if not info.country_code:
            unknown += _is_global(h["ip"])
            continue
        a = agg.setdefault(info.country_code, dict(dict.fromkeys(COUNTRY_TOTALS, 0), top_hosts=[],
                                                   country_code=info.country_code, country_name=info.country_name))
        a["hosts"] += 1
        for k in COUNTRY_TOTALS[1:]:
            a[k] += h[k]
        if len(a["top_hosts"]) < 5:
            a["top_hosts"].append(h["ip"])
    ranked = sorted(agg.values(), key=lambda a: (-a[by], a["country_code"]))
    return {"countries": ranked[:limit], "unknown_hosts": unknown, "truncated": len(ranked) > limit}


def _is_global(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


def talkers(app, scope: Scope, by: str = "bytes", where: str = "all", source: str = "history",
            begin: str | None = None, end: str | None = None, limit: int = 10) -> dict[str, Any]:
    """Visible hosts that talk the most (live table or history), local and/or remote."""
    svc = service(app)
    if source == "live":
        rows = []
        for (ip, vlan), t in host_queries.live_hosts(host_queries.live_rows(app)).items():
            local = svc.local.is_local(ip)
            if scope.visible(ip) and where != ("remote" if local else "local"):
                rows.append(dict(t, ip=ip, vlan=vlan))
        rows.sort(key=lambda r: (-r[by], r["ip"]))
        rows = rows[:limit + 1]
    else:
        nets = svc.local.networks
        local_sql = {"local": host_queries.cidr_sql("ip", nets), "remote": "NOT " + host_queries.cidr_sql("ip", nets)}.get(where)
        rows = host_queries.all_hosts(app.store, parse_time(begin), parse_time(end), scope.sql(["ip"]), by, limit + 1,
                           local_sql)
    out = []
    for r in rows[:limit]:
        local = svc.local.is_local(r["ip"])
        out.append(dict(r, vlan=int(r["vlan"]), name=name_of(svc, r["ip"]), is_local=local,
                        country_code="" if local else geo_mod.lookup(r["ip"]).country_code))
    return {"talkers": out, "source": source, "truncated": len(rows) > limit}


def local_networks(app, scope: Scope, with_traffic: bool = True) -> dict[str, Any]:
    """The configured local networks that overlap the caller's, with visible hosts and bytes."""
    svc = service(app)
    out = []
    for n in svc.local.networks:
        if not scope.overlaps(n):
            continue
        info: dict[str, Any] = {"network": str(n)}
        if with_traffic:
            r = app.store.query(
                f"SELECT uniqExact(ip) AS hosts, sum(s_bytes) AS s, sum(r_bytes) AS r FROM {host_queries.host_sides()} "
                f"WHERE {host_queries.cidr_sql('ip', [n])} AND {scope.sql(['ip'])}").dicts()[0]
            info.update(hosts=int(r["hosts"]), bytes_sent=int(r["s"]), bytes_rcvd=int(r["r"]))
        out.append(info)
    return {"networks": out, "source": app.config.source_of("local_networks")}
