"""Host tools: what is this host, this MAC, the asset inventory, the LAN, countries and talkers."""

from __future__ import annotations

from typing import Any, Literal

import anyio
from pydantic import BaseModel, Field

from flowscope.mcp.toolkit import Returns, ToolContext, tool
from flowscope.services import sources
from flowscope.services.hosts import details, inventory, rankings

TIME_HELP = "ISO time, epoch seconds, or a span back from now such as 15m, 24h, 7d"


async def _run(fn, *args, **kw):
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kw))


# ---- shared models ----------------------------------------------------------------------------

class Totals(BaseModel):
    bytes_sent: int = 0
    bytes_rcvd: int = 0
    packets_sent: int = 0
    packets_rcvd: int = 0
    flows: int = 0
    flows_as_client: int = 0
    flows_as_server: int = 0
    first_seen: str | None = None
    last_seen: str | None = None
    score: int = Field(0, description="Sum of the flows' scores")
    active_flows: int | None = Field(None, description="Live only: flows still active")



class NameInfo(BaseModel):
    name: str
    source: str = Field(description="dhcp, mdns, netbios, dhcpv6, tls_sni, http_host, quic_sni or dns")
    first_seen: str | None = None
    last_seen: str | None = None


class OsEvidence(BaseModel):
    os: str
    source: str = Field(description="dhcp_vendor, user_agent, dhcp_fingerprint, hostname or tcp_fingerprint")
    detail: str


class Location(BaseModel):
    country_code: str = ""
    country_name: str = ""
    city: str = ""
    asn: int = Field(0, description="AS number (0 unless a MaxMind ASN database is configured)")
    as_name: str = ""
    source: str = Field("", description="maxmind, geoip2fast, or empty for private/unknown addresses")


class Identification(BaseModel):
    name: str = ""
    name_source: str = ""
    names: list[NameInfo] = []
    label: str = Field("", description="Label set by a user (set_host_label)")
    mac: str = ""
    manufacturer: str = ""
    gateway_mac: str = Field("", description="Remote hosts: MAC of the router they are reached through")
    gateway_manufacturer: str = ""
    device_type: str = ""
    os: str = ""
    os_evidence: list[OsEvidence] = []
    mdns_services: list[str] = []
    dhcp: dict[str, str] = {}
    user_agents: list[str] = []


class AppBytes(BaseModel):
    application: str
    bytes: int
    bytes_sent: int | None = None
    bytes_rcvd: int | None = None
    flows: int | None = None


class L4Bytes(BaseModel):
    l4_proto: str
    bytes: int
    bytes_sent: int
    bytes_rcvd: int
    flows: int


class Peer(BaseModel):
    ip: str
    name: str = ""
    bytes: int
    bytes_sent: int | None = None
    bytes_rcvd: int | None = None
    flows: int | None = None
    applications: list[str] = []
    country_code: str = ""


class Service(BaseModel):
    proto: str
    port: int
    application: str = ""
    flows: int = 0
    clients: int = 0
    bytes: int = 0


class LiveView(BaseModel):
    totals: Totals
    applications: list[AppBytes]
    peers: list[Peer]


# ---- get_host_info ------------------------------------------------------------------------------

class HostInfoParams(BaseModel):
    ip: str = Field(description="Host IPv4 or IPv6 address")
    vlan: int | None = Field(None, ge=0, le=4095, description="VLAN id (default: all VLANs)")
    top: int = Field(10, ge=1, le=100, description="peers, applications, protocols, services shown")
    begin: str | None = Field(None, description="History start: " + TIME_HELP + "; default all history")
    end: str | None = Field(None, description="History end: " + TIME_HELP + "; default now")


