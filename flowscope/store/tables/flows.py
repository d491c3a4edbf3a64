"""The `flows` table (ntopng's columns) and the nDPI lookups behind its name columns."""

from __future__ import annotations

from dataclasses import replace

from flowscope.store.schema import (
    C,
    Column,
    Table,
    columns,
    register,
    register_dictionary,
    register_view,
)

PER_MINUTE_TYPE = "Array(Tuple(UInt32, UInt64, UInt64, UInt64, UInt64))"
_ip_text = "if(IP_PROTOCOL_VERSION = 4, IPv4NumToString(IPV4_{d}_ADDR), IPv6NumToString(IPV6_{d}_ADDR))"

#: compression of `flows` by column (the rest: ZSTD(1)): times and ids in ORDER BY order as deltas,
#: counters with T64 (drops the high zero bits) before ZSTD
_CODECS = {"FLOW_ID": "Delta, ZSTD(1)", "FIRST_SEEN": "DoubleDelta, ZSTD(1)", "LAST_SEEN": "Delta, ZSTD(1)",
           "INSERT_SEQ": "DoubleDelta, ZSTD(1)",
           **{c: "T64, ZSTD(1)" for c in ("PACKETS", "TOTAL_BYTES", "SRC2DST_BYTES", "DST2SRC_BYTES",
                                          "SRC2DST_PACKETS", "DST2SRC_PACKETS", "FLOW_RISK", "SCORE",
                                          "IP_SRC_PORT", "IP_DST_PORT", "L7_PROTO", "L7_PROTO_MASTER",
                                          "L7_CATEGORY", "SRC_ASN", "DST_ASN", "INPUT_SNMP", "OUTPUT_SNMP")}}
#: strings that repeat across flows: a dictionary per part
_LOW_CARDINALITY = ("CLIENT_FINGERPRINT", "SERVER_FINGERPRINT", "USER_AGENT", "PROBE_IP", "NEXT_HOP")


def _compact(cols: tuple[Column, ...]) -> tuple[Column, ...]:
    return tuple(replace(c, codec=_CODECS.get(c.name), type="LowCardinality(String)" if c.name in _LOW_CARDINALITY
                         else c.type) for c in cols)


