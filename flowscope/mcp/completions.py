"""`completion/complete` for prompt and resource-template arguments, scoped to the caller: hosts
come from the flows the caller may see, devices and policies from the tools the caller may call."""

from __future__ import annotations

import asyncio
from typing import Any

import mcp_types as types

MAX_VALUES = 100
TIME_SPANS = ("15m", "1h", "6h", "24h", "7d", "30d", "now")
SEVERITIES = ("info", "notice", "warning", "error", "critical", "emergency")


def _result(values: list[str], prefix: str, match: bool = True) -> types.CompleteResult:
    """Values containing the typed text (or all, when the source matched already), prefix matches first."""
    low = prefix.lower()
    seen, out = set(), []
    for v in values:
        if v not in seen and (not match or low in v.lower()):
            seen.add(v)
            out.append(v)
    out.sort(key=lambda v: (not v.lower().startswith(low), v.lower()))
    return types.CompleteResult(completion=types.Completion(
        values=out[:MAX_VALUES], total=len(out), has_more=len(out) > MAX_VALUES))


class Completer:
    def __init__(self, surface):
        self.surface = surface
        self.by_argument = {
            "host": self.hosts, "application": self.applications, "table": self.tables, "column": self.columns,
            "device": self.devices, "policy": self.policies, "interface_id": self.interfaces,
            "exporter": self.exporters, "entity": self.entities, "metric": self.metrics, "tool": self.tools,
            "begin": lambda v, c: list(TIME_SPANS), "end": lambda v, c: list(TIME_SPANS),
            "min_severity": lambda v, c: list(SEVERITIES),
        }

    async def complete(self, ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        from flowscope.mcp.prompts import PROMPTS
        from flowscope.mcp.resources import TEMPLATES

        ref, arg = params.ref, params.argument
        known = (ref.name in PROMPTS and arg.name in {a.name for a in PROMPTS[ref.name].args}) \
            if isinstance(ref, types.PromptReference) else \
            any(t.uri_template == ref.uri and "{" + arg.name + "}" in t.uri_template for t in TEMPLATES)
        source = self.by_argument.get(arg.name)
        if not known or source is None or self.surface.principal() is None:
            return _result([], arg.value)
        context = dict(params.context.arguments or {}) if params.context else {}
        values = source(arg.value, context)
        if asyncio.iscoroutine(values):
            values = await values
        return _result(values, arg.value, match=arg.name != "host")

    # --- sources ---------------------------------------------------------------------------
    async def _tool(self, name: str, key: str, field: str, **args) -> list[str]:
        res = await self.surface.calls[name](**args)
        if res.is_error:
            return []
        return [str(item[field]) for item in (res.structured_content or {}).get(key, []) if item.get(field) is not None]

    async def hosts(self, prefix: str, context: dict[str, Any]) -> list[str]:
        principal = self.surface.principal()
        app = self.surface.app

        def work() -> list[str]:
            sql = ("SELECT ip, sum(n) AS n FROM (SELECT SRC_IP AS ip, count() AS n FROM flows WHERE "
                   f"{principal.flows_filter()} AND startsWith(SRC_IP, {{p:String}}) GROUP BY ip UNION ALL "
                   "SELECT DST_IP AS ip, count() AS n FROM flows WHERE "
                   f"{principal.flows_filter()} AND startsWith(DST_IP, {{p:String}}) GROUP BY ip) "
                   "GROUP BY ip ORDER BY n DESC LIMIT 500")
            ips = [r[0] for r in app.store.query(sql, {"p": prefix}).rows]
            if prefix and not prefix[0].isdigit() and ":" not in prefix:
                named = app.store.query(
                    "SELECT ip FROM assets FINAL WHERE type = 'host' AND positionCaseInsensitive(name, {p:String}) = 1 "
                    "LIMIT 200", {"p": prefix}).rows
                ips += [r[0] for r in named]
            return [ip for ip in ips if ip and principal.can_see(ip)]

        try:
            return await asyncio.to_thread(work)
        except Exception:
            return []

    async def applications(self, prefix: str, context: dict[str, Any]) -> list[str]:
        from flowscope.flows.ndpi_catalog import catalog

        return [p.name for p in catalog().protocols]

    async def tables(self, prefix: str, context: dict[str, Any]) -> list[str]:
        return await self._tool("list_tables", "tables", "name")

    async def columns(self, prefix: str, context: dict[str, Any]) -> list[str]:
        return await self._tool("describe_table", "columns", "name", table=context.get("table") or "flows")

    async def devices(self, prefix: str, context: dict[str, Any]) -> list[str]:
        return await self._tool("list_snmp_devices", "devices", "name")

    async def policies(self, prefix: str, context: dict[str, Any]) -> list[str]:
        return await self._tool("list_ai_policies", "policies", "name")

    async def interfaces(self, prefix: str, context: dict[str, Any]) -> list[str]:
        return await self._tool("get_interfaces", "interfaces", "id")

    async def exporters(self, prefix: str, context: dict[str, Any]) -> list[str]:
        return await self._tool("list_flow_exporters", "exporters", "address")

    async def entities(self, prefix: str, context: dict[str, Any]) -> list[str]:
        props = self.surface.entries["chart"].input_schema["properties"]
        return list(props.get("entity", {}).get("enum", []))

    async def tools(self, prefix: str, context: dict[str, Any]) -> list[str]:
        return [name for name, spec in self.surface.specs.items() if self.surface.may_call(spec)]

    async def metrics(self, prefix: str, context: dict[str, Any]) -> list[str]:
        return ["bytes", "packets", "flows"]
