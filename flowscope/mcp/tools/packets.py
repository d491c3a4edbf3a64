"""Packet tools: a flow's packets, decoded by tshark, and a link to them as a pcap."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from flowscope.mcp.toolkit import Returns, ToolContext, ToolError, tool
from flowscope.services import flows as flows_svc
from flowscope.services import packets as packets_svc
from flowscope.services.flows import L4_BY_NUMBER, FlowFilter, FlowQueryError, iso
from flowscope.services.packets import PacketError
from flowscope.services.packets.filters import FlowKey

PCAP_URI = "flowscope://packets/flow/{flow_id}"


def iso_us(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class FlowPacketsParams(BaseModel):
    flow_id: int | None = Field(None, ge=0, description="FLOW_ID of a live or stored flow (get_live_flows, "
                                                       "get_historical_flow); or give host/port/l4_proto instead")
    host: str | None = Field(None, description="IP address at either end (instead of flow_id)")
    port: int | None = Field(None, ge=0, le=65535, description="L4 port at either end (instead of flow_id)")
    l4_proto: str | None = Field(None, description="tcp, udp, icmp, icmpv6 or a number (with host/port)")
    begin: str | None = Field(None, description="With host/port: start, ISO time, epoch seconds or a span back "
                                                "from now (15m, 1h); default 1h")
    end: str | None = Field(None, description="With host/port: end; default now")
    offset: int = Field(0, ge=0, description="Skip this many packets (paging: next_offset of the last answer)")
    limit: int | None = Field(None, ge=1, le=100_000,
                              description="Summary lines to return (default 50; the server caps it, 1000 unless "
                                          "configured otherwise)")
    detail: list[int] = Field(default_factory=list, description="packet numbers to decode, e.g. [1, 4]")

    @field_validator("host")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValueError(f"host must be an IP address such as 10.0.0.5 or 2001:db8::1 (got {value!r})") from None


class PacketLine(BaseModel):
    number: int = Field(description="Packet number within this answer's packets, from 1")
    time: str
    source: str
    destination: str
    protocol: str
    length: int = Field(description="Bytes on the wire")
    info: str


class PacketDetail(BaseModel):
    number: int
    layers: dict[str, Any] = Field(description="tshark's fields of each layer: {layer: {field: value}}")


class PacketFlow(BaseModel):
    flow_id: int
    l4_proto: str
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    first_seen: str
    last_seen: str
    pcap_uri: str = Field(description="MCP resource with this flow's packets as a pcap file")

    @classmethod
    def of(cls, k: FlowKey) -> "PacketFlow":
        return cls(flow_id=k.flow_id, l4_proto=L4_BY_NUMBER.get(k.protocol, str(k.protocol)), src_ip=k.src_ip,
                   src_port=k.src_port, dst_ip=k.dst_ip, dst_port=k.dst_port, first_seen=iso(k.first),
                   last_seen=iso(k.last), pcap_uri=PCAP_URI.format(flow_id=k.flow_id))


class FlowPackets(BaseModel):
    flows: list[PacketFlow] = Field(description="The flows whose packets these are")
    flows_truncated: bool = Field(False, description="More flows matched the filter than were read: narrow it")
    packets: list[PacketLine]
    details: list[PacketDetail] = Field(default_factory=list)
    total_packets: int = Field(description="Packets extracted for these flows")
    total_bytes: int
    offset: int
    truncated: bool = Field(description="More packets than returned: call again with offset=next_offset")
    next_offset: int | None = None
    payload: Literal["full", "headers"] = Field(description="headers: payload bytes and application data "
                                                            "other than DNS/TLS/HTTP headers are left out")
    timed_out: bool = Field(False, description="Extraction hit its time limit: the packets are incomplete")
    elapsed_ms: float
    notes: list[str] = Field(default_factory=list)

    def text(self) -> str:
        head = (f"{self.total_packets} packet(s), {self.total_bytes} bytes in {len(self.flows)} flow(s); "
                f"showing {self.offset + 1}-{self.offset + len(self.packets)}")
        lines = [head] + [f"{p.number:>5} {p.time} {p.source} → {p.destination} {p.protocol} {p.length} {p.info}"
                          for p in self.packets]
        lines += [f"packet {d.number}: {d.layers}" for d in self.details]
        lines += [f"pcap: {f.pcap_uri}" for f in self.flows[:5]] + self.notes
        return "\n".join(lines)


@tool(returns=Returns.FLOWS, title="Packets of a flow", example={"flow_id": 1234567890, "limit": 20, "detail": [1]})
async def get_flow_packets(call: ToolContext, params: FlowPacketsParams) -> FlowPackets:
    """Packets of one flow (flow_id) or of the flows of host/port: tshark-style lines, decoded detail, a pcap
    resource.

    The packets of one flow (by flow_id, live or stored), or of the flows matching host/port/l4_proto
    in a time range: one tshark-style line per packet (time, source → destination, protocol, length,
    info), paged with offset/limit; `detail` decodes chosen packets layer by layer (HTTP request line
    and headers, TLS SNI and certificate names, DNS questions and answers); each flow's `pcap_uri` is
    an MCP resource holding its packets as a pcap file for Wireshark. Packets come from the capture
    file a flow was read from, or from a live interface's retention ring (serve --retain-packets).
    Non-admins see headers only unless an admin allows payload."""
    try:
        svc = packets_svc.service(call.app)
    except PacketError as exc:
        raise ToolError(str(exc)) from None
    s = svc.settings
    notes: list[str] = []
    limit = params.limit or s.packets_per_answer
    if limit > s.packets_per_answer_max:
        notes.append(f"limit lowered to {s.packets_per_answer_max}, this server's maximum per answer")
        limit = s.packets_per_answer_max
    if len(params.detail) > s.details_per_answer_max:
        raise ToolError(f"at most {s.details_per_answer_max} packets in `detail` per call; split the list")
    payload = svc.may_see_payload(call.principal)
    more_flows = False
    try:
        if params.flow_id is not None:
            keys, begin, end = [svc.flow(call.principal, params.flow_id)], None, None
        elif params.host or params.port is not None:
            begin = flows_svc.parse_time(params.begin or "1h")
            end = flows_svc.parse_time(params.end)
            flt = FlowFilter(host=params.host, port=params.port, l4_proto=params.l4_proto)
            keys, more_flows = svc.matching(call.principal, flt, begin, end, s.flows_per_filter)
            if more_flows:
                notes.append(f"only the first {s.flows_per_filter} matching flows were read: narrow the filter or "
                             "the time range (begin/end)")
        else:
            raise ToolError("give flow_id, or host and/or port (with begin/end), e.g. "
                            '{"flow_id": 1234567890} or {"port": 443, "begin": "30m"}')
        if not keys:
            return FlowPackets(flows=[], packets=[], total_packets=0, total_bytes=0, offset=params.offset,
                               truncated=False, payload="full" if payload else "headers", elapsed_ms=0,
                               notes=["no flow that you may see matches; widen the time range (begin) or check "
                                      "the host with get_historical_flow"])
        ext = await asyncio.to_thread(svc.extract, keys, begin, end)
        lines = await asyncio.to_thread(svc.summary, ext, params.offset, limit, payload)
        details = await asyncio.to_thread(svc.details, ext, params.detail, payload) if params.detail else []
    except (PacketError, FlowQueryError) as exc:
        raise ToolError(str(exc)) from None
    shown_to = params.offset + len(lines)
    more = shown_to < ext.packets
    notes += ext.warnings
    if ext.timed_out:
        notes.append(f"extraction stopped after its {s.extract_timeout_s:g} s limit, so the packets are "
                     "incomplete: ask for a shorter time range (begin/end) or one flow")
    if more:
        notes.append(f"{ext.packets - shown_to} more packet(s): call again with offset={shown_to}")
    if not payload:
        notes.append("headers only: payload is shown to admins (or to users when an admin sets "
                     "[packets] payload_for_users = true)")
    return FlowPackets(
        flows=[PacketFlow.of(k) for k in ext.flows], flows_truncated=more_flows,
        packets=[PacketLine(number=p.number, time=iso_us(p.time), source=p.source, destination=p.destination,
                            protocol=p.protocol, length=p.length, info=p.info) for p in lines],
        details=[PacketDetail(**d) for d in details], total_packets=ext.packets, total_bytes=ext.bytes,
        offset=params.offset, truncated=more, next_offset=shown_to if more else None,
        payload="full" if payload else "headers", timed_out=ext.timed_out, elapsed_ms=round(ext.elapsed_ms, 1),
        notes=notes)


class Retention(BaseModel):
    interface: str
    directory: str
    state: str = Field(description="running, stopped or failed")
    error: str | None = None
    limit_bytes: int
    limit_age_s: int | None
    ring_files: int = Field(description="Files in dumpcap's ring")
    file_bytes: int = Field(description="Size at which dumpcap starts the next file")
    files: int = Field(description="Files kept now")
    bytes_on_disk: int
    oldest: float | None = Field(description="Epoch time of the oldest kept packet")
    newest: float | None = Field(description="Epoch time of the last write")


class PacketsInfo(BaseModel):
    retention: list[Retention]
    retain_bytes: int | None
    retain_age_s: int | None
    payload_for_users: bool
    limits: dict[str, float]
    extraction: dict[str, float | None] = Field(description="Extractions, cache hits, timeouts, failures, times")


def packets_info(app) -> PacketsInfo | None:
    comp = app.components.get("packets")
    return PacketsInfo(**comp.info()) if comp else None
