"""Flow collector tools: NetFlow/IPFIX/sFlow exporters and their interfaces."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, Field

from flowscope.mcp.toolkit import ToolContext, ToolError, tool
from flowscope.services.flows import FlowQueryError, parse_time


def _collector(call: ToolContext):
    return call.app.components.get("collector")


def _iso(t: float | None) -> str | None:
    if not t:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class ListExportersParams(BaseModel):
    limit: int = Field(50, ge=1, le=1000, description="Max exporters")


class Exporter(BaseModel):
    address: str = Field(description="Exporter address (sFlow: agent address)")
    type: str = Field(description="netflow5, netflow9, ipfix or sflow")
    version: int
    interface_id: int = Field(description="INTERFACE_ID of its flows in the flows table")
    first_seen: str | None
    last_seen: str | None
    datagrams: int
    records: int = Field(description="Flow records (sFlow: flow samples) decoded")
    undecodable: int
    sequence_gaps: int
    lost: int = Field(description="Missing by sequence numbers, in lost_unit")
    lost_unit: str
    templates: int
    dropped_sets: int = Field(description="Data sets dropped because their template never arrived")
    health: str = Field(description="ok, degraded or silent")
    live: bool = Field(description="True: from the running collector; False: last stored snapshot")


class ExportersResult(BaseModel):
    exporters: list[Exporter]
    collector_running: bool
    listeners: list[dict[str, Any]] = Field(default_factory=list)
    truncated: bool = False

    def text(self) -> str:
        if not self.exporters:
            return ("No flow exporters seen." + ("" if self.collector_running else
                    " The collector is off: start flowscope with --collect udp://0.0.0.0:2055."))
        lines = [f"{len(self.exporters)} exporter(s):"]
        for e in self.exporters:
            lines.append(f"{e.address} {e.type} v{e.version} [{e.health}] if={e.interface_id} "
                         f"datagrams={e.datagrams} records={e.records} lost={e.lost} {e.lost_unit} "
                         f"gaps={e.sequence_gaps} undecodable={e.undecodable} templates={e.templates} "
                         f"last_seen={e.last_seen}")
        return "\n".join(lines)


def _stored_exporters(app) -> list[dict[str, Any]]:
    res = app.store.query(
        "SELECT address, type, argMax(version, updated_at) AS version, argMax(interface_id, updated_at) AS iid, "
        "min(first_seen) AS fs, max(last_seen) AS ls, argMax(datagrams, updated_at) AS d, "
        "argMax(records, updated_at) AS r, argMax(undecodable, updated_at) AS u, "
        "argMax(sequence_gaps, updated_at) AS g, argMax(lost, updated_at) AS l, argMax(templates, updated_at) AS t, "
        "argMax(dropped_sets, updated_at) AS ds, argMax(health, updated_at) AS h, "
        "toUnixTimestamp64Milli(fs) AS fs_ms, toUnixTimestamp64Milli(ls) AS ls_ms "
        "FROM flow_exporters GROUP BY address, type ORDER BY ls DESC LIMIT 10000")
    out = []
    for r in res.dicts():
        out.append({"address": r["address"], "type": r["type"], "version": int(r["version"]),
                    "interface_id": int(r["iid"]), "first_seen": int(r["fs_ms"]) / 1000,
                    "last_seen": int(r["ls_ms"]) / 1000, "datagrams": int(r["d"]), "records": int(r["r"]),
                    "undecodable": int(r["u"]), "sequence_gaps": int(r["g"]), "lost": int(r["l"]),
                    "lost_unit": "records" if r["type"] in ("netflow5", "ipfix") else "datagrams",
                    "templates": int(r["t"]), "dropped_sets": int(r["ds"]), "health": r["h"]})
    return out


@tool(title="Flow exporters", example={"limit": 20})
async def list_flow_exporters(call: ToolContext, params: ListExportersParams) -> ExportersResult:
    """List the NetFlow v5/v9, IPFIX and sFlow exporters the collector has heard from, with their
    counters and health: datagrams and records received, sequence gaps (lost datagrams or records),
    undecodable datagrams, templates known, data dropped for lack of a template. Exporter flows are
    in the flows table with PROBE_IP = address and INTERFACE_ID = interface_id."""
    coll = _collector(call)
    live: dict[tuple[str, str], dict] = {}
    listeners: list[dict[str, Any]] = []
    if coll is not None:
        for s in coll.registry.snapshots():
            live[(s["address"], s["type"])] = s
        listeners = coll.status()["listeners"]
    stored = await asyncio.to_thread(_stored_exporters, call.app)
    rows: list[tuple[dict, bool]] = [(s, True) for s in live.values()]
    rows += [(s, False) for s in stored if (s["address"], s["type"]) not in live]
    rows = [(s, is_live) for s, is_live in rows if call.principal.can_see(s["address"])]
    rows.sort(key=lambda x: -x[0]["last_seen"])
    out = [Exporter(address=s["address"], type=s["type"], version=s["version"], interface_id=s["interface_id"],
                    first_seen=_iso(s["first_seen"]), last_seen=_iso(s["last_seen"]), datagrams=s["datagrams"],
                    records=s["records"], undecodable=s["undecodable"], sequence_gaps=s["sequence_gaps"],
                    lost=s["lost"], lost_unit=s["lost_unit"], templates=s["templates"],
                    dropped_sets=s["dropped_sets"], health=s["health"], live=is_live)
           for s, is_live in rows[:params.limit]]
    return ExportersResult(exporters=out, collector_running=coll is not None, listeners=listeners,
                           truncated=len(rows) > params.limit)


class InterfaceParams(BaseModel):
    exporter: str = Field(description="Exporter address, as in list_flow_exporters")
    begin: str | None = Field(None, description="Start: ISO time, epoch seconds or a span back (1h, 7d); "
                                                "default all history")
    end: str | None = Field(None, description="End: ISO time or epoch seconds; default now")
    limit: int = Field(50, ge=1, le=1000, description="Max interfaces")


class TopInterfaceParams(BaseModel):
    begin: str | None = Field(None, description="Start: ISO time, epoch seconds or a span back (1h, 7d)")
    end: str | None = Field(None, description="End: ISO time or epoch seconds; default now")
    limit: int = Field(10, ge=1, le=1000, description="Max (exporter, interface) rows")


class Interface(BaseModel):
    exporter: str
    if_index: int
    name: str = Field("", description="Interface name from the exporter's options data or SNMP, empty if unknown")
    in_bytes: int = Field(description="Bytes of flows entering on this ifIndex (INPUT_SNMP)")
    out_bytes: int = Field(description="Bytes of flows leaving on this ifIndex (OUTPUT_SNMP)")
    in_packets: int
    out_packets: int
    flows: int = Field(description="Flows that entered or left on this ifIndex")


class InterfacesResult(BaseModel):
    interfaces: list[Interface]
    truncated: bool

    def text(self) -> str:
        if not self.interfaces:
            return "No exporter interface traffic in that range."
        return "\n".join(f"{i.exporter} ifIndex {i.if_index}{' (' + i.name + ')' if i.name else ''}: "
                         f"in {i.in_bytes} B/{i.in_packets} pkts, out {i.out_bytes} B/{i.out_packets} pkts, "
                         f"{i.flows} flows" for i in self.interfaces)


def _interfaces(app, principal, exporter: str | None, begin: float | None, end: float | None,
                limit: int) -> tuple[list[dict], bool]:
    where = ["PROBE_IP != ''", f"({principal.flows_filter()})"]
    params: dict[str, Any] = {"lim": limit + 1}
    if exporter is not None:
        where.append("PROBE_IP = {exporter:String}")
        params["exporter"] = exporter
    if begin is not None:
        where.append("LAST_SEEN >= fromUnixTimestamp64Milli({b:Int64}, 'UTC')")
        params["b"] = int(begin * 1000)
    if end is not None:
        where.append("FIRST_SEEN <= fromUnixTimestamp64Milli({e:Int64}, 'UTC')")
        params["e"] = int(end * 1000)
    sql = ("SELECT PROBE_IP AS exporter, if_index, sumIf(TOTAL_BYTES, dir = 0) AS in_bytes, "
           "sumIf(TOTAL_BYTES, dir = 1) AS out_bytes, sumIf(PACKETS, dir = 0) AS in_packets, "
           "sumIf(PACKETS, dir = 1) AS out_packets, count() AS flows "
           "FROM flows ARRAY JOIN [INPUT_SNMP, OUTPUT_SNMP] AS if_index, [0, 1] AS dir "
           "WHERE " + " AND ".join(where) + " AND if_index != 0 "
           "GROUP BY exporter, if_index ORDER BY in_bytes + out_bytes DESC, exporter, if_index LIMIT {lim:UInt32}")
    rows = app.store.query(sql, params).dicts()
    return rows[:limit], len(rows) > limit


async def _interfaces_result(call: ToolContext, exporter: str | None, begin_s: str | None, end_s: str | None,
                             limit: int) -> InterfacesResult:
    try:
        begin, end = parse_time(begin_s), parse_time(end_s)
    except (FlowQueryError, ValueError) as exc:
        raise ToolError(str(exc)) from None
    rows, more = await asyncio.to_thread(_interfaces, call.app, call.principal, exporter, begin, end, limit)
    coll = _collector(call)
    names: dict[str, dict[int, str]] = {}
    out = []
    for r in rows:
        ex = r["exporter"]
        if ex not in names:
            names[ex] = coll.interface_names(ex) if coll is not None else {}
        out.append(Interface(exporter=ex, if_index=int(r["if_index"]), name=names[ex].get(int(r["if_index"]), ""),
                             in_bytes=int(r["in_bytes"]), out_bytes=int(r["out_bytes"]),
                             in_packets=int(r["in_packets"]), out_packets=int(r["out_packets"]),
                             flows=int(r["flows"])))
    return InterfacesResult(interfaces=out, truncated=more)


@tool(title="Exporter interfaces", example={"exporter": "192.0.2.1", "begin": "24h"})
async def get_exporter_interfaces(call: ToolContext, params: InterfaceParams) -> InterfacesResult:
    """Traffic of one flow exporter per interface (ifIndex): bytes, packets and flows entering
    (INPUT_SNMP) and leaving (OUTPUT_SNMP), busiest first, with interface names when the exporter
    announced them or is also a polled SNMP device."""
    return await _interfaces_result(call, params.exporter, params.begin, params.end, params.limit)


@tool(title="Top exporter interfaces", example={"begin": "1h", "limit": 10})
async def get_top_exporter_interfaces(call: ToolContext, params: TopInterfaceParams) -> InterfacesResult:
    """The busiest (exporter, interface) pairs across all flow exporters by bytes in + out."""
    return await _interfaces_result(call, None, params.begin, params.end, params.limit)
