"""`flowscope stdio` beside a running `flowscope serve`: the stdio client's JSON-RPC messages are
relayed, unchanged, to the server's Streamable HTTP endpoint through the SDK's client transport,
as the user named and with the runtime file's credential (flowscope.runtime); the server's
messages come back on stdout. The server decides what the user may see and do, as for a token.

The only thing added is what HTTP carries beside the body: the protocol version headers (for the
2025 era the version `initialize` agreed on; for later eras each request's own `_meta` version,
method and name), which a stdio client has no reason to send.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
)
from mcp.shared.message import ClientMessageMetadata, SessionMessage
from mcp_types import PROTOCOL_VERSION_META_KEY, JSONRPCRequest, JSONRPCResponse

from flowscope.runtime import USER_HEADER, Runtime

log = logging.getLogger(__name__)


class Headers:
    """The HTTP headers each relayed message needs, learnt from the conversation."""

    def __init__(self) -> None:
        self.version: str | None = None  # agreed by `initialize` (2025 era)
        self.initialize_id: Any = None

    def for_message(self, message: Any) -> dict[str, str]:
        method = getattr(message, "method", None)
        params = getattr(message, "params", None) or {}
        version = (params.get("_meta") or {}).get(PROTOCOL_VERSION_META_KEY) if isinstance(params, dict) else None
        if isinstance(message, JSONRPCRequest) and method == "initialize":
            self.initialize_id, self.version = message.id, None
            return {}
        if isinstance(version, str):  # later eras: every request states its version
            headers = {MCP_PROTOCOL_VERSION_HEADER: version, MCP_METHOD_HEADER: method}
            name = params.get(NAME_BEARING_METHODS.get(method, ""))
            if isinstance(name, str):
                headers[MCP_NAME_HEADER] = encode_header_value(name)
            return headers
        return {MCP_PROTOCOL_VERSION_HEADER: self.version} if self.version else {}

    def learn(self, message: Any) -> None:
        if isinstance(message, JSONRPCResponse) and message.id == self.initialize_id:
            version = (message.result or {}).get("protocolVersion")
            self.version = version if isinstance(version, str) else None


async def relay(runtime: Runtime, user: str) -> None:
    """Serve stdio by relaying to the running server until the client closes stdin."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client
    from mcp.server.stdio import stdio_server
    from mcp.shared._httpx_utils import (
        MCP_DEFAULT_SSE_READ_TIMEOUT,
        MCP_DEFAULT_TIMEOUT,
    )

    auth = {"Authorization": f"Local {runtime.secret}", USER_HEADER: user}
    headers = Headers()
    async with httpx2.AsyncClient(headers=auth, verify=runtime.verify(),
                                  timeout=httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT)) as http:
        async with streamable_http_client(runtime.mcp_url, http_client=http) as (from_server, to_server):
            async with stdio_server() as (from_client, to_client):
                async with anyio.create_task_group() as tg:

                    async def upstream() -> None:
                        async for item in from_client:
                            if isinstance(item, Exception):
                                log.warning("stdio: unreadable message: %s", item)
                                continue
                            meta = ClientMessageMetadata(headers=headers.for_message(item.message))
                            await to_server.send(SessionMessage(item.message, metadata=meta))
                        tg.cancel_scope.cancel()  # the client closed stdin: end the session

                    async def downstream() -> None:
                        async for item in from_server:
                            if isinstance(item, Exception):
                                log.warning("stdio bridge: %s", item)
                                continue
                            headers.learn(item.message)
                            await to_client.send(SessionMessage(item.message))

                    tg.start_soon(upstream)
                    tg.start_soon(downstream)
