"""The series catalogue: which timeseries exist, where they are stored and how to read them.

An entity kind (interface, host, application, SNMP interface, probe...) maps to storage — either
rollup tables at fixed resolutions (fed by materialised views over `flows`, see
flowscope/store/tables/timeseries.py) or one raw table with a time column
that is bucketed on the fly — plus its metrics (SQL aggregates over that storage) and its
dimensions (filter / split keys, as SQL label expressions).

Every SQL fragment here is written by us; request values only ever reach SQL as `{name:Type}`
parameters, and identifiers only ever come from this catalogue.

Other components plug in with `register_series(SeriesKind(...))`; a kind whose table is missing
is simply reported as unavailable, and metrics whose columns are missing are hidden.

Restricted users (with allowed networks):
  * scope="columns": the storage rows hold an IP (e.g. `host`), filtered with
    `scope.sql(scope_columns)`.
  * scope="flows": the rollup aggregates across hosts and cannot be filtered, so for restricted
    users the same numbers are computed from `flows` (same LAST_SEEN rule) limited to flows with
    an end inside their networks. Metrics that do not come from flows (interface drops) are
    refused to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowscope.store import schema

#: rollup resolutions: name -> seconds
RESOLUTIONS = {name: secs for name, secs, _days in schema.TS_RESOLUTIONS}

_PROTO_NAME = "dictGetOrDefault('ndpi_protocols', 'name', toUInt64({c}), toString({c}))"
APP_LABEL = (f"if(L7_PROTO_MASTER != 0 AND L7_PROTO_MASTER != L7_PROTO, "
             f"concat({_PROTO_NAME.format(c='L7_PROTO_MASTER')}, '.', {_PROTO_NAME.format(c='L7_PROTO')}), "
             f"{_PROTO_NAME.format(c='L7_PROTO')})")
PROTO_LABEL = _PROTO_NAME.format(c="if(L7_PROTO_MASTER != 0, L7_PROTO_MASTER, L7_PROTO)")
L4_LABEL = ("multiIf(PROTOCOL = 6, 'TCP', PROTOCOL = 17, 'UDP', PROTOCOL = 1, 'ICMP', PROTOCOL = 58, 'ICMPv6', "
            "PROTOCOL = 2, 'IGMP', PROTOCOL = 47, 'GRE', PROTOCOL = 50, 'ESP', PROTOCOL = 132, 'SCTP', "
            "toString(PROTOCOL))")
CATEGORY_LABEL = "dictGetOrDefault('ndpi_categories', 'name', toUInt64(L7_CATEGORY), toString(L7_CATEGORY))"


@dataclass(frozen=True)
class Metric:
    name: str
    agg: str  # SQL aggregate over the storage columns
    unit: str  # bytes | packets | flows | score | drops | bps | pps | ms | percent | value
    description: str
    kind: str = "counter"  # counter: summed per bucket (charts show a rate); gauge: averaged
    columns: tuple[str, ...] = ()  # storage columns it needs (hidden when missing)
    from_flows: bool = True  # False: not derivable from `flows` (refused to restricted users)


@dataclass(frozen=True)
class Dimension:
    name: str
    expr: str  # SQL label expression over the storage columns
    description: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeriesKind:
    entity: str
    description: str
    metrics: tuple[Metric, ...]
    dimensions: tuple[Dimension, ...]
    #: dimension naming one entity of this kind (e.g. host), None when the kind is a total
    key: str | None = None
    #: rollups: resolution name -> table; empty for a raw table
    tables: dict[str, str] = field(default_factory=dict)
    raw_table: str | None = None
    time_column: str = "time"
    scope: str = "flows"  # flows | columns
    scope_columns: tuple[str, ...] = ()
    rollup: str | None = None  # schema.TS_ROLLUPS key (flows fallback for restricted users)

    @property
    def resolutions(self) -> list[str]:
        return list(self.tables) if self.tables else ["raw", *RESOLUTIONS]

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)


CATALOGUE: dict[str, SeriesKind] = {}


def register_series(kind: SeriesKind) -> SeriesKind:
    CATALOGUE[kind.entity] = kind
    return kind


def _c(name, agg, unit, desc, **kw) -> Metric:
    return Metric(name, agg, unit, desc, **kw)


_IFACE_DIM = Dimension("interface_id", "INTERFACE_ID", "Capture interface / source id (see get_interfaces)")
_BPF = (
    _c("bytes", "sum(bytes)", "bytes", "Traffic, both directions (charted as bits/s)"),
    _c("packets", "sum(packets)", "packets", "Packets, both directions (charted as packets/s)"),
    _c("flows", "sum(flows)", "flows", "Flows ending in the bucket"),
)


#: the "table" of a resolution a rollup does not store: computed from `flows` (Rollup.rows_sql)
FROM_FLOWS = "flows"


def _rollup_tables(kind: str) -> dict[str, str]:
    rollup = schema.TS_ROLLUPS[kind]
    return {res: rollup.table(res) if res in rollup.resolutions else FROM_FLOWS for res in RESOLUTIONS}


register_series(SeriesKind(
    entity="interface",
    description="Totals per capture interface/source: traffic, packets, flows and capture drops",
    metrics=_BPF + (_c("drops", "sum(drops)", "packets", "Packets dropped by the capture", from_flows=False),),
    dimensions=(_IFACE_DIM,), key="interface_id", tables=_rollup_tables("interface"), rollup="interface",
))
register_series(SeriesKind(
    entity="host",
    description="Per host: bytes sent and received, flows as client/server, score",
    metrics=(
        _c("bytes", "sum(bytes_sent) + sum(bytes_rcvd)", "bytes", "Traffic sent + received"),
        _c("bytes_sent", "sum(bytes_sent)", "bytes", "Traffic the host sent"),
        _c("bytes_rcvd", "sum(bytes_rcvd)", "bytes", "Traffic the host received"),
        _c("packets", "sum(packets_sent) + sum(packets_rcvd)", "packets", "Packets sent + received"),
        _c("flows", "sum(flows_as_client) + sum(flows_as_server)", "flows", "Flows (as client or server)"),
        _c("flows_as_client", "sum(flows_as_client)", "flows", "Flows the host started"),
        _c("flows_as_server", "sum(flows_as_server)", "flows", "Flows the host answered"),
        _c("score", "sum(score)", "score", "Sum of the scores of the host's flows"),
    ),
    dimensions=(Dimension("host", "host", "Host IP address"), _IFACE_DIM), key="host",
    tables=_rollup_tables("host"), scope="columns", scope_columns=("host",), rollup="host",
))
_APP_DIMS = (
    Dimension("application", APP_LABEL, "nDPI application, e.g. TLS.Google or DNS"),
    Dimension("protocol", PROTO_LABEL, "nDPI master protocol, e.g. TLS, QUIC, DNS"),
    Dimension("l4_proto", L4_LABEL, "Transport protocol: TCP, UDP, ICMP..."),
    _IFACE_DIM,
)
register_series(SeriesKind(
    entity="application",
    description="Per nDPI application (and master protocol, L4 protocol): bytes, packets, flows",
    metrics=_BPF, dimensions=_APP_DIMS, key="application",
    tables=_rollup_tables("application"), rollup="application",
))
register_series(SeriesKind(
    entity="category",
    description="Per nDPI category (Web, Media, Network...): bytes, packets, flows",
    metrics=_BPF, dimensions=(Dimension("category", CATEGORY_LABEL, "nDPI category name"), _IFACE_DIM),
    key="category", tables=_rollup_tables("category"), rollup="category",
))
_SENT_RCVD = (
    _c("bytes", "sum(bytes_sent) + sum(bytes_rcvd)", "bytes", "Traffic sent + received"),
    _c("bytes_sent", "sum(bytes_sent)", "bytes", "Traffic sent from there"),
    _c("bytes_rcvd", "sum(bytes_rcvd)", "bytes", "Traffic received there"),
    _c("flows", "sum(flows)", "flows", "Flows with one end there"),
)
register_series(SeriesKind(
    entity="country",
    description="Per country of client or server (when geolocation is known)",
    metrics=_SENT_RCVD, dimensions=(Dimension("country", "toString(country)", "ISO country code"), _IFACE_DIM),
    key="country", tables=_rollup_tables("country"), rollup="country",
))
register_series(SeriesKind(
    entity="asn",
    description="Per autonomous system of client or server (when known)",
    metrics=_SENT_RCVD, dimensions=(Dimension("asn", "toString(asn)", "Autonomous system number"), _IFACE_DIM),
    key="asn", tables=_rollup_tables("asn"), rollup="asn",
))

# --- series from other components: raw tables bucketed on the fly --------------------------------
_SNMP_RATES = [("in_bps", "bps", "Inbound rate"), ("out_bps", "bps", "Outbound rate"),
               ("in_pps", "pps", "Inbound packets/s"), ("out_pps", "pps", "Outbound packets/s"),
               ("in_errors_ps", "errors/s", "Inbound errors per second"),
               ("out_errors_ps", "errors/s", "Outbound errors per second"),
               ("in_discards_ps", "discards/s", "Inbound discards per second"),
               ("out_discards_ps", "discards/s", "Outbound discards per second"),
               ("in_util", "percent", "Inbound utilisation"), ("out_util", "percent", "Outbound utilisation"),
               ("in_utilization", "percent", "Inbound utilisation"),
               ("out_utilization", "percent", "Outbound utilisation")]
register_series(SeriesKind(
    entity="snmp_interface",
    description="SNMP-polled interface rates per device and ifIndex (gauges: averaged per bucket)",
    metrics=tuple(_c(n, f"avg(`{n}`)", u, d, kind="gauge", columns=(n,)) for n, u, d in _SNMP_RATES)
    + tuple(_c(f"max_{n}", f"max(`{n}`)", u, f"Peak {d.lower()} in the bucket", kind="gauge", columns=(n,))
            for n, u, d in _SNMP_RATES[:2])
    + tuple(_c(n, f"sum(`{n}`)", u, d, columns=(n,)) for n, u, d in (
        ("in_errors", "errors", "Inbound errors"), ("out_errors", "errors", "Outbound errors"),
        ("in_discards", "discards", "Inbound discards"), ("out_discards", "discards", "Outbound discards"))),
    dimensions=(Dimension("device", "toString(device)", "SNMP device name", ("device",)),
                Dimension("host", "toString(host)", "SNMP device address", ("host",)),
                Dimension("if_index", "toString(if_index)", "ifIndex", ("if_index",)),
                Dimension("if_name", "toString(if_name)", "Interface name", ("if_name",))),
    key="if_name", raw_table="snmp_interface_ts", scope="columns", scope_columns=("host",),
))
register_series(SeriesKind(
    entity="probe",
    description="Active-monitoring measurements per probe (RTT ms, HTTP ms, throughput Mbit/s...)",
    metrics=(
        _c("value", "avg(value)", "value", "Average measured value (unit depends on the probe)",
           kind="gauge", columns=("value",)),
        _c("max_value", "max(value)", "value", "Worst (largest) value in the bucket", kind="gauge",
           columns=("value",)),
        _c("availability", "avg(ok) * 100", "percent", "Share of runs that succeeded", kind="gauge",
           columns=("ok",)),
        _c("threshold_crossings", "sum(crossed)", "value", "Runs whose value crossed the threshold",
           columns=("crossed",)),
    ),
    dimensions=(Dimension("probe_id", "probe_id", "Probe id", ("probe_id",)),
                Dimension("probe_type", "toString(probe_type)", "icmp, http, dns...", ("probe_type",)),
                Dimension("target", "target", "Target measured", ("target",))),
    key="probe_id", raw_table="am_measurements", scope="columns", scope_columns=("target",),
))


def unit_column(kind: SeriesKind) -> str | None:
    """A storage column that tells the unit of raw values (am_measurements.unit)."""
    return "unit" if kind.entity == "probe" else None
