"""Flow tools: live flows, summaries and history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from flowscope.mcp.toolkit import Returns, ToolContext, tool
from flowscope.services import flows as flow_service
from flowscope.services.flows import FlowFilter, L4_BY_NUMBER, iso

SortKey = Literal["bytes", "packets", "first_seen", "last_seen", "duration", "score"]


class FlowFilters(BaseModel):
    host: str | None = Field(None, description="IP address at either end of the flow")
    port: int | None = Field(None, ge=0, le=65535, description="L4 port at either end")
    l4_proto: str | None = Field(None, description="L4 protocol: tcp, udp, icmp, icmpv6 or a number")
    application: str | None = Field(None, description="nDPI application, e.g. DNS, TLS, Google (matches TLS.Google)")
    vlan: int | None = Field(None, ge=0, le=4095, description="VLAN id")
    min_bytes: int | None = Field(None, ge=0, description="Only flows with at least this many bytes")
    interface_id: int | None = Field(None, ge=0, description="Only flows from this source (see get_interfaces)")

    def flow_filter(self) -> FlowFilter:
        return FlowFilter(self.host, self.port, self.l4_proto, self.application, self.vlan, self.min_bytes,
                          self.interface_id)


class LiveFlowsParams(FlowFilters):
    sort: SortKey = Field("bytes")
    descending: bool = True
    limit: int = Field(20, ge=1, le=1000, description="Max flows returned")
    offset: int = Field(0, ge=0, description="Skip this many flows (paging)")


class Flow(BaseModel):
    """One flow, live or from history: ends, protocols, counters in both directions, nDPI findings."""

    flow_id: int
    first_seen: str
    last_seen: str
    ip_version: int
    vlan: int
    l4_proto: str
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    application: str
    category: str
    bytes: int
    packets: int
    src2dst_bytes: int
    dst2src_bytes: int
    src2dst_packets: int
    dst2src_packets: int
    info: str = ""
    flow_risk: int = 0
    score: int = 0
    interface_id: int
    source_type: str = Field(description="pcap or interface (packets), or netflow5/netflow9/ipfix/sflow (exporter)")
    active: bool | None = Field(None, description="Live flows: still active (false: finished, e.g. from a file)")

    @classmethod
    def of(cls, r: dict[str, Any]) -> "Flow":
        return cls(
            flow_id=r["FLOW_ID"], first_seen=iso(r["FIRST_SEEN"]), last_seen=iso(r["LAST_SEEN"]),
            ip_version=r["IP_PROTOCOL_VERSION"], vlan=r["VLAN_ID"],
            l4_proto=L4_BY_NUMBER.get(r["PROTOCOL"], str(r["PROTOCOL"])), src_ip=r["SRC_IP"],
            src_port=r["IP_SRC_PORT"], dst_ip=r["DST_IP"], dst_port=r["IP_DST_PORT"],
            application=r.get("L7_PROTO_NAME") or "Unknown", category=r.get("L7_CATEGORY_NAME") or "",
            bytes=r["TOTAL_BYTES"], packets=r["PACKETS"], src2dst_bytes=r["SRC2DST_BYTES"],
            dst2src_bytes=r["DST2SRC_BYTES"], src2dst_packets=r["SRC2DST_PACKETS"],
            dst2src_packets=r["DST2SRC_PACKETS"], info=r.get("INFO") or "", flow_risk=r.get("FLOW_RISK") or 0,
            score=r.get("SCORE") or 0, interface_id=r["INTERFACE_ID"], source_type=r.get("SOURCE_TYPE") or "",
            active=r.get("active"))

    @property
    def duration_s(self) -> float | None:
        try:
            return (datetime.fromisoformat(self.last_seen) - datetime.fromisoformat(self.first_seen)).total_seconds()
        except ValueError:
            return None

    def line(self) -> str:
        took = self.duration_s
        return (f"#{self.flow_id} {self.l4_proto} {self.src_ip}:{self.src_port} <-> {self.dst_ip}:{self.dst_port} "
                f"[{self.application}] {self.src2dst_packets} pkts/{self.src2dst_bytes} B <-> "
                f"{self.dst2src_packets} pkts/{self.dst2src_bytes} B; {self.first_seen} → {self.last_seen}"
                + (f" ({took:.3f} s)" if took is not None else "") + (f" {self.info}" if self.info else ""))


class FlowsPage(BaseModel):
    flows: list[Flow]
    total: int | None = Field(None, description="Matching flows before the limit (live table only)")
    truncated: bool = Field(description="More flows match than were returned: raise limit or use offset")
    next_offset: int | None = None

    def text(self) -> str:
        head = f"{len(self.flows)} flow(s)" + (f" of {self.total}" if self.total is not None else "")
        head += " (truncated)" if self.truncated else ""
        return "\n".join([head] + [f.line() for f in self.flows])


def _live_page(flows: list[Any], p: LiveFlowsParams) -> FlowsPage:
    flows = flow_service.sort_flows(flows, p.sort, p.descending)
    page = flows[p.offset:p.offset + p.limit]
    more = len(flows) > p.offset + p.limit
    return FlowsPage(flows=[Flow.of(f.as_row()) for f in page], total=len(flows), truncated=more,
                     next_offset=p.offset + p.limit if more else None)


@tool(returns=Returns.FLOWS, title="Live flows", example={"application": "DNS", "sort": "bytes", "limit": 10})
async def get_live_flows(call: ToolContext, params: LiveFlowsParams) -> FlowsPage:
    """Current flows in memory with their counters; filter, sort and page.

    Current flows in memory (live interfaces, plus the flows of capture files being served), with
    their counters. Filter by host, port, L4 protocol, application, VLAN or minimum bytes; sort and page."""
    return _live_page(flow_service.visible_live(call.app, call.scope, params.flow_filter()), params)


class HostFlowsParams(LiveFlowsParams):
    host: str = Field(description="IP address whose flows to list")


@tool(returns=Returns.FLOWS, title="Live flows of a host", example={"host": "192.168.1.10", "limit": 20})
async def get_live_flows_for_host(call: ToolContext, params: HostFlowsParams) -> FlowsPage:
    """Current flows where the given IP is client or server."""
    return _live_page(flow_service.host_live_page(call.app, call.scope, params.flow_filter()), params)


class SummaryParams(FlowFilters):
    group_by: Literal["application", "protocol", "source", "destination", "country", "category"] = Field(
        "application")
    limit: int = Field(20, ge=1, le=500)


class SummaryRow(BaseModel):
    key: str
    flows: int
    bytes: int
    packets: int


class Summary(BaseModel):
    group_by: str
    rows: list[SummaryRow]
    total_flows: int
    total_bytes: int
    truncated: bool

    def text(self) -> str:
        lines = [f"live flows by {self.group_by}: {self.total_flows} flows, {self.total_bytes} bytes"]
        lines += [f"{r.key}: {r.flows} flows, {r.bytes} B, {r.packets} pkts" for r in self.rows]
        return "\n".join(lines) + ("\n(truncated)" if self.truncated else "")


@tool(returns=Returns.FLOWS, title="Live flows summary", example={"group_by": "application", "limit": 10})
async def get_live_flows_summary(call: ToolContext, params: SummaryParams) -> Summary:
    """Live flows grouped by application, category, protocol, source, destination or country.

    Live flows grouped by application, category, L4 protocol, source, destination or country
    (when known), largest first by bytes."""
    ranked, flows, total_bytes = flow_service.live_summary(call.app, call.scope, params.flow_filter(), params.group_by)
    return Summary(group_by=params.group_by,
                   rows=[SummaryRow(key=k, flows=v[0], bytes=v[1], packets=v[2]) for k, v in ranked[:params.limit]],
                   total_flows=flows, total_bytes=total_bytes, truncated=len(ranked) > params.limit)


class FlowIdParams(BaseModel):
    flow_id: int = Field(ge=0, description="FLOW_ID from get_live_flows or get_historical_flow")


class OneFlow(BaseModel):
    flow: Flow | None
    found: bool

    def text(self) -> str:
        return self.flow.line() if self.flow else "no such flow (or outside your allowed networks)"


@tool(returns=Returns.FLOWS, title="One live flow", example={"flow_id": 1234567890})
async def get_live_flow(call: ToolContext, params: FlowIdParams) -> OneFlow:
    """One live flow by its id, with all counters."""
    f = flow_service.live_flow(call.app, call.scope, params.flow_id)
    return OneFlow(flow=Flow.of(f.as_row()) if f else None, found=f is not None)


class HistoryParams(LiveFlowsParams):
    flow_id: int | None = Field(None, ge=0, description="Fetch this one flow; other filters are ignored")
    begin: str | None = Field(None, description="Start: ISO time, epoch seconds, or a span back from now "
                                                "(1h, 7d); default: all stored history")
    end: str | None = Field(None, description="End: ISO time or epoch seconds; default now")


@tool(returns=Returns.FLOWS, title="Historical flows", example={"begin": "1h", "host": "10.0.0.5", "l4_proto": "tcp", "limit": 20})
async def get_historical_flow(call: ToolContext, params: HistoryParams) -> FlowsPage:
    """Stored flows in a time range, with get_live_flows' filters; or one flow by flow_id.

    Search stored flows by time range and the same filters as get_live_flows, or fetch one flow
    by flow_id. Without begin/end all stored history is searched (capture files keep their own times)."""
    if params.flow_id is not None:
        row = flow_service.history_flow(call.app, call.scope, params.flow_id)
        return FlowsPage(flows=[Flow.of(row)] if row else [], truncated=False)
    begin, end = flow_service.parse_time(params.begin), flow_service.parse_time(params.end)
    rows, more = flow_service.search_history(call.app, call.scope, params.flow_filter(), begin, end,
                                    params.sort, params.descending, params.limit, params.offset)
    return FlowsPage(flows=[Flow.of(r) for r in rows], truncated=more,
                     next_offset=params.offset + params.limit if more else None)
