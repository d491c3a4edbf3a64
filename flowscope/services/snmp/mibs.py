"""The OIDs flowscope reads, as numeric strings (no MIB files are needed at run time)."""

from __future__ import annotations

# SNMPv2-MIB system group (scalars, .0 instances)
SYSTEM = {
    "sys_descr": "1.3.6.1.2.1.1.1.0",
    "sys_object_id": "1.3.6.1.2.1.1.2.0",
    "sys_uptime": "1.3.6.1.2.1.1.3.0",
    "sys_contact": "1.3.6.1.2.1.1.4.0",
    "sys_name": "1.3.6.1.2.1.1.5.0",
    "sys_location": "1.3.6.1.2.1.1.6.0",
}
SYS_UPTIME = SYSTEM["sys_uptime"]

# IF-MIB ifTable (1.3.6.1.2.1.2.2.1.<col>.<ifIndex>)
IF_TABLE = "1.3.6.1.2.1.2.2.1"
IF_COLUMNS = {
    1: "if_index",
    2: "descr",
    3: "type",
    4: "mtu",
    5: "speed",
    6: "phys_address",
    7: "admin_status",
    8: "oper_status",
    9: "last_change",
    10: "in_octets",
    11: "in_ucast_pkts",
    13: "in_discards",
    14: "in_errors",
    16: "out_octets",
    17: "out_ucast_pkts",
    19: "out_discards",
    20: "out_errors",
}

# IF-MIB ifXTable (1.3.6.1.2.1.31.1.1.1.<col>.<ifIndex>)
IFX_TABLE = "1.3.6.1.2.1.31.1.1.1"
IFX_COLUMNS = {1: "name", 6: "hc_in_octets", 7: "hc_in_ucast_pkts", 10: "hc_out_octets", 11: "hc_out_ucast_pkts",
               15: "high_speed", 18: "alias", 19: "counter_discontinuity"}

# IP-MIB ipAddrTable (IPv4, deprecated but universal): 1.3.6.1.2.1.4.20.1.<col>.<a.b.c.d>
IP_ADDR_TABLE = "1.3.6.1.2.1.4.20.1"
IP_ADDR_COLUMNS = {1: "address", 2: "if_index", 3: "netmask"}

# IP-MIB ipAddressTable (v4 and v6): index = addrType.len.bytes ; col 3 = ifIndex, 5 = prefix
IP_ADDRESS_TABLE = "1.3.6.1.2.1.4.34.1"
IP_ADDRESS_COLUMNS = {3: "if_index", 4: "type", 5: "prefix"}

# LLDP-MIB: remote table index = timeMark.localPortNum.remIndex
LLDP_REM_TABLE = "1.0.8802.1.1.2.1.4.1.1"
LLDP_REM_COLUMNS = {4: "chassis_id_subtype", 5: "chassis_id", 6: "port_id_subtype", 7: "port_id", 8: "port_descr",
                    9: "sys_name", 10: "sys_descr"}
# lldpLocPortTable: local port number -> port id / description
LLDP_LOC_PORT_TABLE = "1.0.8802.1.1.2.1.3.7.1"
LLDP_LOC_PORT_COLUMNS = {2: "id_subtype", 3: "port_id", 4: "port_descr"}
# lldpRemManAddrTable: index = timeMark.localPort.remIndex.addrSubtype.len.addr ; col 3 ifSubtype
LLDP_REM_MAN_ADDR_TABLE = "1.0.8802.1.1.2.1.4.2.1"

# CISCO-CDP-MIB cdpCacheTable: index = ifIndex.deviceIndex
CDP_CACHE_TABLE = "1.3.6.1.4.1.9.9.23.1.2.1.1"
CDP_COLUMNS = {
    3: "address_type",
    4: "address",
    5: "version",
    6: "device_id",
    7: "device_port",
    8: "platform",
}

# BRIDGE-MIB: dot1dBasePortIfIndex (bridge port -> ifIndex), dot1dTpFdbTable (MAC -> port)
DOT1D_BASE_PORT_IFINDEX = "1.3.6.1.2.1.17.1.4.1.2"
DOT1D_TP_FDB_TABLE = "1.3.6.1.2.1.17.4.3.1"
FDB_COLUMNS = {1: "mac", 2: "port", 3: "status"}
FDB_STATUS = {1: "other", 2: "invalid", 3: "learned", 4: "self", 5: "mgmt"}

IF_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown"}

LLDP_CHASSIS_SUBTYPE = {1: "chassisComponent", 2: "interfaceAlias", 3: "portComponent", 4: "macAddress",
                        5: "networkAddress", 6: "interfaceName", 7: "local"}
LLDP_PORT_SUBTYPE = {1: "interfaceAlias", 2: "portComponent", 3: "macAddress", 4: "networkAddress",
                     5: "interfaceName", 6: "agentCircuitId", 7: "local"}

#: a few well-known ifType values, for display only
IF_TYPES = {1: "other", 6: "ethernetCsmacd", 24: "softwareLoopback", 53: "propVirtual", 131: "tunnel",
            135: "l2vlan", 136: "l3ipvlan", 161: "ieee8023adLag", 71: "ieee80211", 23: "ppp", 37: "atm"}


def split_index(oid: str, table: str) -> tuple[int, str] | None:
    """'<table>.<col>.<index...>' -> (col, 'index...'), None when oid is outside the table."""
    prefix = table + "."
    if not oid.startswith(prefix):
        return None
    rest = oid[len(prefix):]
    col, _, index = rest.partition(".")
    if not col.isdigit() or not index:
        return None
    return int(col), index
