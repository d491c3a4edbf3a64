"""What the flow collector stores besides flows: exporter snapshots and sFlow counters."""

from __future__ import annotations

from flowscope.store.schema import Table, columns, register

FLOW_EXPORTERS = register(Table(
    name="flow_exporters",
    comment=("NetFlow/IPFIX/sFlow exporters seen by the collector, one row per (address, type); "
             "snapshots written periodically, the latest (highest updated_at) wins. Counters are "
             "since the collector started. See list_flow_exporters for the live view."),
    columns=columns("""
            address        String                  Exporter address (sFlow: agent address)
            type           LowCardinality(String)  netflow5, netflow9, ipfix or sflow
            version        UInt16                  Export protocol version (5, 9, 10; sFlow 5)
            interface_id   UInt16                  INTERFACE_ID of the collector listener that received it
            first_seen     DateTime64(3, 'UTC')    First datagram received
            last_seen      DateTime64(3, 'UTC')    Last datagram received
            datagrams      UInt64                  Datagrams received
            records        UInt64                  Flow records (sFlow: flow samples) decoded
            undecodable    UInt64                  Datagrams or parts that could not be decoded
            sequence_gaps  UInt64                  Times the export sequence number jumped forward
            lost           UInt64                  Records (v5, IPFIX) or datagrams (v9, sFlow) missing by sequence numbers
            templates      UInt32                  Templates known (v9/IPFIX)
            dropped_sets   UInt64                  Data sets dropped because their template never came
            health         LowCardinality(String)  ok, degraded (loss, undecodable or dropped data) or silent
            updated_at     DateTime64(3, 'UTC')    When this snapshot was written
        """),
    engine="ReplacingMergeTree(updated_at)",
    order_by="(address, type)",
    network_columns=("address",),
))

SFLOW_COUNTERS = register(Table(
    name="sflow_counters",
    comment=("sFlow generic interface counter samples (RFC 3176 / sFlow v5 counters_sample format 1), "
             "the same counters SNMP IF-MIB polling gives: cumulative octets/packets per agent and ifIndex. "
             "Rates: difference consecutive samples of one (agent, if_index)."),
    columns=columns("""
            time                DateTime64(3, 'UTC')  When the sample was received
            agent               String                sFlow agent address (the device)
            if_index            UInt32                ifIndex
            if_type             UInt32                ifType (6 ethernetCsmacd ...)
            if_speed            UInt64                ifSpeed in bits per second
            if_direction        UInt8                 0 unknown, 1 full-duplex, 2 half-duplex, 3 in, 4 out
            if_status           UInt8                 bit 0 ifAdminStatus up, bit 1 ifOperStatus up
            in_octets           UInt64                ifInOctets (cumulative)
            in_ucast_pkts       UInt64                ifInUcastPkts
            in_multicast_pkts   UInt64                ifInMulticastPkts
            in_broadcast_pkts   UInt64                ifInBroadcastPkts
            in_discards         UInt64                ifInDiscards
            in_errors           UInt64                ifInErrors
            in_unknown_protos   UInt64                ifInUnknownProtos
            out_octets          UInt64                ifOutOctets (cumulative)
            out_ucast_pkts      UInt64                ifOutUcastPkts
            out_multicast_pkts  UInt64                ifOutMulticastPkts
            out_broadcast_pkts  UInt64                ifOutBroadcastPkts
            out_discards        UInt64                ifOutDiscards
            out_errors          UInt64                ifOutErrors
        """),
    order_by="(agent, if_index, time)",
    partition_by="toYYYYMM(time)",
    ttl="toDateTime(time) + INTERVAL 365 DAY",
    network_columns=("agent",),
))
