"""SNMP devices: registry (SQLite), async poller (pysnmp 7), rates, and what the MCP tools ask.

`attach(app)` returns the `SnmpService` component (`app.components["snmp"]`); its `start()`
runs the poller with the HTTP server's lifespan. The names below are imported on first use, so
the registry, the rates and the `flowscope snmp` commands work without pysnmp; without it the
component is unavailable, with the reason, in /health and get_interfaces.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"Device": "registry", "Registry": "registry", "RegistryError": "registry", "Secret": "registry",
            "make_device": "registry", "PollOutcome": "service", "SnmpService": "service"}

__all__ = ["attach", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def attach(app: Any):
    from flowscope.modules import ComponentUnavailable

    try:
        importlib.import_module("pysnmp")  # the poller imports the rest of it when it first polls
    except ModuleNotFoundError:
        raise ComponentUnavailable("SNMP polling needs the Python package pysnmp, which is not installed "
                                   "(pip install pysnmp)") from None
    from flowscope.services.snmp.service import SnmpService

    return SnmpService(app)
