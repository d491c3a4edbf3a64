"""The MCP server: every registered tool on the SDK's MCPServer, served over Streamable HTTP
(on /mcp and on ntopng's path) with token authentication, and over stdio."""

from __future__ import annotations

import base64
import contextlib
import inspect
import json
import logging
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import flowscope
from flowscope import modules
from flowscope.auth import token_from_header
from flowscope.mcp import toolkit
from flowscope.mcp.toolkit import REGISTRY, ToolContext, ToolError, ToolSpec
from flowscope.metrics import CONTENT_TYPE, metered_tool

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
NTOPNG_PATH = "/lua/rest/v2/exec/llm/mcp.lua"

INSTRUCTIONS = """flowscope answers questions about network traffic with real numbers.
Start with get_interfaces (what is monitored), get_live_flows_summary (what is happening now),
get_historical_flow (what happened), get_host_info (what is this host) and query (ClickHouse SQL over
the flows table, whose columns follow ntopng's names; use describe_table flows first)."""


def load_tools(unavailable: dict[str, str] | None = None) -> dict[str, ToolSpec]:
    """Every tool; a tool module that fails to import stops the server (`StartupError`)."""
    modules.load_tools({} if unavailable is None else unavailable)
    return REGISTRY


def _wrapper(app, spec: ToolSpec):
    async def call(**kwargs: Any) -> CallToolResult:
        principal = toolkit.current_principal.get()
        try:
            toolkit.authorize(spec, principal)
            params = toolkit.parse_arguments(spec, kwargs)
        except ToolError as exc:
            return _error(str(exc))
        ctx = ToolContext(app=app, principal=principal, tool=spec.name)
        try:
            result = await spec.fn(ctx, params)
        except ToolError as exc:
            if spec.write:
                toolkit.audit(app, spec, principal, params, "refused: " + str(exc))
            return _error(str(exc))
        except Exception as exc:
            log.exception("tool %s failed", spec.name)
            return _error(f"{spec.name} failed unexpectedly ({type(exc).__name__}: {exc}); "
                          "try narrower arguments, or report this")
        if spec.write:
            toolkit.audit(app, spec, principal, params, "ok")
        content: list[Any] = [TextContent(type="text", text=toolkit.render_text(result))]
        for png in ctx.images:
            content.append(ImageContent(type="image", data=base64.b64encode(png).decode(), mime_type="image/png"))
        return CallToolResult(content=content, structured_content=result.model_dump(mode="json"))

    params = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Any)
              for name in list(spec.params.model_fields) + ["content"]]
    call.__signature__ = inspect.Signature(params, return_annotation=Annotated[CallToolResult, spec.result])
    call.__name__ = spec.name
    call.__annotations__ = {"return": Annotated[CallToolResult, spec.result]}
    return call


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def build_mcp(app) -> MCPServer:
    server = MCPServer(name="flowscope", title="flowscope", version=flowscope.__version__,
                       instructions=INSTRUCTIONS, log_level="WARNING")
    for spec in load_tools(app.unavailable).values():
        server.add_tool(
            metered_tool(app.metrics, spec.name, _wrapper(app, spec)), name=spec.name, title=spec.title, description=toolkit.describe(spec),
            annotations=ToolAnnotations(title=spec.title, read_only_hint=not spec.write,
                                        destructive_hint=spec.destructive, idempotent_hint=not spec.write,
                                        open_world_hint=False),
            meta={"flowscope/area": spec.area, "flowscope/write": spec.write},
        )
        server._tool_manager.get_tool(spec.name).parameters = toolkit.input_schema(spec)
    return server


def _security(app) -> TransportSecuritySettings:
    host, port = app.config.host_port
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"] + list(app.config.allowed_hosts)
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"] + list(app.config.allowed_origins)
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        hosts.append(f"{host}:*")
        origins.append(f"http://{host}:*")
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


class TokenAuth:
    """ASGI middleware: MCP paths need a valid token; the caller becomes the current principal."""

    def __init__(self, asgi, app):
        self.asgi = asgi
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/") not in (MCP_PATH, NTOPNG_PATH):
            return await self.asgi(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        token = token_from_header(headers.get("authorization"))
        principal = self.app.auth.authenticate(token) if token else None
        if principal is None:
            why = "missing token" if not token else "invalid or revoked token"
            body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {
                "code": -32001,
                "message": f"Unauthorized: {why}. Send 'Authorization: Token <token>' "
                           "(create one with: flowscope token create USER)"}}).encode()
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="flowscope"')]})
            await send({"type": "http.response.body", "body": body})
            return
        reset = toolkit.current_principal.set(principal)
        try:
            await self.asgi(scope, receive, send)
        finally:
            toolkit.current_principal.reset(reset)


def build_http_app(app) -> Any:
    server = build_mcp(app)
    inner = server.streamable_http_app(streamable_http_path=MCP_PATH, transport_security=_security(app),
                                       host=app.config.host_port[0])
    mcp_route = next(r for r in inner.routes if getattr(r, "path", None) == MCP_PATH)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": flowscope.__version__,
                             "sources": [s.info() for s in app.sources.items],
                             "flows_written": app.writer.written, "live_flows": len(app.live),
                             "unavailable": modules.unavailable_list(app.unavailable)})

    async def metrics(request: Request) -> Response:
        """Prometheus text format; on this listener only for an admin token (Bearer or Token)."""
        token = token_from_header(request.headers.get("authorization"))
        principal = app.auth.authenticate(token) if token else None
        if principal is None or not principal.is_admin:
            return PlainTextResponse("an admin token is needed (Authorization: Bearer T), or serve metrics "
                                     "without one on --metrics-listen HOST:PORT\n",
                                     status_code=401 if principal is None else 403)
        return Response(app.metrics.text(), media_type=CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(_):
        async with server.session_manager.run():
            await app.start()
            try:
                yield
            finally:
                await app.stop()

    routes = list(inner.routes) + [
        Route(NTOPNG_PATH, endpoint=mcp_route.endpoint),
        Route("/health", endpoint=health, methods=["GET"]),
        Route("/metrics", endpoint=metrics, methods=["GET"]),
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan)
    starlette.state.mcp = server
    return TokenAuth(starlette, app)
