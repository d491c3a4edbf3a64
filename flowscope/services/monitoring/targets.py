"""Probe targets: their normal form, the hosts a probe sends packets to, and who sees a probe.

Every host is parsed by `flowscope.addresses` (legacy IPv4 spellings refused) and checked by
`flowscope.auth.check_target` when the probe is added and again before every run, with its
owner's rights at that moment: a name may later resolve somewhere else.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flowscope.addresses import AddressError, is_ip, parse_host, parse_ip
from flowscope.services.monitoring.probes import RTYPES, dns_server_addr, split_host_port


class ProbeError(ValueError):
    pass


def _host(text: str, what: str) -> str:
    try:
        return parse_host(text)
    except AddressError as exc:
        raise ProbeError(f"{what}: {exc}") from None


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def normalise_target(ptype: str, target: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    target = (target or "").strip()
    opts: dict[str, Any] = {}
    if ptype in ("icmp", "cicmp"):
        target = _host(target, f"{ptype} needs a host name or IP address, e.g. 192.168.1.1")
        if ptype == "cicmp" and "packets" in options:
            n = int(options["packets"])
            if not 2 <= n <= 100:
                raise ProbeError("cicmp option packets must be between 2 and 100")
            opts["packets"] = n
    elif ptype in ("http", "throughput"):
        u = urlsplit(target)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ProbeError(f"{ptype} needs an http:// or https:// URL, e.g. https://example.com/ (got {target!r})")
        if u.username or u.password:
            raise ProbeError("URLs with credentials are refused: they would be stored and shown in clear")
        if any(c.isspace() for c in target):
            raise ProbeError(f"invalid host in URL {target!r}")
        _host(u.hostname, f"invalid host in URL {target!r}")
        try:
            _ = u.port
        except ValueError:
            raise ProbeError(f"invalid port in URL {target!r}") from None
        if "verify_tls" in options:
            opts["verify_tls"] = bool(options["verify_tls"])
    elif ptype == "tcp":
        try:
            host, port = split_host_port(target)
        except ValueError as exc:
            raise ProbeError(f"tcp {exc}") from None
        target = _host_port(_host(host, f"invalid host in {target!r}"), port)
    elif ptype == "dns":
        if is_ip(target):
            raise ProbeError(f"dns needs a DNS name to resolve, e.g. example.com (got {target!r})")
        target = _host(target, "dns needs a DNS name to resolve, e.g. example.com")
        server = options.get("server")
        if server:
            try:
                host, port = dns_server_addr(str(server))
                host = str(parse_ip(host))
            except ValueError as exc:
                raise ProbeError(f"dns option server must be an IP address or IP:port (IPv6 as [addr]:port): "
                                 f"{exc}") from None
            opts["server"] = _host_port(host, port)
        rt = str(options.get("record_type") or "A").upper()
        if rt not in RTYPES:
            raise ProbeError(f"dns option record_type must be one of {', '.join(RTYPES)}")
        if rt != "A":
            opts["record_type"] = rt
    unknown = set(options) - {"packets", "verify_tls", "server", "record_type"}
    if unknown:
        raise ProbeError(f"unknown option(s) {', '.join(sorted(unknown))}; options: packets (cicmp), verify_tls "
                         "(http, throughput), server and record_type (dns)")
    return target, opts


def hosts_of(p: dict) -> list[str]:
    """The hosts (IPs or names) a probe sends packets to. A dns probe sends to its server option, not
    to the name it asks about; without that option it asks the system resolver, which an admin set up."""
    ptype, target = p["type"], p["target"]
    if ptype in ("http", "throughput"):
        return [urlsplit(target).hostname or ""]
    if ptype == "tcp":
        return [split_host_port(target)[0]]
    if ptype == "dns":
        server = (p.get("options") or {}).get("server")
        return [dns_server_addr(server)[0]] if server else []
    return [target]


def target_ip(p: dict) -> str | None:
    """The probe's target address when it is given as one (for the alert's `ip`)."""
    if p["type"] == "dns":
        return None
    host = hosts_of(p)[0]
    return host if is_ip(host) else None


def visible(p: dict, principal: Any) -> bool:
    """Admins and the owner see a probe; a user without network limits sees every probe; a user with
    allowed networks also sees others' probes whose every host is an address inside them."""
    if principal is None or principal.owns(p["created_by"]) or not principal.restricted:
        return True
    hosts = hosts_of(p)
    return bool(hosts) and all(is_ip(h) and principal.can_see(h) for h in hosts)


def probe_id(ptype: str, target: str, opts: dict[str, Any]) -> str:
    pid = f"{ptype}:{target}"
    if ptype == "dns":
        pid += f"@{opts.get('server', 'system')}" + (f"/{opts['record_type']}" if opts.get("record_type") else "")
    return pid
