"""Host labels and the passively learned asset inventory."""

from __future__ import annotations

from flowscope.store.schema import C, Table, columns, register

HOST_LABELS = register(Table(
    name="host_labels",
    comment="Labels that users set on hosts (write tool set_host_label). Latest version wins.",
    columns=columns("""
            ip          String                Host address
            label       String                Label text
            set_by      String                User who set it
            updated_at  DateTime64(3, 'UTC')  When it was set
        """),
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
        *columns("""
            type  LowCardinality(String)  host, mac or network_device
            key   String                  Unique key: 'ip@vlan' for hosts, the MAC address for mac/network_device
            ip    String                  Host address; for MACs the latest IP seen behind it
            mac   String                  MAC address (a host's own MAC when local), empty when unknown
            vlan  UInt16                  802.1Q VLAN id, 0 when untagged
            name  String                  Best name: DHCP > mDNS > NetBIOS > DHCPv6 > TLS SNI > HTTP Host > DNS answer
        """),
        C("device_type", "LowCardinality(String)",
          "Device type guess: phone, tablet, laptop, workstation, networking, printer, tv, multimedia, iot, "
          "nas, server, virtual_machine; empty when unknown"),
        *columns("""
            manufacturer  String                Organisation registered for the MAC's OUI (IEEE registry)
            first_seen    DateTime64(3, 'UTC')  First time the asset was seen (traffic time)
            last_seen     DateTime64(3, 'UTC')  Last time the asset was seen (traffic time, updated lazily)
            gateway_mac   String                For remote hosts: MAC of the router they are reached through
            os            String                OS guess from DHCP fingerprint, User-Agent and TCP SYN fingerprint (see info.os_evidence)
            services      Array(String)         Listening services observed, as 'proto/port application'
            is_local      UInt8                 1 when the address is inside the configured local networks
            score         UInt32                Host score fed by the alerts engine
            alerts        UInt32                Number of engaged alerts fed by the alerts engine
        """),
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
    columns=columns("""
            type        LowCardinality(String)  host, mac or network_device
            key         String                  Asset key (see assets.key)
            ip          String                  Asset IP at the time of the change
            mac         String                  Asset MAC at the time of the change
            vlan        UInt16                  802.1Q VLAN id
            field       LowCardinality(String)  Changed field
            old_value   String                  Value before the change (empty for the first value)
            new_value   String                  Value after the change
            seen_at     DateTime64(3, 'UTC')    Traffic time when the change was observed
            changed_at  DateTime64(3, 'UTC')    Wall-clock time when it was recorded
            version     UInt64                  assets.version written with this change
        """),
    order_by="(key, changed_at)",
    network_columns=("ip",),
))
