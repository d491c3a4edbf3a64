"""The one parser for addresses and host names given by users, and what kind of address each is.

`ipaddress` is strict: it refuses the legacy IPv4 spellings that inet_aton and getaddrinfo accept
(`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`, `1.2.3.4 junk`). Without this module those
would pass as "host names" and still reach 127.0.0.1, so every tool taking an address parses it
here, and names are resolved here before any check (`flowscope.auth.check_target`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: kinds of address only admins may send probes to, unless `[targets] allow_special` lists them
SPECIAL_KINDS = ("metadata", "unspecified", "loopback", "link-local", "multicast", "reserved")
#: cloud instance metadata and neighbouring services (AWS, ECS, GCP/Azure/OCI share the first,
#: Alibaba, AWS over IPv6)
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.169.253", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "fd00:ec2::23"))
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # Linux connects 0.x.y.z to this host
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class AddressError(ValueError):
    """An address or name was refused; the message says what to write instead."""


def legacy_ipv4(text: str) -> str | None:
    """The dotted-quad address a legacy spelling (`127.1`, `0x7f000001`...) stands for, else None."""
    try:
        packed = socket.inet_aton(text.strip())
    except (OSError, ValueError):
        return None
    return str(ipaddress.IPv4Address(packed))


def _unbracket(text: str) -> str:
    t = (text or "").strip()
    return t[1:-1] if t.startswith("[") and t.endswith("]") else t


def canonical(addr: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 (::ffff:a.b.c.d) as the IPv4 address it reaches."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def parse_ip(text: str) -> IPAddress:
    """An IP address in its standard spelling (IPv6 may be in brackets), canonical form."""
    t = _unbracket(text)
    try:
        return canonical(ipaddress.ip_address(t))
    except ValueError:
        pass
    if "%" in t:
        raise AddressError(f"{text!r}: addresses with a zone index (%iface) are not accepted")
    legacy = legacy_ipv4(t)
    if legacy is not None:
        raise AddressError(f"{text!r} is an unusual IPv4 spelling; write the address as four decimal numbers "
                           f"without leading zeros, e.g. {legacy}")
    raise AddressError(f"{text!r} is not an IP address (e.g. 192.168.1.10 or 2001:db8::1)")


def parse_network(text: str) -> IPNetwork:
    """An address or CIDR (host bits cleared), refusing legacy IPv4 spellings."""
    t = (text or "").strip()
    addr_part, slash, prefix = t.partition("/")
    addr = parse_ip(addr_part)
    if slash and not prefix.isdigit():
        raise AddressError(f"{text!r}: the prefix length must be a number, e.g. 10.0.0.0/24")
    try:
        return ipaddress.ip_network(f"{addr}/{prefix}" if slash else str(addr), strict=False)
    except ValueError:
        raise AddressError(f"{text!r} is not a valid network (e.g. 10.0.0.0/24 or 2001:db8::/48)") from None


def is_ip(text: str) -> bool:
    try:
        parse_ip(text)
        return True
    except AddressError:
        return False


def parse_host(text: str) -> str:
    """An IP address (canonical text) or a DNS name (lower case, without the final dot)."""
    t = _unbracket(text)
    try:
        return str(parse_ip(t))
    except AddressError as exc:
        if legacy_ipv4(t) is not None or "%" in t:
            raise
        ip_error = exc
    name = t.lower().rstrip(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise AddressError(f"{text!r} is neither an IP address nor a DNS name (e.g. 192.168.1.10 or "
                           "router.example.lan)") from None
    if labels[-1].isdigit() or ":" in t:
        raise ip_error  # all-numeric last label: an address typo, never a DNS name (RFC 3696 2)
    return name


def special_kind(addr: IPAddress) -> str | None:
    """metadata, unspecified, loopback, link-local, multicast or reserved; None for an ordinary address."""
    a = canonical(addr)
    if a in METADATA:
        return "metadata"
    if a.is_unspecified or (a.version == 4 and a in _THIS_NETWORK):
        return "unspecified"
    for kind in ("loopback", "link_local", "multicast", "reserved"):
        if getattr(a, f"is_{kind}"):
            return kind.replace("_", "-")
    if a.version == 4 and a == ipaddress.IPv4Address("255.255.255.255"):
        return "reserved"
    return None


def resolve(host: str) -> list[IPAddress]:
    """Every address `host` stands for (the address itself, or what getaddrinfo answers). Blocking."""
    h = parse_host(host)
    try:
        return [parse_ip(h)]
    except AddressError:
        pass
    try:
        infos = socket.getaddrinfo(h, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressError(f"cannot resolve {h}: {getattr(exc, 'strerror', None) or exc}") from None
    out: list[IPAddress] = []
    for *_, sockaddr in infos:
        a = canonical(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]))
        if a not in out:
            out.append(a)
    if not out:
        raise AddressError(f"cannot resolve {h}: no address")
    return out


def allowed_special(setting: object) -> frozenset[str]:
    """The `[targets] allow_special` setting: true (all kinds), false, or a list of kinds."""
    if setting is True:
        return frozenset(SPECIAL_KINDS)
    if not setting:
        return frozenset()
    items: Iterable = [setting] if isinstance(setting, str) else setting  # type: ignore[assignment]
    kinds = frozenset(str(k).strip().lower() for k in items)
    unknown = kinds - set(SPECIAL_KINDS)
    if unknown:
        raise ValueError(f"[targets] allow_special: unknown kind(s) {', '.join(sorted(unknown))}; "
                         f"use true or a list of {', '.join(SPECIAL_KINDS)}")
    return kinds