FLOWS = register(Table(
    name="flows",
    comment=(
        "One row per finished flow (or per active-timeout segment of a long flow; segments never "
        "overlap, so sums are exact). Column names and meanings follow ntopng's flows table. "
        "Times are UTC. Bytes are link-layer (frame) bytes, as ntopng and ndpiReader count them."
    ),
    columns=_compact((
        *columns("""
            FLOW_ID              UInt64                Unique id of this flow row
            IP_PROTOCOL_VERSION  UInt8                 IP version: 4 or 6
            FIRST_SEEN           DateTime64(3, 'UTC')  Time of the first packet
            LAST_SEEN            DateTime64(3, 'UTC')  Time of the last packet
            VLAN_ID              UInt16                802.1Q VLAN id, 0 when untagged
            PACKETS              UInt64                Packets in both directions
            TOTAL_BYTES          UInt64                Bytes in both directions (link layer)
            SRC2DST_BYTES        UInt64                Bytes from client to server
            DST2SRC_BYTES        UInt64                Bytes from server to client
            SRC2DST_PACKETS      UInt64                Packets from client to server
            DST2SRC_PACKETS      UInt64                Packets from server to client
            PROTOCOL             UInt8                 IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6)
            IPV4_SRC_ADDR        UInt32                Client IPv4 address as a number, 0 for IPv6 flows
            IPV4_DST_ADDR        UInt32                Server IPv4 address as a number, 0 for IPv6 flows
            IPV6_SRC_ADDR        IPv6                  Client IPv6 address, :: for IPv4 flows
            IPV6_DST_ADDR        IPv6                  Server IPv6 address, :: for IPv4 flows
            IP_SRC_PORT          UInt16                Client L4 port (0 when the protocol has none)
            IP_DST_PORT          UInt16                Server L4 port (0 when the protocol has none)
            L7_PROTO             UInt16                nDPI application protocol id (see list_protos)
            L7_PROTO_MASTER      UInt16                nDPI master protocol id, e.g. TLS for TLS.Google; 0 when none
            L7_CATEGORY          UInt16                nDPI category id
            FLOW_RISK            UInt64                nDPI flow risk bitmap (bit N set = risk id N)
        """),
        C("SCORE", "UInt16", "Flow score: nDPI's score of the flow's risks (sum over FLOW_RISK bits); higher "
                             "is more suspicious"),
        *columns("""
            INFO                String                  Most relevant flow info: TLS SNI, HTTP host or DNS query
            DOMAIN_NAME         String                  Server name requested by the client (SNI, Host, DNS query)
            CLIENT_FINGERPRINT  String                  Client fingerprint (JA4/JA3 for TLS, HASSH for SSH)
            SERVER_FINGERPRINT  String                  Server fingerprint (JA3S for TLS, HASSH for SSH)
            USER_AGENT          String                  HTTP User-Agent seen in the flow
            SRC_MAC             UInt64                  Client MAC address as a number (0 when unknown)
            DST_MAC             UInt64                  Server MAC address as a number (0 when unknown)
            COMMUNITY_ID        String                  Community ID v1 flow hash, for joining with Zeek/Suricata
            INTERFACE_ID        UInt16                  Id of the source (interface, capture file or exporter) see get_interfaces
            SRC2DST_TCP_FLAGS   UInt8                   OR of TCP flags sent by the client
            DST2SRC_TCP_FLAGS   UInt8                   OR of TCP flags sent by the server
            SRC_ASN             UInt32                  Client autonomous system number, 0 when unknown
            DST_ASN             UInt32                  Server autonomous system number, 0 when unknown
            SRC_COUNTRY_CODE    LowCardinality(String)  Client country ISO code, empty when unknown
            DST_COUNTRY_CODE    LowCardinality(String)  Server country ISO code, empty when unknown
            PROBE_IP            String                  Address of the flow exporter, empty for packet sources
            INPUT_SNMP          UInt32                  Exporter input interface index (ifIndex)
            OUTPUT_SNMP         UInt32                  Exporter output interface index (ifIndex)
            NEXT_HOP            String                  Next-hop address reported by the exporter
            SAMPLING_RATE       UInt32                  1-in-N sampling applied by the exporter; counters are already scaled
        """),
        C("SOURCE_TYPE", "LowCardinality(String)",
          "Where the row came from: pcap, interface, netflow5, netflow9, ipfix, sflow"),
        C("CLASSIFIED_BY", "LowCardinality(String)",
          "How L7_PROTO was decided: ndpi (payload), exporter (application field), port (guess)"),
        C("PER_MINUTE", PER_MINUTE_TYPE,
          "Packets and bytes per clock minute and direction, cells (minute start in Unix seconds, "
          "src2dst packets, src2dst bytes, dst2src packets, dst2src bytes): the "
          "meter counts them packet by packet; exporter flows are spread evenly over FIRST_SEEN..LAST_SEEN. "
          "Timeseries rollups use it, so minute volumes follow the packets"),
        C("INSERT_SEQ", "UInt64", "Number of the insert batch that stored the row; the rollups "
                                  "(ts_*, hourly_flows) are filled from batches after rollup_state.seq"),
        # Friendly aliases, computed on read
        C("SRC_IP", "String", "Client address as text, IPv4 or IPv6", alias=_ip_text.format(d="SRC")),
        C("DST_IP", "String", "Server address as text, IPv4 or IPv6", alias=_ip_text.format(d="DST")),
        C("SRC_PORT", "UInt16", "Same as IP_SRC_PORT", alias="IP_SRC_PORT"),
        C("DST_PORT", "UInt16", "Same as IP_DST_PORT", alias="IP_DST_PORT"),
        C("BYTES", "UInt64", "Same as TOTAL_BYTES", alias="TOTAL_BYTES"),
        C("L4_PROTO_NAME", "String", "IP protocol as a name (TCP, UDP, ICMP, ...)",
          alias="multiIf(PROTOCOL = 6, 'TCP', PROTOCOL = 17, 'UDP', PROTOCOL = 1, 'ICMP', "
                "PROTOCOL = 58, 'ICMPv6', PROTOCOL = 2, 'IGMP', PROTOCOL = 47, 'GRE', PROTOCOL = 50, 'ESP', "
                "PROTOCOL = 132, 'SCTP', PROTOCOL = 41, 'IPv6-in-IPv4', PROTOCOL = 4, 'IP-in-IP', toString(PROTOCOL))"),
        C("L7_PROTO_NAME", "String", "nDPI application name, e.g. TLS.Google or DNS",
          alias="if(L7_PROTO_MASTER NOT IN (0, L7_PROTO), concat("
                "dictGetOrDefault('ndpi_protocols', 'name', toUInt64(L7_PROTO_MASTER), toString(L7_PROTO_MASTER)), '.', "
                "dictGetOrDefault('ndpi_protocols', 'name', toUInt64(L7_PROTO), toString(L7_PROTO))), "
                "dictGetOrDefault('ndpi_protocols', 'name', toUInt64(L7_PROTO), toString(L7_PROTO)))"),
        C("L7_CATEGORY_NAME", "String", "nDPI category name, e.g. Web or Network",
          alias="dictGetOrDefault('ndpi_categories', 'name', toUInt64(L7_CATEGORY), toString(L7_CATEGORY))"),
        C("SRC_MAC_ADDR", "String", "Client MAC address as text", alias="MACNumToString(SRC_MAC)"),
        C("DST_MAC_ADDR", "String", "Server MAC address as text", alias="MACNumToString(DST_MAC)"),
        C("DURATION_MS", "Int64", "LAST_SEEN - FIRST_SEEN in milliseconds",
          alias="dateDiff('millisecond', FIRST_SEEN, LAST_SEEN)"),
    )),
    codec="ZSTD(1)",
    order_by="(FIRST_SEEN, FLOW_ID)",
    partition_by="toYYYYMMDD(FIRST_SEEN)",
    network_columns=("SRC_IP", "DST_IP"),
    address_columns={"SRC_IP": ("IP_PROTOCOL_VERSION", "IPV4_SRC_ADDR", "IPV6_SRC_ADDR"),
                     "DST_IP": ("IP_PROTOCOL_VERSION", "IPV4_DST_ADDR", "IPV6_DST_ADDR")},
))

