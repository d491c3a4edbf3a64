"""Errors reach clients short, with an id; the details (traceback, exception text) go to the server
log under the same id, so an admin can find them from what a user reports."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

log = logging.getLogger("flowscope.errors")

#: exceptions that describe our code, not the caller's input: their text never reaches a client,
#: even when a tool passed it on in a ToolError
INTERNAL = (ArithmeticError, RecursionError, MemoryError, TypeError, AttributeError, AssertionError,
            NameError, ImportError, SystemError, UnicodeError)

#: the longest JSON-RPC error message passed on as is; longer ones are replaced (see `short_body`)
MAX_MESSAGE = 160

GENERIC = {-32700: "Parse error: the body is not JSON this server accepts",
           -32600: "Invalid request: send one JSON-RPC 2.0 request object per POST",
           -32601: "Method not found",
           -32602: "Invalid request: send one JSON-RPC 2.0 message object per POST (no batches)"}


def new_error_id() -> str:
    return secrets.token_hex(6)


def record(what: str, exc: BaseException | None = None, level: int = logging.ERROR) -> str:
    """Log `what` (and `exc` with its traceback) under a new error id; returns the id."""
    error_id = new_error_id()
    log.log(level, "error id %s: %s", error_id, what, exc_info=(type(exc), exc, exc.__traceback__) if exc else None)
    return error_id


def is_internal(exc: BaseException) -> bool:
    """True when `exc` is one of ours (INTERNAL), or repeats the text of one it was raised from
    (`raise ToolError(str(exc))`); a message of its own written while handling one is fine."""
    inner = exc.__cause__ or exc.__context__
    return isinstance(exc, INTERNAL) or (isinstance(inner, INTERNAL) and str(inner) in str(exc))


def jsonrpc_error(code: int, message: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}).encode()


async def send_error(send, status: int, code: int, message: str, headers: tuple = ()) -> None:
    """Answer an ASGI request with HTTP `status` and a JSON-RPC error body."""
    body = jsonrpc_error(code, message)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def short_body(body: bytes) -> bytes:
    """A JSON-RPC error body with a short, single-line message; a longer one (e.g. a pydantic
    validation dump) is logged under an error id and replaced by a generic message with that id."""
    try:
        doc: Any = json.loads(body)
        error = doc["error"]
        message = str(error.get("message", ""))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return body
    data = error.get("data")
    if len(message) <= MAX_MESSAGE and "\n" not in message and not (isinstance(data, str) and len(data) > MAX_MESSAGE):
        return body  # short; structured data (e.g. the protocol versions supported) is kept
    error_id = record(f"JSON-RPC error answered in short: {message[:4000]!r}", level=logging.WARNING)
    code = error.get("code") if isinstance(error.get("code"), int) else -32600
    error.pop("data", None)
    error["message"] = f"{GENERIC.get(code, 'Request failed')} (error id {error_id})"
    return json.dumps(doc).encode()


class ShortErrors:
    """ASGI layer: an exception nobody handled becomes a JSON-RPC error with an id (not uvicorn's
    500 page), and JSON error answers (HTTP status >= 400) carry short messages only."""

    def __init__(self, asgi):
        self.asgi = asgi

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.asgi(scope, receive, send)
        started = False  # an answer's start went out
        held: dict | None = None  # the start of a JSON error answer, sent with its shortened body
        chunks: list[bytes] = []

        async def guarded_send(message):
            nonlocal started, held
            if message["type"] == "http.response.start":
                ctype = dict(message.get("headers", [])).get(b"content-type", b"")
                if message["status"] >= 400 and ctype.startswith(b"application/json"):
                    held = message
                    return
            elif message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = short_body(b"".join(chunks))
                headers = [(k, v) for k, v in held.get("headers", []) if k.lower() != b"content-length"]
                started = True
                await send({**held, "headers": headers + [(b"content-length", str(len(body)).encode())]})
                held = None
                message = {"type": "http.response.body", "body": body}
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.asgi(scope, receive, guarded_send)
        except Exception as exc:
            error_id = record(f"{scope.get('method')} {scope.get('path')} failed", exc)
            if started:
                raise
            await send_error(send, 500, -32603, f"Internal error (error id {error_id}); retry, or report this id")
