"""Information elements the collector understands, for NetFlow v9 and IPFIX alike.

NetFlow v9 field types 1..127 are the same numbers as IPFIX information elements, so one
table serves both. Each known element maps to a short record key and a value kind; every
other element is skipped by length (its bytes are never looked at).

Kinds: ``u`` unsigned integer of any length (reduced-size encoding allowed), ``ip4`` IPv4
address as an int, ``ip6`` IPv6 address as 16 bytes, ``mac`` MAC address as an int,
``str`` text (NUL-padded), ``raw`` bytes kept as they are.
"""

from __future__ import annotations

#: IANA information element id -> (record key, kind)
IANA: dict[int, tuple[str, str]] = {
    1: ("bytes", "u"),            # octetDeltaCount / IN_BYTES
    2: ("pkts", "u"),             # packetDeltaCount / IN_PKTS
    4: ("proto", "u"),            # protocolIdentifier
    6: ("tcp_flags", "u"),        # tcpControlBits
    7: ("sport", "u"),            # sourceTransportPort
    8: ("src4", "ip4"),           # sourceIPv4Address
    10: ("in_if", "u"),           # ingressInterface / INPUT_SNMP
    11: ("dport", "u"),           # destinationTransportPort
    12: ("dst4", "ip4"),          # destinationIPv4Address
    14: ("out_if", "u"),          # egressInterface / OUTPUT_SNMP
    15: ("nh4", "ip4"),           # ipNextHopIPv4Address
    16: ("src_as", "u"),          # bgpSourceAsNumber
    17: ("dst_as", "u"),          # bgpDestinationAsNumber
    18: ("bgp_nh4", "ip4"),       # bgpNextHopIPv4Address
    21: ("last_up", "u"),         # flowEndSysUpTime / LAST_SWITCHED
    22: ("first_up", "u"),        # flowStartSysUpTime / FIRST_SWITCHED
    23: ("out_bytes", "u"),       # OUT_BYTES (v9) / postOctetDeltaCount
    24: ("out_pkts", "u"),        # OUT_PKTS (v9) / postPacketDeltaCount
    27: ("src6", "ip6"),          # sourceIPv6Address
    28: ("dst6", "ip6"),          # destinationIPv6Address
    32: ("icmp", "u"),            # icmpTypeCodeIPv4
    34: ("sampling", "u"),        # samplingInterval (v9 SAMPLING_INTERVAL)
    35: ("sampling_algo", "u"),   # samplingAlgorithm
    48: ("sampler_id", "u"),      # samplerId / FLOW_SAMPLER_ID
    49: ("sampler_mode", "u"),    # samplerMode
    50: ("sampler_interval", "u"),  # samplerRandomInterval
    56: ("smac", "mac"),          # sourceMacAddress
    57: ("dmac_post", "mac"),     # postDestinationMacAddress / OUT_DST_MAC
    58: ("vlan", "u"),            # vlanId
    60: ("ipver", "u"),           # ipVersion
    61: ("direction", "u"),       # flowDirection
    62: ("nh6", "ip6"),           # ipNextHopIPv6Address
    63: ("bgp_nh6", "ip6"),       # bgpNextHopIPv6Address
    80: ("dmac", "mac"),          # destinationMacAddress
    82: ("if_name", "str"),       # interfaceName
    83: ("if_desc", "str"),       # interfaceDescription
    85: ("total_bytes", "u"),     # octetTotalCount
    86: ("total_pkts", "u"),      # packetTotalCount
    95: ("app_id", "raw"),        # applicationId (NBAR, Fortigate ...)
    96: ("app_name", "str"),      # applicationName
    139: ("icmp6", "u"),          # icmpTypeCodeIPv6
    150: ("first_s", "u"),        # flowStartSeconds
    151: ("last_s", "u"),         # flowEndSeconds
    152: ("first_ms", "u"),       # flowStartMilliseconds
    153: ("last_ms", "u"),        # flowEndMilliseconds
    154: ("first_us", "u"),       # flowStartMicroseconds (NTP format)
    155: ("last_us", "u"),        # flowEndMicroseconds (NTP format)
    156: ("first_ns", "u"),       # flowStartNanoseconds (NTP format)
    157: ("last_ns", "u"),        # flowEndNanoseconds (NTP format)
    158: ("first_delta_us", "u"),  # flowStartDeltaMicroseconds
    159: ("last_delta_us", "u"),  # flowEndDeltaMicroseconds
    160: ("sys_init_ms", "u"),    # systemInitTimeMilliseconds
    176: ("icmp_type", "u"),      # icmpTypeIPv4
    177: ("icmp_code", "u"),      # icmpCodeIPv4
    231: ("init_bytes", "u"),     # initiatorOctets (Cisco ASA NSEL)
    232: ("resp_bytes", "u"),     # responderOctets
    243: ("dot1q_vlan", "u"),     # dot1qVlanId
    298: ("init_pkts", "u"),      # initiatorPackets
    299: ("resp_pkts", "u"),      # responderPackets
    302: ("selector_id", "u"),    # selectorId
    305: ("sp_interval", "u"),    # samplingPacketInterval
    306: ("sp_space", "u"),       # samplingPacketSpace
    323: ("obs_ms", "u"),         # observationTimeMilliseconds
}

#: reverse information elements (RFC 5103, PEN 29305): forward id -> reverse record key
REVERSE_PEN = 29305
REVERSE: dict[int, tuple[str, str]] = {
    1: ("rbytes", "u"),
    2: ("rpkts", "u"),
    6: ("rtcp_flags", "u"),
    85: ("rbytes", "u"),
    86: ("rpkts", "u"),
}

#: ntop (nProbe) enterprise number and its elements in IPFIX (id = v9 id - 57472)
NTOP_PEN = 35632
NTOP: dict[int, tuple[str, str]] = {
    118: ("l7", "u"),             # L7_PROTO
    119: ("l7_name", "str"),      # L7_PROTO_NAME
}

#: NetFlow v9 vendor field types (>= 32768, no enterprise number in v9)
V9_VENDOR: dict[int, tuple[str, str]] = {
    57590: ("l7", "u"),           # nProbe L7_PROTO
    57591: ("l7_name", "str"),    # nProbe L7_PROTO_NAME
}

#: NetFlow v9 options scope field types (RFC 3954 section 6.1)
V9_SCOPE: dict[int, tuple[str, str]] = {
    1: ("scope_system", "u"),
    2: ("scope_if", "u"),
    3: ("scope_linecard", "u"),
    4: ("scope_cache", "u"),
    5: ("scope_template", "u"),
}


def lookup(field_id: int, pen: int = 0, v9: bool = False) -> tuple[str, str] | None:
    """The (key, kind) of an element, None when the collector does not use it."""
    if pen == 0:
        if v9 and field_id >= 32768:
            return V9_VENDOR.get(field_id)
        return IANA.get(field_id)
    if pen == REVERSE_PEN:
        return REVERSE.get(field_id)
    if pen == NTOP_PEN:
        return NTOP.get(field_id)
    return None
