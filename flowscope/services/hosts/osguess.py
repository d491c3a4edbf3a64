"""Passive OS and device-type guesses, each with its evidence.

Sources and their weight (higher wins): DHCP vendor class (option 60) 90, HTTP User-Agent 70,
DHCP parameter request list (option 55) 60, host name 50, TCP SYN fingerprint 40.
Rules are a small, readable subset of what fingerbank/p0f know: enough for the usual suspects.
"""

from __future__ import annotations

import re
from typing import Any

WEIGHT = {"dhcp_vendor": 90, "user_agent": 70, "dhcp_fingerprint": 60, "hostname": 50, "tcp_fingerprint": 40}

# DHCP option 55 parameter request lists (as "1,3,6,...") seen from common systems
_DHCP_PRL = {
    "1,121,3,6,15,119,252,95,44,46": "macOS",
    "1,121,3,6,15,119,252": "iOS",          # iOS / iPadOS (macOS since 10.15 adds 95,44,46)
    "1,121,3,6,15,108,114,119,252,95,44,46": "macOS",
    "1,121,3,6,15,114,119,252,95,44,46": "macOS",
    "1,3,6,15,119,95,252,44,46": "macOS",
    "1,3,6,15,119,95,252,44,46,47": "macOS",
    "1,3,6,15,119,252": "iOS",
    "1,3,6,15,31,33,43,44,46,47,119,121,249,252": "Windows",
    "1,15,3,6,44,46,47,31,33,121,249,43": "Windows",
    "1,15,3,6,44,46,47,31,33,121,249,43,252": "Windows",
    "1,15,3,6,44,46,47,31,33,249,43": "Windows",
    "1,3,6,15,26,28,51,58,59,43": "Android",
    "1,3,6,15,26,28,51,58,59,43,114": "Android",
    "1,3,6,15,26,28,51,58,59": "Android",
    "1,33,3,6,15,26,28,51,58,59": "Android",
    "1,121,33,3,6,15,28,51,58,59,119": "Android",
    "1,28,2,3,15,6,119,12,44,47,26,121,42": "Linux",
    "1,28,2,121,15,6,12,40,41,42,26,119,3,121,249,33,252,42": "Linux",
    "1,121,33,3,6,12,15,26,28,42,51,54,58,59,119": "Linux",  # dhcpcd
    "1,2,6,12,15,26,28,121,3,33,40,41,42,119,249,252,17": "Linux",
    "1,3,6,12,15,28,42": "Linux",  # udhcpc (busybox)
    "1,3,6,12,15,28,40,41,42": "Linux",
}

_VENDOR_RULES = (
    (re.compile(r"^MSFT 5\.0"), "Windows"),
    (re.compile(r"^MSFT 98"), "Windows 98"),
    (re.compile(r"^android-dhcp-(\d+)", re.I), "Android"),
    (re.compile(r"^dhcpcd-[^:]*:Linux", re.I), "Linux"),
    (re.compile(r"^dhcpcd", re.I), "Linux"),
    (re.compile(r"^udhcp", re.I), "Linux"),
    (re.compile(r"^Linux", re.I), "Linux"),
    (re.compile(r"^Cisco", re.I), "Cisco IOS"),
    (re.compile(r"^HP-?Printer|^Hewlett-Packard JetDirect", re.I), "Printer firmware"),
)

_UA_RULES = (
    (re.compile(r"Windows NT 10\.0"), "Windows 10/11"),
    (re.compile(r"Windows NT 6\.3"), "Windows 8.1"),
    (re.compile(r"Windows NT 6\.2"), "Windows 8"),
    (re.compile(r"Windows NT 6\.1"), "Windows 7"),
    (re.compile(r"Windows NT 6\.0"), "Windows Vista"),
    (re.compile(r"Windows NT 5\.[12]"), "Windows XP"),
    (re.compile(r"Windows (Phone|Mobile)"), "Windows Phone"),
    (re.compile(r"Windows"), "Windows"),
    (re.compile(r"iPad"), "iPadOS"),
    (re.compile(r"iPhone|iOS/|CPU OS \d"), "iOS"),
    (re.compile(r"Android"), "Android"),
    (re.compile(r"CrOS"), "ChromeOS"),
    (re.compile(r"Mac OS X|Macintosh|macOS"), "macOS"),
    (re.compile(r"Darwin/"), "macOS/iOS"),
    (re.compile(r"Ubuntu|Debian|Fedora|Linux"), "Linux"),
    (re.compile(r"FreeBSD|OpenBSD|NetBSD"), "BSD"),
)

_NAME_RULES = (
    (re.compile(r"iphone", re.I), "iOS", "phone"),
    (re.compile(r"ipad", re.I), "iPadOS", "tablet"),
    (re.compile(r"macbook", re.I), "macOS", "laptop"),
    (re.compile(r"imac|mac-?mini|mac-?pro", re.I), "macOS", "workstation"),
    (re.compile(r"^android[-_]|galaxy|pixel", re.I), "Android", "phone"),
    (re.compile(r"^(desktop|laptop)-[a-z0-9]{7}$", re.I), "Windows", None),
    (re.compile(r"raspberry|^pi\d|^pi[-.]|^raspberrypi", re.I), "Linux", "iot"),
    (re.compile(r"apple-?tv", re.I), "tvOS", "tv"),
    (re.compile(r"chromecast", re.I), None, "multimedia"),
    (re.compile(r"printer|^npi[0-9a-f]{6}|^brn[0-9a-f]{12}|^epson|^hp[0-9a-f]{6}", re.I), None, "printer"),
    (re.compile(r"^tl-|^rt-|^router|^gateway|^sw-|^switch|^ap-|^fritz", re.I), None, "networking"),
)

