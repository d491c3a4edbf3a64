"""Host labels and the passively learned asset inventory."""

from __future__ import annotations

from flowscope.store.schema import C, Table, register

HOST_LABELS = register(Table(
    name="host_labels",
    comment="Labels that users set on hosts (write tool set_host_label). Latest version wins.",
    columns=(
        C("ip", "String", "Host address"),
        C("label", "String", "Label text"),
        C("set_by", "String", "User who set it"),
        C("updated_at", "DateTime64(3, 'UTC')", "When it was set"),
    ),
    engine="ReplacingMergeTree(updated_at)",
    order_by="ip",
    network_columns=("ip",),
))

ASSETS = register(Table(
    name="assets",
    comment=(
        "Asset inventory learned passively (as ntopng's assets): one row per host (key ip@vlan), MAC "
        "(key mac) or network device (a MAC routing remote addresses). ReplacingMergeTree by version: "
        "query with FINAL (or argMax by version) for the latest identity; asset_history keeps the changes."
    ),
    columns=(
        C("type", "LowCardinality(String)", "host, mac or network_device"),
        C("key", "String", "Unique key: 'ip@vlan' for hosts, the MAC address for mac/network_device"),
        C("ip", "String", "Host address; for MACs the latest IP seen behind it"),
        C("mac", "String", "MAC address (a host's own MAC when local), empty when unknown"),
        C("vlan", "UInt16", "802.1Q VLAN id, 0 when untagged"),
        C("name", "String", "Best name: DHCP > mDNS > NetBIOS > DHCPv6 > TLS SNI > HTTP Host > DNS answer"),
        C("device_type", "LowCardinality(String)",
          "Device type guess: phone, tablet, laptop, workstation, networking, printer, tv, multimedia, iot, "
          "nas, server, virtual_machine; empty when unknown"),
        C("manufacturer", "String", "Organisation registered for the MAC's OUI (IEEE registry)"),
        C("first_seen", "DateTime64(3, 'UTC')", "First time the asset was seen (traffic time)"),
        C("last_seen", "DateTime64(3, 'UTC')", "Last time the asset was seen (traffic time, updated lazily)"),
        C("gateway_mac", "String", "For remote hosts: MAC of the router they are reached through"),
        C("os", "String", "OS guess from DHCP fingerprint, User-Agent and TCP SYN fingerprint (see info.os_evidence)"),
        C("services", "Array(String)", "Listening services observed, as 'proto/port application'"),
        C("is_local", "UInt8", "1 when the address is inside the configured local networks"),
        C("score", "UInt32", "Host score fed by the alerts engine"),
        C("alerts", "UInt32", "Number of engaged alerts fed by the alerts engine"),
        C("info", "String",
          "JSON: names with source and times, os_evidence, services, mdns_services, ips behind a MAC, dhcp, "
          "user_agents"),
        C("version", "UInt64", "Version of this identity (microseconds); the highest wins"),
    ),
    engine="ReplacingMergeTree(version)",
    order_by="key",
    network_columns=("ip",),
))

ASSET_HISTORY = register(Table(
    name="asset_history",
    comment="Every change of an asset's identity (name, MAC, IP, OS, device type, manufacturer, gateway, type).",
    columns=(
        C("type", "LowCardinality(String)", "host, mac or network_device"),
        C("key", "String", "Asset key (see assets.key)"),
        C("ip", "String", "Asset IP at the time of the change"),
        C("mac", "String", "Asset MAC at the time of the change"),
        C("vlan", "UInt16", "802.1Q VLAN id"),
        C("field", "LowCardinality(String)", "Changed field"),
        C("old_value", "String", "Value before the change (empty for the first value)"),
        C("new_value", "String", "Value after the change"),
        C("seen_at", "DateTime64(3, 'UTC')", "Traffic time when the change was observed"),
        C("changed_at", "DateTime64(3, 'UTC')", "Wall-clock time when it was recorded"),
        C("version", "UInt64", "assets.version written with this change"),
    ),
    order_by="(key, changed_at)",
    network_columns=("ip",),
))
