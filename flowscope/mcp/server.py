"""The MCP server: every registered tool on the SDK's low-level Server, served over Streamable HTTP
(on /mcp and on ntopng's path) with token authentication, and over stdio."""

from __future__ import annotations

import base64
import contextlib
import inspect
import logging
import os
from typing import Annotated, Any

from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, ImageContent, TextContent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import flowscope
from flowscope import modules, runtime
from flowscope.auth import local_from_header, token_from_header
from flowscope.mcp import errors, protocol, replies, toolkit, toolsets
from flowscope.mcp.errors import ShortErrors
from flowscope.mcp.sessions import SessionLimits, owner_user
from flowscope.mcp.toolkit import REGISTRY, ToolContext, ToolError, ToolSpec
from flowscope.metrics import CONTENT_TYPE, metered_tool

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
NTOPNG_PATH = "/lua/rest/v2/exec/llm/mcp.lua"

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
            result = await toolkit.invoke(spec, ctx, params)
            content: list[Any] = [TextContent(type="text", text=toolkit.render_text(result))]
            for png in ctx.images:
                content.append(ImageContent(type="image", data=base64.b64encode(png).decode(), mime_type="image/png"))
            answer = CallToolResult(content=content, structured_content=result.model_dump(mode="json"))
        except Exception as exc:
            internal = not isinstance(exc, ToolError) or errors.is_internal(exc)
            message = _unexpected(spec, principal, exc) if internal else str(exc)
            if spec.write:
                toolkit.audit(app, spec, principal, params, ("failed: " if internal else "refused: ") + message)
            return _error(message)
        if spec.write:
            toolkit.audit(app, spec, principal, params, "ok")
        return answer

    params = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Any)
              for name in list(spec.params.model_fields) + ["content"]]
    call.__signature__ = inspect.Signature(params, return_annotation=Annotated[CallToolResult, spec.result])
    call.__name__ = spec.name
    call.__annotations__ = {"return": Annotated[CallToolResult, spec.result]}
    return call


def _unexpected(spec: ToolSpec, principal, exc: Exception) -> str:
    """Log what went wrong under an error id; the client gets the id and what to try."""
    inner = (exc.__cause__ or exc.__context__ or exc) if isinstance(exc, ToolError) else exc
    error_id = errors.record(f"tool {spec.name} failed for {principal.name}: {str(exc)[:2000]}", inner)
    return (f"{spec.name} failed (error id {error_id}); try narrower or simpler arguments, "
            "or give the error id to the server's admin")


def _component_info(app, name: str):
    info = getattr(app.components.get(name), "info", None)
    return info() if info else None


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def build_mcp(app) -> Server:
    """The low-level SDK server with flowscope's handlers (tools per principal and toolset,
    resources, prompts, completions, logging); see protocol.py. Every tool call is metered."""
    return protocol.build_server(app, lambda spec: metered_tool(app.metrics, spec.name, _wrapper(app, spec)),
                                 load_tools(app.unavailable),
                                 default_toolsets=toolsets.parse(getattr(app.config, "toolsets", None)),
                                 everything_paths=(NTOPNG_PATH,))


def _security(app) -> TransportSecuritySettings:
    host, port = app.config.host_port
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"] + list(app.config.allowed_hosts)
    scheme = "https" if app.config.tls_cert else "http"
    origins = [f"{scheme}://127.0.0.1:*", f"{scheme}://localhost:*", f"{scheme}://[::1]:*"]
    origins += list(app.config.allowed_origins)
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        hosts.append(f"{host}:*")
        origins.append(f"{scheme}://{host}:*")
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


