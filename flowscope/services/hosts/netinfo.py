"""Small helpers: local networks, MAC text and the OUI manufacturer registry (netaddr, offline)."""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from typing import Any, Iterable

# Private and link-local ranges: the default local networks (as ntopng's default -m)
DEFAULT_LOCAL = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "fc00::/7", "fe80::/10")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[Any] | None) -> list[Network]:
    out: list[Network] = []
    for v in values or ():
        try:
            out.append(v if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network))
                       else ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            continue
    return out


def local_networks(app: Any) -> list[Network]:
    cfg = getattr(app, "config", None)
    nets = parse_networks(getattr(cfg, "local_networks", None) if cfg is not None else None)
    return nets or parse_networks(DEFAULT_LOCAL)


class LocalNets:
    """`is_local(ip)` against a fixed list of networks, cached."""

    def __init__(self, networks: Iterable[Any] | None = None):
        self.networks = parse_networks(networks) or parse_networks(DEFAULT_LOCAL)
        self._v4 = [(int(n.network_address), int(n.netmask)) for n in self.networks if n.version == 4]
        self.is_local = lru_cache(maxsize=65536)(self._is_local)

    def _is_local(self, ip: str) -> bool:
        n = ipv4_int(ip)
        if n is not None:  # the common case, without building an address object
            return (n >> 28) != 0xE and n != 0 and any(n & mask == net for net, mask in self._v4)
        try:
            a = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if a.is_multicast or a.is_unspecified:
            return False
        return any(a.version == n.version and a in n for n in self.networks)

    def network_of(self, ip: str) -> str:
        try:
            a = ipaddress.ip_address(ip)
        except ValueError:
            return ""
        for n in self.networks:
            if a.version == n.version and a in n:
                return str(n)
        return ""


def ipv4_int(ip: Any) -> int | None:
    """A dotted-quad IPv4 address as a number, None for anything else (IPv6, bad text)."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
    except (OSError, AttributeError, TypeError, ValueError):
        return None


def mac_text(value: Any) -> str:
    """Normalise a MAC (int, bytes or text) to 'aa:bb:cc:dd:ee:ff'; '' for none/zero."""
    if value is None or value == "" or value == 0:
        return ""
    if isinstance(value, int):
        if not 0 < value < 1 << 48:
            return ""
        raw = value.to_bytes(6, "big")
    elif isinstance(value, (bytes, bytearray)):
        if len(value) != 6:
            return ""
        raw = bytes(value)
    else:
        h = str(value).lower().replace(":", "").replace("-", "").replace(".", "")
        if len(h) != 12:
            return ""
        try:
            raw = bytes.fromhex(h)
        except ValueError:
            return ""
    if raw == b"\0\0\0\0\0\0" or raw == b"\xff\xff\xff\xff\xff\xff":
        return ""
    return raw.hex(":")


def mac_number(mac: str) -> int:
    t = mac_text(mac)
    return int(t.replace(":", ""), 16) if t else 0


def is_unicast_mac(mac: str) -> bool:
    t = mac_text(mac)
    return bool(t) and not (int(t[:2], 16) & 1)


def is_locally_administered(mac: str) -> bool:
    t = mac_text(mac)
    return bool(t) and bool(int(t[:2], 16) & 2)


@lru_cache(maxsize=16384)
def manufacturer(mac: str) -> str:
    """Registered organisation of the MAC's OUI (IEEE registry shipped with netaddr); '' if unknown.

    Locally administered (randomised) MACs have no manufacturer.
    """
    t = mac_text(mac)
    if not t or is_locally_administered(t):
        return ""
    try:
        from netaddr import EUI

        e = EUI(t)
        try:  # MA-M / MA-S blocks first (more specific), then the 24-bit OUI
            return str(e.iab.registration().org).strip()
        except Exception:
            pass
        return str(e.oui.registration().org).strip()
    except Exception:
        return ""
