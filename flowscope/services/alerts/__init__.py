"""Alerts: one alert model (ClickHouse `alerts`), exclusions, flow-risk and host alerts."""

from __future__ import annotations

from typing import Any

from flowscope.services.alerts.service import AlertsService

__all__ = ["AlertsService", "attach"]


def attach(app: Any) -> AlertsService:
    return AlertsService(app)