NDPI_PROTOCOLS = register(Table(
    name="ndpi_protocols_table",
    comment="The running nDPI's protocols: id, name and category id. Backs the ndpi_protocols dictionary.",
    columns=columns("""
            id        UInt64  nDPI protocol id (L7_PROTO)
            name      String  nDPI protocol name
            category  UInt16  nDPI category id
        """),
    order_by="id",
    engine="ReplacingMergeTree",
    public=True,
))

NDPI_CATEGORIES = register(Table(
    name="ndpi_categories_table",
    comment="The running nDPI's categories: id and name. Backs the ndpi_categories dictionary.",
    columns=(
        C("id", "UInt64", "nDPI category id (L7_CATEGORY)"),
        C("name", "String", "nDPI category name"),
    ),
    order_by="id",
    engine="ReplacingMergeTree",
    public=True,
))

register_dictionary(
    "CREATE DICTIONARY IF NOT EXISTS ndpi_protocols (id UInt64, name String, category UInt16) "
    "PRIMARY KEY id SOURCE(CLICKHOUSE(TABLE 'ndpi_protocols_table')) LIFETIME(MIN 0 MAX 3600) LAYOUT(HASHED()) "
    "COMMENT 'nDPI protocol id to name'", NDPI_PROTOCOLS)
register_dictionary(
    "CREATE DICTIONARY IF NOT EXISTS ndpi_categories (id UInt64, name String) "
    "PRIMARY KEY id SOURCE(CLICKHOUSE(TABLE 'ndpi_categories_table')) LIFETIME(MIN 0 MAX 3600) LAYOUT(HASHED()) "
    "COMMENT 'nDPI category id to name'", NDPI_CATEGORIES)


# Data directories made before PER_MINUTE existed get the column (new ones have it already).
register_view(f"ALTER TABLE flows ADD COLUMN IF NOT EXISTS PER_MINUTE {PER_MINUTE_TYPE}")
register_view("ALTER TABLE flows ADD COLUMN IF NOT EXISTS `INSERT_SEQ` UInt64")
