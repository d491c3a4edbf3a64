"""How a flowscope tool is declared, and what every tool call goes through.

A tool is an async function `(call: ToolContext, params: ParamsModel) -> ResultModel`,
decorated with `@tool(...)`. The wrapper the server registers:
- accepts the typed arguments, or ntopng's convention of one `content` string holding JSON;
- validates them with the Params model and answers errors an agent can act on;
- refuses write tools to read-only tokens and admin tools to non-admins, and audits writes;
- hands the tool the caller's scope (`call.scope`, from flowscope.auth) to give to services, and
  screens what a restricted caller gets back with the scope net (flowscope.mcp.scope_net);
- returns structured content (the Result model, which is also the outputSchema) plus a short
  text rendering, and any PNG images the tool attached.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Awaitable, Callable

import anyio
from pydantic import BaseModel, ValidationError

from flowscope.auth import OutOfScope, Principal, Scope
from flowscope.services.errors import ServiceError

log = logging.getLogger(__name__)

current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


class ToolError(Exception):
    """A refusal or failure to report to the agent; say what to do next."""


class Page(BaseModel):
    """Paging fields shared by list answers."""

    truncated: bool = False
    next_offset: int | None = None


class Returns(str, Enum):
    """What a tool answers with: every `@tool` declares it (`returns=`), and it decides how the
    scope net treats an address outside a restricted caller's networks that is not next to an
    inside one (see flowscope.mcp.scope_net)."""

    FLOWS = "flows"            # flows and aggregates of visible flows: a visible flow's outside peer may show
    SERIES = "series"          # timeseries, rankings and charts computed from visible flows (same rule)
    ROWS = "rows"              # rows of guarded SQL: the engine scopes them (same rule as flows)
    HOSTS = "hosts"            # hosts, MACs, assets, networks: only inside hosts, and their peers
    SOURCES = "sources"        # capture files, interfaces, exporters, this machine's interfaces
    CATALOGUE = "catalogue"    # static knowledge: protocols, schema, probe types; no traffic
    ALERTS = "alerts"          # alerts about hosts and flows
    OWNED = "owned"            # things users create and own: exclusions, probes, SNMP devices, policies

    @property
    def peers_of_visible_flows(self) -> bool:
        """An outside address alone in an item may stay when it is an end of a visible flow."""
        return self in (Returns.FLOWS, Returns.SERIES, Returns.ROWS)


@dataclass
class ToolContext:
    app: Any
    principal: Principal
    tool: str
    images: list[bytes] = field(default_factory=list)

    @property
    def scope(self) -> Scope:
        """The caller's view of the network: give it to services, which filter with it."""
        return self.principal.scope

    def add_image(self, png: bytes) -> None:
        self.images.append(png)

    def component(self, name: str) -> Any:
        """The running component `name`, or a ToolError saying why it is not running here."""
        comp = self.app.components.get(name)
        if comp is None:
            why = next((r for m, r in getattr(self.app, "unavailable", {}).items() if m.rsplit(".", 1)[-1] == name),
                       "it did not start")
            raise ToolError(f"the {name} component is not available on this server: {why}")
        return comp


@dataclass
class ToolSpec:
    fn: Callable[[ToolContext, BaseModel], Awaitable[BaseModel]]
    name: str
    params: type[BaseModel]
    result: type[BaseModel]
    write: bool
    admin: bool
    title: str
    example: dict[str, Any]
    description: str
    destructive: bool
    area: str
    returns: Returns


REGISTRY: dict[str, ToolSpec] = {}


def tool(*, returns: Returns | str, write: bool = False, admin: bool = False,
         title: str | None = None, example: dict[str, Any] | None = None, name: str | None = None,
         destructive: bool | None = None):
    """Declare a tool. `returns` (required) says what it answers with (a `Returns`)."""
    def decorate(fn):
        sig = inspect.signature(fn, eval_str=True)
        params = list(sig.parameters.values())
        if len(params) != 2:
            raise TypeError(f"{fn.__name__}: a tool takes (call, params)")
        tool_name = name or fn.__name__
        declared = returns
        spec = ToolSpec(
            fn=fn,
            name=tool_name,
            params=params[1].annotation,
            result=sig.return_annotation,
            write=write,
            admin=admin,
            title=title or fn.__name__.replace("_", " ").capitalize(),
            example=example or {},
            description=inspect.cleandoc(fn.__doc__ or ""),
            destructive=write if destructive is None else destructive,
            area=fn.__module__.rsplit(".", 1)[-1],
            returns=Returns(declared),
        )
        REGISTRY[spec.name] = spec
        return fn

    return decorate


