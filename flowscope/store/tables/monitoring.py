"""Active-monitoring measurements."""

from __future__ import annotations

from flowscope.store.schema import Table, columns, register

AM_MEASUREMENTS = register(Table(
    name="am_measurements",
    comment="Active-monitoring measurements: one row per probe run (ICMP, continuous ICMP, HTTP, throughput, TCP, DNS).",
    columns=columns("""
            probe_id    String                  Id of the active-monitoring probe
            probe_type  LowCardinality(String)  icmp, cicmp, http, throughput, tcp or dns
            target      String                  Host, host:port, URL or DNS name measured
            time        DateTime64(3, 'UTC')    When the measurement finished
            value       Float64                 Measured value in `unit` (NaN when the measurement failed)
            unit        LowCardinality(String)  ms, % or Mbit/s
            ok          UInt8                   1 when the target answered, 0 when unreachable or failed
            threshold   Float64                 Alert threshold in force
            crossed     UInt8                   1 when the value crossed the threshold
            error       String                  Why the measurement failed, empty when ok
            extra       String                  JSON with secondary values (jitter ms, packets sent/received, HTTP status...)
        """),
    order_by="(probe_id, time)",
    partition_by="toYYYYMM(time)",
    ttl="toDateTime(time) + INTERVAL 400 DAY",
))
