"""How the SDK answers a POST on a Streamable HTTP session: one JSON body when nothing but the
answer can go on its stream, an SSE stream otherwise.

The spec lets the server choose per request (the client accepts both). An SSE answer costs the
server a task, a stream and event framing per call; a JSON body does not. Besides its answer, a
request's stream carries only progress notifications (when the request has a
`_meta.progressToken`) and log notifications (once its session set a level with
logging/setLevel): flowscope sends the client no requests. So a request on an existing session
with neither is answered with one JSON body. `OneBodyReplies` decides before the SDK sees the
request; the SDK's transport reads the decision as its `is_json_response_enabled`, and
`Surface.log` sends nothing on a one-body request (a level set while it runs applies from the
next request). The opening request (initialize) and later eras (which decide on their own) are
left as they are.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable
from typing import Any

from mcp.server.streamable_http import StreamableHTTPServerTransport, check_accept_headers
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request

from flowscope.mcp.sessions import SESSION_HEADER, header

PEEK_LIMIT = 64 * 1024  # larger bodies are left to the SDK (and its size limit) and streamed

_one_body: contextvars.ContextVar[str | None] = contextvars.ContextVar("one_body_session", default=None)


def one_body() -> bool:
    """The request being handled is answered with one JSON body: nothing else can go on its stream."""
    return _one_body.get() is not None


class PerRequestTransport(StreamableHTTPServerTransport):
    """The SDK's session transport, answering with JSON exactly the requests `OneBodyReplies` marked
    for its session (its message router, a task of its own, always sees False and routes)."""

    @property
    def is_json_response_enabled(self) -> bool:
        return self.mcp_session_id is not None and _one_body.get() == self.mcp_session_id

    @is_json_response_enabled.setter
    def is_json_response_enabled(self, value: bool) -> None:
        if value:
            raise ValueError("replies are chosen per request (flowscope.mcp.replies)")


class SessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, with sessions on `PerRequestTransport`."""

    def _admit_session(self, requestor):
        transport = super()._admit_session(requestor)
        if transport is not None:
            transport.__class__ = PerRequestTransport
        return transport


class OneBodyReplies:
    """ASGI layer in front of the SDK: marks the POSTs of an existing session that can take one
    JSON body. `notifies(session_id)`: that session asked for log notifications."""

    def __init__(self, asgi, is_mcp_path: Callable[[str], bool], notifies: Callable[[str], bool]):
        self.asgi = asgi
        self.is_mcp_path = is_mcp_path
        self.notifies = notifies

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not self.is_mcp_path(scope["path"]):
            return await self.asgi(scope, receive, send)
        sid = header(scope, SESSION_HEADER)
        if sid is None or self.notifies(sid) or check_accept_headers(Request(scope)) != (True, True):
            return await self.asgi(scope, receive, send)
        body, receive = await _peek(receive)
        if body is None or not _quiet(body):
            return await self.asgi(scope, receive, send)
        mark = _one_body.set(sid)
        try:
            await self.asgi(scope, receive, send)
        finally:
            _one_body.reset(mark)


def _quiet(body: bytes) -> bool:
    """One JSON-RPC request without a progress token."""
    try:
        message: Any = json.loads(body)
    except ValueError:
        return False
    if not isinstance(message, dict) or "id" not in message or not isinstance(message.get("method"), str):
        return False
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return not (isinstance(meta, dict) and meta.get("progressToken") is not None)


async def _peek(receive):
    """(the whole body or None when over PEEK_LIMIT, a `receive` that replays what was read)."""
    read: list[dict] = []
    size = 0
    complete = False
    while size <= PEEK_LIMIT:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            complete = True
            break

    async def replay():
        return read.pop(0) if read else await receive()

    body = b"".join(m.get("body", b"") for m in read) if complete else None
    return body, replay