class HostInfo(BaseModel):
    ip: str
    vlan: int | None
    vlans: list[int] = Field(description="VLANs the address was seen on")
    is_local: bool
    local_network: str = ""
    identity: Identification
    location: Location
    live: LiveView = Field(description="From the live flow table (current flows)")
    historical: Totals = Field(description="From the flows history (finished flows) in the time range")
    applications: list[AppBytes] = Field(description="Top applications by bytes (history)")
    l4_protocols: list[L4Bytes]
    peers: list[Peer] = Field(description="Top peers by bytes (history)")
    peers_total: int = 0
    services: list[Service] = Field(description="Listening services observed: server ports that answered")
    first_seen: str | None = None
    last_seen: str | None = None
    score: int = Field(0, description="Host score from the alerts engine")
    alerts: int = Field(0, description="Engaged alerts from the alerts engine")
    truncated: bool = Field(description="More peers than returned: raise top")

    def text(self) -> str:
        i = self.identity
        lines = [f"{self.ip}{' vlan ' + str(self.vlan) if self.vlan is not None else ''} "
                 f"({'local ' + self.local_network if self.is_local else 'remote'})"
                 f"{' ' + i.name + ' [' + i.name_source + ']' if i.name else ''}"
                 f"{' label ' + repr(i.label) if i.label else ''}"]
        if i.mac:
            lines.append(f"MAC {i.mac} {i.manufacturer}".rstrip())
        if i.gateway_mac:
            lines.append(f"via gateway {i.gateway_mac} {i.gateway_manufacturer}".rstrip())
        if i.os or i.device_type:
            lines.append(f"OS {i.os or '?'} device {i.device_type or '?'}"
                         + (f" ({'; '.join(e.source + ': ' + e.detail for e in i.os_evidence[:3])})" if i.os_evidence else ""))
        loc = self.location
        if loc.country_code or loc.as_name:
            lines.append(f"location {loc.country_code} {loc.country_name} AS{loc.asn} {loc.as_name}".rstrip())
        h, lv = self.historical, self.live.totals
        lines.append(f"history: sent {h.bytes_sent} B/{h.packets_sent} pkts, received {h.bytes_rcvd} B/"
                     f"{h.packets_rcvd} pkts, {h.flows_as_client} flows as client, {h.flows_as_server} as server, "
                     f"{h.first_seen} .. {h.last_seen}")
        lines.append(f"live: sent {lv.bytes_sent} B, received {lv.bytes_rcvd} B, {lv.flows} flows")
        if self.applications:
            lines.append("apps: " + ", ".join(f"{a.application} {a.bytes} B" for a in self.applications))
        if self.peers:
            lines.append("peers: " + ", ".join(f"{p.ip}{' (' + p.name + ')' if p.name else ''} {p.bytes} B"
                                               for p in self.peers))
        if self.services:
            lines.append("services: " + ", ".join(f"{s.proto}/{s.port} {s.application}" for s in self.services))
        if len(i.names) > 1:
            lines.append("names: " + ", ".join(f"{n.name} [{n.source}]" for n in i.names))
        return "\n".join(lines)


@tool(returns=Returns.HOSTS, title="Host information", example={"ip": "192.168.1.10", "top": 10})
async def get_host_info(call: ToolContext, params: HostInfoParams) -> HostInfo:
    """One host: live and stored totals, top applications, protocols and peers, services, identity, location,
    score.

    Everything known about one host (IP, optionally VLAN), as ntopng's host details: live totals
    (current flows) and historical totals (stored flows; time range with begin/end) of bytes/packets
    sent and received and flows as client/server; top applications, L4 protocols and peers by bytes;
    listening services; identity learned passively (names from DHCP/mDNS/NetBIOS/DNS/TLS SNI/HTTP Host
    with their source, MAC and manufacturer, gateway MAC for remote hosts, OS guess with evidence,
    device type); country/ASN; local or remote; score and alert count."""
    p = params
    return HostInfo.model_validate(await _run(details.host_info, call.app, call.scope, p.ip, p.vlan, p.top, p.begin, p.end))


# ---- get_mac_info ---------------------------------------------------------------------------------

class MacInfoParams(BaseModel):
    mac: str = Field(description="e.g. 00:11:22:33:44:55")
    begin: str | None = Field(None, description="Traffic start: " + TIME_HELP + "; default all history")
    end: str | None = Field(None, description="Traffic end: " + TIME_HELP)
    limit: int = Field(50, ge=1, le=1000, description="Max IPs listed")


class MacIp(BaseModel):
    ip: str
    last_seen: str | None = None
    name: str = ""


