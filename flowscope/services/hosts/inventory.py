"""The asset inventory (`assets`, `asset_history`) and the LAN devices, as a caller may see them.

A user limited to networks sees the assets whose address is inside them, and of each asset's
details only the addresses inside them (`info.ips`, the addresses a MAC was seen with, names
none of the others: a router's list of remote addresses would name hosts seen nowhere else).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from flowscope.auth import Scope
from flowscope.services.errors import ServiceError
from flowscope.services.flows import parse_time
from flowscope.services.hosts import service
from flowscope.services.hosts.details import address, when
from flowscope.services.hosts.netinfo import mac_text

_ASSET_COLUMNS = (
    "type, key, ip, mac, vlan, name, device_type, manufacturer, os, gateway_mac, services, is_local, "
    "toUnixTimestamp64Milli(first_seen) / 1000 AS first_seen, toUnixTimestamp64Milli(last_seen) / 1000 AS "
    "last_seen, score, alerts, info")


def _filters(f: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """SQL conditions for the search fields of `f` (values as parameters)."""
    where = []
    if f.get("key"):
        params["key"] = f["key"].strip()
        where.append("key = {key:String}")
    if f.get("ip"):
        params["ip"] = address(f["ip"])
        where.append("ip = {ip:String}")
    if f.get("mac"):
        params["mac"] = mac_text(f["mac"])
        if not params["mac"]:
            raise ServiceError(f"not a MAC address: {f['mac']!r}")
        where.append("(mac = {mac:String} OR gateway_mac = {mac:String})")
    if f.get("name"):
        params["name"] = f["name"]
        where.append("(positionCaseInsensitive(name, {name:String}) > 0 OR "
                     "positionCaseInsensitive(JSONExtractRaw(info, 'names'), {name:String}) > 0)")
    for key, column in (("manufacturer", "manufacturer"), ("os", "os")):
        if f.get(key):
            params[key] = f[key]
            where.append(f"positionCaseInsensitive({column}, {{{key}:String}}) > 0")
    if f.get("type"):
        params["type"] = f["type"]
        where.append("type = {type:String}")
    if f.get("device_type"):
        params["dtype"] = f["device_type"].lower()
        where.append("device_type = {dtype:String}")
    if f.get("local_only"):
        where.append("(is_local = 1 OR type != 'host')")
    if f.get("active_within"):
        params["since"] = parse_time(f["active_within"])
        where.append("last_seen >= toDateTime64({since:Float64}, 3, 'UTC')")
    return where


def _asset(scope: Scope, r: dict[str, Any]) -> dict[str, Any]:
    try:
        info = json.loads(r["info"] or "{}")
    except ValueError:
        info = {}
    if scope.restricted:
        info["ips"] = [i for i in info.get("ips", []) if scope.visible(i.get("ip"))]
        info["remote_ips"] = 0
    return dict(r, info=info, is_local=bool(r["is_local"]), first_seen=when(r["first_seen"]) or "",
                last_seen=when(r["last_seen"]) or "")


def assets(app, scope: Scope, filters: dict[str, Any], limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Assets matching `filters` (key, ip, mac, name, manufacturer, type, device_type, os, local_only,
    active_within), newest first; with `key`, the asset's identity changes too."""
    svc = service(app)
    svc.flush()
    params: dict[str, Any] = {"lim": limit + 1, "off": offset}
    where = [scope.sql(["ip"])] + _filters(filters, params)
    rows = app.store.query(
        f"SELECT {_ASSET_COLUMNS} FROM assets FINAL WHERE " + " AND ".join(where) +
        " ORDER BY last_seen DESC, key LIMIT {lim:UInt32} OFFSET {off:UInt32}", params).dicts()
    more = len(rows) > limit
    history = None
    if filters.get("key"):
        history = [dict(h, seen_at=when(h["seen_at"]) or "", changed_at=when(h["changed_at"]) or "")
                   for h in app.store.query(
                       "SELECT field, old_value, new_value, toUnixTimestamp64Milli(seen_at) / 1000 AS seen_at, "
                       "toUnixTimestamp64Milli(changed_at) / 1000 AS changed_at FROM asset_history "
                       "WHERE key = {key:String} AND " + scope.sql(["ip"]) +
                       " ORDER BY changed_at DESC, field LIMIT 200", {"key": filters["key"].strip()}).dicts()]
        history = [h for h in history if h["field"] != "ip" or _visible_values(scope, h)]
    return {"assets": [_asset(scope, r) for r in rows[:limit]], "history": history, "truncated": more,
            "next_offset": offset + limit if more else None}


def _visible_values(scope: Scope, change: dict[str, Any]) -> bool:
    return all(not v or scope.visible(v) for v in (change["old_value"], change["new_value"]))


def lan_devices(app, scope: Scope, limit: int = 200, include_inactive: bool = True,
                active_within: str = "1h") -> dict[str, Any]:
    """Local hosts with something learned about them (MAC, names, OS), and MACs with no address
    yet (not shown to users limited to networks: nothing ties them to their networks)."""
    svc = service(app)
    since = None if include_inactive else parse_time(active_within)
    hosts, macs = svc.model.local_hosts_and_macs()
    out = []
    for h in hosts:
        if not scope.visible(h.ip) or (since and h.last_seen < since) or not (h.mac or h.names or h.os_evidence):
            continue
        out.append(_device(svc, h))
    out.sort(key=lambda d: (ipaddress.ip_address(d["ip"]).version, ipaddress.ip_address(d["ip"])))
    with_ip = {d["mac"] for d in out if d["mac"]}
    orphans = [] if scope.restricted else [
        {"mac": m.mac, "name": m.name, "manufacturer": m.manufacturer, "device_type": m.device_type, "os": m.os}
        for m in macs if m.mac not in with_ip and not m.ips and (m.names or m.dhcp)]
    return {"devices": out[:limit], "macs_without_ip": orphans[:limit], "truncated": len(out) > limit}


def _device(svc, h) -> dict[str, Any]:
    d = h.as_dict()
    m = svc.model.get_mac(h.mac) if h.mac else None
    sources = {n["source"] for n in d["names"]} | {e["source"] for e in d["os_evidence"]}
    if h.mac:
        sources.add("mac")
    if m is not None and m.dhcp:
        sources.add("dhcp")
    name, nsrc = d["name"], d["name_source"]
    if not name and m is not None and m.name:
        name, nsrc = m.name, m.best_name()[1]
    return {"ip": h.ip, "vlan": h.vlan, "mac": h.mac, "hostname": name, "name_source": nsrc,
            "manufacturer": d["manufacturer"], "device_type": d["device_type"] or (m.device_type if m else ""),
            "os": d["os"] or (m.os if m else ""),
            "os_source": d["os_evidence"][0]["source"] if d["os_evidence"] else "",
            "learned_from": sorted(sources), "first_seen": when(h.first_seen), "last_seen": when(h.last_seen)}
