"""SNMP-polled devices, interfaces, rates, neighbours, forwarding tables and events."""

from __future__ import annotations

from flowscope.store.schema import C, Table, register

# SNMP-polled devices (flowscope/services/snmp). `device` is the name the device was registered
# under (by default its address); `host` is the address polled, used to scope rows to a user's
# allowed networks. Rates are NULL when they cannot be trusted (first poll, counter reset, agent
# restart): never negative, never a wrap misread as traffic.
_SNMP_DEV = (C("device", "String", "Registered device name (defaults to its address)"),
             C("host", "String", "Device address that was polled"))
_SNMP_TTL = "toDateTime(time) + INTERVAL {days} DAY"

SNMP_DEVICES = register(Table(
    name="snmp_devices",
    comment="One row per SNMP poll of a device: reachability and the system group (SNMPv2-MIB). "
            "The latest row per device is its current state.",
    columns=(C("time", "DateTime64(3, 'UTC')", "When the poll started"), *_SNMP_DEV,
             C("port", "UInt16", "UDP port polled"),
             C("version", "LowCardinality(String)", "SNMP version: v1, v2c or v3"),
             C("reachable", "UInt8", "1 when the device answered the poll, 0 when it failed"),
             C("error_kind", "LowCardinality(String)",
               "Why the poll failed: timeout, auth_failure, unknown_user, priv_failure, budget...; empty on success"),
             C("error", "String", "Failure explained for an operator; empty on success"),
             C("sys_descr", "String", "sysDescr: device description"),
             C("sys_object_id", "String", "sysObjectID: vendor/model OID"),
             C("sys_name", "String", "sysName"),
             C("sys_location", "String", "sysLocation"),
             C("sys_contact", "String", "sysContact"),
             C("sys_uptime_ticks", "UInt32", "sysUpTime in hundredths of a second (agent uptime)"),
             C("interface_count", "UInt32", "Rows in ifTable"),
             C("neighbor_count", "UInt32", "LLDP + CDP neighbours seen"),
             C("fdb_count", "UInt32", "Bridge forwarding-table entries (MACs) read"),
             C("ip_addresses", "Array(String)", "The device's own addresses as CIDRs (IP-MIB)"),
             C("poll_ms", "UInt32", "How long the poll took in milliseconds"),
             C("warnings", "Array(String)", "Tables the agent refused or failed to return")),
    order_by="(device, time)",
    ttl=_SNMP_TTL.format(days=90),
    network_columns=("host",),
))

SNMP_INTERFACES = register(Table(
    name="snmp_interfaces",
    comment="Latest known state of each SNMP interface (ifTable + ifXTable), one row per device, "
            "ifIndex and poll; rows of the device's latest poll (max(time) per device) are current. "
            "Counters are cumulative raw values; rates are in snmp_interface_ts.",
    columns=(C("time", "DateTime64(3, 'UTC')", "Poll time"), *_SNMP_DEV,
             C("if_index", "UInt32", "ifIndex"),
             C("if_name", "String", "ifName (falls back to ifDescr)"),
             C("if_descr", "String", "ifDescr"),
             C("if_alias", "String", "ifAlias: the description an operator configured"),
             C("if_type", "UInt32", "ifType (6 ethernetCsmacd, 24 softwareLoopback, 161 LAG...)"),
             C("mtu", "UInt32", "ifMtu in bytes"),
             C("speed_bps", "UInt64", "Link speed in bits/s (ifSpeed, or ifHighSpeed x 10^6 above 4.29 Gbit/s)"),
             C("phys_address", "String", "ifPhysAddress (MAC), empty when none"),
             C("admin_status", "LowCardinality(String)", "ifAdminStatus: up, down, testing"),
             C("oper_status", "LowCardinality(String)", "ifOperStatus: up, down, lowerLayerDown, dormant..."),
             C("last_change_ticks", "UInt32", "ifLastChange: sysUpTime at the last status change"),
             C("counters_64bit", "UInt8", "1 when octet counters are the 64-bit ifHC* ones"),
             C("in_octets", "UInt64", "Bytes received (ifHCInOctets or ifInOctets)"),
             C("out_octets", "UInt64", "Bytes sent (ifHCOutOctets or ifOutOctets)"),
             C("in_ucast_pkts", "UInt64", "Unicast packets received"),
             C("out_ucast_pkts", "UInt64", "Unicast packets sent"),
             C("in_errors", "UInt64", "ifInErrors"),
             C("out_errors", "UInt64", "ifOutErrors"),
             C("in_discards", "UInt64", "ifInDiscards"),
             C("out_discards", "UInt64", "ifOutDiscards"),
             C("ip_addresses", "Array(String)", "Addresses on this interface as CIDRs")),
    engine="ReplacingMergeTree(time)",
    order_by="(device, if_index)",
    ttl=_SNMP_TTL.format(days=90),
    network_columns=("host",),
))

