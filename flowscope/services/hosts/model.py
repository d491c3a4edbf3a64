"""The host and MAC identity model: what passive traffic told us about each device.

Observations (names, MACs, OS evidence, services) come from the identity sniffer (packets)
and from finished flows (SNI/Host/User-Agent, MACs, server ports). The model keeps them in
memory keyed by (IP, VLAN) and by MAC, and persists changed entries to the `assets` table
(ReplacingMergeTree by `version`: the latest identity wins) plus one `asset_history` row per
changed field, so the history of a device's identity can be queried. On start the model
reloads the assets table, so identity survives restarts.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

from flowscope.services.hosts import osguess
from flowscope.services.hosts.addresses import is_group_ip, is_group_mac
from flowscope.services.hosts.netinfo import LocalNets, ipv4_int, is_unicast_mac, mac_text, manufacturer

log = logging.getLogger(__name__)

# Name sources, most trusted first (the asset's `name` is the best-ranked, then most recent)
NAME_SOURCES = ("dhcp", "mdns", "netbios", "dhcpv6", "tls_sni", "http_host", "quic_sni", "dns")
_RANK = {s: i for i, s in enumerate(NAME_SOURCES)}
MAX_NAMES = 16
MAX_SERVICES = 64
MAX_EVIDENCE = 12
MAX_IPS_PER_MAC = 256
GATEWAY_REMOTE_IPS = 2  # a MAC with at least this many remote IPs behind it is a router

TRACKED = ("name", "mac", "ip", "os", "device_type", "manufacturer", "gateway_mac", "type")


def host_key(ip: str, vlan: int) -> str:
    return f"{ip}@{int(vlan or 0)}"


def canonical_ip(ip: str) -> str:
    if ipv4_int(ip) is not None:  # dotted quads without leading zeros are canonical already
        return ip
    if isinstance(ip, str) and ":" not in ip:  # no IPv6 text; any IPv4 text was just refused
        return ""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ""


def _skip_host(ip: str) -> bool:
    if ipv4_int(ip) is not None:
        return not host_ip(ip)
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return True
    return a.is_multicast or a.is_unspecified


def host_ip(ip: str) -> str:
    """The canonical text of a host's address; '' for bad text, multicast, unspecified, broadcast."""
    n = ipv4_int(ip)
    if n is not None:
        return "" if n == 0 or n == 0xFFFFFFFF or (n >> 28) == 0xE else ip
    ip = canonical_ip(ip)
    return "" if not ip or _skip_host(ip) else ip


@lru_cache(maxsize=65536)
def unicast_mac(mac) -> str:
    """A unicast MAC as 'aa:bb:cc:dd:ee:ff', '' for none, zero, broadcast or multicast."""
    text = mac_text(mac)
    return text if text and is_unicast_mac(text) else ""


