"""Alerts of every source (flow risks, hosts, probes, SNMP, policies)."""

from __future__ import annotations

from flowscope.store.schema import C, Table, columns, register

ALERTS = register(Table(
    name="alerts",
    comment=(
        "Every alert, close to ntopng's alert tables: flow alerts from nDPI flow risks, host alerts "
        "(score, scans, floods, unexpected servers), active-monitoring, SNMP and AI-policy alerts. "
        "Rows are versioned (ReplacingMergeTree): read with FINAL to see the latest state."
    ),
    columns=(
        *columns("""
            alert_id    UInt64                Unique id of the alert
            tstamp      DateTime64(3, 'UTC')  When the alert was raised (flow alerts: the flow's first packet)
            tstamp_end  DateTime64(3, 'UTC')  When the condition ended, or was last seen while still engaged
        """),
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
        *columns("""
            source        LowCardinality(String)  Component that raised it: flow, host, probe, snmp, policy
            ip            String                  Main host address concerned (host alerts, flow client), empty when none
            peer_ip       String                  Other host address (flow server), empty when none
            description   String                  Human-readable description
            json          String                  Evidence as JSON (flow fields, measurements, policy rows...)
            occurrences   UInt32                  How many times the same condition was seen while this alert stood
            acknowledged  UInt8                   1 when an analyst acknowledged the alert
            ack_by        String                  User who acknowledged it
            ack_time      DateTime64(3, 'UTC')    When it was acknowledged
            ack_comment   String                  Comment given when acknowledging
            version       UInt64                  Row version: the highest wins (ReplacingMergeTree)
        """),
    ),
    engine="ReplacingMergeTree(version)",
    partition_by="toYYYYMM(tstamp)",
    order_by="(tstamp, alert_id)",
    network_columns=("ip", "peer_ip"),
))

ALERT_ACKS = register(Table(
    name="alert_acks",
    comment=(
        "Acknowledgements by users who are not admins: they change only that user's view of an alert "
        "(an admin's acknowledgement is shared, in `alerts`). Read with FINAL: the highest version wins."
    ),
    columns=(
        C("user", "String", "User who acknowledged (or un-acknowledged) the alert"),
        C("alert_id", "UInt64", "Id of the alert in `alerts`"),
        C("acknowledged", "UInt8", "1 acknowledged, 0 acknowledgement withdrawn"),
        C("ack_time", "DateTime64(3, 'UTC')", "When"),
        C("ack_comment", "String", "Comment given when acknowledging"),
        C("version", "UInt64", "Row version: the highest wins (ReplacingMergeTree)"),
    ),
    engine="ReplacingMergeTree(version)",
    order_by="(user, alert_id)",
    admin_only=True,
))