_MANUFACTURER_RULES = (
    (re.compile(r"raspberry", re.I), "iot"),
    (re.compile(r"espressif|tuya|shelly|sonoff", re.I), "iot"),
    (re.compile(r"tp-link|ubiquiti|cisco|juniper|mikrotik|aruba|netgear|zyxel|arista|huawei tech", re.I),
     "networking"),
    (re.compile(r"brother|canon|epson|lexmark|xerox|kyocera", re.I), "printer"),
    (re.compile(r"synology|qnap", re.I), "nas"),
    (re.compile(r"sonos|roku|amazon tech", re.I), "multimedia"),
    (re.compile(r"vmware|xensource|qemu|virtualbox|parallels|microsoft corp", re.I), "virtual_machine"),
)

_MDNS_SERVICE_TYPES = (
    ("_ipp.", "printer"), ("_ipps.", "printer"), ("_printer.", "printer"), ("_pdl-datastream.", "printer"),
    ("_airplay.", "tv"), ("_googlecast.", "multimedia"), ("_raop.", "multimedia"), ("_spotify-connect.", "multimedia"),
    ("_smb.", "workstation"), ("_afpovertcp.", "nas"), ("_hap.", "iot"), ("_homekit.", "iot"),
)


def from_dhcp(vendor_class: str, prl: str) -> list[dict[str, Any]]:
    """Evidence from a DHCP request: vendor class identifier (option 60) and parameter list (55)."""
    out = []
    if vendor_class:
        for rx, os_name in _VENDOR_RULES:
            if rx.search(vendor_class):
                out.append(_ev(os_name, "dhcp_vendor", f"option 60 {vendor_class!r}"))
                break
    if prl:
        os_name = _DHCP_PRL.get(prl)
        if os_name:
            out.append(_ev(os_name, "dhcp_fingerprint", f"option 55 {prl}"))
    return out


def from_user_agent(ua: str) -> dict[str, Any] | None:
    if not ua:
        return None
    for rx, os_name in _UA_RULES:
        if rx.search(ua):
            return _ev(os_name, "user_agent", ua[:160])
    return None


def from_hostname(name: str) -> tuple[dict[str, Any] | None, str | None]:
    for rx, os_name, dtype in _NAME_RULES:
        if rx.search(name or ""):
            return (_ev(os_name, "hostname", name) if os_name else None), dtype
    return None, None


def initial_ttl(ttl: int) -> int:
    for t in (32, 64, 128, 255):
        if ttl <= t:
            return t
    return 255


def from_tcp_syn(ttl: int, window: int, options: str, mss: int = 0) -> dict[str, Any] | None:
    """p0f-style guess from a SYN: initial TTL, window and TCP option layout (e.g. 'M,N,W,N,N,T,S,E')."""
    ittl = initial_ttl(ttl)
    detail = f"ttl {ttl} (initial {ittl}), window {window}, options {options or '-'}"
    if ittl == 128:
        os_name = "Windows"
    elif ittl == 255:
        os_name = "Network device / Solaris"
    elif ittl == 64:
        if options.startswith("M,N,W,N,N,T,S,E"):
            os_name = "macOS/iOS"
        elif options.startswith("M,S,T,N,W") or options.startswith("M,N,N,S,N,W"):
            os_name = "Linux"
        elif options.startswith("M,N,W,S,T") or options.startswith("M,N,W,N,N,S"):
            os_name = "FreeBSD"
        else:
            os_name = "Unix-like"
    else:
        return None
    return _ev(os_name, "tcp_fingerprint", detail)


def _ev(os_name: str, source: str, detail: str) -> dict[str, Any]:
    return {"os": os_name, "source": source, "detail": detail, "weight": WEIGHT[source]}


def best(evidence: list[dict[str, Any]]) -> str:
    """The OS with the strongest evidence ('' when none)."""
    if not evidence:
        return ""
    score: dict[str, int] = {}
    for e in evidence:
        score[e["os"]] = max(score.get(e["os"], 0), e["weight"]) + 1  # ties: more evidence wins
    return max(score.items(), key=lambda kv: kv[1])[0]


def device_type(os_name: str, names: list[str], manufacturer: str, mdns_services: list[str],
                is_gateway: bool, listening: list[str]) -> str:
    """ntopng-style device type: phone, tablet, laptop, workstation, networking, printer, tv,
    multimedia, iot, nas, server, virtual_machine or '' (unknown)."""
    if is_gateway:
        return "networking"
    for svc in mdns_services:
        for prefix, dtype in _MDNS_SERVICE_TYPES:
            if svc.startswith(prefix):
                return dtype
    for n in names:
        _, dtype = from_hostname(n)
        if dtype:
            return dtype
    if os_name in ("iOS", "Android", "Windows Phone"):
        return "phone"
    if os_name == "iPadOS":
        return "tablet"
    for rx, dtype in _MANUFACTURER_RULES:
        if rx.search(manufacturer or ""):
            return dtype
    if os_name.startswith("Network device"):
        return "networking"
    if any(s.split(" ")[0] in ("tcp/22", "tcp/25", "tcp/53", "udp/53", "tcp/80", "tcp/443", "tcp/3306", "tcp/5432")
           for s in listening):
        return "server"
    if os_name.startswith(("Windows", "macOS", "Linux", "ChromeOS")):
        return "workstation"
    return ""
