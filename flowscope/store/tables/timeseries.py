"""Rollups of `flows` at 1 minute, 5 minutes and 1 hour, and ntopng's `hourly_flows`."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from flowscope.store.schema import C, Column, Table, quote, register, register_view
from flowscope.store.tables.flows import FLOWS

# Rollups of `flows` at 1-minute, 5-minute and 1-hour resolution, plus ntopng's `hourly_flows`,
# filled off the insert path (flowscope/store/rollups.py): new batches of `flows` are copied into
# the Null table flows_rollup_feed, whose materialised views feed ts_<kind>_1m (chained on to 5m
# and 1h) and hourly_flows. flowscope/services/timeseries queries them and applies the TTLs.
ROLLUP_FEED = "flows_rollup_feed"
ROLLUP_STATE = register(Table(
    name="rollup_state",
    comment="Rollup watermark: every flows row with INSERT_SEQ <= max(seq) is in the rollups.",
    columns=(C("seq", "UInt64", "Last INSERT_SEQ of a batch rolled up"),),
    order_by="seq",
))
register_view(f"CREATE TABLE IF NOT EXISTS `{ROLLUP_FEED}` AS flows ENGINE = Null "
              f"COMMENT 'Keeps nothing: new flows batches pass through it to fill the rollups'")
register_view(f"CREATE MATERIALIZED VIEW IF NOT EXISTS `mv_rollup_state` TO `rollup_state` AS "
              f"SELECT max(INSERT_SEQ) AS seq FROM `{ROLLUP_FEED}`")

TS_RESOLUTIONS = (("1m", 60, 7), ("5m", 300, 30), ("1h", 3600, 365), ("1d", 86400, 365))  # name, s, default days
TS_ATTRIBUTION = (
    "Bytes and packets of a flow count in the minutes their packets were seen (flows.PER_MINUTE); "
    "a flow counts once, in the bucket holding its LAST_SEEN, and so does its score."
)
#: `flows` ARRAY JOINed with its minutes as `m` (rows without PER_MINUTE: one cell at LAST_SEEN)
_TS_MINUTES = ("ARRAY JOIN if(empty(PER_MINUTE), [tuple(toUInt32(toStartOfMinute(LAST_SEEN)), SRC2DST_PACKETS, "
               "SRC2DST_BYTES, DST2SRC_PACKETS, DST2SRC_BYTES)], PER_MINUTE) AS m")
#: what the rollup expressions' flow counters mean for one minute cell `m`
_TS_PER_MINUTE = {
    "TOTAL_BYTES": "(m.3 + m.5)", "PACKETS": "(m.2 + m.4)", "SRC2DST_PACKETS": "m.2", "SRC2DST_BYTES": "m.3",
    "DST2SRC_PACKETS": "m.4", "DST2SRC_BYTES": "m.5",
    "FLOW_ENDS": "toUInt8(m.1 = toUInt32(toStartOfMinute(LAST_SEEN)))",
    "SCORE": "(SCORE * toUInt8(m.1 = toUInt32(toStartOfMinute(LAST_SEEN))))",
}


def _per_minute(expr: str) -> str:
    return re.sub(r"\b(" + "|".join(_TS_PER_MINUTE) + r")\b", lambda mo: _TS_PER_MINUTE[mo.group(1)], expr)


_TS_BUCKET = {"1m": "toStartOfMinute", "5m": "toStartOfFiveMinutes", "1h": "toStartOfHour", "1d": "toStartOfDay"}
_TS_WRITTEN = C("written", "SimpleAggregateFunction(max, DateTime('UTC'))",
                "When the row was last written; retention (TTL) counts from here, so imported "
                "old captures are kept for the full retention")
_TS_NAME = ("dictGetOrDefault('ndpi_protocols', 'name', toUInt64({c}), toString({c}))")


@dataclass(frozen=True)
class Rollup:
    """One family of timeseries tables: what a `flows` row contributes, keyed by `dims`."""
    kind: str
    what: str
    dims: tuple[Column, ...]
    dim_exprs: tuple[str, ...]  # expression over `flows` (after array_join) for each dim
    metrics: tuple[tuple[str, str, str], ...]  # (name, per-row UInt64 expression, comment)
    array_join: str = ""
    where: str = "1"
    aliases: tuple[Column, ...] = ()
    network_columns: tuple[str, ...] = ()
    #: resolutions stored; finer ones are computed from `flows` (`rows_sql`) when asked for
    resolutions: tuple[str, ...] = ("1m", "5m", "1h")

    def table(self, res: str) -> str:
        return f"ts_{self.kind}_{res}"

    def tables(self) -> list[str]:
        return [self.table(res) for res in self.resolutions]

    def rows_sql(self, extra_where: str = "1") -> str:
        """Per-flow, per-minute rows (time = start of the minute) with the rollup's columns,
        before aggregation (interface volumes: the flows' own)."""
        cols = ["toDateTime(m.1) AS time"] + [f"{e} AS `{d.name}`" for d, e in zip(self.dims, self.dim_exprs)]
        # flows only: frame counts are not filtered by address, so restricted users get flow volumes
        cols += [f"toUInt64({_per_minute(e.replace(_FRAMES_COUNTED, '0'))}) AS `{m}`" for m, e, _ in self.metrics]
        return (f"SELECT {', '.join(cols)} FROM flows {_TS_MINUTES} {_per_minute(self.array_join)} "
                f"WHERE ({self.where}) AND ({extra_where})")

    def scope_table(self, res: str) -> str:
        return f"scope_{self.table(res)}"

    def feed_select(self, scope: int | None = None, flows_where: str = "1", source: str = f"`{ROLLUP_FEED}`") -> str:
        """The SELECT filling the finest table from new flows batches in `source`: the admins' rollup,
        or with `scope` a restricted scope's (its id first, only flows matching `flows_where`, interface
        volumes of the flows only, like `rows_sql`)."""
        res = self.resolutions[0]
        keys = ", ".join(f"`{d.name}`" for d in self.dims)
        dims = ", ".join(f"{e} AS `{d.name}`" for d, e in zip(self.dims, self.dim_exprs))
        exprs = [(m, e if scope is None else e.replace(_FRAMES_COUNTED, "0")) for m, e, _c in self.metrics]
        msum = ", ".join(f"sum(toUInt64({_per_minute(e)})) AS `{m}`" for m, e in exprs)
        lead = "" if scope is None else f"toUInt64({int(scope)}) AS scope, "
        return (f"SELECT {lead}{_TS_BUCKET[res]}(toDateTime(m.1)) AS time, {dims}, {msum}, now() AS written "
                f"FROM {source} {_TS_MINUTES} {_per_minute(self.array_join)} WHERE ({self.where}) AND ({flows_where}) "
                f"GROUP BY {'scope, ' if lead else ''}time, {keys}")


TS_ROLLUPS: dict[str, Rollup] = {}


def _ts_register(r: Rollup, scoped: bool = False) -> Rollup:
    """Register the tables of `r` and the views chaining them (1m -> 5m -> 1h). `scoped`: the tables
    of every restricted scope's own rollups (`scope` first), whose finest table is fed by one view per
    scope made with the scope (flowscope/store/rollups.py `RollupFeed.add_scope`)."""
    if not scoped:
        TS_ROLLUPS[r.kind] = r
    keys = ", ".join(f"`{d.name}`" for d in r.dims)
    lead = "scope, " if scoped else ""
    prev = None
    for res, _secs, days in TS_RESOLUTIONS:
        name = r.scope_table(res) if scoped else r.table(res)
        if res not in r.resolutions:  # not stored (any more): a store made before loses it
            register_view(f"DROP VIEW IF EXISTS `mv_{name}`")
            register_view(f"DROP TABLE IF EXISTS `{name}`")
            continue
        metric_cols = tuple(C(m, "SimpleAggregateFunction(sum, UInt64)", c) for m, _e, c in r.metrics)
        first = f"one view per scope from new flows batches ({ROLLUP_FEED})" if scoped else \
            f"materialised view mv_{name} from new flows batches ({ROLLUP_FEED})"
        register(Table(
            name=name,
            comment=((f"Your own rollup: {r.what[0].lower()}{r.what[1:]}, counting only flows inside your allowed "
                      "networks (interface volumes: the flows' own). " if scoped else f"{r.what}, ")
                     + f"one row per {res} bucket (`time`, UTC) and key. {TS_ATTRIBUTION} Fed by "
                     + (f"materialised view mv_{name} from {prev}" if prev else first) +
                     f"; query with sum() and GROUP BY (rows merge lazily). Retention: "
                     f"[timeseries] retention_{res}_days (default {days}) after `written`."),
            columns=((C("scope", "UInt64", "Restricted scope (allowed networks) the row counts for"),) if scoped
                     else ()) + (C("time", "DateTime('UTC')", f"Start of the {res} bucket",
                                   codec="DoubleDelta, ZSTD(1)"),) + r.dims + metric_cols + (_TS_WRITTEN,) + r.aliases,
            engine="AggregatingMergeTree",
            codec="ZSTD(1)",
            order_by=f"({lead}time, {keys})",
            partition_by="toYYYYMM(time)",
            ttl=f"written + INTERVAL {days} DAY",
            network_columns=() if scoped else r.network_columns,
            scope_column="scope" if scoped else None,
        ))
        sums = ", ".join(f"sum(`{m}`) AS `{m}`" for m, _e, _c in r.metrics)
        if prev is None and scoped:
            prev = name
            continue
        if prev is None:
            select = r.feed_select()
            # views made before PER_MINUTE existed are replaced (CREATE ... IF NOT EXISTS would keep them)
            register_view(f"DROP VIEW IF EXISTS `mv_{name}`")
        else:
            select = (f"SELECT {lead}{_TS_BUCKET[res]}(time) AS time, {keys}, {sums}, max(written) AS written "
                      f"FROM `{prev}` GROUP BY {lead}time, {keys}")
        register_view(f"CREATE MATERIALIZED VIEW IF NOT EXISTS `mv_{name}` TO `{name}` AS {select} "
                      f"COMMENT {quote(f'Feeds {name} on every insert into ' + (prev or ROLLUP_FEED))}")
        prev = name
    return r


_IFACE = C("INTERFACE_ID", "UInt16", "Source interface id (see get_interfaces)")
_HOST_SIDES = ("ARRAY JOIN [tuple(SRC_IP, SRC2DST_BYTES, DST2SRC_BYTES, SRC2DST_PACKETS, DST2SRC_PACKETS, FLOW_ENDS, 0), "
               "tuple(DST_IP, DST2SRC_BYTES, SRC2DST_BYTES, DST2SRC_PACKETS, SRC2DST_PACKETS, 0, FLOW_ENDS)] AS side")
_GEO_SIDES = ("ARRAY JOIN [tuple({s}, SRC2DST_BYTES, DST2SRC_BYTES, FLOW_ENDS), "
              "tuple({d}, DST2SRC_BYTES, SRC2DST_BYTES, FLOW_ENDS)] AS side")
_SENT_RCVD = (("bytes_sent", "side.2", "Bytes sent by this side of its flows"),
              ("bytes_rcvd", "side.3", "Bytes received by this side of its flows"),
              ("flows", "side.4", "Flow rows ending in the bucket with this on one side (twice when on both)"))
_BPF = (("bytes", "TOTAL_BYTES", "Bytes in both directions"), ("packets", "PACKETS", "Packets in both directions"),
        ("flows", "FLOW_ENDS", "Flow rows ending in the bucket"))

#: flows whose source's frames are all counted (frame_counters): interface volumes come from there
_FRAMES_COUNTED = "SOURCE_TYPE IN ('pcap', 'interface')"
_ts_register(Rollup(
    kind="interface", what=("Traffic per interface: bytes, packets, flows and capture drops. Capture files "
                            "and live interfaces count every frame (written with frame_counters, not from flows)"),
    dims=(_IFACE,), dim_exprs=("INTERFACE_ID",),
    metrics=(("bytes", f"if({_FRAMES_COUNTED}, 0, TOTAL_BYTES)", "Bytes in both directions (frame bytes)"),
             ("packets", f"if({_FRAMES_COUNTED}, 0, PACKETS)", "Packets in both directions (frames)"),
             ("flows", "FLOW_ENDS", "Flow rows ending in the bucket"),
             ("drops", "0", "Packets the capture dropped (written by the capture, not from flows)")),
))
_ts_register(Rollup(
    kind="host", what="Traffic per host (each flow counts for its client and its server)",
    dims=(_IFACE, C("host", "String", "Host address (IPv4 or IPv6 text)")),
    dim_exprs=("INTERFACE_ID", "side.1"),
    metrics=(("bytes_sent", "side.2", "Bytes the host sent"), ("bytes_rcvd", "side.3", "Bytes the host received"),
             ("packets_sent", "side.4", "Packets the host sent"), ("packets_rcvd", "side.5", "Packets the host received"),
             ("flows_as_client", "side.6", "Flows where the host was the client"),
             ("flows_as_server", "side.7", "Flows where the host was the server"),
             ("score", "SCORE", "Sum of the scores of the host's flows ending in the bucket")),
    array_join=_HOST_SIDES, network_columns=("host",),
    # a row per host and bucket is as big as the flows at minute steps: those come from `flows`
    resolutions=("1h", "1d"),
))
_ts_register(Rollup(
    kind="application", what="Traffic per nDPI application (L7_PROTO) and L4 protocol",
    dims=(_IFACE, C("PROTOCOL", "UInt8", "IP protocol number"),
          C("L7_PROTO_MASTER", "UInt16", "nDPI master protocol id, 0 when none"),
          C("L7_PROTO", "UInt16", "nDPI application protocol id")),
    dim_exprs=("INTERFACE_ID", "PROTOCOL", "L7_PROTO_MASTER", "L7_PROTO"), metrics=_BPF,
    aliases=(C("L7_PROTO_NAME", "String", "nDPI application name", alias=_TS_NAME.format(c="L7_PROTO")),),
))
_ts_register(Rollup(
    kind="category", what="Traffic per nDPI category",
    dims=(_IFACE, C("L7_CATEGORY", "UInt16", "nDPI category id")),
    dim_exprs=("INTERFACE_ID", "L7_CATEGORY"), metrics=_BPF,
    aliases=(C("L7_CATEGORY_NAME", "String", "nDPI category name",
               alias="dictGetOrDefault('ndpi_categories', 'name', toUInt64(L7_CATEGORY), toString(L7_CATEGORY))"),),
))
_ts_register(Rollup(
    kind="country", what="Traffic per country (of client and of server; unknown countries left out)",
    dims=(_IFACE, C("country", "LowCardinality(String)", "ISO country code")),
    dim_exprs=("INTERFACE_ID", "side.1"), metrics=_SENT_RCVD,
    array_join=_GEO_SIDES.format(s="SRC_COUNTRY_CODE", d="DST_COUNTRY_CODE"), where="side.1 != ''",
))
_ts_register(Rollup(
    kind="asn", what="Traffic per autonomous system (of client and of server; ASN 0 left out)",
    dims=(_IFACE, C("asn", "UInt32", "Autonomous system number")),
    dim_exprs=("INTERFACE_ID", "side.1"), metrics=_SENT_RCVD,
    array_join=_GEO_SIDES.format(s="SRC_ASN", d="DST_ASN"), where="side.1 != 0",
))

#: kinds every restricted scope has rollups of (scope_ts_<kind>_<res>): the series summed across hosts
#: that users limited to networks read (hosts: the admins' rollup filtered on `host`)
SCOPE_ROLLUPS = {kind: _ts_register(TS_ROLLUPS[kind], scoped=True) for kind in ("interface", "application")}

FRAME_COUNTERS = register(Table(
    name="frame_counters",
    comment=("Every frame of packet sources (capture files, live interfaces), IP or not, per minute, source "
             "and EtherType: "
             "ARP, STP (802.3/LLC), EAPOL, LLDP... that no flow holds are here. Sums per source equal "
             "capinfos' packet count and data size. Query with sum() and GROUP BY (rows merge lazily)."),
    columns=(
        C("time", "DateTime('UTC')", "Start of the minute the frames were captured in"),
        _IFACE,
        C("SOURCE", "String", "Capture file path or interface name"),
        C("ETHER_TYPE", "UInt16", "EtherType (0x0800 IPv4, 0x86DD IPv6, 0x0806 ARP...); 1 = 802.3 frame with an "
                                  "LLC header (STP, CDP...), 0 = link-layer protocol of a non-Ethernet capture"),
        C("ETHER_TYPE_NAME", "LowCardinality(String)", "EtherType as a name: IPv4, ARP, EAPOL, 802.3/LLC..."),
        C("packets", "SimpleAggregateFunction(sum, UInt64)", "Frames"),
        C("bytes", "SimpleAggregateFunction(sum, UInt64)", "Frame (wire) bytes, link-layer header included"),
        _TS_WRITTEN,
        C("IS_IP", "UInt8", "1 for IPv4 and IPv6 frames", alias="ETHER_TYPE IN (2048, 34525)"),
    ),
    engine="AggregatingMergeTree",
    order_by="(time, INTERFACE_ID, SOURCE, ETHER_TYPE, ETHER_TYPE_NAME)",
    partition_by="toYYYYMM(time)",
    ttl="written + INTERVAL 365 DAY",
    public=True,
))

_HF_KEYS = ("INTERFACE_ID", "VLAN_ID", "IP_PROTOCOL_VERSION", "PROTOCOL", "IPV4_SRC_ADDR", "IPV6_SRC_ADDR",
            "IPV4_DST_ADDR", "IPV6_DST_ADDR", "IP_DST_PORT", "L7_PROTO", "L7_PROTO_MASTER")
_HF_SUMS = ("PACKETS", "TOTAL_BYTES", "SRC2DST_BYTES", "DST2SRC_BYTES", "SRC2DST_PACKETS", "DST2SRC_PACKETS",
            "SCORE")
_F = {c.name: c for c in FLOWS.columns}
HOURLY_FLOWS = register(Table(
    name="hourly_flows",
    comment=("ntopng's hourly_flows: one row per hour (FLOW_TIME), host pair, L4/L7 protocol and server port, "
             "with NUM_FLOWS and summed counters, for fast long-range queries. " + TS_ATTRIBUTION.replace(
                 "the bucket", "the hour") + " Fed on insert by mv_hourly_flows; query with sum() and GROUP BY. "
             "Retention: [timeseries] retention_hourly_flows_days (default 365) after `written`."),
    columns=(C("FLOW_TIME", "DateTime('UTC')", "Start of the hour of LAST_SEEN", codec="DoubleDelta, ZSTD(1)"),)
    + tuple(replace(_F[k], codec=None) for k in _HF_KEYS)
    + (C("FIRST_SEEN", "SimpleAggregateFunction(min, DateTime64(3, 'UTC'))", "Earliest FIRST_SEEN of the flows"),
       C("LAST_SEEN", "SimpleAggregateFunction(max, DateTime64(3, 'UTC'))", "Latest LAST_SEEN of the flows"),
       C("NUM_FLOWS", "SimpleAggregateFunction(sum, UInt64)", "Number of flow rows aggregated"))
    + tuple(C(k, "SimpleAggregateFunction(sum, UInt64)", "Sum of flows." + k) for k in _HF_SUMS)
    + (C("FLOW_RISK", "SimpleAggregateFunction(groupBitOr, UInt64)", "OR of the flows' risk bitmaps"),
       _TS_WRITTEN)
    + tuple(_F[a] for a in ("SRC_IP", "DST_IP", "DST_PORT", "BYTES", "L4_PROTO_NAME", "L7_PROTO_NAME")),
    engine="AggregatingMergeTree",
    codec="ZSTD(1)",
    order_by="(FLOW_TIME, " + ", ".join(_HF_KEYS) + ")",
    partition_by="toYYYYMM(FLOW_TIME)",
    ttl="written + INTERVAL 365 DAY",
    network_columns=("SRC_IP", "DST_IP"),
))
register_view(
    "CREATE MATERIALIZED VIEW IF NOT EXISTS `mv_hourly_flows` TO `hourly_flows` AS SELECT "
    "toStartOfHour(flows.LAST_SEEN) AS FLOW_TIME, " + ", ".join(_HF_KEYS) + ", min(flows.FIRST_SEEN) AS "
    "FIRST_SEEN, max(flows.LAST_SEEN) AS LAST_SEEN, count() AS NUM_FLOWS, "
    + ", ".join(f"sum(toUInt64(flows.{k})) AS {k}" for k in _HF_SUMS)
    + f", groupBitOr(flows.FLOW_RISK) AS FLOW_RISK, now() AS written FROM `{ROLLUP_FEED}` AS flows GROUP BY "
    "FLOW_TIME, " + ", ".join(_HF_KEYS) + f" COMMENT 'Feeds hourly_flows on every insert into {ROLLUP_FEED}'"
)
