"""The MCP methods flowscope answers, on the SDK's low-level `Server` (public handlers, no reach-in):
tools listed per principal and per connection's toolsets, resources, prompts, completions,
logging and progress. Every tool call still goes through the toolkit's wrapper (authorize,
validate, audit)."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import mcp_types as types
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.caching import CacheHint
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPDeprecationWarning

import flowscope
from flowscope.auth import Principal
from flowscope.mcp import completions, manual, prompts, replies, resources, schemas, toolkit, toolsets, vocabulary
from flowscope.mcp.toolkit import ToolError, ToolSpec

log = logging.getLogger(__name__)

LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
STDIO_SESSION = "stdio"


def describe(spec: ToolSpec) -> str:
    """What `tools/list` shows: one line (the rest is in the tool's manual) and the example."""
    return manual.summary(spec) + "\nExample: " + manual.example(spec)


def tool_entry(spec: ToolSpec, input_schema: dict[str, Any] | None = None) -> types.Tool:
    # hints at their spec defaults (destructive, not idempotent) are left out
    annotations = (types.ToolAnnotations(read_only_hint=False, destructive_hint=None if spec.destructive else False)
                   if spec.write else types.ToolAnnotations(read_only_hint=True))
    return types.Tool(name=spec.name, title=spec.title, description=describe(spec),
                      input_schema=input_schema or schemas.input_schema(spec),
                      output_schema=schemas.output_schema(spec.result), annotations=annotations)


def tool_entries(specs: dict[str, ToolSpec], toolset_of: dict[str, str]) -> dict[str, types.Tool]:
    """Every tool's listing entry, arguments shared within a toolset described once."""
    inputs = schemas.describe_once({name: schemas.input_schema(spec) for name, spec in specs.items()}, toolset_of,
                                   {name for name, spec in specs.items() if not spec.write and not spec.admin},
                                   {name: manual.summary(spec) for name, spec in specs.items()})
    return {name: tool_entry(spec, inputs[name]) for name, spec in specs.items()}


def may_call(spec: ToolSpec, principal: Principal | None) -> bool:
    if principal is None:
        return False
    return not (spec.write and principal.read_only) and not (spec.admin and not principal.is_admin)


def instructions(default: Iterable[str]) -> str:
    shared = "; ".join(f"{k}: {v}" for k, v in vocabulary.SHARED_ARGS.items()
                       if k in ("host", "begin", "end", "limit", "offset"))
    return (
        "flowscope answers questions about network traffic with real numbers (flows metered by nDPI, "
        "stored in ClickHouse).\n"
        "Start: get_interfaces (what is monitored), get_live_flows_summary (now), get_historical_flow "
        "(what happened), get_host_info (one host), get_alerts (what is wrong), query (SQL; read "
        "resource flowscope://schema/flows first).\n"
        f"Toolsets: {', '.join(toolsets.TOOLSETS)}; this connection has {', '.join(sorted(default))} by "
        "default; choose others with the path /mcp/x/<a,b> or the header X-Flowscope-Toolsets.\n"
        f"Shared arguments: {shared}. History tools default to {vocabulary.DEFAULT_WINDOW_TEXT}; each "
        "answer's first line states its window. Unknown arguments are refused. Answers hold only what your "
        "token may see (its networks); write tools change what you own (admins: anything).\n"
        "Each tool's manual (every argument, the details): resource flowscope://tools/{tool}.\n"
        "Resources: flowscope://schema/flows, flowscope://tables, flowscope://ndpi/protocols, "
        "flowscope://flows/{flow_id}, flowscope://hosts/{host}, flowscope://charts/{entity}/{metric}, "
        "flowscope://playbooks/*. Prompts: " + ", ".join(prompts.PROMPTS) + "."
    )


class Surface:
    """What one MCP server shows: built once, filtered per request."""

    def __init__(self, app, call_factory: Callable[[ToolSpec], Callable[..., Awaitable[types.CallToolResult]]],
                 specs: dict[str, ToolSpec], default_toolsets: Iterable[str], everything_paths: Iterable[str] = ()):
        self.app = app
        self.specs = specs
        self.calls = {name: call_factory(spec) for name, spec in specs.items()}
        self.toolset = {name: toolsets.toolset_of(name, spec.area) for name, spec in specs.items()}
        self.entries = tool_entries(specs, self.toolset)
        self.default_toolsets = frozenset(default_toolsets)
        self.everything_paths = tuple(everything_paths)
        self.windows = vocabulary.Windows(app)
        self.log_levels: dict[str, str] = {}

    # --- who is asking ---------------------------------------------------------------------
    def principal(self) -> Principal | None:
        return toolkit.current_principal.get()

    def connection_toolsets(self, ctx) -> frozenset[str]:
        req = getattr(ctx, "request", None)
        if req is None or not hasattr(req, "scope"):
            return self.default_toolsets
        return toolsets.from_request(req.scope["path"], req.headers, self.default_toolsets, self.everything_paths)

    def session_key(self, ctx) -> str:
        req = getattr(ctx, "request", None)
        return (req.headers.get("mcp-session-id") if req is not None and hasattr(req, "headers") else None) \
            or STDIO_SESSION

    def may_call(self, spec: ToolSpec) -> bool:
        """The caller may call `spec` (on a connection with its toolset)."""
        return may_call(spec, self.principal())

    def visible_tools(self, ctx) -> list[ToolSpec]:
        principal, sets = self.principal(), self.connection_toolsets(ctx)
        return [s for s in self.specs.values() if self.toolset[s.name] in sets and may_call(s, principal)]

    # --- tools -----------------------------------------------------------------------------
    async def list_tools(self, ctx, params) -> types.ListToolsResult:
        try:
            tools = [self.entries[s.name] for s in self.visible_tools(ctx)]
        except toolsets.ToolsetError as exc:
            raise _invalid(str(exc)) from None
        return types.ListToolsResult(tools=tools)

    async def call_tool(self, ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = self.specs.get(params.name)
        if spec is None:
            return _error(f"unknown tool {params.name!r}; tools/list shows the tools of this connection")
        try:
            sets = self.connection_toolsets(ctx)
        except toolsets.ToolsetError as exc:
            return _error(str(exc))
        if self.toolset[spec.name] not in sets:
            ts = self.toolset[spec.name]
            return _error(f"{spec.name} is in toolset {ts!r}, not enabled on this connection: connect to "
                          f"/mcp/x/{','.join(sorted(sets | {ts}))} or send X-Flowscope-Toolsets: {ts}")
        header = ""
        try:
            args = vocabulary.normalize(spec, dict(params.arguments or {}))
            if vocabulary.is_history_tool(spec, self.toolset[spec.name]):
                args, header = await asyncio.to_thread(self.windows.apply, spec, args)
        except ToolError as exc:
            return _error(str(exc))
        await self.import_progress(ctx)
        started = time.monotonic()
        result = await self.with_progress(ctx, spec.name, self.calls[spec.name](**args))
        elapsed = time.monotonic() - started
        await self.log(ctx, "warning" if result.is_error else "debug",
                       {"tool": spec.name, "ms": round(elapsed * 1000), "error": bool(result.is_error)})
        return shape(result, header)

    async def with_progress(self, ctx, name: str, call: Awaitable[types.CallToolResult]) -> types.CallToolResult:
        """Progress notifications every second while a call runs, when the client sent a token."""
        meta = ctx.meta or {}
        if meta.get("progress_token", meta.get("progressToken")) is None:
            return await call
        task = asyncio.ensure_future(call)
        started = time.monotonic()
        while True:
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if done:
                break
            elapsed = time.monotonic() - started
            await ctx.session.report_progress(elapsed, None, f"{name}: running for {elapsed:.0f} s")
        elapsed = time.monotonic() - started
        await ctx.session.report_progress(max(elapsed, 0.001), max(elapsed, 0.001), f"{name}: done")
        return task.result()

    # --- logging ---------------------------------------------------------------------------
    async def set_level(self, ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        self.log_levels[self.session_key(ctx)] = params.level
        return types.EmptyResult()

    def notifies(self, session_key: str) -> bool:
        """The session asked for log notifications (its calls are answered on a stream, see replies)."""
        return session_key in self.log_levels

    async def log(self, ctx, level: str, data: Any) -> None:
        wanted = self.log_levels.get(self.session_key(ctx))
        if wanted is None or LEVELS.index(level) < LEVELS.index(wanted) or replies.one_body():
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await ctx.session.send_log_message(level, data, logger="flowscope", related_request_id=ctx.request_id)
        except Exception:
            log.debug("log notification not sent", exc_info=True)

    async def import_progress(self, ctx) -> None:
        for src in getattr(getattr(self.app, "sources", None), "items", []):
            if src.kind == "pcap" and src.state in ("starting", "running"):
                await self.log(ctx, "info", {"import": src.name, "state": src.state, "flows": src.flows,
                                             "packets": src.packets, "bytes": src.bytes})


def shape(result: types.CallToolResult, header: str) -> types.CallToolResult:
    """The window header first, text capped at 8 KB (structured content keeps every row)."""
    content = list(result.content)
    if content and isinstance(content[0], types.TextContent):
        text = (header + "\n" + content[0].text) if header and not result.is_error else content[0].text
        capped = vocabulary.cap_text(text)
        if capped is content[0].text:
            return result  # nothing to add or cut
        content[0] = types.TextContent(type="text", text=capped)
    meta = {"flowscope/window": header[len("Window: "):]} if header and not result.is_error else None
    return result.model_copy(update={"content": content, "meta": meta} if meta else {"content": content})


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _invalid(message: str):
    from mcp.shared.exceptions import MCPError

    return MCPError(code=types.INVALID_PARAMS, message=message)


def build_server(app, call_factory, specs: dict[str, ToolSpec], default_toolsets: Iterable[str] | None = None,
                 everything_paths: Iterable[str] = ()) -> Server:
    default = frozenset(default_toolsets or toolsets.DEFAULT)
    surface = Surface(app, call_factory, specs, default, everything_paths)
    res = resources.Resources(surface)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        server = Server(
            "flowscope", version=flowscope.__version__, title="flowscope", instructions=instructions(default),
            # lists depend on the token (private) and not on time; resources are read fresh
            cache_hints={**{m: CacheHint(ttl_ms=60_000, scope="private") for m in (
                "tools/list", "prompts/list", "resources/list", "resources/templates/list")},
                "resources/read": CacheHint(ttl_ms=0, scope="private")},
            on_list_tools=surface.list_tools, on_call_tool=surface.call_tool,
            on_list_resources=res.list, on_list_resource_templates=res.templates, on_read_resource=res.read,
            on_list_prompts=prompts.list_prompts, on_get_prompt=prompts.get_prompt,
            on_completion=completions.Completer(surface).complete,
            on_set_logging_level=surface.set_level,
        )
    if not tracing():
        server.middleware = [m for m in server.middleware if not isinstance(m, OpenTelemetryMiddleware)]
    server.surface = surface  # for tests and the CLI
    return server


def tracing() -> bool:
    """An OpenTelemetry tracer provider is installed (e.g. by opentelemetry-instrument): the SDK's span
    per request is kept. Without one the span is a no-op that still costs a sixth of a fast call."""
    from opentelemetry import trace

    return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


async def run_stdio(server: Server) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
