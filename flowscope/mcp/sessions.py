"""Streamable HTTP sessions belong to the token that opened them, and each token holds only a few.

Ownership: the SDK's session manager answers 404, as for an unknown session, when a request names
a session that another credential opened, provided the ASGI scope carries an `AuthenticatedUser`
(its public hook); `owner_user` builds that user from our token. The owner is the *token*, not the
user: a user's read-only and read-write tokens never share a session.

Limits: `SessionLimits` sits in front of the manager. It learns each new session's id from the
answer to the request that opened it, counts sessions per token, and when a token opens one more
than `per_token` (or the server one more than `total`), it closes that token's (for the total: the
largest holder's) least recently used session that has no call in flight, with an ordinary DELETE
through the same manager. So one token opening sessions in a loop only recycles its own, and
nobody else is ever refused. Sessions the manager ended on its own (idle timeout) are forgotten
once idle that long here too, or when a request for them is answered 404.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from flowscope.auth import Principal
from flowscope.mcp.errors import send_error

log = logging.getLogger(__name__)

SESSION_HEADER = b"mcp-session-id"
VERSION_HEADER = b"mcp-protocol-version"


@functools.lru_cache(maxsize=1024)
def owner_user(principal: Principal) -> AuthenticatedUser:
    """The SDK's user for `principal`: sessions are bound to its token (one object per principal)."""
    return AuthenticatedUser(AccessToken(token="", client_id=f"token:{principal.token_id}", scopes=[],
                                         subject=principal.name))


@dataclass
class Session:
    owner: str
    user: AuthenticatedUser
    last_used: float
    calls: int = 0  # POSTs in flight
    streams: int = 0  # GET streams open

    def idle(self) -> bool:
        return not self.calls


class SessionLimits:
    """ASGI layer in front of the SDK's session manager (see the module docstring)."""

    def __init__(self, asgi, is_mcp_path: Callable[[str], bool], evict_path: str, *, per_token: int, total: int,
                 idle_timeout: float):
        self.asgi = asgi
        self.is_mcp_path = is_mcp_path
        self.evict_path = evict_path
        self.per_token = per_token
        self.total = total
        self.idle_timeout = idle_timeout
        self.sessions: dict[str, Session] = {}
        self.by_owner: dict[str, OrderedDict[str, Session]] = {}  # least recently used first
        self.opening: dict[str, int] = {}  # sessions being opened, per owner
        self.lock = anyio.Lock()

    def count(self, owner: str | None = None) -> int:
        if owner is None:
            return len(self.sessions) + sum(self.opening.values())
        return len(self.by_owner.get(owner, ())) + self.opening.get(owner, 0)

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if scope["type"] != "http" or not self.is_mcp_path(scope["path"]) or user is None:
            return await self.asgi(scope, receive, send)
        sid = header(scope, SESSION_HEADER)
        if sid is None:
            version = header(scope, VERSION_HEADER)
            if scope["method"] != "POST" or (version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS):
                return await self.asgi(scope, receive, send)  # no session to open (later eras have none)
            return await self._open(user, scope, receive, send)
        session = self.sessions.get(sid)
        if session is None or session.owner != user.username:
            return await self.asgi(scope, receive, send)  # the manager answers 404
        return await self._use(sid, session, scope, receive, send)

    async def _use(self, sid: str, session: Session, scope, receive, send) -> None:
        kind = {"POST": "calls", "GET": "streams"}.get(scope["method"])
        if kind:
            setattr(session, kind, getattr(session, kind) + 1)
            self._touch(sid, session)
        status = None

        async def watch(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.asgi(scope, receive, watch)
        finally:
            if kind:
                setattr(session, kind, getattr(session, kind) - 1)
                self._touch(sid, session)
            if status == 404 or (scope["method"] == "DELETE" and status is not None and status < 300):
                self._forget(sid)

    async def _open(self, user: AuthenticatedUser, scope, receive, send) -> None:
        owner = user.username
        async with self.lock:
            self._prune()
            refusal = await self._make_room(owner)
            if refusal is None:
                self.opening[owner] = self.opening.get(owner, 0) + 1
        if refusal is not None:
            status, message = refusal
            return await send_error(send, status, -32000, message, ((b"retry-after", b"5"),))
        opened: str | None = None

        async def watch(message):
            nonlocal opened
            if message["type"] == "http.response.start" and message["status"] < 400:
                opened = dict(message.get("headers", [])).get(SESSION_HEADER, b"").decode("latin-1") or None
            await send(message)

        try:
            await self.asgi(scope, receive, watch)
        finally:
            self.opening[owner] -= 1
            if not self.opening[owner]:
                del self.opening[owner]
            if opened:
                session = Session(owner, user, time.monotonic())
                self.sessions[opened] = session
                self.by_owner.setdefault(owner, OrderedDict())[opened] = session

    async def _make_room(self, owner: str) -> tuple[int, str] | None:
        """Close sessions so `owner` may open one more; the refusal (status, message) if it cannot."""
        if self.count(owner) >= self.per_token:
            if not await self._evict(owner):
                return 429, (f"this token already has {self.per_token} sessions with calls in flight; "
                             "end one (HTTP DELETE with its Mcp-Session-Id) or retry later")
        if self.count() >= self.total:
            largest = max(self.by_owner, key=lambda o: len(self.by_owner[o]), default=None)
            if largest is None or not await self._evict(largest):
                return 503, "the server is at its session limit; retry later"
        return None

    async def _evict(self, owner: str) -> bool:
        """Close `owner`'s least recently used session without a call in flight."""
        sid = next((s for s, session in self.by_owner.get(owner, {}).items() if session.idle()), None)
        if sid is None:
            return False
        session = self._forget(sid)
        log.info("closing session %s of %s to make room for a new one", sid[:8], owner)
        await self._delete(sid, session.user)
        return True

    async def _delete(self, sid: str, user: AuthenticatedUser) -> None:
        """End a session as its client would: DELETE with its id and owner, through the manager."""
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "DELETE",
                 "scheme": "http", "path": self.evict_path, "raw_path": self.evict_path.encode(), "root_path": "",
                 "query_string": b"", "client": None, "server": None, "user": user,
                 "headers": [(b"host", b"127.0.0.1:0"), (SESSION_HEADER, sid.encode())]}

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message):
            if message["type"] == "http.response.start" and message["status"] not in (200, 404):
                log.warning("closing session %s answered HTTP %s", sid[:8], message["status"])

        await self.asgi(scope, receive, discard)

    def _touch(self, sid: str, session: Session) -> None:
        session.last_used = time.monotonic()
        owned = self.by_owner.get(session.owner)
        if owned is not None and sid in owned:
            owned.move_to_end(sid)

    def _forget(self, sid: str) -> Session | None:
        session = self.sessions.pop(sid, None)
        if session is not None:
            owned = self.by_owner[session.owner]
            owned.pop(sid, None)
            if not owned:
                del self.by_owner[session.owner]
        return session

    def _prune(self) -> None:
        """Forget sessions the manager has ended for idleness (no call, no stream, idle that long)."""
        cutoff = time.monotonic() - self.idle_timeout
        for sid in [s for s, x in self.sessions.items() if x.idle() and not x.streams and x.last_used < cutoff]:
            self._forget(sid)


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
