"""Client and server of a flow, decided as nDPI and ntopng do rather than by the first packet seen.

A capture (or a meter) that starts mid-conversation sees the server's answer first: a DNS
response, a SYN+ACK, a TCP segment of an established session. Rules, in order:

1. the first packet says it: a TCP SYN (client speaks) or SYN+ACK (server speaks); a DNS
   response or DHCP reply (server speaks), a DNS query or DHCP request (client speaks);
2. otherwise the well-known port is the server's: a port below 1024 (or a registered service
   port) facing an ephemeral one; equal kinds keep the first packet's direction.
"""

from __future__ import annotations

from flowscope.capture.nfstream_source import (DHCP_REPLY, DHCP_REQUEST, DNS_RESPONSE, TCP_SYN, TCP_SYNACK)

#: registered (>= 1024) ports that are servers' in practice
SERVICE_PORTS = frozenset({
    1080, 1194, 1433, 1521, 1723, 1812, 1813, 1883, 1900, 2049, 2375, 2376, 3128, 3268, 3306, 3389, 3478,
    4443, 5000, 5060, 5061, 5222, 5223, 5228, 5353, 5355, 5432, 5671, 5672, 5900, 5938, 6379, 6443, 6881,
    8000, 8008, 8080, 8081, 8443, 8883, 8888, 9000, 9090, 9092, 9200, 9443, 11211, 27017,
})
EPHEMERAL_FROM = 1024


def _server_rank(port: int) -> int:
    """2: well-known port, 1: registered service port, 0: anything else."""
    if 0 < port < 1024:
        return 2
    return 1 if port in SERVICE_PORTS else 0


def should_swap(protocol: int, src_port: int, dst_port: int, first: int) -> bool:
    """True when the flow's source (first packet's sender) is in fact the server."""
    if first & (TCP_SYNACK | DNS_RESPONSE | DHCP_REPLY):
        return True
    if first & (TCP_SYN | DHCP_REQUEST):
        return False
    if protocol not in (6, 17, 132):
        return False
    if first == 0 and protocol in (6, 17) and (src_port in (53, 5353, 5355) or dst_port in (53, 5353, 5355)):
        return False  # a DNS query (a response would have said so)
    return _server_rank(src_port) > _server_rank(dst_port)


_PAIRS = (("SRC2DST_BYTES", "DST2SRC_BYTES"), ("SRC2DST_PACKETS", "DST2SRC_PACKETS"),
          ("IPV4_SRC_ADDR", "IPV4_DST_ADDR"), ("IPV6_SRC_ADDR", "IPV6_DST_ADDR"), ("IP_SRC_PORT", "IP_DST_PORT"),
          ("SRC_MAC", "DST_MAC"), ("SRC2DST_TCP_FLAGS", "DST2SRC_TCP_FLAGS"), ("SRC_IP", "DST_IP"))


def swap(row: dict) -> None:
    """Exchange the two ends of a `flows` row (per-minute cells included)."""
    for a, b in _PAIRS:
        if a in row and b in row:
            row[a], row[b] = row[b], row[a]
    minutes = row.get("PER_MINUTE")
    if minutes:
        row["PER_MINUTE"] = [(t, dp, db, sp, sb) for t, sp, sb, dp, db in minutes]
