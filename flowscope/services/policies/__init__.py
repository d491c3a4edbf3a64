"""AI policies: plain-language requirements compiled to scheduled ClickHouse queries whose rows are violations."""

from __future__ import annotations

from typing import Any

from flowscope.services.policies.service import PERIODICITIES, PoliciesService, PolicyError

__all__ = ["PoliciesService", "PolicyError", "PERIODICITIES", "attach"]


def attach(app: Any) -> PoliciesService:
    return PoliciesService(app)
