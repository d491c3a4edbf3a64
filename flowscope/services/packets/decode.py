"""From tshark's output to answers: one summary line per packet and the fields of each layer,
with payload left out for callers who may see headers only.

"Headers only" keeps link, network and transport headers, and the header fields of DNS, TLS
handshakes, HTTP (request/status line and headers, minus credentials and cookies), DHCP and NTP.
It drops raw payload bytes, message bodies and every other application protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HEADER_LAYERS = {"frame", "eth", "sll", "vlan", "ip", "ipv6", "tcp", "udp", "sctp", "icmp", "icmpv6", "arp",
                 "igmp", "gre", "dns", "mdns", "llmnr", "tls", "http", "dhcp", "dhcpv6", "ntp"}
#: summary lines whose Info tshark may take as is for headers-only callers (TCP and UDP lines can
#: carry the first line of a reassembled message of any protocol, so theirs is rebuilt)
HEADER_COLUMNS = ("icmp", "arp", "dns", "mdns", "llmnr", "tls", "ssl", "dhcp", "ntp")
SECRET_FIELDS = {"http.authorization", "http.proxy_authorization", "http.authbasic", "http.cookie",
                 "http.cookie_pair", "http.set_cookie", "http.request.line", "http.response.line",
                 "tls.app_data", "http.file_data", "http.www_authenticate"}
PAYLOAD_SUFFIXES = (".payload", ".data", "segment_data", "file_data", ".reassembled.data")
MAX_VALUE_CHARS = 300
MAX_FIELDS_PER_LAYER = 200


@dataclass
class SummaryLine:
    number: int
    time: float
    source: str
    destination: str
    protocol: str
    length: int
    info: str


def summary_line(row: list[str], payload: bool) -> SummaryLine:
    row = row + [""] * (14 - len(row))
    number, ts, src, dst, proto, length, info, tsp, tdp, flags, tlen, usp, udp_, ulen = row[:14]
    if not payload and not _header_column(proto):
        if tsp:
            info = f"{tsp} → {tdp} [{flags.strip()}] Len={tlen or 0} (payload hidden)"
        elif usp:
            info = f"{usp} → {udp_} Len={max(int(ulen or 8) - 8, 0)} (payload hidden)"
        else:
            info = "(payload hidden)"
    return SummaryLine(int(number), float(ts), src, dst, proto, int(length or 0), info)


def _header_column(proto: str) -> bool:
    p = proto.lower()
    return p == "http" or p.startswith(HEADER_COLUMNS)


def layer_fields(layers: dict[str, Any], payload: bool) -> dict[str, Any]:
    """{layer: {field: value}} flattened from tshark's JSON tree, values cut to MAX_VALUE_CHARS."""
    out: dict[str, Any] = {}
    for name, tree in layers.items():
        if not payload and name not in HEADER_LAYERS:
            out[name] = {"hidden": "payload: only an admin, or users when [packets] payload_for_users = true, "
                                   "see it"}
            continue
        fields: dict[str, Any] = {}
        _flatten(tree, fields, payload)
        out[name] = fields
    return out


def _flatten(node: Any, into: dict[str, Any], payload: bool) -> None:
    items = node.items() if isinstance(node, dict) else ((None, v) for v in node)
    for key, value in items:
        if len(into) >= MAX_FIELDS_PER_LAYER or (key or "").startswith("_ws."):
            continue
        if key and not payload and _is_payload(key.removesuffix("_tree")):
            continue
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict) for v in value)):
            _flatten(value, into, payload)  # a subtree, or a text label holding fields
        elif key and "." in key:
            _add(into, key, value)


def _is_payload(field: str) -> bool:
    return field in SECRET_FIELDS or field == "data" or field.endswith(PAYLOAD_SUFFIXES)


def _add(into: dict[str, Any], key: str, value: Any) -> None:
    values = value if isinstance(value, list) else [value]
    values = [v[:MAX_VALUE_CHARS] if isinstance(v, str) else v for v in values]
    if key in into:
        prev = into[key] if isinstance(into[key], list) else [into[key]]
        into[key] = prev + values
    else:
        into[key] = values[0] if len(values) == 1 else values
