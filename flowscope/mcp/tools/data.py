"""Data tools: sources, the nDPI catalogue, the schema and guarded SQL."""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import BaseModel, Field

from flowscope.mcp.toolkit import Returns, ToolContext, ToolError, from_memory, tool
from flowscope.services.hosts import labels
from flowscope.services import sources as sources_svc
from flowscope.mcp.tools.packets import PacketsInfo, packets_info
from flowscope.modules import unavailable_list
from flowscope.store import schema
from flowscope.store.guard import GuardError, run_guarded
from flowscope.store.scopes import readable_tables


class NoParams(BaseModel):
    pass


class Interface(BaseModel):
    id: int
    kind: str = Field(description="pcap (capture file), interface (live capture) or collector")
    name: str
    state: str
    packets: int
    bytes: int
    flows: int
    drops: int | None = Field(description="Packets the capture dropped; null when not measured (live interfaces) "
                                          "or not shown (users limited to networks)")
    live_flows: int
    error: str | None = None


class Unavailable(BaseModel):
    name: str = Field(description="Module of the component or tools that cannot run here")
    reason: str


class Interfaces(BaseModel):
    interfaces: list[Interface]
    flows_stored: int = Field(description="Flows in the history (users limited to networks: the ones they see)")
    packets: PacketsInfo | None = Field(None, description="Packet retention rings, answer limits and extraction "
                                                          "counters (get_flow_packets)")
    unavailable: list[Unavailable] = Field(default_factory=list,
                                           description="Components that cannot run here, with the reason")

    def text(self) -> str:
        lines = [f"#{i.id} {i.kind} {i.name} [{i.state}] {i.packets} pkts {i.bytes} B {i.flows} flows "
                 f"{'?' if i.drops is None else i.drops} drops{' error: ' + i.error if i.error else ''}"
                 for i in self.interfaces] or ["no sources: start flowscope serve with --pcap FILE or --interface IFACE"]
        return "\n".join(lines + [f"unavailable {u.name}: {u.reason}" for u in self.unavailable])


@tool(returns=Returns.SOURCES, title="Monitored sources", example={})
async def get_interfaces(call: ToolContext, params: NoParams) -> Interfaces:
    """Monitored sources (capture files, interfaces, collectors) with their counters and state.

    Sources flowscope meters (capture files, live interfaces, flow collectors) with packet, byte,
    flow and drop counters and their state. Users limited to networks see the sources of their
    traffic, with the counters of the flows they may see."""
    if call.scope.restricted:  # their counters are of the stored flows they see: a query
        items, stored = await anyio.to_thread.run_sync(sources_svc.sources, call.app, call.scope)
    else:
        items, stored = await from_memory(len(call.app.live), sources_svc.sources, call.app, call.scope)
    return Interfaces(interfaces=[Interface.model_validate(s) for s in items], flows_stored=stored,
                      packets=None if call.scope.restricted else packets_info(call.app),
                      unavailable=[Unavailable(**u) for u in unavailable_list(call.app.unavailable)])


def _catalog():
    try:
        from flowscope.flows.ndpi_catalog import catalog

        return catalog()
    except Exception as exc:
        raise ToolError(f"the nDPI catalogue is unavailable here ({exc})") from None


class ListProtosParams(BaseModel):
    category: str | None = Field(None, description="e.g. Web")
    limit: int = Field(500, ge=1, le=2000)


class Proto(BaseModel):
    id: int
    name: str
    category: str


class Protos(BaseModel):
    ndpi_revision: str
    protocols: list[Proto]
    categories: list[str]
    truncated: bool

    def text(self) -> str:
        return f"nDPI {self.ndpi_revision}: " + ", ".join(f"{p.id}={p.name}" for p in self.protocols)


@tool(returns=Returns.CATALOGUE, title="nDPI protocols", example={"category": "Web"})
async def list_protos(call: ToolContext, params: ListProtosParams) -> Protos:
    """nDPI application protocols with ids and categories.

    The application protocols the running nDPI recognises, with ids (L7_PROTO) and categories."""
    cat = _catalog()
    protos = [p for p in cat.protocols
              if params.category is None or p.category.lower() == params.category.lower()]
    if params.category and not protos:
        raise ToolError(f"no category {params.category!r}; categories: {', '.join(sorted(set(cat.categories.values())))}")
    return Protos(ndpi_revision=cat.revision, truncated=len(protos) > params.limit,
                  protocols=[Proto(id=p.id, name=p.name, category=p.category) for p in protos[:params.limit]],
                  categories=sorted(set(cat.categories.values())))


class ResolveParams(BaseModel):
    names: list[str] = Field(default_factory=list)
    ids: list[int] = Field(default_factory=list)


class Resolved(BaseModel):
    query: str
    id: int | None
    name: str | None
    category: str | None
    found: bool


class ResolveResult(BaseModel):
    results: list[Resolved]

    def text(self) -> str:
        return "\n".join(f"{r.query} -> {r.id}/{r.name} ({r.category})" if r.found else f"{r.query} -> not found"
                         for r in self.results)


