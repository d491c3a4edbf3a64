"""Resources: the schema, the tables, the nDPI catalogue, playbooks, and templates for one flow,
one host, one table and one chart. Reads go through the tools themselves, so a token sees
exactly what it sees through tools (a flow or host outside a user's networks is not found)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from importlib import resources as files
from typing import Any
from urllib.parse import parse_qsl

import mcp_types as types
from mcp.shared.exceptions import MCPError

from flowscope.mcp import manual, packet_resource

PLAYBOOKS = "flowscope.mcp.playbooks"


@dataclass(frozen=True)
class Template:
    uri_template: str
    name: str
    title: str
    description: str
    mime_type: str

    @property
    def pattern(self) -> re.Pattern:
        return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.uri_template)) + "$")


TEMPLATES = (
    Template("flowscope://flows/{flow_id}", "flow", "One flow",
             "One stored (or live) flow by id: ends, application, bytes each way, first/last seen, risks.",
             "application/json"),
    Template("flowscope://hosts/{host}", "host", "One host",
             "One host by IP: identity, location, totals, top peers, applications, services.",
             "application/json"),
    Template("flowscope://tables/{table}", "table", "One table",
             "Columns of one table with types and comments.", "text/plain"),
    Template(packet_resource.URI, "packets", "Packets of a flow (pcap)", packet_resource.DESCRIPTION,
             "application/vnd.tcpdump.pcap"),
    Template("flowscope://tools/{tool}", "tool", "Tool manual",
             "One tool in full: what it does, every argument (type, default, meaning), who may call it, an example.",
             "text/markdown"),
    Template("flowscope://charts/{entity}/{metric}", "chart", "Chart",
             "A PNG line chart of a named series over the default window, e.g. flowscope://charts/interface/bytes "
             "(entities and metrics: list_timeseries).", "image/png"),
)


def _playbooks() -> dict[str, str]:
    out = {}
    for entry in files.files(PLAYBOOKS).iterdir():
        if entry.name.endswith(".md"):
            out[entry.name[:-3]] = entry.read_text()
    return out


def _not_found(uri: str, why: str = "Resource not found") -> MCPError:
    return MCPError(code=types.INVALID_PARAMS, message=why, data={"uri": uri})


class Resources:
    def __init__(self, surface):
        self.surface = surface
        self.playbooks = _playbooks()
        self.static: dict[str, tuple[types.Resource, Any]] = {}
        self._add("flowscope://schema/flows", "flows-schema", "The flows table",
                  "Columns of the flows table (ntopng's names) with types and comments; read before writing SQL.",
                  "text/plain", lambda: self._tool_text("describe_table", table="flows"))
        self._add("flowscope://tables", "tables", "Tables", "Every table you may query, with what it holds.",
                  "text/plain", lambda: self._tool_text("list_tables"))
        self._add("flowscope://ndpi/protocols", "ndpi-protocols", "nDPI protocols and categories",
                  "nDPI's protocol catalogue (id, name, category, breed) and its categories.",
                  "application/json", self._catalogue)
        for name, text in sorted(self.playbooks.items()):
            title = text.splitlines()[0].lstrip("# ").strip()
            self._add(f"flowscope://playbooks/{name}", f"playbook-{name}", title,
                      "Playbook: " + title, "text/markdown", lambda text=text: text)

    def _add(self, uri, name, title, description, mime, read) -> None:
        self.static[uri] = (types.Resource(uri=uri, name=name, title=title, description=description,
                                           mime_type=mime), read)

    # --- handlers --------------------------------------------------------------------------
    async def list(self, ctx, params) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[r for r, _ in self.static.values()])

    async def templates(self, ctx, params) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[
            types.ResourceTemplate(uri_template=t.uri_template, name=t.name, title=t.title,
                                   description=t.description, mime_type=t.mime_type) for t in TEMPLATES])

    async def read(self, ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        if self.surface.principal() is None:
            raise _not_found(uri)
        if uri in self.static:
            resource, read = self.static[uri]
            value = read()
            text = await value if hasattr(value, "__await__") else value
            return _contents(uri, resource.mime_type, text)
        base, _, query = uri.partition("?")
        for t in TEMPLATES:
            m = t.pattern.match(base)
            if m:
                options = dict(parse_qsl(query)) if t.name == "packets" else {}
                return await getattr(self, "read_" + t.name)(uri, **m.groupdict(), **options)
        raise _not_found(uri)

    # --- readers ---------------------------------------------------------------------------
    async def _call(self, tool: str, **args) -> types.CallToolResult:
        return await self.surface.calls[tool](**args)

    async def _tool_text(self, tool: str, **args) -> str:
        res = await self._call(tool, **args)
        if res.is_error:
            raise MCPError(code=types.INTERNAL_ERROR, message=res.content[0].text)
        return res.content[0].text

    def _catalogue(self) -> str:
        from flowscope.flows.ndpi_catalog import catalog

        cat = catalog()
        return json.dumps({
            "revision": cat.revision,
            "categories": [{"id": i, "name": n} for i, n in sorted(cat.categories.items())],
            "protocols": [{"id": p.id, "name": p.name, "category": p.category, "breed": p.breed}
                          for p in cat.protocols],
        }, separators=(",", ":"))

    async def read_flow(self, uri: str, flow_id: str) -> types.ReadResourceResult:
        if not flow_id.isdigit():
            raise _not_found(uri, "Resource not found: a flow id is a number")
        res = await self._call("get_historical_flow", flow_id=int(flow_id))
        flows = (res.structured_content or {}).get("flows") if not res.is_error else None
        if flows:
            return _contents(uri, "application/json", json.dumps(flows[0]))
        live = await self._call("get_live_flow", flow_id=int(flow_id))
        if not live.is_error and (live.structured_content or {}).get("found"):
            return _contents(uri, "application/json", json.dumps(live.structured_content["flow"]))
        raise _not_found(uri)

    async def read_host(self, uri: str, host: str) -> types.ReadResourceResult:
        res = await self._call("get_host_info", ip=host)
        if res.is_error:
            raise _not_found(uri, "Resource not found: " + res.content[0].text)
        return _contents(uri, "application/json", json.dumps(res.structured_content))

    async def read_table(self, uri: str, table: str) -> types.ReadResourceResult:
        res = await self._call("describe_table", table=table)
        if res.is_error:
            raise _not_found(uri, "Resource not found: " + res.content[0].text)
        return _contents(uri, "text/plain", res.content[0].text)

    async def read_packets(self, uri: str, flow_id: str, offset: str = "0", max_bytes: str = "0"
                           ) -> types.ReadResourceResult:
        if not (offset.isdigit() and max_bytes.isdigit()):
            raise _not_found(uri, "Resource not found: offset and max_bytes are numbers")
        try:
            data = await packet_resource.flow_pcap(self.surface.app, self.surface.principal(), flow_id,
                                                   int(offset), int(max_bytes))
        except Exception as exc:  # out of scope, unknown flow, packets gone: the reason, not a trace
            raise _not_found(uri, f"Resource not found: {str(exc)[:300]}") from None
        return _contents(uri, "application/vnd.tcpdump.pcap", data)

    async def read_tool(self, uri: str, tool: str) -> types.ReadResourceResult:
        spec = self.surface.specs.get(tool)
        if spec is None or not self.surface.may_call(spec):
            raise _not_found(uri, "Resource not found: no such tool for this token (tools/list on /mcp/x/all)")
        return _contents(uri, "text/markdown", manual.manual(spec, self.surface.toolset[spec.name]))

    async def read_chart(self, uri: str, entity: str, metric: str) -> types.ReadResourceResult:
        spec = self.surface.specs["chart"]
        args, _ = self.surface.windows.apply(spec, {"entity": entity, "metric": metric})
        res = await self._call("chart", **args)
        images = [c for c in res.content if isinstance(c, types.ImageContent)]
        if res.is_error or not images:
            raise _not_found(uri, "Resource not found: " + (res.content[0].text if res.content else "no chart"))
        return types.ReadResourceResult(contents=[
            types.BlobResourceContents(uri=uri, blob=images[0].data, mime_type="image/png")])


def _contents(uri: str, mime: str | None, text: str | bytes) -> types.ReadResourceResult:
    if isinstance(text, bytes):
        return types.ReadResourceResult(contents=[types.BlobResourceContents(
            uri=uri, blob=base64.b64encode(text).decode(), mime_type=mime or "application/octet-stream")])
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, text=text,
                                                                         mime_type=mime or "text/plain")])
