"""Group (multicast and broadcast) addresses: never a server, a gateway or a host of their own."""

from __future__ import annotations

import ipaddress

from flowscope.services.hosts.netinfo import is_unicast_mac, mac_text

#: SQL: the MAC number column `{c}` is unicast (the group bit of its first octet is clear)
UNICAST_MAC = "bitAnd(bitShiftRight({c}, 40), 1) = 0"
#: SQL: the address text column `{c}` is multicast or the limited broadcast
GROUP_ADDRESS = ("(isIPAddressInRange({c}, '224.0.0.0/4') OR {c} = '255.255.255.255' "
                 "OR isIPAddressInRange({c}, 'ff00::/8'))")


def is_group_mac(mac: str) -> bool:
    """True for multicast and broadcast MACs (01:00:5e:..., 33:33:..., ff:ff:ff:ff:ff:ff)."""
    return bool(mac_text(mac)) and not is_unicast_mac(mac)


def is_group_ip(ip: str) -> bool:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a.is_multicast or (a.version == 4 and int(a) == 0xFFFFFFFF)
