"""Flow questions over the live table and the `flows` history, with the caller's visibility."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from flowscope.auth import Scope
from flowscope.services.errors import ServiceError

L4_NAMES = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "igmp": 2, "gre": 47, "esp": 50, "sctp": 132}
L4_BY_NUMBER = {v: k.upper() if k != "icmpv6" else "ICMPv6" for k, v in L4_NAMES.items()}

SORT_KEYS = {
    "bytes": "TOTAL_BYTES", "packets": "PACKETS", "first_seen": "FIRST_SEEN", "last_seen": "LAST_SEEN",
    "duration": "DURATION_MS", "score": "SCORE",
}

_REL = re.compile(r"^\s*(?:now)?\s*-?\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class FlowQueryError(ServiceError):
    pass


def l4_number(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    num = L4_NAMES.get(str(value).lower())
    if num is None:
        raise FlowQueryError(f"unknown L4 protocol {value!r}; use one of {', '.join(sorted(L4_NAMES))} or a number")
    return num


#: the times a tool accepts: 1970-01-01 to 9999-12-31 (beyond them dates overflow, here and in ClickHouse)
TIME_RANGE = (0.0, 253402300799.0)


def parse_time(value: str | float | int | None, now: float | None = None) -> float | None:
    """Epoch seconds from an ISO time, epoch seconds, 'now', or a span back from now: '15m', '-6h',
    'now-2d'. The one time syntax of every tool."""
    if value is None or value == "":
        return None
    ts = _parse_time(value, now)
    if not TIME_RANGE[0] <= ts <= TIME_RANGE[1]:  # also false for NaN
        raise FlowQueryError(f"time {str(value)[:40]!r} is out of range: use a time between 1970 and 9999, "
                             "e.g. 2024-05-01T10:00:00Z or -6h")
    return ts


def _parse_time(value: str | float | int, now: float | None) -> float:
    now = now if now is not None else time.time()
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int beyond float
            return float("inf")
    text = str(value).strip()
    if text.lower() == "now":
        return now
    m = _REL.match(text)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2).lower()]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise FlowQueryError(f"cannot read time {value!r}: use ISO 8601 (2024-05-01T10:00:00Z), epoch seconds, "
                             "'now', or a span back from now such as 15m, -6h, now-7d") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def iso(ts: Any) -> str:
    if isinstance(ts, (int, float)):
        return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    text = str(ts)
    return text.replace(" ", "T") + ("Z" if text and not text.endswith("Z") else "")


@dataclass
class FlowFilter:
    host: str | None = None
    port: int | None = None
    l4_proto: str | int | None = None
    application: str | None = None
    vlan: int | None = None
    min_bytes: int | None = None
    interface_id: int | None = None

    def matches(self, f: Any) -> bool:
        if self.host and self.host not in (f.SRC_IP, f.DST_IP):
            return False
        if self.port is not None and self.port not in (f.IP_SRC_PORT, f.IP_DST_PORT):
            return False
        num = l4_number(self.l4_proto)
        if num is not None and f.PROTOCOL != num:
            return False
        if self.application and not app_matches(self.application, f.L7_PROTO_NAME):
            return False
        if self.vlan is not None and f.VLAN_ID != self.vlan:
            return False
        if self.min_bytes is not None and f.TOTAL_BYTES < self.min_bytes:
            return False
        if self.interface_id is not None and f.INTERFACE_ID != self.interface_id:
            return False
        return True

    def sql(self, params: dict[str, Any]) -> list[str]:
        where = []
        if self.host:
            params["host"] = self.host
            where.append("(SRC_IP = {host:String} OR DST_IP = {host:String})")
        if self.port is not None:
            params["port"] = self.port
            where.append("(IP_SRC_PORT = {port:UInt16} OR IP_DST_PORT = {port:UInt16})")
        num = l4_number(self.l4_proto)
        if num is not None:
            params["l4"] = num
            where.append("PROTOCOL = {l4:UInt8}")
        if self.application:
            params["app"] = self.application.lower()
            where.append("(lower(L7_PROTO_NAME) = {app:String} OR has(splitByChar('.', lower(L7_PROTO_NAME)), "
                         "{app:String}))")
        if self.vlan is not None:
            params["vlan"] = self.vlan
            where.append("VLAN_ID = {vlan:UInt16}")
        if self.min_bytes is not None:
            params["min_bytes"] = self.min_bytes
            where.append("TOTAL_BYTES >= {min_bytes:UInt64}")
        if self.interface_id is not None:
            params["iface"] = self.interface_id
            where.append("INTERFACE_ID = {iface:UInt16}")
        return where


def app_matches(wanted: str, name: str | None) -> bool:
    if not name:
        return False
    w, n = wanted.lower(), name.lower()
    return w == n or w in n.split(".")


def visible_live(app, scope: Scope, flt: FlowFilter) -> list[Any]:
    return [f for f in app.live.flows()
            if flt.matches(f) and scope.visible_flow(f.SRC_IP, f.DST_IP)]


def live_flow(app, scope: Scope, flow_id: int) -> Any | None:
    return next((f for f in app.live.flows() if f.FLOW_ID == flow_id and scope.visible_flow(f.SRC_IP, f.DST_IP)),
                None)


def host_live_page(app, scope: Scope, flt: FlowFilter) -> list[Any]:
    """Live flows of `flt.host`, which must be inside the caller's networks."""
    scope.require(flt.host or "")
    return visible_live(app, scope, flt)


