"""SNMP-polled devices, interfaces, rates, neighbours, forwarding tables and events."""

from __future__ import annotations

from flowscope.store.schema import C, Column, Table, columns, register

# SNMP-polled devices (flowscope/services/snmp). `device` is the name the device was registered
# under (by default its address); `host` is the address polled, used to scope rows to a user's
# allowed networks. Rates are NULL when they cannot be trusted (first poll, counter reset, agent
# restart): never negative, never a wrap misread as traffic.
_SNMP_DEV = (C("device", "String", "Registered device name (defaults to its address)"),
             C("host", "String", "Device address that was polled"))


def _snmp_table(name: str, comment: str, time_comment: str, columns: tuple[Column, ...], days: int,
                order_by: str = "(device, time)", **kw) -> Table:
    """An SNMP table: poll `time`, `device` and `host` first, kept `days` days, rows scoped by `host`."""
    return register(Table(name=name, comment=comment, order_by=order_by, network_columns=("host",),
                          columns=(C("time", "DateTime64(3, 'UTC')", time_comment), *_SNMP_DEV, *columns),
                          ttl=f"toDateTime(time) + INTERVAL {days} DAY", **kw))


SNMP_DEVICES = _snmp_table(
    name="snmp_devices",
    comment="One row per SNMP poll of a device: reachability and the system group (SNMPv2-MIB). "
            "The latest row per device is its current state.",
    time_comment="When the poll started",
    columns=(*columns("""
                 port       UInt16                  UDP port polled
                 version    LowCardinality(String)  SNMP version: v1, v2c or v3
                 reachable  UInt8                   1 when the device answered the poll, 0 when it failed
             """),
             C("error_kind", "LowCardinality(String)",
               "Why the poll failed: timeout, auth_failure, unknown_user, priv_failure, budget...; empty on success"),
             *columns("""
                 error             String         Failure explained for an operator; empty on success
                 sys_descr         String         sysDescr: device description
                 sys_object_id     String         sysObjectID: vendor/model OID
                 sys_name          String         sysName
                 sys_location      String         sysLocation
                 sys_contact       String         sysContact
                 sys_uptime_ticks  UInt32         sysUpTime in hundredths of a second (agent uptime)
                 interface_count   UInt32         Rows in ifTable
                 neighbor_count    UInt32         LLDP + CDP neighbours seen
                 fdb_count         UInt32         Bridge forwarding-table entries (MACs) read
                 ip_addresses      Array(String)  The device's own addresses as CIDRs (IP-MIB)
                 poll_ms           UInt32         How long the poll took in milliseconds
                 warnings          Array(String)  Tables the agent refused or failed to return
             """)),
    days=90,
)

SNMP_INTERFACES = _snmp_table(
    name="snmp_interfaces",
    comment="Latest known state of each SNMP interface (ifTable + ifXTable), one row per device, "
            "ifIndex and poll; rows of the device's latest poll (max(time) per device) are current. "
            "Counters are cumulative raw values; rates are in snmp_interface_ts.",
    time_comment="Poll time",
    columns=columns("""
                 if_index           UInt32                  ifIndex
                 if_name            String                  ifName (falls back to ifDescr)
                 if_descr           String                  ifDescr
                 if_alias           String                  ifAlias: the description an operator configured
                 if_type            UInt32                  ifType (6 ethernetCsmacd, 24 softwareLoopback, 161 LAG...)
                 mtu                UInt32                  ifMtu in bytes
                 speed_bps          UInt64                  Link speed in bits/s (ifSpeed, or ifHighSpeed x 10^6 above 4.29 Gbit/s)
                 phys_address       String                  ifPhysAddress (MAC), empty when none
                 admin_status       LowCardinality(String)  ifAdminStatus: up, down, testing
                 oper_status        LowCardinality(String)  ifOperStatus: up, down, lowerLayerDown, dormant...
                 last_change_ticks  UInt32                  ifLastChange: sysUpTime at the last status change
                 counters_64bit     UInt8                   1 when octet counters are the 64-bit ifHC* ones
                 in_octets          UInt64                  Bytes received (ifHCInOctets or ifInOctets)
                 out_octets         UInt64                  Bytes sent (ifHCOutOctets or ifOutOctets)
                 in_ucast_pkts      UInt64                  Unicast packets received
                 out_ucast_pkts     UInt64                  Unicast packets sent
                 in_errors          UInt64                  ifInErrors
                 out_errors         UInt64                  ifOutErrors
                 in_discards        UInt64                  ifInDiscards
                 out_discards       UInt64                  ifOutDiscards
                 ip_addresses       Array(String)           Addresses on this interface as CIDRs
             """),
    engine="ReplacingMergeTree(time)",
    order_by="(device, if_index)",
    days=90,
)

