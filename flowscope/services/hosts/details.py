"""One host, one MAC: identity, traffic totals, applications, peers and services, as a caller
may see them (the host must be inside the caller's networks; a MAC shows only the addresses
behind it that are)."""

from __future__ import annotations

from typing import Any

from flowscope.auth import Scope, parse_ip
from flowscope.services.errors import ServiceError
from flowscope.services.flows import iso, parse_time
from flowscope.services.hosts import geo as geo_mod
from flowscope.services.hosts import queries as host_queries
from flowscope.services.hosts import service
from flowscope.services.hosts.labels import label_of
from flowscope.services.hosts.model import Identity
from flowscope.services.hosts.netinfo import is_locally_administered, mac_text, manufacturer


def address(text: str) -> str:
    """The canonical form of an address given by a caller, or a ServiceError."""
    addr = parse_ip((text or "").strip())
    if addr is None:
        raise ServiceError(f"not an IP address: {text!r} (give an IPv4 or IPv6 address, e.g. 192.168.1.10)")
    return str(addr)


def when(ts: Any) -> str | None:
    return iso(ts) if ts else None


def totals(d: dict[str, Any]) -> dict[str, Any]:
    """Totals with integer counters and ISO times."""
    out = {k: int(v) if isinstance(v, (int, float)) else v for k, v in d.items()}
    out.update(first_seen=when(d.get("first_seen")), last_seen=when(d.get("last_seen")))
    return out


def name_of(svc, ip: str) -> str:
    return next((i.name for i in svc.model.get_host(ip) if i.name), "")


def identification(idents: list[Identity], label: str = "") -> dict[str, Any]:
    if not idents:
        return {"label": label}
    d = max(idents, key=lambda i: i.last_seen).as_dict()
    keys = ("name", "name_source", "names", "mac", "manufacturer", "gateway_mac", "device_type", "os",
            "mdns_services", "dhcp", "user_agents")
    return dict({k: d[k] for k in keys}, label=label, os_evidence=[
        {"os": e["os"], "source": e["source"], "detail": e["detail"]} for e in d["os_evidence"]],
        gateway_manufacturer=manufacturer(d["gateway_mac"]) if d["gateway_mac"] else "")


def host_info(app, scope: Scope, ip: str, vlan: int | None = None, top: int = 10, begin: str | None = None,
              end: str | None = None) -> dict[str, Any]:
    ip = address(ip)
    scope.require(ip)
    t0, t1 = parse_time(begin), parse_time(end)
    svc = service(app)
    hist = host_queries.host_history(app.store, ip, vlan, t0, t1, top)
    live = host_queries.live_host(host_queries.live_rows(app), ip, vlan, top)
    idents = svc.model.get_host(ip, vlan)
    ht, lt = hist["totals"], live["totals"]
    if not ht["flows"] and not lt["flows"] and not idents:
        raise ServiceError(f"{ip} has not been seen{' on vlan ' + str(vlan) if vlan is not None else ''}"
                           f"{' in that time range' if t0 or t1 else ''}: check the address, or list hosts "
                           "with get_top_talkers")
    peers = [dict(r, name=name_of(svc, r["ip"]), country_code=geo_mod.lookup(r["ip"]).country_code)
             for r in hist["peers"]]
    services = list(hist["services"])
    known = {(s["proto"], s["port"]) for s in services}
    for i in idents:  # services learned from packets (e.g. DHCP server) or flows not in the range
        for key, app_name in i.services.items():
            proto, _, port = key.partition("/")
            if (proto, int(port)) not in known and len(services) < top:
                services.append({"proto": proto, "port": int(port), "application": app_name})
                known.add((proto, int(port)))
    firsts = [x for x in (ht.get("first_seen"), lt.get("first_seen")) + tuple(i.first_seen for i in idents) if x]
    lasts = [x for x in (ht.get("last_seen"), lt.get("last_seen")) + tuple(i.last_seen for i in idents) if x]
    peers_total = int(hist.get("peers_total", 0))
    return {
        "ip": ip, "vlan": vlan, "vlans": sorted(set(hist["vlans"]) | {i.vlan for i in idents}),
        "is_local": svc.local.is_local(ip), "local_network": svc.local.network_of(ip),
        "identity": identification(idents, label_of(app, ip)), "location": geo_mod.lookup(ip).as_dict(),
        "live": {"totals": totals(lt), "applications": live["applications"],
                 "peers": [dict(r, name=name_of(svc, r["ip"])) for r in live["peers"]]},
        "historical": totals(ht), "applications": hist["applications"], "l4_protocols": hist["l4_protocols"],
        "peers": peers, "peers_total": peers_total, "services": services,
        "first_seen": when(min(firsts)) if firsts else None, "last_seen": when(max(lasts)) if lasts else None,
        "score": max((i.score for i in idents), default=0), "alerts": max((i.alerts for i in idents), default=0),
        "truncated": peers_total > len(peers),
    }


def mac_info(app, scope: Scope, mac: str, begin: str | None = None, end: str | None = None,
             limit: int = 50) -> dict[str, Any]:
    """A MAC and the addresses behind it; traffic counts only the frames of visible addresses."""
    text = mac_text(mac)
    if not text:
        raise ServiceError(f"not a MAC address: {mac!r} (e.g. 00:11:22:33:44:55)")
    svc = service(app)
    m = svc.model.get_mac(text)
    tot, ip_rows = host_queries.mac_traffic(app.store, text, parse_time(begin), parse_time(end), scope.sql(["ip"]))
    ips: dict[str, float] = {}
    for ip, last in ip_rows:
        if svc.local.is_local(ip) or m is not None and m.type == "network_device":
            ips[ip] = float(last or 0)
    for ip, last in (m.ips.items() if m is not None else ()):
        if scope.visible(ip):
            ips[ip] = max(ips.get(ip, 0), last)
    if m is None and not tot["flows"]:
        raise ServiceError(f"MAC {text} has not been seen (manufacturer: {manufacturer(text) or 'unknown'}); "
                           "list devices with discover_lan")
    if scope.restricted and not ips:
        raise ServiceError(f"no address behind {text} is inside your allowed networks")
    behind = sorted(ips.items(), key=lambda kv: -kv[1])
    d = m.as_dict() if m is not None else {}
    first = [x for x in (tot.get("first_seen"), m.first_seen if m else None) if x]
    last = [x for x in (tot.get("last_seen"), m.last_seen if m else None) if x]
    return {
        "mac": text, "manufacturer": manufacturer(text), "locally_administered": is_locally_administered(text),
        "type": d.get("type", "mac"), "device_type": d.get("device_type", ""), "os": d.get("os", ""),
        "name": d.get("name", ""), "names": d.get("names", []),
        "ips": [{"ip": ip, "last_seen": when(ts), "name": name_of(svc, ip)} for ip, ts in behind[:limit]],
        # how many remote addresses a router reaches concerns traffic the caller may not see
        "remote_ips": 0 if scope.restricted else (m.remote_ips if m else 0), "traffic": totals(tot),
        "first_seen": when(min(first)) if first else None, "last_seen": when(max(last)) if last else None,
        "dhcp": d.get("dhcp", {}), "truncated": len(behind) > limit,
    }
