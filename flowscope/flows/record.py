"""From an nfstream flow to a row of the `flows` table (ntopng's column names)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import random
import socket
import struct
from functools import lru_cache
from typing import Any

from flowscope.flows.orientation import should_swap, swap

_TCP_FLAG_BITS = (("fin", 0x01), ("syn", 0x02), ("rst", 0x04), ("psh", 0x08),
                  ("ack", 0x10), ("urg", 0x20), ("ece", 0x40), ("cwr", 0x80))


def new_flow_id() -> int:
    return random.getrandbits(63)


@lru_cache(maxsize=65536)
def ipv4_number(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


@lru_cache(maxsize=65536)
def mac_number(mac: str) -> int:
    if not mac:
        return 0
    try:
        return int(mac.replace(":", "").replace("-", ""), 16)
    except ValueError:
        return 0


@lru_cache(maxsize=4096)
def l7_ids(app_name: str | None) -> tuple[int, int]:
    """(L7_PROTO, L7_PROTO_MASTER) for an nDPI name such as 'TLS.Google' or 'DNS'."""
    if not app_name:
        return 0, 0
    try:
        from flowscope.flows.ndpi_catalog import split_app_name
    except Exception:  # catalog unavailable: keep the flow, lose only the id
        return 0, 0
    try:
        return split_app_name(app_name)
    except Exception:
        return 0, 0


@lru_cache(maxsize=4096)
def l7_name(l7_proto: int, l7_proto_master: int = 0) -> str:
    """nDPI's name for ids (e.g. from an exporter's application field); 'Unknown' when unknown."""
    try:
        from flowscope.flows.ndpi_catalog import catalog

        return catalog().app_name(l7_proto, l7_proto_master)
    except Exception:
        return "Unknown"


@lru_cache(maxsize=4096)
def risk_score(risk: int) -> int:
    """ntopng's flow SCORE from nDPI's risk bitmap (nDPI's own per-risk scores)."""
    if not risk:
        return 0
    try:
        from flowscope.flows.ndpi_catalog import catalog

        return min(catalog().risk_score(risk), 65535)
    except Exception:
        return 0


@lru_cache(maxsize=1024)
def category_id(name: str | None) -> int:
    if not name:
        return 0
    try:
        from flowscope.flows.ndpi_catalog import catalog

        for cid, cname in catalog().categories.items():
            if cname.lower() == name.lower():
                return cid
    except Exception:
        pass
    return 0


_FLAG_ATTRS = {d: tuple((f"{d}_{name}_packets", bit) for name, bit in _TCP_FLAG_BITS) for d in ("src2dst", "dst2src")}


def tcp_flags(f: Any, direction: str) -> int:
    flags = 0
    for attr, bit in _FLAG_ATTRS[direction]:
        if getattr(f, attr, 0):
            flags |= bit
    return flags


def _packed(ip: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    except OSError:  # e.g. an IPv4 address with leading zeros: let ipaddress judge it
        return ipaddress.ip_address(ip).packed


def community_id(src: str, dst: str, proto: int, sport: int, dport: int, seed: int = 0) -> str:
    """Community ID v1 for TCP, UDP and SCTP; empty for protocols we lack type/code for."""
    if proto not in (6, 17, 132):
        return ""
    a, b = _packed(src), _packed(dst)
    if (a, sport) > (b, dport):
        a, b, sport, dport = b, a, dport, sport
    data = struct.pack("!H", seed) + a + b + struct.pack("!BBHH", proto, 0, sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def per_minute(minutes: dict[int, list[int]]) -> list[tuple[int, int, int, int, int]]:
    """The meter's {minute number: [s2d packets, s2d bytes, d2s packets, d2s bytes]} as PER_MINUTE cells."""
    return [(m * 60, *cell) for m, cell in sorted(minutes.items())]


def flow_row(f: Any, interface_id: int, source_type: str, extra: list | None = None) -> dict[str, Any]:
    """Map one nfstream NFlow to a `flows` row, client and server oriented as ntopng would.

    `extra` is what the instrumented meter kept in the flow (see capture.nfstream_source)."""
    risk, minutes, first = extra if extra else (0, {}, 0)
    v4 = f.ip_version == 4
    app, master = l7_ids(f.application_name)
    server_name = f.requested_server_name or ""
    row = {
        "FLOW_ID": new_flow_id(),
        "IP_PROTOCOL_VERSION": f.ip_version,
        "FIRST_SEEN": f.bidirectional_first_seen_ms / 1000,
        "LAST_SEEN": f.bidirectional_last_seen_ms / 1000,
        "VLAN_ID": f.vlan_id,
        "PACKETS": f.bidirectional_packets,
        "TOTAL_BYTES": f.bidirectional_bytes,
        "SRC2DST_BYTES": f.src2dst_bytes,
        "DST2SRC_BYTES": f.dst2src_bytes,
        "SRC2DST_PACKETS": f.src2dst_packets,
        "DST2SRC_PACKETS": f.dst2src_packets,
        "PROTOCOL": f.protocol,
        "IPV4_SRC_ADDR": ipv4_number(f.src_ip) if v4 else 0,
        "IPV4_DST_ADDR": ipv4_number(f.dst_ip) if v4 else 0,
        "IPV6_SRC_ADDR": "::" if v4 else f.src_ip,
        "IPV6_DST_ADDR": "::" if v4 else f.dst_ip,
        "IP_SRC_PORT": f.src_port,
        "IP_DST_PORT": f.dst_port,
        "L7_PROTO": app,
        "L7_PROTO_MASTER": master,
        "L7_CATEGORY": category_id(f.application_category_name),
        "FLOW_RISK": risk,
        "SCORE": risk_score(risk),
        "INFO": server_name,
        "DOMAIN_NAME": server_name,
        "CLIENT_FINGERPRINT": f.client_fingerprint or "",
        "SERVER_FINGERPRINT": f.server_fingerprint or "",
        "USER_AGENT": f.user_agent or "",
        "SRC_MAC": mac_number(f.src_mac),
        "DST_MAC": mac_number(f.dst_mac),
        "COMMUNITY_ID": community_id(f.src_ip, f.dst_ip, f.protocol, f.src_port, f.dst_port),
        "INTERFACE_ID": interface_id,
        "SRC2DST_TCP_FLAGS": tcp_flags(f, "src2dst") if f.protocol == 6 else 0,
        "DST2SRC_TCP_FLAGS": tcp_flags(f, "dst2src") if f.protocol == 6 else 0,
        "SOURCE_TYPE": source_type,
        "CLASSIFIED_BY": "ndpi",
        # filled by App.enrich_flows; present so every batch stores the columns
        "SRC_COUNTRY_CODE": "", "DST_COUNTRY_CODE": "", "SRC_ASN": 0, "DST_ASN": 0,
        # Not stored columns: convenience for live views and hooks
        "SRC_IP": f.src_ip,
        "DST_IP": f.dst_ip,
        "L7_PROTO_NAME": f.application_name or "Unknown",
        "L7_CATEGORY_NAME": f.application_category_name or "",
        "PER_MINUTE": per_minute(minutes),
    }
    if should_swap(f.protocol, f.src_port, f.dst_port, first):
        swap(row)
    return row
