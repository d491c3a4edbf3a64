"""The scope net: a fail-closed check of every answer a restricted caller gets.

Services filter with the caller's scope; this net is the last wall, for a service that forgot.
It walks the structured answer and reads every address in it (any string that is, or contains,
an IPv4/IPv6 address or CIDR). The rule:

- an address inside the allowed networks is visible and gives *context* to the item holding it
  (a dict, or a row of a list of rows) and to everything nested in that item: a visible flow's
  peer, an inside host's peers and their names stay;
- an outside address with no context is *stray*. In answers made of flows (`Returns.FLOWS`,
  `SERIES`, `ROWS`) it may stay when it is an end of a flow the caller may see (a summary row
  per destination, `SELECT DISTINCT DST_IP FROM flows`);
- the innermost list item holding a stray address is removed (a top-talkers row for an outside
  host, an outside address in a list of strings); a stray outside any list item (a scalar of the
  answer itself) cannot be removed, so the answer is refused, and so is an answer with images
  that needed removals (the image cannot be cleaned);
- the text is rendered from the cleaned answer and may name no outside address the cleaned
  answer does not hold.

Netmasks (255.255.255.0, ffff:ffff::) and unspecified addresses (0.0.0.0, ::) name no host and
are not addresses here. Numbers are not read as addresses: SQL that selects the numeric address
columns is scoped by the engine, not by this net. Every removal or refusal is logged at ERROR:
it means a service did not filter.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from flowscope.auth import Scope, parse_ip

log = logging.getLogger(__name__)

# Runs of address characters not glued to a word ("std::string", "T10:00:00" are not addresses)
_RUN = re.compile(r"(?<![\w])[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*(?:/\d{1,3})?(?![G-Zg-z_])")
_V4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d)(?:/\d{1,2}(?!\d))?")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse(text: str) -> Address | None:
    addr, _, prefix = text.partition("/")
    ip = parse_ip(addr)
    if ip is None or ip.is_unspecified or _is_mask(ip):
        return None
    if prefix:
        try:
            return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
        except ValueError:
            return None
    return ip


def _is_mask(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    inverse = ~int(ip) & ((1 << ip.max_prefixlen) - 1)
    return inverse & (inverse + 1) == 0


def addresses(text: str) -> list[Address]:
    """Every address or network written in `text` (strict spellings only)."""
    found = []
    for m in _RUN.finditer(text):
        run = m.group(0).rstrip(".")
        if run.count(":") >= 2:
            parsed = _parse(run)
            if parsed is not None:
                found.append(parsed)
                continue
        for v4 in _V4.finditer(run):
            parsed = _parse(v4.group(0))
            if parsed is not None:
                found.append(parsed)
    return found


class Refused(Exception):
    """The answer cannot be cleaned; the message is safe to show."""


class _Walk:
    def __init__(self, scope: Scope, excused: set[str]):
        self.scope = scope
        self.excused = excused
        self.strays: set[str] = set()
        self.removed = 0

    def visible(self, a: Address) -> bool:
        if isinstance(a, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            return self.scope.overlaps(a)
        return self.scope.visible(str(a))

    def _own(self, scalars: list[str]) -> tuple[bool, list[str]]:
        """(any visible, the outside ones) among the addresses in these strings."""
        visible, outside = False, []
        for s in scalars:
            for a in addresses(s):
                if self.visible(a):
                    visible = True
                else:
                    outside.append(str(a))
        return visible, outside

    def _stray(self, outside: list[str], context: bool) -> bool:
        left = [a for a in outside if a not in self.excused]
        if context or not left:
            return False
        self.strays.update(left)
        return True

    def record(self, node: dict | list, context: bool) -> tuple[Any, bool]:
        """Clean a dict (or a row: a list item that is itself a list); True when it stays stray."""
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        scalars = [v for _, v in items if isinstance(v, str)]
        if isinstance(node, dict):
            scalars += [k for k in node if isinstance(k, str)]
        visible, outside = self._own(scalars)
        context = context or visible
        stray = self._stray(outside, context)
        out: dict | list = {} if isinstance(node, dict) else []
        for key, value in items:
            if isinstance(value, dict):
                value, inner = self.record(value, context)
                stray = stray or inner
            elif isinstance(value, list) and isinstance(node, dict):
                value = self.collection(value, context)
            elif isinstance(value, list):
                value, inner = self.record(value, context)
                stray = stray or inner
            if isinstance(out, dict):
                out[key] = value
            else:
                out.append(value)
        return out, stray

    def collection(self, items: list, context: bool) -> list:
        """A list field: its items holding a stray address are removed."""
        kept = []
        for item in items:
            if isinstance(item, (dict, list)):
                item, stray = self.record(item, context)
            elif isinstance(item, str):
                visible, outside = self._own([item])
                stray = self._stray(outside, context or visible)
            else:
                stray = False
            if stray:
                self.removed += 1
            else:
                kept.append(item)
        return kept


def _strings(node: Any):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def clean(scope: Scope, answer: dict, peers=None) -> tuple[dict, _Walk]:
    """The answer without stray items. `peers(addresses) -> set` names the outside addresses that
    are ends of visible flows (None: none are excused). Raises Refused."""
    walk = _Walk(scope, set())
    out, stray = walk.record(answer, False)
    if walk.strays and peers is not None:
        walk = _Walk(scope, set(peers(set(walk.strays))))
        out, stray = walk.record(answer, False)
    if stray:
        raise Refused("the answer was withheld: it names addresses outside your allowed networks; "
                      "ask about addresses inside them")
    return out, walk


def screen(call, returns, result: BaseModel) -> BaseModel:
    """The scope net for one tool answer (restricted callers only). Raises ToolError to refuse."""
    from flowscope.mcp.toolkit import ToolError

    try:
        return _screen(call, returns, result)
    except Refused as exc:
        log.error("SCOPE NET: %s answer refused to user %r: %s", call.tool, call.principal.name, exc)
        raise ToolError(str(exc)) from None


def _screen(call, returns, result: BaseModel) -> BaseModel:
    from flowscope.mcp.toolkit import render_text
    from flowscope.services.flows import peers_of_visible_flows

    scope = call.scope
    peers = (lambda addrs: peers_of_visible_flows(call.app, scope, addrs)) \
        if returns.peers_of_visible_flows else None
    cleaned, walk = clean(scope, result.model_dump(mode="json"), peers)
    if walk.removed:
        log.error("SCOPE NET: %s answered user %r with %d item(s) outside the allowed networks (%s); removed "
                  "them. A service did not filter by scope: fix it.", call.tool, call.principal.name,
                  walk.removed, ", ".join(sorted(walk.strays)[:10]))
        if call.images:
            raise Refused("the answer was withheld: its chart covered addresses outside your allowed networks; "
                          "filter it to your networks")
        try:
            result = type(result).model_validate(cleaned)
        except ValidationError:
            raise Refused("the answer was withheld: it names addresses outside your allowed networks") from None
    held = {str(a) for s in _strings(cleaned) for a in addresses(s)} | walk.excused
    leaked = {str(a) for a in addresses(render_text(result)) if str(a) not in held and not walk.visible(a)}
    if leaked:
        raise Refused("the answer was withheld: its text names addresses outside your allowed networks")
    return result