class MacInfo(BaseModel):
    mac: str
    manufacturer: str
    locally_administered: bool = Field(description="Randomised/virtual MAC: no manufacturer")
    type: str = Field(description="mac, or network_device when it routes remote addresses")
    device_type: str
    os: str
    name: str
    names: list[NameInfo]
    ips: list[MacIp] = Field(description="IPs seen behind this MAC (local ones; remote ones for routers)")
    remote_ips: int = Field(0, description="Remote addresses reached through it")
    traffic: Totals = Field(description="Frames with this MAC as source/destination, from the flows history")
    first_seen: str | None
    last_seen: str | None
    dhcp: dict[str, str] = {}
    truncated: bool

    def text(self) -> str:
        t = self.traffic
        return (f"{self.mac} {self.manufacturer or '(unknown manufacturer)'} [{self.type}] {self.device_type} "
                f"{self.os} {self.name}\nIPs: {', '.join(i.ip for i in self.ips) or '-'}\n"
                f"traffic sent {t.bytes_sent} B received {t.bytes_rcvd} B in {t.flows} flows; "
                f"{self.first_seen} .. {self.last_seen}")


@tool(returns=Returns.HOSTS, title="MAC information", example={"mac": "00:11:22:33:44:55"})
async def get_mac_info(call: ToolContext, params: MacInfoParams) -> MacInfo:
    """One MAC: manufacturer, device type, OS, names, the IPs behind it, traffic, first/last seen.

    One MAC address: manufacturer (IEEE OUI registry), device type, OS guess, names, the IPs seen
    behind it (a router's MAC shows as type network_device), its traffic from the flows history, and
    first/last seen."""
    p = params
    return MacInfo.model_validate(await _run(details.mac_info, call.app, call.scope, p.mac, p.begin, p.end, p.limit))


# ---- get_asset_info ---------------------------------------------------------------------------------

class AssetParams(BaseModel):
    limit: int = Field(50, ge=1, le=1000, description="Max assets")
    offset: int = Field(0, ge=0, description="Skip this many (paging)")
    key: str | None = Field(None, description="'ip@vlan' or a MAC: one asset, with history")
    ip: str | None = Field(None, description="Assets with this IP (exact)")
    mac: str | None = Field(None, description="exact")
    name: str | None = Field(None, description="contains")
    manufacturer: str | None = Field(None, description="contains")
    type: Literal["host", "mac", "network_device"] | None = None
    device_type: str | None = Field(None, description="e.g. phone, printer")
    os: str | None = Field(None, description="contains, e.g. Windows")
    local_only: bool = False
    active_within: str | None = Field(None, description="seen since (as begin)")


class Asset(BaseModel):
    """One inventory entry (a host, a MAC or a network device) as passively learned."""

    type: str
    key: str
    ip: str
    mac: str
    vlan: int
    name: str
    device_type: str
    manufacturer: str
    os: str
    gateway_mac: str
    services: list[str]
    is_local: bool
    first_seen: str
    last_seen: str
    score: int
    alerts: int
    info: dict[str, Any] = Field(description="names with sources, os_evidence, dhcp, ips, mdns_services, ...")


class AssetChange(BaseModel):
    field: str
    old_value: str
    new_value: str
    seen_at: str
    changed_at: str


class Assets(BaseModel):
    assets: list[Asset]
    history: list[AssetChange] | None = Field(None, description="With key: the asset's identity changes")
    truncated: bool
    next_offset: int | None = None

    def text(self) -> str:
        lines = [f"[{a.type}] {a.key} {a.name} mac={a.mac or '-'} {a.manufacturer} {a.device_type} {a.os} "
                 f"last {a.last_seen}".replace("  ", " ") for a in self.assets] or ["no assets match"]
        for h in self.history or []:
            lines.append(f"  {h.changed_at} {h.field}: {h.old_value!r} -> {h.new_value!r}")
        if self.truncated:
            lines.append(f"... more: offset={self.next_offset}")
        return "\n".join(lines)


@tool(returns=Returns.HOSTS, title="Asset inventory", example={"manufacturer": "Apple", "limit": 20})
async def get_asset_info(call: ToolContext, params: AssetParams) -> Assets:
    """Search the passive asset inventory (hosts, MACs, devices), or one asset with its change history.

    Search the asset inventory (hosts, MACs and network devices learned passively, including inactive
    ones and across restarts) by IP, MAC, name, manufacturer, type, device type or OS; or fetch one asset
    by key with the history of its identity changes."""
    filters = params.model_dump(exclude={"limit", "offset"})
    return Assets.model_validate(await _run(inventory.assets, call.app, call.scope, filters, params.limit,
                                            params.offset))


# ---- discover_lan ----------------------------------------------------------------------------------