@dataclass(slots=True)
class Identity:
    """One host (type 'host', key ip@vlan) or one MAC (type 'mac' / 'network_device', key mac)."""

    type: str
    key: str
    ip: str = ""
    mac: str = ""
    vlan: int = 0
    gateway_mac: str = ""
    names: dict[str, list] = field(default_factory=dict)  # name -> [source, first_seen, last_seen]
    os_evidence: list[dict] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)  # "tcp/443" -> application
    mdns_services: list[str] = field(default_factory=list)
    ips: dict[str, float] = field(default_factory=dict)  # MACs: IPs seen behind it -> last seen
    remote_ips: int = 0
    dhcp: dict[str, str] = field(default_factory=dict)
    user_agents: list[str] = field(default_factory=list)
    is_local: bool = False
    is_gateway: bool = False  # hosts: its MAC routes remote addresses
    first_seen: float = 0.0
    last_seen: float = 0.0
    score: int = 0
    alerts: int = 0
    version: int = 0
    dirty: bool = True
    persisted: dict[str, str] = field(default_factory=dict)  # last stored values of TRACKED fields

    # ---- derived -------------------------------------------------------------------------
    @property
    def manufacturer(self) -> str:
        return manufacturer(self.mac) if self.mac else ""

    @property
    def os(self) -> str:
        return osguess.best(self.os_evidence)

    @property
    def name(self) -> str:
        best = self.best_name()
        return best[0] if best else ""

    def best_name(self) -> tuple[str, str] | None:
        if not self.names:
            return None
        name, (src, _f, last) = min(self.names.items(), key=lambda kv: (_RANK.get(kv[1][0], 99), -kv[1][2]))
        return name, src

    @property
    def device_type(self) -> str:
        if self.type == "host" and not self.is_local:
            return ""  # remote hosts: names are servers' names, not device hints
        gateway = self.type == "network_device" or self.is_gateway
        return osguess.device_type(self.os, list(self.names), self.manufacturer, self.mdns_services, gateway,
                                   [f"{k} {v}" for k, v in self.services.items()])

    def touch(self, ts: float) -> None:
        if ts <= 0:
            ts = time.time()
        if not self.first_seen or ts < self.first_seen:
            self.first_seen = ts
            self.dirty = True
        if ts > self.last_seen:
            # last_seen alone moves constantly: persist it lazily (at most once a minute)
            if ts - self.last_seen > 60:
                self.dirty = True
            self.last_seen = ts

    def as_dict(self) -> dict[str, Any]:
        """The identity as JSON-able data (used by tools and for the assets row's info)."""
        best = self.best_name()
        return {
            "type": self.type, "key": self.key, "ip": self.ip, "mac": self.mac, "vlan": self.vlan,
            "name": best[0] if best else "", "name_source": best[1] if best else "",
            "names": [{"name": n, "source": s, "first_seen": _iso(f), "last_seen": _iso(l)}
                      for n, (s, f, l) in sorted(self.names.items(), key=lambda kv: (_RANK.get(kv[1][0], 99),
                                                                                       -kv[1][2]))],
            "manufacturer": self.manufacturer, "device_type": self.device_type,
            "os": self.os, "os_evidence": [{k: v for k, v in e.items() if k != "weight"} for e in self.os_evidence],
            "gateway_mac": self.gateway_mac,
            "services": [{"service": k, "application": v} for k, v in sorted(self.services.items())],
            "mdns_services": list(self.mdns_services),
            "ips": [{"ip": ip, "last_seen": _iso(t)} for ip, t in sorted(self.ips.items(), key=lambda kv: -kv[1])],
            "dhcp": dict(self.dhcp), "user_agents": list(self.user_agents),
            "is_local": self.is_local, "first_seen": _iso(self.first_seen), "last_seen": _iso(self.last_seen),
            "score": self.score, "alerts": self.alerts,
        }

    def tracked(self) -> dict[str, str]:
        return {"name": self.name, "mac": self.mac, "ip": self.ip, "os": self.os, "device_type": self.device_type,
                "manufacturer": self.manufacturer, "gateway_mac": self.gateway_mac, "type": self.type}


@lru_cache(maxsize=4096)
def _ua_evidence(ua: str) -> dict | None:
    """OS evidence of a User-Agent (shared, read-only: `_add_evidence` copies it)."""
    return osguess.from_user_agent(ua)


def _iso(ts: float) -> str:
    if not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


