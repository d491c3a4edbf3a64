"""Hosts ranked: top talkers, countries, and the local networks with their traffic. A user
limited to networks sees only hosts inside them (their totals count all their flows)."""

from __future__ import annotations

from typing import Any

from flowscope.auth import Scope
from flowscope.services.flows import parse_time
from flowscope.services.hosts import geo as geo_mod
from flowscope.services.hosts import queries as host_queries
from flowscope.services.hosts import service
from flowscope.services.hosts.details import name_of


def countries(app, scope: Scope, by: str = "bytes", begin: str | None = None, end: str | None = None,
              limit: int = 20) -> dict[str, Any]:
    """Countries of the visible hosts, ranked by `by`, with each one's top 5 hosts: summed in SQL
    from the country codes stored with each flow."""
    rows, unknown, more = host_queries.country_totals(app.store, parse_time(begin), parse_time(end), scope.principal,
                                                      by, limit)
    g = geo_mod.geo()
    for r in rows:
        r["country_name"] = g.lookup(r["top_hosts"][0]).country_name if r["top_hosts"] else ""
    return {"countries": rows, "unknown_hosts": unknown, "truncated": more}


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
        inside = host_queries.numeric_in(nets)
        rows = host_queries.all_hosts(app.store, parse_time(begin), parse_time(end), scope.principal, by, limit + 1,
                                      {"local": inside, "remote": f"NOT {inside}"}.get(where, "1"))
    out = []
    for r in rows[:limit]:
        local = svc.local.is_local(r["ip"])
        out.append(dict(r, vlan=int(r["vlan"]), name=name_of(svc, r["ip"]), is_local=local,
                        country_code="" if local else geo_mod.lookup(r["ip"]).country_code))
    return {"talkers": out, "source": source, "truncated": len(rows) > limit}


def local_networks(app, scope: Scope, with_traffic: bool = True) -> dict[str, Any]:
    """The configured local networks that overlap the caller's, with visible hosts and bytes."""
    nets = [n for n in service(app).local.networks if scope.overlaps(n)]
    out: list[dict[str, Any]] = [{"network": str(n)} for n in nets]
    if with_traffic:
        for info, totals in zip(out, host_queries.network_totals(app.store, nets, scope.principal)):
            info.update(totals)
    return {"networks": out, "source": app.config.source_of("local_networks")}
