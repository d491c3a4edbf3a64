"""The MCP server: every registered tool on the SDK's low-level Server, served over Streamable HTTP
(on /mcp and on ntopng's path) with token authentication, and over stdio."""

from __future__ import annotations

import base64
import contextlib
import importlib
import inspect
import json
import logging
import pkgutil
from typing import Annotated, Any

from mcp.server.lowlevel.server import Server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, ImageContent, TextContent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import flowscope
from flowscope.auth import token_from_header
from flowscope.mcp import protocol, toolkit, toolsets
from flowscope.mcp.toolkit import REGISTRY, ToolContext, ToolError, ToolSpec

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
NTOPNG_PATH = "/lua/rest/v2/exec/llm/mcp.lua"

def load_tools() -> dict[str, ToolSpec]:
    import flowscope.mcp.tools as tools

    for mod in pkgutil.iter_modules(tools.__path__, "flowscope.mcp.tools."):
        try:
            importlib.import_module(mod.name)
        except Exception:
            log.exception("could not load tools from %s", mod.name)
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


def build_mcp(app) -> Server:
    """The low-level SDK server with flowscope's handlers (tools per principal and toolset,
    resources, prompts, completions, logging); see protocol.py."""
    return protocol.build_server(app, lambda spec: _wrapper(app, spec), load_tools(),
                                 default_toolsets=toolsets.parse(getattr(app.config, "toolsets", None)),
                                 everything_paths=(NTOPNG_PATH,))


def _security(app) -> TransportSecuritySettings:
    host, port = app.config.host_port
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"] + list(app.config.allowed_hosts)
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"] + list(app.config.allowed_origins)
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        hosts.append(f"{host}:*")
        origins.append(f"http://{host}:*")
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


def is_mcp_path(path: str) -> bool:
    path = path.rstrip("/")
    return path in (MCP_PATH, NTOPNG_PATH) or path.startswith(toolsets.PATH_PREFIX)


async def _refuse(send, status: int, message: str, code: int = -32600, headers: list | None = None) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")] + (headers or [])})
    await send({"type": "http.response.body", "body": body})


class TokenAuth:
    """ASGI middleware: MCP paths need a valid token; the caller becomes the current principal."""

    def __init__(self, asgi, app):
        self.asgi = asgi
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not is_mcp_path(scope["path"]):
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
        try:
            toolsets.from_request(scope["path"], headers, frozenset())
        except toolsets.ToolsetError as exc:
            return await _refuse(send, 400, str(exc))
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
                             "flows_written": app.writer.written, "live_flows": len(app.live)})

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
        Route(toolsets.PATH_PREFIX + "{toolsets}", endpoint=mcp_route.endpoint),
        Route("/health", endpoint=health, methods=["GET"]),
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan)
    starlette.state.mcp = server
    return TokenAuth(starlette, app)
