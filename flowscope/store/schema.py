"""The one place that owns flowscope's ClickHouse schema.

Every table and column carries a COMMENT, so `describe_table` can explain it to an agent.
The `flows` table keeps ntopng's column names and meanings, so SQL written for ntopng runs
unchanged; friendly ALIAS columns sit beside them.

Other modules add their tables by calling `register(Table(...))` at import time of
`flowscope.store.tables`; the DDL for chDB and for a ClickHouse server is the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str
    alias: str | None = None  # ALIAS expression: computed on read, never stored
    default: str | None = None

    def ddl(self) -> str:
        text = f"`{self.name}` {self.type}"
        if self.alias:
            text += f" ALIAS {self.alias}"
        elif self.default:
            text += f" DEFAULT {self.default}"
        return text + f" COMMENT {quote(self.comment)}"


@dataclass(frozen=True)
class Table:
    name: str
    comment: str
    columns: tuple[Column, ...]
    engine: str = "MergeTree"
    order_by: str = "tuple()"
    partition_by: str | None = None
    ttl: str | None = None
    #: columns holding IP strings, used to scope rows to a user's allowed networks
    network_columns: tuple[str, ...] = ()
    #: network columns that are ALIASes of numeric ones: name -> (version, IPv4 UInt32, IPv6)
    #: columns, so that network filters compare numbers instead of formatting text
    address_columns: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: readable by users with allowed networks although it has no network column (lookups)
    public: bool = False
    #: only admins may read it (e.g. the audit log)
    admin_only: bool = False
    extra: tuple[str, ...] = field(default=())

    def ddl(self) -> str:
        cols = ",\n  ".join(c.ddl() for c in self.columns)
        parts = [f"CREATE TABLE IF NOT EXISTS `{self.name}` (\n  {cols}\n) ENGINE = {self.engine}"]
        if self.partition_by:
            parts.append(f"PARTITION BY {self.partition_by}")
        parts.append(f"ORDER BY {self.order_by}")
        if self.ttl:
            parts.append(f"TTL {self.ttl}")
        parts.extend(self.extra)
        parts.append(f"COMMENT {quote(self.comment)}")
        return "\n".join(parts)

    def column_names(self, include_alias: bool = False) -> list[str]:
        return [c.name for c in self.columns if include_alias or not c.alias]

    def alias_names(self) -> list[str]:
        return [c.name for c in self.columns if c.alias]


def quote(text: str) -> str:
    """A ClickHouse string literal for text we wrote ourselves (comments, CIDRs we normalised)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


TABLES: dict[str, Table] = {}


def register(table: Table) -> Table:
    TABLES[table.name] = table
    return table


def C(name: str, type_: str, comment: str, **kw) -> Column:
    return Column(name, type_, comment, **kw)


PER_MINUTE_TYPE = "Array(Tuple(UInt32, UInt64, UInt64, UInt64, UInt64))"
_ip_text = "if(IP_PROTOCOL_VERSION = 4, IPv4NumToString(IPV4_{d}_ADDR), IPv6NumToString(IPV6_{d}_ADDR))"