class DiscoverParams(BaseModel):
    limit: int = Field(200, ge=1, le=5000, description="Max devices")
    include_inactive: bool = True
    active_within: str = Field("1h", description="seen since (as begin)")


class LanDevice(BaseModel):
    ip: str
    vlan: int
    mac: str
    hostname: str
    name_source: str = Field(description="How the name was learned: dhcp, mdns, netbios, dhcpv6, dns, ...")
    manufacturer: str
    device_type: str
    os: str
    os_source: str = Field(description="Strongest OS evidence: dhcp_vendor, user_agent, dhcp_fingerprint, ...")
    learned_from: list[str] = Field(description="Every passive source that told something about it")
    first_seen: str | None
    last_seen: str | None


class LanDevices(BaseModel):
    devices: list[LanDevice]
    macs_without_ip: list[dict[str, str]] = Field(description="MACs seen (e.g. DHCP DISCOVER) with no address yet")
    truncated: bool

    def text(self) -> str:
        lines = [f"{d.ip:<39} {d.mac or '-':17} {d.hostname or '-'} [{d.name_source or '-'}] {d.manufacturer} "
                 f"{d.device_type} {d.os}".rstrip() for d in self.devices] or ["no LAN devices seen yet"]
        for m in self.macs_without_ip:
            lines.append(f"{'(no address)':<39} {m['mac']:17} {m.get('name') or '-'} {m.get('manufacturer', '')}")
        return "\n".join(lines)


@tool(returns=Returns.HOSTS, title="Discover LAN devices", example={"limit": 100})
async def discover_lan(call: ToolContext, params: DiscoverParams) -> LanDevices:
    """LAN devices learned passively (nothing is sent): IP, MAC, name, manufacturer, type, OS.

    Devices in the local networks, learned passively only (no scanning, nothing is sent): IP, MAC,
    host name and how it was learned (DHCP, mDNS, NetBIOS, DNS, ...), manufacturer, device type and OS
    guess with its strongest evidence."""
    p = params
    return LanDevices.model_validate(await _run(inventory.lan_devices, call.app, call.scope, p.limit,
                                                p.include_inactive, p.active_within))


# ---- get_country_stats ----------------------------------------------------------------------------

class CountryParams(BaseModel):
    by: Literal["bytes", "hosts", "score"] = Field("bytes")
    begin: str | None = Field(None, description="Start: " + TIME_HELP + "; default all history")
    end: str | None = Field(None, description="End: " + TIME_HELP)
    limit: int = Field(20, ge=1, le=300, description="Max countries")


class CountryStat(BaseModel):
    country_code: str
    country_name: str
    hosts: int
    bytes: int
    bytes_sent: int = Field(description="Sent by hosts in that country")
    bytes_rcvd: int = Field(description="Received by hosts in that country")
    flows: int
    score: int
    top_hosts: list[str]


class CountryStats(BaseModel):
    countries: list[CountryStat]
    unknown_hosts: int = Field(description="Public hosts with no country in the database")
    truncated: bool

    def text(self) -> str:
        return "\n".join(f"{c.country_code} {c.country_name}: {c.hosts} hosts {c.bytes} B score {c.score} "
                         f"(top: {', '.join(c.top_hosts)})" for c in self.countries) or "no remote hosts"


@tool(returns=Returns.HOSTS, title="Traffic by country", example={"by": "bytes", "limit": 10})
async def get_country_stats(call: ToolContext, params: CountryParams) -> CountryStats:
    """Top countries of the hosts in the flows history, by bytes, hosts or score, with their top hosts.

    Top countries of the hosts seen in the flows history (offline geolocation), ranked by bytes,
    number of hosts or score, with each country's top hosts. Private addresses have no country."""
    p = params
    return CountryStats.model_validate(await _run(rankings.countries, call.app, call.scope, p.by, p.begin, p.end,
                                                  p.limit))


# ---- get_top_talkers --------------------------------------------------------------------------------

class TalkersParams(BaseModel):
    by: Literal["bytes", "flows", "score", "packets", "bytes_sent", "bytes_rcvd"] = Field("bytes")
    where: Literal["all", "local", "remote"] = Field("all")
    source: Literal["live", "history"] = Field("history", description="live table, or history over begin/end")
    begin: str | None = Field(None, description="History start: " + TIME_HELP + "; default all history")
    end: str | None = Field(None, description="History end: " + TIME_HELP)
    limit: int = Field(10, ge=1, le=1000)


