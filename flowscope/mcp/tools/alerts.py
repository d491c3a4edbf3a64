"""Alert tools: query, count and acknowledge alerts; manage exclusions; expected servers."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, Field

from flowscope.addresses import AddressError, parse_ip
from flowscope.mcp.toolkit import Returns, ToolContext, ToolError, tool

Severity = Literal["info", "notice", "warning", "error", "critical", "emergency"]
EntityType = Literal["host", "flow", "domain", "am_host", "snmp_device", "snmp_interface", "policy", "system"]


def _svc(call: ToolContext) -> Any:
    svc = call.app.components.get("alerts")
    if svc is None:
        raise ToolError("the alerts component is not running on this server")
    return svc


def _time(value: str | None) -> float | None:
    try:
        from flowscope.services.flows import parse_time
    except Exception:  # pragma: no cover
        parse_time = None
    if value in (None, ""):
        return None
    try:
        if parse_time is not None:
            return parse_time(value)
        return float(value)
    except Exception as exc:
        raise ToolError(str(exc) or f"cannot read time {value!r}: use ISO 8601, epoch seconds or 1h/7d") from None


def _iso(text: Any) -> str | None:
    if text in (None, "", "1970-01-01 00:00:00.000"):
        return None
    t = str(text)
    return t.replace(" ", "T") + ("Z" if not t.endswith("Z") else "")


class AlertFilters(BaseModel):
    entity_type: EntityType | None = None
    entity_value: str | None = Field(None, description="IP, probe target, policy name...")
    alert_type: str | None = Field(None, description="e.g. port_scan, flow_risk_self_signed_cert")
    severity: Severity | None = Field(None, description="exactly")
    min_severity: Severity | None = Field(None, description="or worse")
    source: Literal["flow", "host", "probe", "snmp", "policy", "system"] | None = Field(
        None)
    status: Literal["engaged", "released", "stored"] | None = Field(
        None, description="engaged: ongoing; released: ended; stored: one-shot")
    acknowledged: bool | None = None
    host: str | None = Field(None, description="Only alerts involving this IP (either side)")
    begin: str | None = Field(None, description="From: ISO time, epoch seconds or a span back from now (1h, 7d)")
    end: str | None = Field(None, description="To: ISO time or epoch seconds")
    text: str | None = Field(None, max_length=200, description="in the description")

    def filters(self, call: ToolContext) -> dict[str, Any]:
        host = None
        if self.host:
            try:
                host = str(parse_ip(self.host))
            except AddressError as exc:
                raise ToolError(f"host: {exc}") from None
            call.scope.require(host)
        return {"entity_type": self.entity_type, "entity_value": self.entity_value, "alert_type": self.alert_type,
                "severity": self.severity, "min_severity": self.min_severity, "source": self.source,
                "status": self.status, "acknowledged": self.acknowledged, "ip": host,
                "start": _time(self.begin), "end": _time(self.end), "text": self.text}


class GetAlertsParams(AlertFilters):
    order: Literal["newest", "oldest", "score", "severity"] = Field("newest")
    limit: int = Field(50, ge=1, le=500, description="Max alerts returned")
    offset: int = Field(0, ge=0, le=1_000_000, description="Skip this many (paging)")


class Alert(BaseModel):
    alert_id: int
    time: str
    end_time: str | None
    entity_type: str
    entity_value: str
    alert_type: str
    severity: str
    score: int
    status: str
    source: str
    ip: str = ""
    peer_ip: str = ""
    description: str
    occurrences: int
    acknowledged: bool
    ack_by: str = ""
    ack_time: str | None = None
    ack_comment: str = ""
    evidence: dict[str, Any]

    @classmethod
    def of(cls, r: dict) -> "Alert":
        return cls(alert_id=int(r["alert_id"]), time=_iso(r["tstamp"]) or "", end_time=_iso(r["tstamp_end"]),
                   entity_type=r["entity_type"], entity_value=r["entity_value"], alert_type=r["alert_type"],
                   severity=r["severity"], score=int(r["score"]), status=r["status"], source=r["source"],
                   ip=r["ip"], peer_ip=r["peer_ip"], description=r["description"],
                   occurrences=int(r["occurrences"]), acknowledged=bool(int(r["acknowledged"])), ack_by=r["ack_by"],
                   ack_time=_iso(r.get("ack_time")), ack_comment=r["ack_comment"], evidence=r["evidence"])

    def line(self) -> str:
        ack = " [ack]" if self.acknowledged else ""
        seen = f", seen {self.occurrences} times" if self.occurrences > 1 else ""
        return (f"#{self.alert_id} {self.time} {self.severity.upper()} score={self.score} {self.alert_type} "
                f"{self.entity_type}={self.entity_value} ({self.status}{ack}{seen}): {self.description}")


class AlertsPage(BaseModel):
    alerts: list[Alert]
    truncated: bool = Field(description="More alerts match: use next_offset")
    next_offset: int | None = None

    def text(self) -> str:
        seen = sum(a.occurrences for a in self.alerts)
        head = (f"{len(self.alerts)} distinct alert(s), seen {seen} times" if seen != len(self.alerts)
                else f"{len(self.alerts)} alert(s)") + (" (more: use offset)" if self.truncated else "")
        return "\n".join([head] + [a.line() for a in self.alerts])


@tool(returns=Returns.ALERTS, title="Get alerts", example={"min_severity": "warning", "begin": "24h", "limit": 20})
async def get_alerts(call: ToolContext, params: GetAlertsParams) -> AlertsPage:
    """Alerts from every source (flow risks, host behaviour, probes, SNMP, policies), newest first, with
    evidence.

    Alerts from every source (nDPI flow risks, host scans/floods/score/unexpected servers, active
    monitoring, SNMP, AI policies), newest first. Filter by entity, type, severity, source, status,
    acknowledged, host or time; page with limit/offset. Each alert carries its JSON evidence."""
    svc = _svc(call)
    try:
        rows, more = await asyncio.to_thread(svc.get_alerts, call.principal, limit=params.limit,
                                             offset=params.offset, order=params.order, **params.filters(call))
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return AlertsPage(alerts=[Alert.of(r) for r in rows], truncated=more,
                      next_offset=params.offset + params.limit if more else None)


class StatsParams(AlertFilters):
    top: int = Field(20, ge=1, le=200, description="rows per breakdown")


class Count(BaseModel):
    value: str
    count: int
    unacknowledged: int
    occurrences: int

    def shown(self) -> str:
        return f"{self.value}={self.count}" + (f" ({self.occurrences} seen)" if self.occurrences != self.count else "")


class EntityCount(BaseModel):
    entity_type: str
    entity_value: str
    count: int
    score: int
    max_severity: str
    occurrences: int


class AlertStats(BaseModel):
    total: int
    occurrences: int
    unacknowledged: int
    engaged: int
    score: int
    first: str | None
    last: str | None
    by_type: list[Count]
    by_severity: list[Count]
    by_entity_type: list[Count]
    by_source: list[Count]
    top_entities: list[EntityCount]

    def text(self) -> str:
        lines = [f"{self.total} distinct alerts, {self.occurrences} occurrences (each repeat of an alert's "
                 f"condition, e.g. each risky flow, is one); {self.unacknowledged} unacknowledged, "
                 f"{self.engaged} engaged", "below, x=N (M seen): N distinct alerts, M occurrences"]
        for name in ("by_severity", "by_type", "by_source"):
            items = getattr(self, name)
            lines.append(name.replace("_", " ") + ": " + ", ".join(c.shown() for c in items))
        lines.append("top entities: " + ", ".join(f"{e.entity_type}:{e.entity_value}={e.count}"
                                                 + (f" ({e.occurrences} seen)" if e.occurrences != e.count else "")
                                                 for e in self.top_entities[:10]))
        return "\n".join(lines)


@tool(returns=Returns.ALERTS, title="Alert statistics", example={"begin": "7d"})
async def get_alert_stats(call: ToolContext, params: StatsParams) -> AlertStats:
    """Alert counts by type, severity, entity type and source, and the top entities; filters as in get_alerts.

    Alert counts by type, severity, entity type and source, plus the entities with the most alert
    score, over the same filters as get_alerts."""
    svc = _svc(call)
    try:
        st = await asyncio.to_thread(svc.get_stats, call.principal, params.top, **params.filters(call))
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    st["first"], st["last"] = _iso(st["first"]), _iso(st["last"])
    return AlertStats(**st)


class AckParams(AlertFilters):
    alert_ids: list[int] | None = Field(None, max_length=10_000)
    all_matching: bool = Field(False, description="every alert matching the filters (no alert_ids)")
    comment: str = Field("", max_length=1000)
    unacknowledge: bool = Field(False, description="undo")


class AckResult(BaseModel):
    changed: int
    acknowledged: bool

    def text(self) -> str:
        return f"{self.changed} alert(s) {'acknowledged' if self.acknowledged else 'unacknowledged'}"


@tool(returns=Returns.ALERTS, write=True, destructive=False, title="Acknowledge alerts",
      example={"alert_ids": [123456789], "comment": "known backup job"})
async def acknowledge_alerts(call: ToolContext, params: AckParams) -> AckResult:
    """Acknowledge (or undo) alerts by id, or every alert matching get_alerts' filters.

    Mark alerts as acknowledged (seen and handled), by id or by filters with all_matching=true
    (at most 10000 at a time). Acknowledged alerts stay queryable (acknowledged=true). An admin's
    acknowledgement is shared with everyone; another user's changes only their own view (and they
    can undo only their own)."""
    if not params.alert_ids and not params.all_matching:
        raise ToolError("give alert_ids, or filters with all_matching=true")
    filters = params.filters(call)
    filters.pop("acknowledged", None)
    svc = _svc(call)
    try:
        n = await asyncio.to_thread(svc.acknowledge, call.principal, call.principal.name, params.comment,
                                    acknowledged=not params.unacknowledge, alert_ids=params.alert_ids, **filters)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return AckResult(changed=n, acknowledged=not params.unacknowledge)


# --- exclusions --------------------------------------------------------------------------------

class Exclusion(BaseModel):
    id: int
    kind: str
    value: str
    alert_types: list[str]
    reason: str
    created_by: str
    created_at: float

    def line(self) -> str:
        types = ",".join(self.alert_types) or "all alert types"
        return f"#{self.id} {self.kind} {self.value} ({types}) by {self.created_by}: {self.reason}"


class ExclusionResult(BaseModel):
    exclusion: Exclusion
    message: str

    def text(self) -> str:
        return self.message


class HostExclusionParams(BaseModel):
    host: str = Field(description="IP address or CIDR whose alerts (as either side of a flow) are not raised")
    reason: str = Field(min_length=3, max_length=500)
    alert_types: list[str] = Field(default_factory=list, max_length=50,
                                   description="default: all")


class DomainExclusionParams(BaseModel):
    domain: str = Field(description="subdomains included")
    reason: str = Field(min_length=3, max_length=500)
    alert_types: list[str] = Field(default_factory=list, max_length=50,
                                   description="default: all")


class CertificateExclusionParams(BaseModel):
    certificate: str = Field(description="server name (*.example.com), SHA-1/JA3S fingerprint or issuer DN")
    reason: str = Field(min_length=3, max_length=500)
    alert_types: list[str] = Field(default_factory=list, max_length=50,
                                   description="default: all certificate alerts")


def _add_exclusion(call: ToolContext, kind: str, value: str, reason: str, types: list[str]) -> ExclusionResult:
    from flowscope.services.alerts.exclusions import ExclusionError

    try:
        ex = _svc(call).exclusions.add_for(call.principal, kind, value, reason, types)
    except ExclusionError as exc:
        raise ToolError(str(exc)) from None
    return ExclusionResult(exclusion=Exclusion(**ex),
                           message=f"{kind} exclusion #{ex['id']} for {ex['value']} added: matching alerts are no "
                                   "longer raised (existing alerts stay)")


@tool(returns=Returns.OWNED, write=True, title="Add host alert exclusion",
      example={"host": "192.168.1.20", "reason": "vulnerability scanner", "alert_types": ["port_scan"]})
async def add_host_alert_exclusion(call: ToolContext, params: HostExclusionParams) -> ExclusionResult:
    """Stop alerts about a host or network (optionally only some alert types), with a reason.

    Stop raising alerts for a host or network (either end of a flow, or the host of a host alert),
    optionally only some alert types. A reason is required; list_alert_exclusions shows them."""
    return _add_exclusion(call, "host", params.host, params.reason, params.alert_types)


@tool(returns=Returns.OWNED, write=True, title="Add domain alert exclusion",
      example={"domain": "updates.example.com", "reason": "internal update server"})
async def add_domain_alert_exclusion(call: ToolContext, params: DomainExclusionParams) -> ExclusionResult:
    """Stop alerts naming a domain or its subdomains (SNI, HTTP Host, DNS), with a reason.

    Stop raising alerts whose flow or evidence names this domain or a subdomain of it (TLS SNI,
    HTTP Host, DNS query), optionally only some alert types. A reason is required."""
    return _add_exclusion(call, "domain", params.domain, params.reason, params.alert_types)


@tool(returns=Returns.OWNED, write=True, title="Add certificate alert exclusion",
      example={"certificate": "intranet.example.lan", "reason": "internal CA, self-signed on purpose"})
async def add_certificate_alert_exclusion(call: ToolContext, params: CertificateExclusionParams) -> ExclusionResult:
    """Accept a TLS certificate (name or fingerprint): its certificate alerts stop, with a reason.

    Accept a TLS certificate: certificate alerts (self-signed, expired, mismatch...) about this server
    name or fingerprint are no longer raised. A reason is required."""
    return _add_exclusion(call, "certificate", params.certificate, params.reason, params.alert_types)


class ListExclusionsParams(BaseModel):
    kind: Literal["host", "domain", "certificate"] | None = None
    limit: int = Field(200, ge=1, le=5000)


class ExclusionList(BaseModel):
    exclusions: list[Exclusion]
    truncated: bool

    def text(self) -> str:
        return "\n".join([f"{len(self.exclusions)} exclusion(s)"] + [e.line() for e in self.exclusions])


@tool(returns=Returns.OWNED, title="List alert exclusions", example={"kind": "host"})
async def list_alert_exclusions(call: ToolContext, params: ListExclusionsParams) -> ExclusionList:
    """Alert exclusions (host, domain, certificate), with who added them and why.

    Host, domain and certificate alert exclusions, with who added them and why: yours, and those
    about what you may see (users limited to some networks: host exclusions inside them)."""
    items = _svc(call).exclusions.list_for(call.principal, params.kind)
    return ExclusionList(exclusions=[Exclusion(**e) for e in items[:params.limit]], truncated=len(items) > params.limit)


class RemoveExclusionParams(BaseModel):
    id: int = Field(ge=1, le=2**62, description="from list_alert_exclusions")


class Removed(BaseModel):
    id: int
    kind: str
    value: str

    def text(self) -> str:
        return f"exclusion #{self.id} ({self.kind} {self.value}) removed: matching alerts are raised again"


@tool(returns=Returns.OWNED, write=True, title="Remove alert exclusion", example={"id": 3})
async def remove_alert_exclusion(call: ToolContext, params: RemoveExclusionParams) -> Removed:
    """Remove an alert exclusion: its alerts are raised again.

    Remove an alert exclusion you added (admins: any): matching alerts are raised again from now on."""
    from flowscope.services.alerts.exclusions import ExclusionError

    try:
        return Removed(**_svc(call).exclusions.remove_for(call.principal, params.id))
    except ExclusionError as exc:
        raise ToolError(str(exc)) from None


# --- expected servers --------------------------------------------------------------------------

class ExpectedParams(BaseModel):
    observed_limit: int = Field(10, ge=0, le=200, description="observed servers per kind (0: none)")


class ObservedServer(BaseModel):
    server: str
    flows: int
    clients: int
    last_seen: str | None
    expected: bool | None = Field(description="In the expected list; null when no list is configured for the kind")


class ExpectedServers(BaseModel):
    expected: dict[str, list[str]] = Field(description="Configured lists ([expected_servers] in flowscope.toml): "
                                                       "dns, dhcp, ntp, smtp (IPs/CIDRs), gateway (MAC addresses)")
    observed: dict[str, list[ObservedServer]]
    note: str

    def text(self) -> str:
        lines = [self.note]
        for k, v in self.expected.items():
            lines.append(f"{k}: expected {', '.join(v) or '(not configured)'}; observed "
                         + ", ".join(f"{o.server}{'' if o.expected in (None, True) else ' (UNEXPECTED)'}"
                                     for o in self.observed.get(k, [])))
        return "\n".join(lines)


@tool(returns=Returns.ALERTS, title="List expected servers", example={})
async def list_expected_servers(call: ToolContext, params: ExpectedParams) -> ExpectedServers:
    """Expected DNS/DHCP/NTP/SMTP servers and gateways against those seen in flows; unexpected ones flagged.

    The configured expected DNS, DHCP, NTP, SMTP servers and gateways, and the servers actually seen in
    stored flows for each, flagged when unexpected. A server not in a configured list raises an
    unexpected_<kind>_server host alert the first time it is seen."""
    svc = _svc(call)
    observed = {}
    if params.observed_limit:
        raw = await asyncio.to_thread(svc.observed_servers, call.principal, params.observed_limit)
        observed = {k: [ObservedServer(server=o["server"], flows=o["flows"], clients=o["clients"],
                                       last_seen=_iso(o["last_seen"]), expected=o["expected"]) for o in v]
                    for k, v in raw.items()}
    return ExpectedServers(expected=svc.expected_servers(), observed=observed,
                           note="Kinds without a configured list are not checked. Configure them in flowscope.toml "
                                "under [expected_servers], e.g. dns = [\"192.168.1.1\"].")