SNMP_INTERFACE_TS = register(Table(
    name="snmp_interface_ts",
    comment="Per-interface rates from successive SNMP polls, one row per device, ifIndex and poll "
            "(from the second poll on). Rates are NULL for an interval where a counter reset or the "
            "agent restarted; a 32-bit wrap is unwrapped.",
    columns=(C("time", "DateTime64(3, 'UTC')", "Poll time (end of the interval)"), *_SNMP_DEV,
             C("if_index", "UInt32", "ifIndex"),
             C("if_name", "String", "ifName (falls back to ifDescr)"),
             C("interval_s", "Float64", "Seconds since the previous poll"),
             C("speed_bps", "UInt64", "Link speed in bits/s, 0 when unknown"),
             C("admin_status", "LowCardinality(String)", "ifAdminStatus at this poll"),
             C("oper_status", "LowCardinality(String)", "ifOperStatus at this poll"),
             C("in_bps", "Nullable(Float64)", "Inbound bits per second"),
             C("out_bps", "Nullable(Float64)", "Outbound bits per second"),
             C("in_util", "Nullable(Float64)", "Inbound utilisation, percent of speed_bps"),
             C("out_util", "Nullable(Float64)", "Outbound utilisation, percent of speed_bps"),
             C("in_pps", "Nullable(Float64)", "Inbound unicast packets per second"),
             C("out_pps", "Nullable(Float64)", "Outbound unicast packets per second"),
             C("in_errors_ps", "Nullable(Float64)", "Inbound errors per second"),
             C("out_errors_ps", "Nullable(Float64)", "Outbound errors per second"),
             C("in_discards_ps", "Nullable(Float64)", "Inbound discards per second"),
             C("out_discards_ps", "Nullable(Float64)", "Outbound discards per second"),
             C("in_errors", "Nullable(UInt64)", "Inbound errors during the interval"),
             C("out_errors", "Nullable(UInt64)", "Outbound errors during the interval"),
             C("in_discards", "Nullable(UInt64)", "Inbound discards during the interval"),
             C("out_discards", "Nullable(UInt64)", "Outbound discards during the interval"),
             C("in_utilization", "Nullable(Float64)", "Same as in_util", alias="in_util"),
             C("out_utilization", "Nullable(Float64)", "Same as out_util", alias="out_util")),
    order_by="(device, if_index, time)",
    partition_by="toYYYYMM(time)",
    ttl=_SNMP_TTL.format(days=365),
    network_columns=("host",),
))

SNMP_NEIGHBORS = register(Table(
    name="snmp_neighbors",
    comment="LLDP (LLDP-MIB) and CDP (CISCO-CDP-MIB) neighbours seen by a device, one row per "
            "neighbour and poll; rows of the device's latest poll are current.",
    columns=(C("time", "DateTime64(3, 'UTC')", "Poll time"), *_SNMP_DEV,
             C("protocol", "LowCardinality(String)", "lldp or cdp"),
             C("local_if_index", "UInt32", "ifIndex of the local port, 0 when it could not be mapped"),
             C("local_port", "String", "Local port name"),
             C("remote_name", "String", "Neighbour system name (lldpRemSysName / cdpCacheDeviceId)"),
             C("remote_chassis_id", "String", "LLDP chassis id (MAC as aa:bb:.., or text)"),
             C("remote_port_id", "String", "Neighbour port id (lldpRemPortId / cdpCacheDevicePort)"),
             C("remote_port_descr", "String", "Neighbour port description (LLDP)"),
             C("remote_sys_descr", "String", "Neighbour system description / software version"),
             C("remote_address", "String", "Neighbour management address (CDP), empty when unknown"),
             C("remote_platform", "String", "Neighbour platform (CDP)")),
    order_by="(device, time)",
    ttl=_SNMP_TTL.format(days=90),
    network_columns=("host",),
))

SNMP_FDB = register(Table(
    name="snmp_fdb",
    comment="Bridge forwarding table (BRIDGE-MIB dot1dTpFdbTable): MAC addresses learned per port, "
            "one row per MAC and poll; rows of the device's latest poll are current.",
    columns=(C("time", "DateTime64(3, 'UTC')", "Poll time"), *_SNMP_DEV,
             C("mac", "String", "MAC address aa:bb:cc:dd:ee:ff"),
             C("bridge_port", "UInt32", "dot1dTpFdbPort: bridge port number"),
             C("if_index", "UInt32", "ifIndex of that bridge port (dot1dBasePortIfIndex), 0 unknown"),
             C("if_name", "String", "Interface name of that port")),
    order_by="(device, time, mac)",
    ttl=_SNMP_TTL.format(days=30),
    network_columns=("host",),
))

SNMP_EVENTS = register(Table(
    name="snmp_events",
    comment="SNMP state changes: device unreachable/reachable again, interface down/up, agent "
            "restart. Written on every change (alerts are also raised through the alerts component "
            "when it runs).",
    columns=(C("time", "DateTime64(3, 'UTC')", "When the change was seen (poll time)"), *_SNMP_DEV,
             C("if_index", "UInt32", "ifIndex for interface events, 0 for device events"),
             C("if_name", "String", "Interface name for interface events"),
             C("event", "LowCardinality(String)",
               "device_unreachable, device_reachable, interface_down, interface_up, agent_restart"),
             C("severity", "LowCardinality(String)", "info, warning or error"),
             C("description", "String", "What happened, for an operator"),
             C("evidence", "String", "JSON with the values that triggered the event")),
    order_by="(device, time)",
    ttl=_SNMP_TTL.format(days=365),
    network_columns=("host",),
))