def merged_arguments(spec: ToolSpec, raw: dict[str, Any]) -> dict[str, Any]:
    """The arguments with ntopng's `content` (one JSON object in a string) merged in, typed
    arguments winning, None dropped. The one place `content` is read."""
    args = {k: v for k, v in raw.items() if v is not None}
    content = args.pop("content", None)
    if content in (None, ""):
        return args
    try:
        extra = json.loads(content) if isinstance(content, str) else content
    except json.JSONDecodeError as exc:
        raise ToolError(f"`content` must hold a JSON object with the arguments ({exc.msg})") from None
    if not isinstance(extra, dict):
        raise ToolError("`content` must hold a JSON object, e.g. {\"limit\": 10}")
    if spec.name == "query" and "sql" not in extra and "query" in extra:
        extra["sql"] = extra.pop("query")
    return {**{k: v for k, v in extra.items() if v is not None}, **args}


def parse_arguments(spec: ToolSpec, raw: dict[str, Any]) -> BaseModel:
    try:
        return spec.params.model_validate(merged_arguments(spec, raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5])
        raise ToolError(f"invalid arguments: {problems}. Example: {json.dumps(spec.example)}") from None


def authorize(spec: ToolSpec, principal: Principal | None) -> Principal:
    if principal is None:
        raise ToolError("not authenticated: send Authorization: Token <token>")
    if spec.write and principal.read_only:
        raise ToolError(f"{spec.name} changes state and this token is read-only; "
                        f"ask an admin for a read-write token (flowscope token create {principal.name})")
    if spec.admin and not principal.is_admin:
        raise ToolError(f"{spec.name} needs the admin role; user {principal.name!r} has role {principal.role!r}")
    return principal


async def invoke(spec: ToolSpec, call: ToolContext, params: BaseModel) -> BaseModel:
    """Run the tool; a service's refusal becomes a ToolError, and a restricted caller's answer
    goes through the scope net (which may remove items or refuse the answer)."""
    from flowscope.mcp import scope_net

    try:
        result = await spec.fn(call, params)
    except (OutOfScope, ServiceError) as exc:
        raise ToolError(str(exc)) from None
    if not call.scope.restricted:
        return result
    return await anyio.to_thread.run_sync(scope_net.screen, call, spec.returns, result)


INLINE_ITEMS = 2_000  # memory work over fewer items runs in the event loop (~0.5 ms for 2,000 live flows)
_memory_threads: anyio.CapacityLimiter | None = None


async def from_memory(items: int, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)`, which reads only memory and walks about `items` things: inline when that is
    cheap, else on a thread of a small pool of its own, so it never queues behind database work
    (which holds anyio's default thread pool)."""
    global _memory_threads
    if items <= INLINE_ITEMS:
        return fn(*args)
    if _memory_threads is None:
        _memory_threads = anyio.CapacityLimiter(2)
    return await anyio.to_thread.run_sync(fn, *args, limiter=_memory_threads)


SECRET_WORDS = ("password", "passphrase", "secret", "community", "key", "token")


def masked(params: BaseModel) -> dict[str, Any]:
    out = {}
    for name, value in params.model_dump(mode="json").items():
        info = type(params).model_fields.get(name)
        extra = (info.json_schema_extra or {}) if info else {}
        secret = isinstance(extra, dict) and extra.get("secret")
        if secret or any(w in name.lower() for w in SECRET_WORDS):
            value = "***" if value else value
        out[name] = value
    return out


def audit(app, spec: ToolSpec, principal: Principal, params: BaseModel, outcome: str) -> None:
    try:
        app.store.insert_dicts("audit_log", [{
            "time": time.time(), "user": principal.name, "token_id": principal.token_id or "",
            "tool": spec.name, "params": json.dumps(masked(params), sort_keys=True), "outcome": outcome[:1000],
        }])
    except Exception:
        log.exception("audit write failed")


def render_text(result: BaseModel) -> str:
    text = getattr(result, "text", None)
    if callable(text):
        try:
            return text()
        except Exception:
            log.exception("text rendering failed")
    return result.model_dump_json(exclude_none=True)[:20000]