@tool(returns=Returns.CATALOGUE, title="Resolve protocols", example={"names": ["DNS", "TLS.Google"], "ids": [7]})
async def resolve_proto(call: ToolContext, params: ResolveParams) -> ResolveResult:
    """nDPI protocol names to ids and ids to names, in batch.

    Translate nDPI protocol names to ids and ids to names, in batch (up to 200)."""
    if not params.names and not params.ids:
        raise ToolError("give names and/or ids, e.g. {\"names\": [\"DNS\"]}")
    if len(params.names) + len(params.ids) > 200:
        raise ToolError("at most 200 names and ids per call")
    cat = _catalog()
    out = []
    for name in params.names:
        p = cat.by_name(name)
        if p is None and "." in name:
            app, master = cat.split_app_name(name)
            p = cat.by_id(app) if app else None
        out.append(Resolved(query=name, id=p.id if p else None, name=p.name if p else None,
                            category=p.category if p else None, found=p is not None))
    for pid in params.ids:
        p = cat.by_id(pid)
        out.append(Resolved(query=str(pid), id=pid, name=p.name if p else None,
                            category=p.category if p else None, found=p is not None))
    return ResolveResult(results=out)


class TableInfo(BaseModel):
    name: str
    comment: str


class Tables(BaseModel):
    tables: list[TableInfo]

    def text(self) -> str:
        return "\n".join(f"{t.name}: {t.comment}" for t in self.tables)


def _visible(call: ToolContext) -> list[schema.Table]:
    return readable_tables(call.principal)


@tool(returns=Returns.CATALOGUE, title="List tables", example={})
async def list_tables(call: ToolContext, params: NoParams) -> Tables:
    """flowscope's ClickHouse tables you may query, with what each holds."""
    return Tables(tables=[TableInfo(name=t.name, comment=t.comment) for t in _visible(call)])


class DescribeParams(BaseModel):
    table: str = Field(description="e.g. flows")


class ColumnInfo(BaseModel):
    name: str
    type: str
    comment: str
    alias: bool = Field(description="Computed on read from other columns")


class TableDescription(BaseModel):
    table: str
    comment: str
    columns: list[ColumnInfo]

    def text(self) -> str:
        return f"{self.table}: {self.comment}\n" + "\n".join(
            f"  {c.name} {c.type}{' ALIAS' if c.alias else ''} -- {c.comment}" for c in self.columns)


@tool(returns=Returns.CATALOGUE, title="Describe a table", example={"table": "flows"})
async def describe_table(call: ToolContext, params: DescribeParams) -> TableDescription:
    """Columns of one table with types and comments (flows: ntopng's names).

    Columns of one table with types and comments. The flows table uses ntopng's column names;
    ALIAS columns such as SRC_IP, DST_IP and L7_PROTO_NAME are friendlier views of them."""
    table = next((t for t in _visible(call) if t.name == params.table), None)
    if table is None:
        raise ToolError(f"unknown table {params.table!r}; tables: {', '.join(t.name for t in _visible(call))}")
    return TableDescription(table=table.name, comment=table.comment, columns=[
        ColumnInfo(name=c.name, type=c.type, comment=c.comment, alias=bool(c.alias)) for c in table.columns])


class QueryParams(BaseModel):
    sql: str = Field(description="one statement (schema: flowscope://schema/flows)")
    limit: int = Field(200, ge=1, le=10000, description="Max rows returned")


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = Field(description="More rows existed than `limit`")
    elapsed_ms: float

    def text(self) -> str:
        lines = [" | ".join(self.columns)]
        lines += [" | ".join("" if v is None else str(v) for v in r) for r in self.rows[:50]]
        if len(self.rows) > 50:
            lines.append(f"... {len(self.rows) - 50} more rows in structured content")
        if self.truncated:
            lines.append("(truncated: raise limit or aggregate)")
        return "\n".join(lines)


@tool(returns=Returns.ROWS, title="SQL query", example={"sql": "SELECT SRC_IP, sum(TOTAL_BYTES) AS bytes FROM flows GROUP BY SRC_IP "
                                         "ORDER BY bytes DESC LIMIT 10"})
async def query(call: ToolContext, params: QueryParams) -> QueryResult:
    """Read-only ClickHouse SQL over flowscope's tables (SELECT, WITH, DESCRIBE, SHOW, EXPLAIN), bounded.

    Run read-only ClickHouse SQL over flowscope's tables. Allowed: SELECT, WITH, DESCRIBE,
    SHOW TABLES, EXPLAIN. Not allowed: table functions, other databases, most system tables, several
    statements, SETTINGS. Results are limited in rows and time, and to your allowed networks."""
    try:
        out = await anyio.to_thread.run_sync(
            lambda: run_guarded(call.app, call.principal, params.sql, max_rows=params.limit))
    except GuardError as exc:
        raise ToolError(f"query refused: {exc}") from None
    return QueryResult(columns=out.columns, rows=out.rows, truncated=out.truncated, elapsed_ms=out.elapsed_ms)


class LabelParams(BaseModel):
    ip: str = Field(description="Host address")
    label: str = Field(max_length=200, description="empty to clear")


class LabelResult(BaseModel):
    ip: str
    label: str
    updated_at: str


@tool(returns=Returns.HOSTS, write=True, admin=True, title="Set a host label",
      example={"ip": "192.168.1.10", "label": "NAS"})
async def set_host_label(call: ToolContext, params: LabelParams) -> LabelResult:
    """Give a host a label, shown by host tools.

    Give a host a human label, stored in host_labels and shown by host tools."""
    out = await anyio.to_thread.run_sync(labels.set_label, call.app, call.scope, params.ip, params.label,
                                         call.principal.name)
    return LabelResult(**out)
