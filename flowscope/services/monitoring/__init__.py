"""Active monitoring: ICMP, continuous ICMP, HTTP, throughput, TCP and DNS probes on a schedule."""

from __future__ import annotations

from typing import Any

from flowscope.services.monitoring.service import GRANULARITIES, TYPES, MonitoringService, ProbeError

__all__ = ["MonitoringService", "ProbeError", "TYPES", "GRANULARITIES", "attach"]


def attach(app: Any) -> MonitoringService:
    return MonitoringService(app)