GROUP_KEYS = {
    "application": lambda f: f.L7_PROTO_NAME or "Unknown",
    "category": lambda f: f.L7_CATEGORY_NAME or "Unknown",
    "protocol": lambda f: L4_BY_NUMBER.get(f.PROTOCOL, str(f.PROTOCOL)),
    "source": lambda f: f.SRC_IP,
    "destination": lambda f: f.DST_IP,
    "country": lambda f: f.DST_COUNTRY_CODE or f.SRC_COUNTRY_CODE or "unknown",
}


def live_summary(app, scope: Scope, flt: FlowFilter, group_by: str) -> tuple[list[tuple[str, list[int]]], int, int]:
    """Visible live flows grouped by `group_by`: ([(key, [flows, bytes, packets])] largest first,
    total flows, total bytes)."""
    flows = visible_live(app, scope, flt)
    key = GROUP_KEYS[group_by]
    groups: dict[str, list[int]] = {}
    for f in flows:
        g = groups.setdefault(key(f), [0, 0, 0])
        g[0] += 1
        g[1] += f.TOTAL_BYTES
        g[2] += f.PACKETS
    ranked = sorted(groups.items(), key=lambda kv: kv[1][1], reverse=True)
    return ranked, len(flows), sum(f.TOTAL_BYTES for f in flows)


def peers_of_visible_flows(app, scope: Scope, addresses: set[str]) -> set[str]:
    """Those of `addresses` that are an end of a flow the caller may see (live or stored)."""
    found = set()
    for f in app.live.flows():
        for ip in (f.SRC_IP, f.DST_IP):
            if ip in addresses and scope.visible_flow(f.SRC_IP, f.DST_IP):
                found.add(ip)
    rest = sorted(addresses - found)
    if rest:
        rows = app.store.query(
            "SELECT DISTINCT arrayJoin([SRC_IP, DST_IP]) AS ip FROM flows WHERE (has({ips:Array(String)}, SRC_IP) "
            f"OR has({{ips:Array(String)}}, DST_IP)) AND {scope.flows_sql()}", {"ips": rest}).rows
        found |= {r[0] for r in rows} & set(rest)
    return found


def sort_flows(flows: list[Any], sort: str, descending: bool) -> list[Any]:
    key = SORT_KEYS.get(sort)
    if key is None:
        raise FlowQueryError(f"unknown sort {sort!r}; use one of {', '.join(SORT_KEYS)}")
    if key == "DURATION_MS":
        return sorted(flows, key=lambda f: f.LAST_SEEN - f.FIRST_SEEN, reverse=descending)
    return sorted(flows, key=lambda f: getattr(f, key), reverse=descending)


HISTORY_COLUMNS = (
    "FLOW_ID, toUnixTimestamp64Milli(FIRST_SEEN) / 1000 AS FIRST_SEEN, toUnixTimestamp64Milli(LAST_SEEN) / 1000 "
    "AS LAST_SEEN, IP_PROTOCOL_VERSION, VLAN_ID, PROTOCOL, SRC_IP, IP_SRC_PORT, DST_IP, IP_DST_PORT, "
    "L7_PROTO_NAME, L7_CATEGORY_NAME, TOTAL_BYTES, PACKETS, SRC2DST_BYTES, DST2SRC_BYTES, SRC2DST_PACKETS, "
    "DST2SRC_PACKETS, INFO, FLOW_RISK, SCORE, INTERFACE_ID, SOURCE_TYPE, CLASSIFIED_BY, SRC_COUNTRY_CODE, "
    "DST_COUNTRY_CODE, SRC_MAC_ADDR, DST_MAC_ADDR, COMMUNITY_ID, PROBE_IP"
)


def history_where(scope: Scope, flt: FlowFilter, begin: float | None, end: float | None,
                  params: dict[str, Any]) -> str:
    where = flt.sql(params) + [time_where(begin, end, params), scope.flows_sql()]
    return " AND ".join(where)


def time_where(begin: float | None, end: float | None, params: dict[str, Any]) -> str:
    """Flows overlapping [begin, end] (either bound may be open)."""
    where = []
    if begin is not None:
        params["begin"] = float(begin)
        where.append("LAST_SEEN >= toDateTime64({begin:Float64}, 3, 'UTC')")
    if end is not None:
        params["end"] = float(end)
        where.append("FIRST_SEEN <= toDateTime64({end:Float64}, 3, 'UTC')")
    return " AND ".join(where) or "1"


def search_history(app, scope: Scope, flt: FlowFilter, begin: float | None, end: float | None,
                   sort: str, descending: bool, limit: int, offset: int) -> tuple[list[dict], bool]:
    params: dict[str, Any] = {"limit": limit + 1, "offset": offset}
    where = history_where(scope, flt, begin, end, params)
    key = SORT_KEYS.get(sort)
    if key is None:
        raise FlowQueryError(f"unknown sort {sort!r}; use one of {', '.join(SORT_KEYS)}")
    order = f"{key} {'DESC' if descending else 'ASC'}, FLOW_ID"
    res = app.store.query(f"SELECT {HISTORY_COLUMNS} FROM flows WHERE {where} ORDER BY {order} "
                          "LIMIT {limit:UInt32} OFFSET {offset:UInt32}", params)
    rows = res.dicts()
    return rows[:limit], len(rows) > limit


def history_flow(app, scope: Scope, flow_id: int) -> dict | None:
    params = {"id": flow_id}
    where = "FLOW_ID = {id:UInt64} AND " + scope.flows_sql()
    rows = app.store.query(f"SELECT {HISTORY_COLUMNS} FROM flows WHERE {where} LIMIT 1", params).dicts()
    return rows[0] if rows else None
