"""Active monitoring tools: catalogue, enabled probes with results, add and remove probes."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, Field

from flowscope.mcp.toolkit import Returns, ToolContext, ToolError, tool

ProbeKind = Literal["icmp", "cicmp", "http", "throughput", "tcp", "dns"]


def _svc(call: ToolContext) -> Any:
    svc = call.app.components.get("monitoring")
    if svc is None:
        raise ToolError("the active monitoring component is not running on this server")
    return svc


class ScriptType(BaseModel):
    type: str
    title: str
    unit: str
    operator: str = Field(description="'>': alert when the value is above the threshold; '<': below")
    alert_when: str
    default_threshold: float
    min_threshold: float
    max_threshold: float
    granularities: list[str]
    target: str = Field(description="What the target must be")
    description: str


class Catalogue(BaseModel):
    scripts: list[ScriptType]

    def text(self) -> str:
        return "\n".join(f"{s.type}: {s.title} [{s.unit}] alert when {s.operator} threshold (default "
                         f"{s.default_threshold:g}, {s.min_threshold:g}..{s.max_threshold:g}); target: {s.target}; "
                         f"granularities: {', '.join(s.granularities)}" for s in self.scripts)


class NoParams(BaseModel):
    pass


@tool(returns=Returns.CATALOGUE, title="Available active monitoring scripts", example={})
async def list_available_active_monitoring_scripts(call: ToolContext, params: NoParams) -> Catalogue:
    """Probe types (icmp, cicmp, http, throughput, tcp, dns): unit, thresholds, target format.

    The kinds of active measurement flowscope can run (icmp, cicmp, http, throughput, tcp, dns), with
    unit, alert operator, default and allowed threshold range, granularities and target format."""
    from flowscope.services.monitoring import TYPES

    return Catalogue(scripts=[ScriptType(**t.as_dict()) for t in TYPES.values()])


class Measurement(BaseModel):
    """One probe run."""

    time: str | None = None
    value: float | None = None
    unit: str = ""
    ok: bool = False
    crossed: bool = False
    error: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)


class HourlyAvailability(BaseModel):
    hour: str
    measurements: int
    availability_pct: float | None
    avg_value: float | None
    threshold_crossings: int


class Probe(BaseModel):
    id: str
    type: str
    target: str
    threshold: float
    unit: str
    operator: str
    granularity: str
    options: dict[str, Any]
    created_by: str
    enabled: bool = Field(True, description="false: disabled because its owner was removed")
    last: Measurement | None = None
    availability_last_hour_pct: float | None = None
    hourly: list[HourlyAvailability] = Field(default_factory=list)
    alerting: list[str] = Field(default_factory=list, description="Engaged alerts: threshold, unreachable")

    def line(self) -> str:
        last = self.last
        val = "no measurement yet" if last is None else (
            f"{last.value:g} {self.unit}" if last.value is not None else f"failed: {last.error}")
        al = f" ALERT: {', '.join(self.alerting)}" if self.alerting else ""
        av = f", availability 1h {self.availability_last_hour_pct:g}%" if self.availability_last_hour_pct is not None else ""
        return (f"{self.id} every {self.granularity}: {val} (threshold {self.operator} {self.threshold:g} "
                f"{self.unit}){av}{al}")


class EnabledParams(BaseModel):
    type: ProbeKind | None = None
    history_hours: int = Field(0, ge=0, le=168, description="hourly availability, last N hours")
    limit: int = Field(100, ge=1, le=1000)


class ProbeList(BaseModel):
    probes: list[Probe]
    truncated: bool

    def text(self) -> str:
        return "\n".join([f"{len(self.probes)} probe(s)"] + [p.line() for p in self.probes])


def _probe(svc: Any, p: dict, hours: int) -> Probe:
    from flowscope.services.monitoring import TYPES

    spec = TYPES[p["type"]]
    last = svc.last(p["id"])
    hourly = svc.availability(p["id"], max(hours, 1))
    alerts = svc.alerts
    return Probe(id=p["id"], type=p["type"], target=p["target"], threshold=p["threshold"], unit=spec.unit,
                 operator=">" if spec.operator == "gt" else "<", granularity=p["granularity"],
                 options=p["options"], created_by=p["created_by"], enabled=p.get("enabled", True),
                 last=Measurement(**{k: last.get(k) for k in Measurement.model_fields if k in last}) if last else None,
                 availability_last_hour_pct=hourly[-1]["availability_pct"] if hourly else None,
                 hourly=[HourlyAvailability(**h) for h in hourly] if hours else [],
                 alerting=[k for k in ("threshold", "unreachable")
                           if alerts is not None and alerts.is_engaged(("am", p["id"], k))])


@tool(returns=Returns.OWNED, title="Enabled active monitoring scripts", example={"history_hours": 24})
async def list_enabled_active_monitoring_scripts(call: ToolContext, params: EnabledParams) -> ProbeList:
    """Configured probes with last measurement, availability and engaged alerts.

    The active-monitoring probes configured, with their last measurement, availability over the last
    hour, optional hourly history, and whether a threshold or unreachability alert is engaged. Users
    limited to some networks see their own probes and those aimed at addresses inside them."""
    svc = _svc(call)
    probes = svc.list_for(call.principal, params.type)
    page = probes[:params.limit]
    out = await asyncio.to_thread(lambda: [_probe(svc, p, params.history_hours) for p in page])
    return ProbeList(probes=out, truncated=len(probes) > params.limit)


class AddParams(BaseModel):
    type: ProbeKind = Field()
    target: str = Field(max_length=2048, description="IP/name (icmp), URL (http, throughput), HOST:PORT (tcp), name (dns)")
    threshold: float | None = Field(None, description="in the type's unit")
    granularity: Literal["min", "5mins", "hour"] = Field("5mins")
    server: str | None = Field(None, description="dns: server IP[:port]")
    record_type: Literal["A", "AAAA", "MX", "TXT", "NS", "CNAME"] | None = Field(None, description="dns")
    packets: int | None = Field(None, ge=2, le=100, description="cicmp (default 10)")
    verify_tls: bool | None = Field(None, description="http, throughput (default true)")


class AddResult(BaseModel):
    probe: Probe
    first_measurement: dict[str, Any]
    message: str

    def text(self) -> str:
        return self.message + "\n" + self.probe.line()


@tool(returns=Returns.OWNED, write=True, destructive=False, title="Add active monitoring script",
      example={"type": "icmp", "target": "192.168.1.1", "threshold": 50, "granularity": "min"})
async def add_active_monitoring_script(call: ToolContext, params: AddParams) -> AddResult:
    """Probe a target on a schedule; alerts when the threshold is crossed or it is unreachable.

    Start measuring a target on a schedule: validates the host/URL and threshold, refuses duplicates,
    runs the first measurement at once and returns it. Alerts are raised when the threshold is crossed
    or the target is unreachable, and released when it recovers. Names are resolved and every address
    (and the dns server option) must be inside your allowed networks; loopback, link-local, multicast
    and cloud-metadata addresses are for admins only. Each run re-checks with the owner's rights."""
    from flowscope.services.monitoring import ProbeError

    svc = _svc(call)
    opts = {k: v for k, v in (("server", params.server), ("record_type", params.record_type),
                              ("packets", params.packets), ("verify_tls", params.verify_tls)) if v is not None}
    try:
        p, first = await svc.add(params.type, params.target, params.threshold, params.granularity, opts,
                                 principal=call.principal)
    except ProbeError as exc:
        raise ToolError(str(exc)) from None
    if not first.get("ran", True):
        msg = f"probe {p['id']} added, but the measurement cannot run on this server: {first['error']}"
    elif first["ok"]:
        msg = (f"probe {p['id']} added; first measurement {first['value']:g} {first['unit']}"
               + (" (threshold crossed: alert raised)" if first["crossed"] else ""))
    else:
        msg = f"probe {p['id']} added; first measurement failed: {first['error']} (unreachable alert raised)"
    probe = await asyncio.to_thread(_probe, svc, p, 0)
    return AddResult(probe=probe, first_measurement=first, message=msg)


class RemoveParams(BaseModel):
    id: str = Field(max_length=2100, description="e.g. icmp:10.0.0.1")


class RemoveResult(BaseModel):
    id: str
    type: str
    target: str

    def text(self) -> str:
        return f"probe {self.id} removed (its measurements stay in am_measurements)"


@tool(returns=Returns.OWNED, write=True, title="Remove active monitoring script", example={"id": "icmp:192.168.1.1"})
async def remove_active_monitoring_script(call: ToolContext, params: RemoveParams) -> RemoveResult:
    """Stop a probe: its alerts are released, its measurements kept.

    Stop a probe you added (admins: any); its engaged alerts are released and its past
    measurements kept."""
    from flowscope.services.monitoring import ProbeError

    svc = _svc(call)
    try:
        return RemoveResult(**svc.remove(params.id, call.principal))
    except ProbeError as exc:
        raise ToolError(str(exc)) from None