def is_mcp_path(path: str) -> bool:
    path = path.rstrip("/")
    return path in (MCP_PATH, NTOPNG_PATH) or path.startswith(toolsets.PATH_PREFIX)


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
        principal = self.app.auth.authenticate(token) if token else self._local(scope, headers)
        if principal is None:
            why = "invalid or revoked token" if token or local_from_header(headers.get("authorization")) \
                else "missing token"
            return await errors.send_error(
                send, 401, -32001, f"Unauthorized: {why}. Send 'Authorization: Token <token>' "
                "(create one with: flowscope token create USER)", ((b"www-authenticate", b'Bearer realm="flowscope"'),))
        scope["user"] = owner_user(principal)  # the SDK binds sessions to it
        try:
            toolsets.from_request(scope["path"], headers, frozenset())
        except toolsets.ToolsetError as exc:
            return await errors.send_error(send, 400, -32600, str(exc))
        reset = toolkit.current_principal.set(principal)
        try:
            await self.asgi(scope, receive, send)
        finally:
            toolkit.current_principal.reset(reset)

    def _local(self, scope, headers):
        """`flowscope stdio` beside this server: the data directory's owner acting as a user."""
        client, server = scope.get("client"), scope.get("server")
        return self.app.auth.authenticate_local(local_from_header(headers.get("authorization")),
                                                headers.get(runtime.USER_HEADER),
                                                client[0] if client else None, server[0] if server else None)


def build_http_app(app, local_url: str | None = None) -> Any:
    """The HTTP application; with `local_url` (where this machine reaches it), it publishes the
    runtime file `flowscope stdio` and `flowscope ingest` use while it runs (flowscope.runtime)."""
    from flowscope.capture import handoff

    cfg = app.config
    server = build_mcp(app)
    manager = replies.SessionManager(server, security_settings=_security(app),
                                     session_idle_timeout=cfg.session_idle_timeout,
                                     max_sessions=cfg.max_sessions + cfg.max_sessions_per_token)
    endpoint = StreamableHTTPASGIApp(manager)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(_health(app, request.headers.get("authorization")))

    async def metrics(request: Request) -> Response:
        """Prometheus text format; on this listener only for an admin token (Bearer or Token)."""
        token = token_from_header(request.headers.get("authorization"))
        principal = app.auth.authenticate(token) if token else None
        if principal is None or not principal.is_admin:
            return PlainTextResponse("an admin token is needed (Authorization: Bearer T), or serve metrics "
                                     "without one on --metrics-listen HOST:PORT\n",
                                     status_code=401 if principal is None else 403)
        return Response(app.metrics.text(), media_type=CONTENT_TYPE)

    async def ingest(request: Request):
        return await handoff.endpoint(app, request)

    @contextlib.asynccontextmanager
    async def lifespan(_):
        async with manager.run():
            await app.start()
            link = runtime.publish(cfg.data_dir, local_url, cfg.tls_cert) if local_url else None
            app.auth.enable_local(link.secret if link else None)
            try:
                yield
            finally:
                app.auth.enable_local(None)
                if link:
                    runtime.withdraw(cfg.data_dir, link)
                await app.stop()

    routes = [
        Route(MCP_PATH, endpoint=endpoint),
        Route(NTOPNG_PATH, endpoint=endpoint),
        Route(toolsets.PATH_PREFIX + "{toolsets}", endpoint=endpoint),
        Route("/health", endpoint=health, methods=["GET"]),
        Route("/metrics", endpoint=metrics, methods=["GET"]),
        Route(runtime.INGEST_PATH, endpoint=ingest, methods=["POST"]),
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan)
    starlette.state.mcp = server
    quick = replies.OneBodyReplies(starlette, is_mcp_path, server.surface.notifies)
    sessions = SessionLimits(quick, is_mcp_path, MCP_PATH, per_token=cfg.max_sessions_per_token,
                             total=cfg.max_sessions, idle_timeout=cfg.session_idle_timeout)
    starlette.state.sessions = sessions
    return ShortErrors(TokenAuth(sessions, app))


def _health(app, authorization: str | None) -> dict[str, Any]:
    """Up or not, for anyone; sources and counters for a valid token; capture paths for admins."""
    answer: dict[str, Any] = {"status": "ok"}
    token = token_from_header(authorization)
    principal = app.auth.authenticate(token) if token else None
    if principal is None:
        return answer
    sources = [s.info() for s in app.sources.items]
    if not principal.is_admin:
        for source in sources:
            if source["kind"] == "pcap":
                source["name"] = os.path.basename(source["name"])
            if source["error"]:
                source["error"] = "failed; the server's admin sees why"
    answer = {**answer, "version": flowscope.__version__, "sources": sources,
              "flows_written": app.writer.written, "writer_idle": app.writer.idle, "live_flows": len(app.live),
              "unavailable": modules.unavailable_list(app.unavailable)}
    if principal.is_admin:
        answer["packets"] = _component_info(app, "packets")
    return answer