class Talker(BaseModel):
    ip: str
    vlan: int
    name: str = ""
    is_local: bool
    bytes: int
    bytes_sent: int
    bytes_rcvd: int
    packets: int
    flows: int
    score: int
    country_code: str = ""


class Talkers(BaseModel):
    talkers: list[Talker]
    source: str
    truncated: bool

    def text(self) -> str:
        return "\n".join(f"{t.ip}{' (' + t.name + ')' if t.name else ''} {'local' if t.is_local else 'remote'} "
                         f"{t.bytes} B (sent {t.bytes_sent}, rcvd {t.bytes_rcvd}) {t.flows} flows score {t.score}"
                         for t in self.talkers) or "no hosts"


@tool(returns=Returns.HOSTS, title="Top talkers", example={"by": "bytes", "where": "local", "limit": 10})
async def get_top_talkers(call: ToolContext, params: TalkersParams) -> Talkers:
    """Hosts that talk the most, local or remote, by bytes, packets, flows or score; live or history.

    Hosts that talk the most, local and/or remote, by bytes, packets, flows or score, over the live
    flow table or the flows history in a time range; with names learned passively and countries."""
    return Talkers.model_validate(await _run(rankings.talkers, call.app, call.scope, **params.model_dump()))


# ---- list_networks ------------------------------------------------------------------------------------

class NetworksParams(BaseModel):
    with_traffic: bool = Field(True, description="add hosts and bytes from history")


class NetworkInfo(BaseModel):
    network: str
    hosts: int | None = None
    bytes_sent: int | None = None
    bytes_rcvd: int | None = None


class Networks(BaseModel):
    networks: list[NetworkInfo]
    source: str = Field(description="Where the list comes from: command line, environment FLOWSCOPE_LOCAL_NETWORKS, "
                                    "config file PATH, or default")

    def text(self) -> str:
        return "\n".join(f"{n.network}" + (f": {n.hosts} hosts, sent {n.bytes_sent} B, received {n.bytes_rcvd} B"
                                           if n.hosts is not None else "") for n in self.networks)


@tool(returns=Returns.HOSTS, title="Local networks", example={})
async def list_networks(call: ToolContext, params: NetworksParams) -> Networks:
    """The local networks (local vs remote hosts), with hosts and bytes seen in each.

    The configured local networks (CLI --local-networks or the config file; private ranges by default)
    that decide local vs remote hosts, with hosts and bytes seen in each."""
    return Networks.model_validate(await _run(rankings.local_networks, call.app, call.scope, params.with_traffic))


# ---- get_interface_addresses ---------------------------------------------------------------------------

class IfAddrParams(BaseModel):
    all_interfaces: bool = Field(False, description="every interface of this machine")


class IfAddress(BaseModel):
    family: str
    address: str
    netmask: str = ""
    prefix: int | None = None


class IfInfo(BaseModel):
    name: str
    monitored: bool
    source_id: int | None = None
    mac: str = ""
    addresses: list[IfAddress]
    up: bool | None = None


class IfAddresses(BaseModel):
    interfaces: list[IfInfo]
    note: str = ""

    def text(self) -> str:
        lines = [f"{i.name}{' (monitored #' + str(i.source_id) + ')' if i.monitored else ''} {i.mac} "
                 f"{', '.join(a.address + ('/' + str(a.prefix) if a.prefix is not None else '') for a in i.addresses)}"
                 for i in self.interfaces]
        return "\n".join(lines + ([self.note] if self.note else [])) or self.note


@tool(returns=Returns.SOURCES, title="Interface addresses", example={})
async def get_interface_addresses(call: ToolContext, params: IfAddrParams) -> IfAddresses:
    """Addresses and MAC of the monitored interfaces, or of every interface of this machine.

    IPv4/IPv6 addresses (with prefix) and MAC of the monitored live interfaces, or of every interface
    of this machine with all_interfaces=true. Users limited to networks see only the interfaces with an
    address inside them, and only those addresses."""
    items, monitored = await _run(sources.interface_addresses, call.app, call.scope, params.all_interfaces)
    note = "" if monitored or params.all_interfaces else \
        "no live interface is monitored (capture files only); use all_interfaces=true to list this machine's"
    return IfAddresses(interfaces=[IfInfo.model_validate(i) for i in items], note=note)
