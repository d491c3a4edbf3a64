"""SNMP devices: registry (SQLite), async poller (pysnmp 7), rates, and what the MCP tools ask.

`attach(app)` returns the `SnmpService` component (`app.components["snmp"]`); its `start()`
runs the poller with the HTTP server's lifespan.
"""

from __future__ import annotations

from typing import Any

from flowscope.services.snmp.registry import Device, Registry, RegistryError, Secret, make_device
from flowscope.services.snmp.service import PollOutcome, SnmpService

__all__ = ["attach", "SnmpService", "Registry", "RegistryError", "Device", "Secret", "make_device",
           "PollOutcome"]


def attach(app: Any) -> SnmpService:
    return SnmpService(app)