def epoch_of(text: Any) -> float:
    if isinstance(text, (int, float)):
        return float(text)
    if not text:
        return 0.0
    import calendar

    s = str(text)
    main, _, frac = s.partition(".")
    try:
        t = calendar.timegm(time.strptime(main, "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return 0.0
    return t + (float("0." + frac) if frac.isdigit() else 0.0)


class HostModel:
    """Thread-safe identity store. All `observe_*` methods take packet/flow time in epoch seconds."""

    def __init__(self, local_nets: LocalNets | None = None, max_hosts: int = 200_000):
        self.local = local_nets or LocalNets()
        self.max_hosts = max_hosts
        self._lock = threading.RLock()
        self.hosts: dict[str, Identity] = {}
        self.macs: dict[str, Identity] = {}
        # indexes, so a flow costs a few lookups however many hosts are known
        self._vlans: dict[str, set[int]] = {}  # ip -> VLANs other than 0 it was seen on
        self._by_mac: dict[str, set[str]] = {}  # MAC -> keys of hosts whose own MAC it is
        self._version = 0

    # ---- access --------------------------------------------------------------------------
    def host(self, ip: str, vlan: int = 0, create: bool = True) -> Identity | None:
        h = self.hosts.get(f"{ip}@{vlan or 0}")  # known host, address already canonical
        if h is not None:
            return h
        ip = host_ip(ip)
        if not ip:
            return None
        key = host_key(ip, vlan)
        h = self.hosts.get(key)
        if h is None and create:
            h = Identity("host", key, ip=ip, vlan=int(vlan or 0), is_local=self.local.is_local(ip))
            self._add_host(h)
        return h

    def _add_host(self, h: Identity) -> None:
        self.hosts[h.key] = h
        if h.vlan:
            self._vlans.setdefault(h.ip, set()).add(h.vlan)
        if h.mac:
            self._by_mac.setdefault(h.mac, set()).add(h.key)

    def _drop_host(self, key: str) -> None:
        h = self.hosts.pop(key)
        for index, value, item in ((self._vlans, h.ip, h.vlan), (self._by_mac, h.mac, key)):
            items = index.get(value)
            if items is not None:
                items.discard(item)
                if not items:
                    del index[value]

    def _set_host_mac(self, h: Identity, mac: str) -> None:
        old = self._by_mac.get(h.mac)
        if old is not None:
            old.discard(h.key)
            if not old:
                del self._by_mac[h.mac]
        h.mac = mac
        if mac:
            self._by_mac.setdefault(mac, set()).add(h.key)

    def hosts_with_mac(self, mac: str) -> list[Identity]:
        """Hosts whose own (link-layer) address is `mac`."""
        return [self.hosts[k] for k in self._by_mac.get(mac, ())]

    def mac(self, mac: str, create: bool = True) -> Identity | None:
        mac = unicast_mac(mac) if isinstance(mac, (str, int)) else unicast_mac(mac_text(mac))
        if not mac:
            return None
        m = self.macs.get(mac)
        if m is None and create:
            m = self.macs[mac] = Identity("mac", mac, mac=mac)
        return m

    def get_host(self, ip: str, vlan: int | None = None) -> list[Identity]:
        ip = canonical_ip(ip)
        with self._lock:
            if vlan is not None:
                h = self.hosts.get(host_key(ip, vlan))
                return [h] if h else []
            keys = [host_key(ip, v) for v in [0, *sorted(self._vlans.get(ip, ()))]]
            return [self.hosts[k] for k in keys if k in self.hosts]

    def get_mac(self, mac: str) -> Identity | None:
        with self._lock:
            return self.macs.get(mac_text(mac))

    def local_hosts_and_macs(self) -> tuple[list[Identity], list[Identity]]:
        """A consistent snapshot: the local hosts, and every MAC."""
        with self._lock:
            return [h for h in self.hosts.values() if h.is_local], list(self.macs.values())

    def mark_dirty(self, keys: Iterable[str]) -> None:
        """Write these identities again on the next flush (a failed write)."""
        with self._lock:
            for key in keys:
                ident = self.hosts.get(key) or self.macs.get(key)
                if ident is not None:
                    ident.dirty = True

    # ---- observations --------------------------------------------------------------------
    def observe_mac(self, ip: str, mac: str | int, ts: float, vlan: int = 0) -> None:
        """`ip` was the source (or target) address of a frame whose link-layer address is `mac`."""
        if is_group_mac(mac) or is_group_ip(ip):
            return  # a multicast/broadcast frame says nothing about who routes what
        with self._lock:
            m = self.mac(mac)
            h = self.host(ip, vlan)
            if m is None or h is None:
                return
            m.touch(ts)
            h.touch(ts)
            m.vlan = m.vlan or h.vlan
            if h.is_local:
                if h.mac != m.mac:
                    self._set_host_mac(h, m.mac)
                    h.dirty = True
                    h.is_gateway = m.type == "network_device"
                    _inherit(h, m)
                if h.ip not in m.ips:
                    m.dirty = True
                m.ips[h.ip] = max(ts, m.ips.get(h.ip, 0))
                if not m.ip or m.ips.get(m.ip, 0) <= ts:
                    m.ip = h.ip
                if len(m.ips) > MAX_IPS_PER_MAC:
                    oldest = min(m.ips.items(), key=lambda kv: kv[1])[0]
                    m.ips.pop(oldest)
            else:
                if h.gateway_mac != m.mac:
                    h.gateway_mac, h.dirty = m.mac, True
                if h.ip not in m.ips:
                    m.remote_ips += 1
                    if len(m.ips) < MAX_IPS_PER_MAC:
                        m.ips[h.ip] = ts
                    if m.remote_ips >= GATEWAY_REMOTE_IPS and m.type != "network_device":
                        m.type, m.dirty = "network_device", True
                if m.type == "network_device":
                    for other in self.hosts_with_mac(m.mac):
                        if not other.is_gateway:
                            other.is_gateway, other.dirty = True, True

    def observe_name(self, ip: str, name: str, source: str, ts: float, vlan: int = 0, mac: str = "") -> None:
        name = (name or "").strip().rstrip(".")
        if not name or len(name) > 253 or not name.isprintable():
            return
        if canonical_ip(name):  # an address literal is no name
            return
        with self._lock:
            h = self.host(ip, vlan)
            if h is None:
                return
            h.touch(ts)
            _add_name(h, name, source, ts)
            if mac and h.is_local:
                self.observe_mac(ip, mac, ts, vlan)
            if h.mac and source in ("dhcp", "mdns", "netbios", "dhcpv6"):
                m = self.mac(h.mac)
                if m is not None:
                    _add_name(m, name, source, ts)

    def observe_mac_name(self, mac: str, name: str, source: str, ts: float) -> None:
        """A name a device gave itself before it had an address (e.g. DHCP DISCOVER)."""
        name = (name or "").strip().rstrip(".")
        if not name or not name.isprintable():
            return
        with self._lock:
            m = self.mac(mac)
            if m is not None:
                m.touch(ts)
                _add_name(m, name, source, ts)

    def observe_os(self, ip: str, evidence: dict | None, ts: float, vlan: int = 0, mac: str = "") -> None:
        if not evidence:
            return
        with self._lock:
            targets = [self.host(ip, vlan)] if ip else []
            if mac:
                targets.append(self.mac(mac))
            elif targets and targets[0] is not None and targets[0].is_local and targets[0].mac:
                targets.append(self.mac(targets[0].mac))
            for t in targets:
                if t is None:
                    continue
                t.touch(ts)
                _add_evidence(t, evidence)

    def observe_dhcp(self, mac: str, ip: str, ts: float, hostname: str = "", vendor_class: str = "",
                     prl: str = "", vlan: int = 0, msg_type: int = 0) -> None:
        with self._lock:
            m = self.mac(mac)
            if m is not None:
                m.touch(ts)
                info = {"vendor_class": vendor_class, "parameter_list": prl, "hostname": hostname}
                info = {k: v for k, v in info.items() if v}
                if info and any(m.dhcp.get(k) != v for k, v in info.items()):
                    m.dhcp.update(info)
                    m.dirty = True
                if hostname:
                    _add_name(m, hostname, "dhcp", ts)
                for ev in osguess.from_dhcp(vendor_class, prl):
                    _add_evidence(m, ev)
                for other in self.hosts_with_mac(m.mac):
                    if other.is_local:
                        _inherit(other, m)
            if ip and canonical_ip(ip) and not _skip_host(ip):
                if m is not None:
                    self.observe_mac(ip, mac, ts, vlan)
                h = self.host(ip, vlan)
                if h is not None and m is not None:
                    for n, (src, f, l) in m.names.items():
                        if src == "dhcp":
                            _add_name(h, n, "dhcp", l)
                    for ev in m.os_evidence:
                        _add_evidence(h, ev)
                    if m.dhcp and h.dhcp != m.dhcp:
                        h.dhcp = dict(m.dhcp)
                        h.dirty = True

    def observe_service(self, ip: str, proto: str, port: int, app: str, ts: float, vlan: int = 0) -> None:
        with self._lock:
            h = self.host(ip, vlan)
            if h is None:
                return
            key = f"{proto}/{port}"
            if key not in h.services and len(h.services) >= MAX_SERVICES:
                return
            if h.services.get(key) != app and (app or key not in h.services):
                h.services[key] = app
                h.dirty = True
            h.touch(ts)

    def observe_mdns_service(self, ip: str, service: str, ts: float, vlan: int = 0) -> None:
        with self._lock:
            h = self.host(ip, vlan)
            if h is None or service in h.mdns_services or len(h.mdns_services) >= 32:
                return
            h.mdns_services.append(service)
            h.dirty = True

    def observe_user_agent(self, ip: str, ua: str, ts: float, vlan: int = 0) -> None:
        if not ua:
            return
        with self._lock:
            h = self.host(ip, vlan)
            if h is None:
                return
            if ua not in h.user_agents:
                h.user_agents = (h.user_agents + [ua[:300]])[-5:]
                h.dirty = True
        self.observe_os(ip, _ua_evidence(ua), ts, vlan)

    def set_score(self, ip: str, vlan: int, score: int | None = None, alerts: int | None = None) -> None:
        """For the alerts engine: the host's current score and alert count."""
        with self._lock:
            h = self.host(ip, vlan)
            if h is None:
                return
            if score is not None and h.score != score:
                h.score, h.dirty = int(score), True
            if alerts is not None and h.alerts != alerts:
                h.alerts, h.dirty = int(alerts), True

    # ---- persistence ---------------------------------------------------------------------
    def _next_version(self) -> int:
        v = time.time_ns() // 1000
        self._version = max(self._version + 1, v)
        return self._version

    def dirty_rows(self) -> tuple[list[dict], list[dict]]:
        """(assets rows, asset_history rows) for everything changed since the last call."""
        rows, history = [], []
        now = time.time()
        with self._lock:
            for ident in list(self.hosts.values()) + list(self.macs.values()):
                if not ident.dirty:
                    continue
                if ident.type == "host" and not _worth_storing(ident):
                    ident.dirty = False
                    continue
                ident.version = self._next_version()
                row = _asset_row(ident)
                rows.append(row)
                cur = ident.tracked()
                for fld, value in cur.items():
                    old = ident.persisted.get(fld)
                    if (old or "") != (value or "") and (value or old):
                        history.append({"type": ident.type, "key": ident.key, "ip": ident.ip, "mac": ident.mac,
                                        "vlan": ident.vlan, "field": fld, "old_value": old or "",
                                        "new_value": value or "", "seen_at": ident.last_seen or now,
                                        "changed_at": now, "version": ident.version})
                ident.persisted = cur
                ident.dirty = False
            self._evict()
        return rows, history

    def _evict(self) -> None:
        excess = len(self.hosts) - self.max_hosts
        if excess > 0:
            for key, _h in sorted(((k, h) for k, h in self.hosts.items() if not h.dirty),
                                  key=lambda kv: kv[1].last_seen)[:excess]:
                self._drop_host(key)

    def load_rows(self, rows: Iterable[dict]) -> int:
        """Restore from assets rows (as selected by `HostsService.load`)."""
        n = 0
        with self._lock:
            for r in rows:
                try:
                    info = json.loads(r.get("info") or "{}")
                except ValueError:
                    info = {}
                ident = Identity(r["type"], r["key"], ip=r.get("ip") or "", mac=r.get("mac") or "",
                                 vlan=int(r.get("vlan") or 0), gateway_mac=r.get("gateway_mac") or "")
                ident.first_seen = epoch_of(r.get("first_seen"))
                ident.last_seen = epoch_of(r.get("last_seen"))
                ident.is_local = bool(r.get("is_local"))
                ident.score = int(r.get("score") or 0)
                ident.alerts = int(r.get("alerts") or 0)
                ident.version = int(r.get("version") or 0)
                self._version = max(self._version, ident.version)
                for nm in info.get("names", []):
                    ident.names[nm["name"]] = [nm["source"], epoch_of(nm.get("first_seen")), epoch_of(nm.get("last_seen"))]
                ident.os_evidence = [dict(e, weight=osguess.WEIGHT.get(e.get("source"), 10))
                                     for e in info.get("os_evidence", []) if e.get("os")]
                ident.services = {s["service"]: s.get("application", "") for s in info.get("services", [])}
                ident.mdns_services = list(info.get("mdns_services", []))
                ident.ips = {x["ip"]: epoch_of(x.get("last_seen")) for x in info.get("ips", [])}
                ident.remote_ips = int(info.get("remote_ips", 0))
                ident.is_gateway = bool(info.get("is_gateway", False))
                ident.dhcp = dict(info.get("dhcp", {}))
                ident.user_agents = list(info.get("user_agents", []))
                ident.dirty = False
                ident.persisted = ident.tracked()
                if ident.type == "host":
                    if ident.key in self.hosts:
                        self._drop_host(ident.key)
                    self._add_host(ident)
                else:
                    self.macs[ident.key] = ident
                n += 1
        return n

    # ---- queries over the model ---------------------------------------------------------
    def search(self, text: str = "", field_name: str = "", limit: int = 100) -> list[Identity]:
        text = (text or "").lower()
        with self._lock:
            items = list(self.hosts.values()) + list(self.macs.values())
        out = []
        for it in items:
            if text:
                d = it.tracked()
                hay = [d.get(field_name, "")] if field_name else (list(d.values()) + list(it.names))
                if not any(text in (h or "").lower() for h in hay):
                    continue
            out.append(it)
        out.sort(key=lambda i: -i.last_seen)
        return out[:limit]


def _add_name(ident: Identity, name: str, source: str, ts: float) -> None:
    cur = ident.names.get(name)
    if cur is None:
        if len(ident.names) >= MAX_NAMES:
            # drop the least trusted, oldest name
            worst = max(ident.names.items(), key=lambda kv: (_RANK.get(kv[1][0], 99), -kv[1][2]))[0]
            if _RANK.get(source, 99) > _RANK.get(ident.names[worst][0], 99):
                return
            del ident.names[worst]
        ident.names[name] = [source, ts, ts]
        ident.dirty = True
    else:
        if _RANK.get(source, 99) < _RANK.get(cur[0], 99):
            cur[0] = source
            ident.dirty = True
        cur[1] = min(cur[1], ts) if cur[1] else ts
        cur[2] = max(cur[2], ts)


def _inherit(h: Identity, m: Identity) -> None:
    """A host bound to a MAC takes what the device said about itself at link level (DHCP)."""
    for n, (src, f, last) in m.names.items():
        if src == "dhcp":
            _add_name(h, n, "dhcp", last)
    for ev in m.os_evidence:
        if ev["source"].startswith("dhcp"):
            _add_evidence(h, ev)
    if m.dhcp and h.dhcp != m.dhcp:
        h.dhcp = dict(m.dhcp)
        h.dirty = True


def _add_evidence(ident: Identity, ev: dict) -> None:
    for e in ident.os_evidence:
        if e["source"] == ev["source"] and e["os"] == ev["os"]:
            return
    ident.os_evidence.append(dict(ev))
    ident.os_evidence.sort(key=lambda e: -e["weight"])
    del ident.os_evidence[MAX_EVIDENCE:]
    ident.dirty = True


def _worth_storing(h: Identity) -> bool:
    return bool(h.is_local or h.names or h.os_evidence or h.services or h.score or h.alerts)


def _asset_row(i: Identity) -> dict[str, Any]:
    d = i.as_dict()
    info = {k: d[k] for k in ("names", "os_evidence", "services", "mdns_services", "ips", "dhcp", "user_agents")}
    info["remote_ips"] = i.remote_ips
    info["is_gateway"] = i.is_gateway
    info["name_source"] = d["name_source"]
    return {
        "type": i.type, "key": i.key, "ip": i.ip, "mac": i.mac, "vlan": i.vlan, "name": d["name"],
        "device_type": d["device_type"], "manufacturer": d["manufacturer"],
        "first_seen": i.first_seen or time.time(), "last_seen": i.last_seen or time.time(),
        "gateway_mac": i.gateway_mac, "os": d["os"], "services": sorted(f"{k} {v}".strip() for k, v in i.services.items()),
        "is_local": int(i.is_local), "score": i.score, "alerts": i.alerts,
        "info": json.dumps(info, separators=(",", ":"), ensure_ascii=False), "version": i.version,
    }
