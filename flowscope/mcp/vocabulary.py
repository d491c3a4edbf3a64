"""One vocabulary for every tool: the same concept has the same argument name, shared arguments
are described once (in the server instructions) instead of in every schema, unknown arguments
are refused, and history tools share one default time window stated in each answer's header."""

from __future__ import annotations

import time
from typing import Any

from flowscope.mcp.toolkit import ToolError, ToolSpec, merged_arguments

#: Arguments every tool means the same way; their schemas carry type and limits only.
SHARED_ARGS: dict[str, str] = {
    "host": "an IP address (IPv4 or IPv6); flows match it at either end",
    "begin": "time range start: ISO 8601 (2024-05-01T10:00:00Z), epoch seconds, 'now', or a span back "
             "from now (15m, 24h, 7d, now-2d)",
    "end": "time range end, same syntax as begin (default: now)",
    "limit": "max rows returned; `truncated: true` says more exist",
    "offset": "rows to skip (paging: pass the answer's `next_offset`)",
    "vlan": "VLAN id", "port": "L4 port at either end", "interface_id": "a monitored source (see get_interfaces)",
    "application": "nDPI application, e.g. DNS, TLS, Google (matches TLS.Google)",
    "l4_proto": "tcp, udp, icmp, icmpv6 or a protocol number",
    "flow_id": "a flow's id (from any flow answer)", "min_bytes": "only flows with at least this many bytes",
    "sort": "sort key", "descending": "largest first",
}

#: Old argument names mapped to the shared ones; the old names stay accepted (ntopng's REST uses ip).
RENAMES = {"ip": "host", "start": "begin"}

DEFAULT_WINDOW_TEXT = "all stored flows, oldest to newest"
HISTORY_TOOLSETS = ("flows", "hosts", "timeseries", "collector")
TEXT_LIMIT = 8192


def wire_names(spec: ToolSpec) -> dict[str, str]:
    """Argument name on the wire -> field of the tool's Params model."""
    fields = spec.params.model_fields
    names = {name: name for name in fields}
    for old, new in RENAMES.items():
        if old in fields and new not in fields:
            names[new] = old
            del names[old]
    return names


def normalize(spec: ToolSpec, raw: dict[str, Any]) -> dict[str, Any]:
    """The arguments keyed by the Params model's fields: `content` (ntopng) merged, shared names
    mapped, None dropped; unknown names refused with the list of valid ones."""
    args = merged_arguments(spec, raw)
    names = wire_names(spec)
    accepted = {**names, **{old: old for old in RENAMES if old in spec.params.model_fields}}
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        valid = ", ".join(names) or "none"
        raise ToolError(f"{spec.name}: unknown argument(s) {', '.join(unknown)}; valid arguments: {valid}")
    return {accepted[k]: v for k, v in args.items()}


def time_field(spec: ToolSpec) -> str | None:
    fields = spec.params.model_fields
    return next((f for f in ("begin", "start") if f in fields and "end" in fields), None)


def is_history_tool(spec: ToolSpec, toolset: str) -> bool:
    return not spec.write and toolset in HISTORY_TOOLSETS and time_field(spec) is not None


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))


class Windows:
    """The default window: from the oldest to the newest stored flow (capture files keep their
    own times; a live server's newest flow is seconds old). The last day, or any window, is one
    `begin` away, and every answer says which window it covers."""

    def __init__(self, app, ttl_s: float = 5.0):
        self.app = app
        self.ttl_s = ttl_s
        self._cached: tuple[float, tuple[float, float] | None] = (0.0, None)

    def bounds(self) -> tuple[float, float] | None:
        """(oldest FIRST_SEEN, newest LAST_SEEN + 1 s) of the stored flows, None when there are none."""
        at, value = self._cached
        if time.monotonic() - at < self.ttl_s:
            return value
        try:
            row = self.app.store.query(
                "SELECT toUnixTimestamp64Milli(min(FIRST_SEEN)) / 1000, toUnixTimestamp64Milli(max(LAST_SEEN)) / 1000 "
                "FROM flows WHERE LAST_SEEN > toDateTime64(0, 3, 'UTC')").rows[0]
            value = (float(row[0]), float(row[1]) + 1) if row[1] and float(row[1]) > 0 else None
        except Exception:
            value = None
        self._cached = (time.monotonic(), value)
        return value

    def apply(self, spec: ToolSpec, args: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Fill the default window into a history tool's arguments; the answer's header line."""
        from flowscope.services.flows import FlowQueryError, parse_time

        field = time_field(spec)
        if args.get("flow_id") is not None:
            return args, ""
        begin, end = args.get(field), args.get("end")
        default = begin in (None, "")
        if default:
            try:
                end_ts = parse_time(end) if end not in (None, "") else None
            except FlowQueryError as exc:
                raise ToolError(str(exc)) from None
            oldest, newest = self.bounds() or (time.time() - 3600, time.time())
            if end_ts is None:
                end_ts = newest
                args = {**args, "end": iso(end_ts)}
            args = {**args, field: iso(min(oldest, end_ts - 60))}
        header = f"Window: {args[field]} → {args.get('end') or 'now'}"
        header += f" (default: {DEFAULT_WINDOW_TEXT}; set begin/end to change)" if default else ""
        return args, header


def cap_text(text: str, limit: int = TEXT_LIMIT) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    cut = data[: limit - 200].decode(errors="ignore")
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    return cut + f"\n… text cut at {limit // 1024} KB: structured content has every row; lower limit or page with offset."
