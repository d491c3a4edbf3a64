"""What is metered (capture files, live interfaces, collector listeners) and this machine's
interfaces, as a caller may see them.

What a user limited to some networks sees of sources (decision, issue 12):
- a source is listed only when it metered at least one flow the user may see (live or stored);
- its counters are those of the flows the user may see: flows, packets and bytes of the visible
  stored flows, and the visible flows in the live table. Drops concern all the traffic of the
  source, so they are hidden (null); so is the error text (the state still says failed);
- its name shows no server detail: a capture file by its file name only (no directory), a
  collector listener by its port only (the server's own address is not theirs to see);
- `flows_stored` counts the visible stored flows.
Of this machine's interfaces the user sees only those with an address inside their networks,
with those addresses only (and their MAC). Unrestricted callers see everything, as metered.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from flowscope.auth import Scope
from flowscope.services.hosts.netinfo import mac_text


def _all_sources(app) -> list[dict[str, Any]]:
    items = [s.info() for s in app.sources.items]
    collector = app.components.get("collector")
    items += list(getattr(collector, "interfaces", lambda: [])())
    return items


def _live_counts(app, scope: Scope) -> dict[int, int]:
    counts: dict[int, int] = {}
    for f in app.live.flows():
        if scope.visible_flow(f.SRC_IP, f.DST_IP):
            counts[f.INTERFACE_ID] = counts.get(f.INTERFACE_ID, 0) + 1
    return counts


def _stored_counts(app, scope: Scope) -> dict[int, tuple[int, int, int]]:
    rows = app.store.query("SELECT INTERFACE_ID, count(), sum(PACKETS), sum(TOTAL_BYTES) FROM flows "
                           f"WHERE {scope.flows_sql()} GROUP BY INTERFACE_ID").rows
    return {int(i): (int(f), int(p), int(b)) for i, f, p, b in rows}


def _plain_name(kind: str, name: str) -> str:
    if kind == "pcap":
        return os.path.basename(name)
    if kind == "collector":
        url = urlsplit(name)
        return f"{url.scheme or 'udp'}://*:{url.port}" if url.port else "collector"
    return name


def sources(app, scope: Scope) -> tuple[list[dict[str, Any]], int]:
    """(sources with counters and `live_flows`, flows stored), as `scope` may see them."""
    items, live = _all_sources(app), _live_counts(app, scope)
    if not scope.restricted:
        return [dict(s, live_flows=live.get(s["id"], 0)) for s in items], app.store.flows_stored
    stored = _stored_counts(app, scope)
    out = []
    for s in items:
        flows, packets, octets = stored.get(s["id"], (0, 0, 0))
        if not flows and not live.get(s["id"]):
            continue
        out.append(dict(s, name=_plain_name(s["kind"], s["name"]), flows=flows, packets=packets, bytes=octets,
                        drops=None, error=None, live_flows=live.get(s["id"], 0)))
    return out, sum(f for f, _, _ in stored.values())


def interface_addresses(app, scope: Scope, all_interfaces: bool) -> tuple[list[dict[str, Any]], bool]:
    """This machine's interfaces (monitored ones, or all): name, monitored, source_id, mac,
    addresses [{family, address, netmask, prefix}], up. Returns (interfaces, any monitored)."""
    import psutil

    by_name = {s.name: s.id for s in app.sources.items if s.kind == "interface"}
    addrs, stats = psutil.net_if_addrs(), psutil.net_if_stats()
    names = sorted(addrs) if all_interfaces else list(by_name)
    out = []
    for name in names:
        items, mac = [], ""
        for a in addrs.get(name, []):
            if a.family == psutil.AF_LINK:
                mac = mac_text(a.address)
            elif a.family in (socket.AF_INET, socket.AF_INET6) and scope.visible(a.address):
                items.append(_address(a))
        if scope.restricted and not items:
            continue
        st = stats.get(name)
        out.append({"name": name, "monitored": name in by_name, "source_id": by_name.get(name), "mac": mac,
                    "addresses": items, "up": st.isup if st else None})
    return out, bool(by_name)


def _address(a: Any) -> dict[str, Any]:
    ip = a.address.split("%")[0]
    prefix = None
    if a.netmask:
        try:
            prefix = ipaddress.ip_network(f"{ip}/{a.netmask}", strict=False).prefixlen
        except ValueError:
            prefix = None
    return {"family": "ipv4" if a.family == socket.AF_INET else "ipv6", "address": ip,
            "netmask": a.netmask or "", "prefix": prefix}