FLOWS = register(Table(
    name="flows",
    comment=(
        "One row per finished flow (or per active-timeout segment of a long flow; segments never "
        "overlap, so sums are exact). Column names and meanings follow ntopng's flows table. "
        "Times are UTC. Bytes are link-layer (frame) bytes, as ntopng and ndpiReader count them."
    ),
    columns=(
        C("FLOW_ID", "UInt64", "Unique id of this flow row"),
        C("IP_PROTOCOL_VERSION", "UInt8", "IP version: 4 or 6"),
        C("FIRST_SEEN", "DateTime64(3, 'UTC')", "Time of the first packet"),
        C("LAST_SEEN", "DateTime64(3, 'UTC')", "Time of the last packet"),
        C("VLAN_ID", "UInt16", "802.1Q VLAN id, 0 when untagged"),
        C("PACKETS", "UInt64", "Packets in both directions"),
        C("TOTAL_BYTES", "UInt64", "Bytes in both directions (link layer)"),
        C("SRC2DST_BYTES", "UInt64", "Bytes from client to server"),
        C("DST2SRC_BYTES", "UInt64", "Bytes from server to client"),
        C("SRC2DST_PACKETS", "UInt64", "Packets from client to server"),
        C("DST2SRC_PACKETS", "UInt64", "Packets from server to client"),
        C("PROTOCOL", "UInt8", "IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6)"),
        C("IPV4_SRC_ADDR", "UInt32", "Client IPv4 address as a number, 0 for IPv6 flows"),
        C("IPV4_DST_ADDR", "UInt32", "Server IPv4 address as a number, 0 for IPv6 flows"),
        C("IPV6_SRC_ADDR", "IPv6", "Client IPv6 address, :: for IPv4 flows"),
        C("IPV6_DST_ADDR", "IPv6", "Server IPv6 address, :: for IPv4 flows"),
        C("IP_SRC_PORT", "UInt16", "Client L4 port (0 when the protocol has none)"),
        C("IP_DST_PORT", "UInt16", "Server L4 port (0 when the protocol has none)"),
        C("L7_PROTO", "UInt16", "nDPI application protocol id (see list_protos)"),
        C("L7_PROTO_MASTER", "UInt16", "nDPI master protocol id, e.g. TLS for TLS.Google; 0 when none"),
        C("L7_CATEGORY", "UInt16", "nDPI category id"),
        C("FLOW_RISK", "UInt64", "nDPI flow risk bitmap (bit N set = risk id N)"),
        C("SCORE", "UInt16", "Flow score: nDPI's score of the flow's risks (sum over FLOW_RISK bits); higher "
                             "is more suspicious"),
        C("INFO", "String", "Most relevant flow info: TLS SNI, HTTP host or DNS query"),
        C("DOMAIN_NAME", "String", "Server name requested by the client (SNI, Host, DNS query)"),
        C("CLIENT_FINGERPRINT", "String", "Client fingerprint (JA4/JA3 for TLS, HASSH for SSH)"),
        C("SERVER_FINGERPRINT", "String", "Server fingerprint (JA3S for TLS, HASSH for SSH)"),
        C("USER_AGENT", "String", "HTTP User-Agent seen in the flow"),
        C("SRC_MAC", "UInt64", "Client MAC address as a number (0 when unknown)"),
        C("DST_MAC", "UInt64", "Server MAC address as a number (0 when unknown)"),
        C("COMMUNITY_ID", "String", "Community ID v1 flow hash, for joining with Zeek/Suricata"),
        C("INTERFACE_ID", "UInt16", "Id of the source (interface, capture file or exporter) see get_interfaces"),
        C("SRC2DST_TCP_FLAGS", "UInt8", "OR of TCP flags sent by the client"),
        C("DST2SRC_TCP_FLAGS", "UInt8", "OR of TCP flags sent by the server"),
        C("SRC_ASN", "UInt32", "Client autonomous system number, 0 when unknown"),
        C("DST_ASN", "UInt32", "Server autonomous system number, 0 when unknown"),
        C("SRC_COUNTRY_CODE", "LowCardinality(String)", "Client country ISO code, empty when unknown"),
        C("DST_COUNTRY_CODE", "LowCardinality(String)", "Server country ISO code, empty when unknown"),
        C("PROBE_IP", "String", "Address of the flow exporter, empty for packet sources"),
        C("INPUT_SNMP", "UInt32", "Exporter input interface index (ifIndex)"),
        C("OUTPUT_SNMP", "UInt32", "Exporter output interface index (ifIndex)"),
        C("NEXT_HOP", "String", "Next-hop address reported by the exporter"),
        C("SAMPLING_RATE", "UInt32", "1-in-N sampling applied by the exporter; counters are already scaled"),
        C("SOURCE_TYPE", "LowCardinality(String)",
          "Where the row came from: pcap, interface, netflow5, netflow9, ipfix, sflow"),
        C("CLASSIFIED_BY", "LowCardinality(String)",
          "How L7_PROTO was decided: ndpi (payload), exporter (application field), port (guess)"),
        C("PER_MINUTE", PER_MINUTE_TYPE,
          "Packets and bytes per clock minute and direction, cells (minute start in Unix seconds, "
          "src2dst packets, src2dst bytes, dst2src packets, dst2src bytes): the "
          "meter counts them packet by packet; exporter flows are spread evenly over FIRST_SEEN..LAST_SEEN. "
          "Timeseries rollups use it, so minute volumes follow the packets"),
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
    ),
    order_by="(FIRST_SEEN, FLOW_ID)",
    partition_by="toYYYYMMDD(FIRST_SEEN)",
    network_columns=("SRC_IP", "DST_IP"),
    address_columns={"SRC_IP": ("IP_PROTOCOL_VERSION", "IPV4_SRC_ADDR", "IPV6_SRC_ADDR"),
                     "DST_IP": ("IP_PROTOCOL_VERSION", "IPV4_DST_ADDR", "IPV6_DST_ADDR")},
))

