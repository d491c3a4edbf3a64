"""Wireshark display filters for a flow's packets, built from validated values only: addresses
re-formatted by `ipaddress`, ports and protocol numbers as ints. No request text reaches tshark."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

_L4_FIELDS = {6: "tcp", 17: "udp", 132: "sctp"}
_L4_NAMES = {1: "icmp", 58: "icmpv6"}


@dataclass(frozen=True)
class FlowKey:
    """What identifies a flow's packets: its two ends, L4 protocol, VLAN and time span."""

    flow_id: int
    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    protocol: int
    vlan: int
    first: float  # epoch seconds of the first packet (ms precision, rounded down)
    last: float
    interface_id: int = 0
    live: bool = False  # from the live table (this run), not only from history

    @classmethod
    def of(cls, row: dict[str, Any], live: bool = False) -> "FlowKey":
        return cls(int(row["FLOW_ID"]), row["SRC_IP"], row["DST_IP"], int(row["IP_SRC_PORT"]),
                   int(row["IP_DST_PORT"]), int(row["PROTOCOL"]), int(row.get("VLAN_ID") or 0),
                   float(row["FIRST_SEEN"]), float(row["LAST_SEEN"]), int(row.get("INTERFACE_ID") or 0), live)

    @property
    def end(self) -> float:
        """Just after the last packet: flow times are kept in whole milliseconds."""
        return self.last + 0.001


def flow_filter(key: FlowKey) -> str:
    a, b = ipaddress.ip_address(key.src_ip), ipaddress.ip_address(key.dst_ip)
    if a.version != b.version:
        raise ValueError("a flow's two ends have different IP versions")
    ip = "ip" if a.version == 4 else "ipv6"
    l4 = _L4_FIELDS.get(key.protocol)

    def direction(x, y, px: int, py: int) -> str:
        text = f"{ip}.src == {x} && {ip}.dst == {y}"
        if l4:
            text += f" && {l4}.srcport == {int(px)} && {l4}.dstport == {int(py)}"
        return text

    out = f"(({direction(a, b, key.src_port, key.dst_port)}) || ({direction(b, a, key.dst_port, key.src_port)}))"
    if not l4:
        name = _L4_NAMES.get(key.protocol)
        out += f" && {name}" if name else f" && {'ip.proto' if ip == 'ip' else 'ipv6.nxt'} == {int(key.protocol)}"
    if key.vlan:
        out += f" && vlan.id == {int(key.vlan)}"
    return out


def any_of(keys: list[FlowKey]) -> str:
    return " || ".join(f"({flow_filter(k)})" for k in keys)