SNMP_INTERFACE_TS = _snmp_table(
    name="snmp_interface_ts",
    comment="Per-interface rates from successive SNMP polls, one row per device, ifIndex and poll "
            "(from the second poll on). Rates are NULL for an interval where a counter reset or the "
            "agent restarted; a 32-bit wrap is unwrapped.",
    time_comment="Poll time (end of the interval)",
    columns=(*columns("""
                 if_index         UInt32                  ifIndex
                 if_name          String                  ifName (falls back to ifDescr)
                 interval_s       Float64                 Seconds since the previous poll
                 speed_bps        UInt64                  Link speed in bits/s, 0 when unknown
                 admin_status     LowCardinality(String)  ifAdminStatus at this poll
                 oper_status      LowCardinality(String)  ifOperStatus at this poll
                 in_bps           Nullable(Float64)       Inbound bits per second
                 out_bps          Nullable(Float64)       Outbound bits per second
                 in_util          Nullable(Float64)       Inbound utilisation, percent of speed_bps
                 out_util         Nullable(Float64)       Outbound utilisation, percent of speed_bps
                 in_pps           Nullable(Float64)       Inbound unicast packets per second
                 out_pps          Nullable(Float64)       Outbound unicast packets per second
                 in_errors_ps     Nullable(Float64)       Inbound errors per second
                 out_errors_ps    Nullable(Float64)       Outbound errors per second
                 in_discards_ps   Nullable(Float64)       Inbound discards per second
                 out_discards_ps  Nullable(Float64)       Outbound discards per second
                 in_errors        Nullable(UInt64)        Inbound errors during the interval
                 out_errors       Nullable(UInt64)        Outbound errors during the interval
                 in_discards      Nullable(UInt64)        Inbound discards during the interval
                 out_discards     Nullable(UInt64)        Outbound discards during the interval
             """),
             C("in_utilization", "Nullable(Float64)", "Same as in_util", alias="in_util"),
             C("out_utilization", "Nullable(Float64)", "Same as out_util", alias="out_util")),
    order_by="(device, if_index, time)",
    partition_by="toYYYYMM(time)",
    days=365,
)

SNMP_NEIGHBORS = _snmp_table(
    name="snmp_neighbors",
    comment="LLDP (LLDP-MIB) and CDP (CISCO-CDP-MIB) neighbours seen by a device, one row per "
            "neighbour and poll; rows of the device's latest poll are current.",
    time_comment="Poll time",
    columns=columns("""
                 protocol           LowCardinality(String)  lldp or cdp
                 local_if_index     UInt32                  ifIndex of the local port, 0 when it could not be mapped
                 local_port         String                  Local port name
                 remote_name        String                  Neighbour system name (lldpRemSysName / cdpCacheDeviceId)
                 remote_chassis_id  String                  LLDP chassis id (MAC as aa:bb:.., or text)
                 remote_port_id     String                  Neighbour port id (lldpRemPortId / cdpCacheDevicePort)
                 remote_port_descr  String                  Neighbour port description (LLDP)
                 remote_sys_descr   String                  Neighbour system description / software version
                 remote_address     String                  Neighbour management address (CDP), empty when unknown
                 remote_platform    String                  Neighbour platform (CDP)
             """),
    days=90,
)

SNMP_FDB = _snmp_table(
    name="snmp_fdb",
    comment="Bridge forwarding table (BRIDGE-MIB dot1dTpFdbTable): MAC addresses learned per port, "
            "one row per MAC and poll; rows of the device's latest poll are current.",
    time_comment="Poll time",
    columns=columns("""
                 mac          String  MAC address aa:bb:cc:dd:ee:ff
                 bridge_port  UInt32  dot1dTpFdbPort: bridge port number
                 if_index     UInt32  ifIndex of that bridge port (dot1dBasePortIfIndex), 0 unknown
                 if_name      String  Interface name of that port
             """),
    order_by="(device, time, mac)",
    days=30,
)

SNMP_EVENTS = _snmp_table(
    name="snmp_events",
    comment="SNMP state changes: device unreachable/reachable again, interface down/up, agent "
            "restart. Written on every change (alerts are also raised through the alerts component "
            "when it runs).",
    time_comment="When the change was seen (poll time)",
    columns=(C("if_index", "UInt32", "ifIndex for interface events, 0 for device events"),
             C("if_name", "String", "Interface name for interface events"),
             C("event", "LowCardinality(String)",
               "device_unreachable, device_reachable, interface_down, interface_up, agent_restart"),
             *columns("""
                 severity     LowCardinality(String)  info, warning or error
                 description  String                  What happened, for an operator
                 evidence     String                  JSON with the values that triggered the event
             """)),
    days=365,
)
