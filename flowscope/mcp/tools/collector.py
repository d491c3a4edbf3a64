"""Flow collector tools: NetFlow/IPFIX/sFlow exporters and their interfaces."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, Field

from flowscope.mcp.toolkit import Returns, ToolContext, tool
from flowscope.services import exporters as svc


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


@tool(returns=Returns.SOURCES, title="Flow exporters", example={"limit": 20})
async def list_flow_exporters(call: ToolContext, params: ListExportersParams) -> ExportersResult:
    """NetFlow/IPFIX/sFlow exporters heard from, with counters and health (gaps, drops, templates).

    List the NetFlow v5/v9, IPFIX and sFlow exporters the collector has heard from, with their
    counters and health: datagrams and records received, sequence gaps (lost datagrams or records),
    undecodable datagrams, templates known, data dropped for lack of a template. Exporter flows are
    in the flows table with PROBE_IP = address and INTERFACE_ID = interface_id. Users limited to
    networks see the exporters inside them."""
    out = await asyncio.to_thread(svc.exporters, call.app, call.scope, params.limit)
    out["exporters"] = [dict(s, first_seen=_iso(s["first_seen"]), last_seen=_iso(s["last_seen"]))
                        for s in out["exporters"]]
    return ExportersResult.model_validate(out)


class InterfaceParams(BaseModel):
    exporter: str = Field(description="address, from list_flow_exporters")
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


async def _interfaces_result(call: ToolContext, exporter: str | None, begin: str | None, end: str | None,
                             limit: int) -> InterfacesResult:
    rows, more = await asyncio.to_thread(svc.interfaces, call.app, call.scope, exporter, begin, end, limit)
    return InterfacesResult(interfaces=[Interface.model_validate(r) for r in rows], truncated=more)


@tool(returns=Returns.SOURCES, title="Exporter interfaces", example={"exporter": "192.0.2.1", "begin": "24h"})
async def get_exporter_interfaces(call: ToolContext, params: InterfaceParams) -> InterfacesResult:
    """One exporter's traffic per interface (ifIndex), in and out, busiest first.

    Traffic of one flow exporter per interface (ifIndex): bytes, packets and flows entering
    (INPUT_SNMP) and leaving (OUTPUT_SNMP), busiest first, with interface names when the exporter
    announced them or is also a polled SNMP device."""
    return await _interfaces_result(call, params.exporter, params.begin, params.end, params.limit)


@tool(returns=Returns.SOURCES, title="Top exporter interfaces", example={"begin": "1h", "limit": 10})
async def get_top_exporter_interfaces(call: ToolContext, params: TopInterfaceParams) -> InterfacesResult:
    """The busiest (exporter, interface) pairs by bytes.

    The busiest (exporter, interface) pairs across all flow exporters by bytes in + out."""
    return await _interfaces_result(call, None, params.begin, params.end, params.limit)
