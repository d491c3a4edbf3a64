"""Toolsets: named groups of tools a connection chooses, as GitHub's MCP server offers them.

Chosen with `flowscope serve --toolsets a,b` (the server's default), per connection with the
path `/mcp/x/<toolset,...>` or the header `X-Flowscope-Toolsets`. ntopng's path serves every
toolset. `all` names every toolset; `default` the newcomer's set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

TOOLSETS: dict[str, str] = {
    "flows": "live and historical flows, their packets, monitored sources, the nDPI catalogue",
    "hosts": "one host's information, top talkers, countries, networks, host labels",
    "assets": "LAN inventory: MAC information, asset search, device discovery",
    "timeseries": "traffic over time, top applications and protocols, charts (PNG)",
    "alerts": "alerts, alert statistics, acknowledgements and exclusions",
    "sql": "read-only ClickHouse SQL over flowscope's tables, table descriptions",
    "snmp": "SNMP devices, interfaces and their configuration",
    "collector": "NetFlow/IPFIX/sFlow exporters and their interfaces",
    "monitoring": "active monitoring: ping, HTTP, DNS, TLS probes with thresholds",
    "policies": "AI policies: saved SQL checks that raise alerts",
}

#: What a newcomer asks first: what is happening, who is this host, what went wrong, and SQL for
#: the rest (within 32 KB of tools/list). timeseries, assets and the rest are one path away;
#: snmp, collector, monitoring and policies need setup first.
DEFAULT = ("flows", "hosts", "alerts", "sql")

#: Tools whose module (area) is not their toolset.
_BY_TOOL = {
    "get_interfaces": "flows", "list_protos": "flows", "resolve_proto": "flows",
    "list_tables": "sql", "describe_table": "sql", "query": "sql",
    "set_host_label": "hosts",
    "get_mac_info": "assets", "get_asset_info": "assets", "discover_lan": "assets",
}

HEADER = "x-flowscope-toolsets"
PATH_PREFIX = "/mcp/x/"


class ToolsetError(ValueError):
    pass


def toolset_of(tool_name: str, area: str) -> str:
    return _BY_TOOL.get(tool_name, area if area in TOOLSETS else "flows")


def parse(text: str | Iterable[str] | None) -> frozenset[str] | None:
    """The toolsets named in `a,b` (or a list); None when nothing is named."""
    if text is None:
        return None
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    if not names:
        return None
    chosen: set[str] = set()
    for name in names:
        if name == "all":
            chosen.update(TOOLSETS)
        elif name == "default":
            chosen.update(DEFAULT)
        elif name in TOOLSETS:
            chosen.add(name)
        else:
            raise ToolsetError(f"unknown toolset {name!r}; choose from {', '.join(TOOLSETS)}, all or default")
    return frozenset(chosen)


def from_request(path: str, headers: Mapping[str, str], server_default: frozenset[str],
                 everything_paths: Iterable[str] = ()) -> frozenset[str]:
    """The toolsets of one HTTP request: the path's, else the header's, else the server's default."""
    path = path.rstrip("/")
    if path in everything_paths:
        return frozenset(TOOLSETS)
    if path.startswith(PATH_PREFIX):
        return parse(path[len(PATH_PREFIX):]) or server_default
    return parse(headers.get(HEADER)) or server_default
