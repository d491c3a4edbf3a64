"""Flow exporters (NetFlow/IPFIX/sFlow) and their interfaces, as a caller may see them.

An exporter is a device at an address: a user limited to networks sees the exporters whose
address is inside them, and of their interfaces' traffic only the flows the user may see.
"""

from __future__ import annotations

from typing import Any

from flowscope.auth import Scope
from flowscope.services.flows import parse_time

_STORED = (
    "SELECT address, type, argMax(version, updated_at) AS version, argMax(interface_id, updated_at) AS iid, "
    "min(first_seen) AS fs, max(last_seen) AS ls, argMax(datagrams, updated_at) AS d, "
    "argMax(records, updated_at) AS r, argMax(undecodable, updated_at) AS u, "
    "argMax(sequence_gaps, updated_at) AS g, argMax(lost, updated_at) AS l, argMax(templates, updated_at) AS t, "
    "argMax(dropped_sets, updated_at) AS ds, argMax(health, updated_at) AS h, "
    "toUnixTimestamp64Milli(fs) AS fs_ms, toUnixTimestamp64Milli(ls) AS ls_ms "
    "FROM flow_exporters WHERE {scope} GROUP BY address, type ORDER BY ls DESC LIMIT 10000")


def _stored(app, scope: Scope) -> list[dict[str, Any]]:
    out = []
    for r in app.store.query(_STORED.format(scope=scope.sql(["address"]))).dicts():
        out.append({"address": r["address"], "type": r["type"], "version": int(r["version"]),
                    "interface_id": int(r["iid"]), "first_seen": int(r["fs_ms"]) / 1000,
                    "last_seen": int(r["ls_ms"]) / 1000, "datagrams": int(r["d"]), "records": int(r["r"]),
                    "undecodable": int(r["u"]), "sequence_gaps": int(r["g"]), "lost": int(r["l"]),
                    "lost_unit": "records" if r["type"] in ("netflow5", "ipfix") else "datagrams",
                    "templates": int(r["t"]), "dropped_sets": int(r["ds"]), "health": r["h"]})
    return out


def exporters(app, scope: Scope, limit: int) -> dict[str, Any]:
    """Exporters heard from (running collector first, then the stored snapshots), newest first;
    each with `live` saying where it comes from."""
    coll = app.components.get("collector")
    live: dict[tuple[str, str], dict] = {}
    listeners: list[dict[str, Any]] = []
    if coll is not None:
        live = {(s["address"], s["type"]): s for s in coll.registry.snapshots() if scope.visible(s["address"])}
        listeners = [] if scope.restricted else coll.status()["listeners"]  # the server's own sockets
    rows = [dict(s, live=True) for s in live.values()]
    rows += [dict(s, live=False) for s in _stored(app, scope) if (s["address"], s["type"]) not in live]
    rows.sort(key=lambda s: -s["last_seen"])
    return {"exporters": rows[:limit], "collector_running": coll is not None, "listeners": listeners,
            "truncated": len(rows) > limit}


def interfaces(app, scope: Scope, exporter: str | None, begin: str | None, end: str | None,
               limit: int) -> tuple[list[dict], bool]:
    """Per (exporter, ifIndex): bytes/packets in and out and flows, busiest first, with names."""
    where = ["PROBE_IP != ''", scope.flows_sql(), scope.sql(["PROBE_IP"])]
    params: dict[str, Any] = {"lim": limit + 1}
    if exporter is not None:
        where.append("PROBE_IP = {exporter:String}")
        params["exporter"] = exporter
    t0, t1 = parse_time(begin), parse_time(end)
    if t0 is not None:
        where.append("LAST_SEEN >= fromUnixTimestamp64Milli({b:Int64}, 'UTC')")
        params["b"] = int(t0 * 1000)
    if t1 is not None:
        where.append("FIRST_SEEN <= fromUnixTimestamp64Milli({e:Int64}, 'UTC')")
        params["e"] = int(t1 * 1000)
    sql = ("SELECT PROBE_IP AS exporter, if_index, sumIf(TOTAL_BYTES, dir = 0) AS in_bytes, "
           "sumIf(TOTAL_BYTES, dir = 1) AS out_bytes, sumIf(PACKETS, dir = 0) AS in_packets, "
           "sumIf(PACKETS, dir = 1) AS out_packets, count() AS flows "
           "FROM flows ARRAY JOIN [INPUT_SNMP, OUTPUT_SNMP] AS if_index, [0, 1] AS dir "
           "WHERE " + " AND ".join(where) + " AND if_index != 0 "
           "GROUP BY exporter, if_index ORDER BY in_bytes + out_bytes DESC, exporter, if_index LIMIT {lim:UInt32}")
    rows = app.store.query(sql, params).dicts()
    coll = app.components.get("collector")
    names: dict[str, dict[int, str]] = {}
    for r in rows:
        ex = r["exporter"]
        if ex not in names:
            names[ex] = coll.interface_names(ex) if coll is not None else {}
        r["if_index"] = int(r["if_index"])
        r["name"] = names[ex].get(r["if_index"], "")
    return rows[:limit], len(rows) > limit