NDPI_PROTOCOLS = register(Table(
    name="ndpi_protocols_table",
    comment="The running nDPI's protocols: id, name and category id. Backs the ndpi_protocols dictionary.",
    columns=(
        C("id", "UInt64", "nDPI protocol id (L7_PROTO)"),
        C("name", "String", "nDPI protocol name"),
        C("category", "UInt16", "nDPI category id"),
    ),
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

AUDIT_LOG = register(Table(
    name="audit_log",
    comment="Append-only record of every write tool call: who, which token, which tool, masked parameters.",
    columns=(
        C("time", "DateTime64(3, 'UTC')", "When the call was made"),
        C("user", "String", "User name"),
        C("token_id", "String", "Id of the token used (see flowscope token list)"),
        C("tool", "LowCardinality(String)", "Tool name"),
        C("params", "String", "Parameters as JSON, secrets masked"),
        C("outcome", "String", "ok, or the reason it was refused"),
    ),
    order_by="time",
    admin_only=True,
))

DICTIONARIES = (
    "CREATE DICTIONARY IF NOT EXISTS ndpi_protocols (id UInt64, name String, category UInt16) "
    "PRIMARY KEY id SOURCE(CLICKHOUSE(TABLE 'ndpi_protocols_table')) LIFETIME(MIN 0 MAX 3600) LAYOUT(HASHED()) "
    "COMMENT 'nDPI protocol id to name'",
    "CREATE DICTIONARY IF NOT EXISTS ndpi_categories (id UInt64, name String) "
    "PRIMARY KEY id SOURCE(CLICKHOUSE(TABLE 'ndpi_categories_table')) LIFETIME(MIN 0 MAX 3600) LAYOUT(HASHED()) "
    "COMMENT 'nDPI category id to name'",
)


#: extra DDL run after every table exists, e.g. materialised views (`register_view`)
VIEWS: list[str] = []


def register_view(ddl: str) -> str:
    """Register a `CREATE ... VIEW IF NOT EXISTS` statement; it runs after all tables."""
    VIEWS.append(ddl)
    return ddl


def statements() -> list[str]:
    """All DDL statements, in order: tables, then dictionaries over them, then views."""
    lookups = [NDPI_PROTOCOLS, NDPI_CATEGORIES]
    rest = [t for t in TABLES.values() if t not in lookups]
    return [t.ddl() for t in lookups] + list(DICTIONARIES) + [t.ddl() for t in rest] + list(VIEWS)


# --- alerts/monitoring/policies ---
ALERTS = register(Table(
    name="alerts",
    comment=(
        "Every alert, close to ntopng's alert tables: flow alerts from nDPI flow risks, host alerts "
        "(score, scans, floods, unexpected servers), active-monitoring, SNMP and AI-policy alerts. "
        "Rows are versioned (ReplacingMergeTree): read with FINAL to see the latest state."
    ),
    columns=(
        C("alert_id", "UInt64", "Unique id of the alert"),
        C("tstamp", "DateTime64(3, 'UTC')", "When the alert was raised (flow alerts: the flow's first packet)"),
        C("tstamp_end", "DateTime64(3, 'UTC')", "When the condition ended, or was last seen while still engaged"),
        C("entity_type", "LowCardinality(String)",
          "What the alert is about: host, flow, domain, am_host (active monitoring), snmp_device, "
          "snmp_interface, policy, system"),
        C("entity_value", "String", "Identifier of the entity: IP, flow tuple, probe target, policy name..."),
        C("alert_type", "LowCardinality(String)",
          "Kind of alert, e.g. a flow risk name, host_scan, am_threshold_cross, policy_violation"),
        C("severity", "LowCardinality(String)",
          "ntopng severity name: info, notice, warning, error, critical, emergency"),
        C("severity_id", "UInt8", "Severity as a number (ntopng: 2 info .. 8 emergency), for sorting"),
        C("score", "UInt16", "Score contributed by the alert: higher is worse"),
        C("status", "LowCardinality(String)",
          "engaged (condition still true), released (condition ended) or stored (one-shot alert)"),
        C("source", "LowCardinality(String)", "Component that raised it: flow, host, probe, snmp, policy"),
        C("ip", "String", "Main host address concerned (host alerts, flow client), empty when none"),
        C("peer_ip", "String", "Other host address (flow server), empty when none"),
        C("description", "String", "Human-readable description"),
        C("json", "String", "Evidence as JSON (flow fields, measurements, policy rows...)"),
        C("occurrences", "UInt32", "How many times the same condition was seen while this alert stood"),
        C("acknowledged", "UInt8", "1 when an analyst acknowledged the alert"),
        C("ack_by", "String", "User who acknowledged it"),
        C("ack_time", "DateTime64(3, 'UTC')", "When it was acknowledged"),
        C("ack_comment", "String", "Comment given when acknowledging"),
        C("version", "UInt64", "Row version: the highest wins (ReplacingMergeTree)"),
    ),
    engine="ReplacingMergeTree(version)",
    partition_by="toYYYYMM(tstamp)",
    order_by="(tstamp, alert_id)",
    network_columns=("ip", "peer_ip"),
))

AM_MEASUREMENTS = register(Table(
    name="am_measurements",
    comment="Active-monitoring measurements: one row per probe run (ICMP, continuous ICMP, HTTP, throughput, TCP, DNS).",
    columns=(
        C("probe_id", "String", "Id of the active-monitoring probe"),
        C("probe_type", "LowCardinality(String)", "icmp, cicmp, http, throughput, tcp or dns"),
        C("target", "String", "Host, host:port, URL or DNS name measured"),
        C("time", "DateTime64(3, 'UTC')", "When the measurement finished"),
        C("value", "Float64", "Measured value in `unit` (NaN when the measurement failed)"),
        C("unit", "LowCardinality(String)", "ms, % or Mbit/s"),
        C("ok", "UInt8", "1 when the target answered, 0 when unreachable or failed"),
        C("threshold", "Float64", "Alert threshold in force"),
        C("crossed", "UInt8", "1 when the value crossed the threshold"),
        C("error", "String", "Why the measurement failed, empty when ok"),
        C("extra", "String", "JSON with secondary values (jitter ms, packets sent/received, HTTP status...)"),
    ),
    order_by="(probe_id, time)",
    partition_by="toYYYYMM(time)",
    ttl="toDateTime(time) + INTERVAL 400 DAY",
))


# Data directories made before PER_MINUTE existed get the column (new ones have it already).
register_view(f"ALTER TABLE flows ADD COLUMN IF NOT EXISTS PER_MINUTE {PER_MINUTE_TYPE}")

# --- timeseries ---
# Rollups of `flows` at 1-minute, 5-minute and 1-hour resolution, fed on insert by materialised
# views chained flows -> ts_<kind>_1m -> ts_<kind>_5m -> ts_<kind>_1h, plus ntopng's
# `hourly_flows`. flowscope/services/timeseries queries them and applies the configured TTLs.

TS_RESOLUTIONS = (("1m", 60, 7), ("5m", 300, 30), ("1h", 3600, 365))  # name, seconds, default days
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
_TS_BUCKET = {"1m": "toStartOfMinute", "5m": "toStartOfFiveMinutes", "1h": "toStartOfHour"}
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

    def table(self, res: str) -> str:
        return f"ts_{self.kind}_{res}"

    def rows_sql(self, extra_where: str = "1") -> str:
        """Per-flow, per-minute rows (time = start of the minute) with the rollup's columns,
        before aggregation (interface volumes: the flows' own)."""
        cols = ["toDateTime(m.1) AS time"] + [f"{e} AS `{d.name}`" for d, e in zip(self.dims, self.dim_exprs)]
        # flows only: frame counts are not filtered by address, so restricted users get flow volumes
        cols += [f"toUInt64({_per_minute(e.replace(_FRAMES_COUNTED, '0'))}) AS `{m}`" for m, e, _ in self.metrics]
        return (f"SELECT {', '.join(cols)} FROM flows {_TS_MINUTES} {_per_minute(self.array_join)} "
                f"WHERE ({self.where}) AND ({extra_where})")


TS_ROLLUPS: dict[str, Rollup] = {}


def _ts_register(r: Rollup) -> Rollup:
    TS_ROLLUPS[r.kind] = r
    keys = ", ".join(f"`{d.name}`" for d in r.dims)
    prev = None
    for res, _secs, days in TS_RESOLUTIONS:
        name = r.table(res)
        metric_cols = tuple(C(m, "SimpleAggregateFunction(sum, UInt64)", c) for m, _e, c in r.metrics)
        register(Table(
            name=name,
            comment=(f"{r.what}, one row per {res} bucket (`time`, UTC) and key. {TS_ATTRIBUTION} "
                     f"Fed on insert by materialised view mv_{name}"
                     + (f" from {prev}" if prev else " from flows") +
                     f"; query with sum() and GROUP BY (rows merge lazily). Retention: "
                     f"[timeseries] retention_{res}_days (default {days}) after `written`."),
            columns=(C("time", "DateTime('UTC')", f"Start of the {res} bucket"),) + r.dims
            + metric_cols + (_TS_WRITTEN,) + r.aliases,
            engine="AggregatingMergeTree",
            order_by=f"(time, {keys})",
            partition_by="toYYYYMM(time)",
            ttl=f"written + INTERVAL {days} DAY",
            network_columns=r.network_columns,
        ))
        sums = ", ".join(f"sum(`{m}`) AS `{m}`" for m, _e, _c in r.metrics)
        if prev is None:
            dims = ", ".join(f"{e} AS `{d.name}`" for d, e in zip(r.dims, r.dim_exprs))
            msum = ", ".join(f"sum(toUInt64({_per_minute(e)})) AS `{m}`" for m, e, _c in r.metrics)
            select = (f"SELECT toDateTime(m.1) AS time, {dims}, {msum}, now() AS written "
                      f"FROM flows {_TS_MINUTES} {_per_minute(r.array_join)} WHERE {r.where} GROUP BY time, {keys}")
            # views made before PER_MINUTE existed are replaced (CREATE ... IF NOT EXISTS would keep them)
            register_view(f"DROP VIEW IF EXISTS `mv_{name}`")
        else:
            select = (f"SELECT {_TS_BUCKET[res]}(time) AS time, {keys}, {sums}, max(written) AS written "
                      f"FROM `{prev}` GROUP BY time, {keys}")
        register_view(f"CREATE MATERIALIZED VIEW IF NOT EXISTS `mv_{name}` TO `{name}` AS {select} "
                      f"COMMENT {quote(f'Feeds {name} on every insert into ' + (prev or 'flows'))}")
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
    columns=(C("FLOW_TIME", "DateTime('UTC')", "Start of the hour of LAST_SEEN"),)
    + tuple(_F[k] for k in _HF_KEYS)
    + (C("FIRST_SEEN", "SimpleAggregateFunction(min, DateTime64(3, 'UTC'))", "Earliest FIRST_SEEN of the flows"),
       C("LAST_SEEN", "SimpleAggregateFunction(max, DateTime64(3, 'UTC'))", "Latest LAST_SEEN of the flows"),
       C("NUM_FLOWS", "SimpleAggregateFunction(sum, UInt64)", "Number of flow rows aggregated"))
    + tuple(C(k, "SimpleAggregateFunction(sum, UInt64)", "Sum of flows." + k) for k in _HF_SUMS)
    + (C("FLOW_RISK", "SimpleAggregateFunction(groupBitOr, UInt64)", "OR of the flows' risk bitmaps"),
       _TS_WRITTEN)
    + tuple(_F[a] for a in ("SRC_IP", "DST_IP", "DST_PORT", "BYTES", "L4_PROTO_NAME", "L7_PROTO_NAME")),
    engine="AggregatingMergeTree",
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
    + ", groupBitOr(flows.FLOW_RISK) AS FLOW_RISK, now() AS written FROM flows GROUP BY FLOW_TIME, "
    + ", ".join(_HF_KEYS) + " COMMENT 'Feeds hourly_flows on every insert into flows'"
)

# --- collector ---
FLOW_EXPORTERS = register(Table(
    name="flow_exporters",
    comment=("NetFlow/IPFIX/sFlow exporters seen by the collector, one row per (address, type); "
             "snapshots written periodically, the latest (highest updated_at) wins. Counters are "
             "since the collector started. See list_flow_exporters for the live view."),
    columns=(
        C("address", "String", "Exporter address (sFlow: agent address)"),
        C("type", "LowCardinality(String)", "netflow5, netflow9, ipfix or sflow"),
        C("version", "UInt16", "Export protocol version (5, 9, 10; sFlow 5)"),
        C("interface_id", "UInt16", "INTERFACE_ID of the collector listener that received it"),
        C("first_seen", "DateTime64(3, 'UTC')", "First datagram received"),
        C("last_seen", "DateTime64(3, 'UTC')", "Last datagram received"),
        C("datagrams", "UInt64", "Datagrams received"),
        C("records", "UInt64", "Flow records (sFlow: flow samples) decoded"),
        C("undecodable", "UInt64", "Datagrams or parts that could not be decoded"),
        C("sequence_gaps", "UInt64", "Times the export sequence number jumped forward"),
        C("lost", "UInt64", "Records (v5, IPFIX) or datagrams (v9, sFlow) missing by sequence numbers"),
        C("templates", "UInt32", "Templates known (v9/IPFIX)"),
        C("dropped_sets", "UInt64", "Data sets dropped because their template never came"),
        C("health", "LowCardinality(String)", "ok, degraded (loss, undecodable or dropped data) or silent"),
        C("updated_at", "DateTime64(3, 'UTC')", "When this snapshot was written"),
    ),
    engine="ReplacingMergeTree(updated_at)",
    order_by="(address, type)",
    network_columns=("address",),
))

SFLOW_COUNTERS = register(Table(
    name="sflow_counters",
    comment=("sFlow generic interface counter samples (RFC 3176 / sFlow v5 counters_sample format 1), "
             "the same counters SNMP IF-MIB polling gives: cumulative octets/packets per agent and ifIndex. "
             "Rates: difference consecutive samples of one (agent, if_index)."),
    columns=(
        C("time", "DateTime64(3, 'UTC')", "When the sample was received"),
        C("agent", "String", "sFlow agent address (the device)"),
        C("if_index", "UInt32", "ifIndex"),
        C("if_type", "UInt32", "ifType (6 ethernetCsmacd ...)"),
        C("if_speed", "UInt64", "ifSpeed in bits per second"),
        C("if_direction", "UInt8", "0 unknown, 1 full-duplex, 2 half-duplex, 3 in, 4 out"),
        C("if_status", "UInt8", "bit 0 ifAdminStatus up, bit 1 ifOperStatus up"),
        C("in_octets", "UInt64", "ifInOctets (cumulative)"),
        C("in_ucast_pkts", "UInt64", "ifInUcastPkts"),
        C("in_multicast_pkts", "UInt64", "ifInMulticastPkts"),
        C("in_broadcast_pkts", "UInt64", "ifInBroadcastPkts"),
        C("in_discards", "UInt64", "ifInDiscards"),
        C("in_errors", "UInt64", "ifInErrors"),
        C("in_unknown_protos", "UInt64", "ifInUnknownProtos"),
        C("out_octets", "UInt64", "ifOutOctets (cumulative)"),
        C("out_ucast_pkts", "UInt64", "ifOutUcastPkts"),
        C("out_multicast_pkts", "UInt64", "ifOutMulticastPkts"),
        C("out_broadcast_pkts", "UInt64", "ifOutBroadcastPkts"),
        C("out_discards", "UInt64", "ifOutDiscards"),
        C("out_errors", "UInt64", "ifOutErrors"),
    ),
    order_by="(agent, if_index, time)",
    partition_by="toYYYYMM(time)",
    ttl="toDateTime(time) + INTERVAL 365 DAY",
    network_columns=("agent",),
))


# --- hosts ---
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

# --- snmp ---
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
