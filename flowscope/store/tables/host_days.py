"""`host_days`: every host's daily totals, for rankings (top talkers, countries, networks).

One row per UTC day of LAST_SEEN, host (numeric address and VLAN) and the country stored on its
side of the flows: what the host sent and received, its flows as client and as server, their
score and first/last times. Filled off the insert path from `flows_rollup_feed` like the other
rollups, so it always equals the flows it summarises; hosts rankings read it for the whole days
of a range and `flows` only for the part of a day at its edges.
"""

from __future__ import annotations

from flowscope.store.schema import C, Table, quote, register, register_view
from flowscope.store.tables.timeseries import ROLLUP_FEED

_IP_TEXT = "if(IP_PROTOCOL_VERSION = 4, IPv4NumToString(IPV4_ADDR), IPv6NumToString(IPV6_ADDR))"
_KEYS = ("day", "IP_PROTOCOL_VERSION", "IPV4_ADDR", "IPV6_ADDR", "VLAN_ID", "country")
_SUMS = (("bytes_sent", "side.3", "Bytes the host sent"), ("bytes_rcvd", "side.4", "Bytes the host received"),
         ("packets_sent", "side.5", "Packets the host sent"), ("packets_rcvd", "side.6", "Packets the host received"),
         ("flows_as_client", "side.7", "Flow rows where the host was the client"),
         ("flows_as_server", "1 - side.7", "Flow rows where the host was the server"),
         ("score", "SCORE", "Sum of the scores of the host's flows"))

HOST_DAYS = register(Table(
    name="host_days",
    comment=("Per host and UTC day: traffic totals of the flow rows whose LAST_SEEN falls in the day, each "
             "counted for its client and its server (a host on both ends counts twice), keyed by numeric "
             "address, VLAN and the country stored on the host's side. Fed by mv_host_days from new flows "
             f"batches ({ROLLUP_FEED}); query with sum()/min()/max() and GROUP BY (rows merge lazily). "
             "Retention: [timeseries] retention_host_days_days (default 365) after `written`."),
    columns=(
        C("day", "DateTime('UTC')", "Start of the UTC day of the flows' LAST_SEEN", codec="DoubleDelta, ZSTD(1)"),
        C("IP_PROTOCOL_VERSION", "UInt8", "IP version: 4 or 6"),
        C("IPV4_ADDR", "UInt32", "Host IPv4 address as a number, 0 for IPv6 hosts"),
        C("IPV6_ADDR", "IPv6", "Host IPv6 address, :: for IPv4 hosts"),
        C("VLAN_ID", "UInt16", "802.1Q VLAN id, 0 when untagged"),
        C("country", "LowCardinality(String)", "Country ISO code stored on the host's side of the flows, "
                                               "empty when unknown"),
        *(C(m, "SimpleAggregateFunction(sum, UInt64)", c) for m, _e, c in _SUMS),
        C("FIRST_SEEN", "SimpleAggregateFunction(min, DateTime64(3, 'UTC'))", "Earliest FIRST_SEEN of the flows"),
        C("LAST_SEEN", "SimpleAggregateFunction(max, DateTime64(3, 'UTC'))", "Latest LAST_SEEN of the flows"),
        C("written", "SimpleAggregateFunction(max, DateTime('UTC'))", "When the row was last written; retention "
                                                                       "counts from here"),
        C("ip", "String", "Host address as text, IPv4 or IPv6", alias=_IP_TEXT),
    ),
    engine="AggregatingMergeTree",
    codec="ZSTD(1)",
    order_by="(" + ", ".join(_KEYS) + ")",
    partition_by="toYYYYMM(day)",
    ttl="written + INTERVAL 365 DAY",
    network_columns=("ip",),
    address_columns={"ip": ("IP_PROTOCOL_VERSION", "IPV4_ADDR", "IPV6_ADDR")},
))

_SIDES = ("ARRAY JOIN [tuple(IPV4_SRC_ADDR, IPV6_SRC_ADDR, SRC2DST_BYTES, DST2SRC_BYTES, SRC2DST_PACKETS, "
          "DST2SRC_PACKETS, 1, SRC_COUNTRY_CODE), tuple(IPV4_DST_ADDR, IPV6_DST_ADDR, DST2SRC_BYTES, SRC2DST_BYTES, "
          "DST2SRC_PACKETS, SRC2DST_PACKETS, 0, DST_COUNTRY_CODE)] AS side")
register_view(
    "CREATE MATERIALIZED VIEW IF NOT EXISTS `mv_host_days` TO `host_days` AS SELECT "
    "toStartOfDay(flows.LAST_SEEN) AS day, IP_PROTOCOL_VERSION, side.1 AS IPV4_ADDR, side.2 AS IPV6_ADDR, VLAN_ID, "
    "toString(side.8) AS country, "
    + ", ".join(f"sum(toUInt64({e})) AS {m}" for m, e, _c in _SUMS)
    + ", min(flows.FIRST_SEEN) AS FIRST_SEEN, max(flows.LAST_SEEN) AS LAST_SEEN, now() AS written "
    f"FROM `{ROLLUP_FEED}` AS flows {_SIDES} GROUP BY " + ", ".join(_KEYS)
    + f" COMMENT {quote('Feeds host_days on every insert into ' + ROLLUP_FEED)}")
