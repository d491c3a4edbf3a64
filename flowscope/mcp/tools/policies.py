"""AI policy tools: create, list, update, pause/resume, delete and run policies."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, Field

from flowscope.mcp.toolkit import Returns, ToolContext, ToolError, tool

Periodicity = Literal["min", "5min", "hourly", "daily"]


def _svc(call: ToolContext) -> Any:
    svc = call.app.components.get("policies")
    if svc is None:
        raise ToolError("the AI policies component is not running on this server")
    return svc


async def _do(fn, *args, **kw):
    from flowscope.services.policies import PolicyError

    try:
        return await asyncio.to_thread(fn, *args, **kw)
    except PolicyError as exc:
        raise ToolError(str(exc)) from None


class Policy(BaseModel):
    id: int
    name: str
    description: str
    sql: str
    compiled_by: str = Field(description="agent (SQL given), llm (configured provider) or builtin (intent compiler)")
    intent: str
    explanation: str
    periodicity: str
    score: int
    alert_message: str
    paused: bool
    paused_reason: str = Field("", description="Why the server paused it (owner removed or no longer admin)")
    owner: str
    last_run: float | None = None
    last_matches: int | None = None
    last_error: str | None = None

    @classmethod
    def of(cls, p: dict) -> "Policy":
        return cls(id=p["id"], name=p["name"], description=p["description"], sql=p["sql"], compiled_by=p["source"],
                   intent=p["intent"], explanation=p["explanation"], periodicity=p["periodicity"], score=p["score"],
                   alert_message=p["alert_message"], paused=bool(p["paused"]),
                   paused_reason=p.get("paused_reason") or "", owner=p["owner"],
                   last_run=p.get("last_run"), last_matches=p.get("last_matches"), last_error=p.get("last_error"))

    def line(self) -> str:
        state = (f"paused: {self.paused_reason}" if self.paused_reason else "paused") if self.paused \
            else f"every {self.periodicity}"
        last = "" if self.last_run is None else f", last run matched {self.last_matches}"
        err = f", last error: {self.last_error}" if self.last_error else ""
        return f"#{self.id} {self.name} [{self.intent}, {state}, score {self.score}{last}{err}]: {self.description}"


class DryRun(BaseModel):
    columns: list[str]
    matches: int = Field(description="Rows the policy matches right now (each would be a violation)")
    truncated: bool
    sample: list[list[Any]]


class PolicyResult(BaseModel):
    policy: Policy
    dry_run: DryRun | None = None
    explanation: str = ""
    notes: list[str] = Field(default_factory=list)

    def text(self) -> str:
        lines = [self.policy.line(), "SQL: " + self.policy.sql]
        if self.explanation:
            lines.append("What it checks: " + self.explanation)
        if self.dry_run is not None:
            lines.append(f"Matches now: {self.dry_run.matches}" + (" (truncated)" if self.dry_run.truncated else ""))
            for row in self.dry_run.sample[:5]:
                lines.append("  " + ", ".join(f"{c}={v}" for c, v in zip(self.dry_run.columns, row)))
        lines += self.notes
        return "\n".join(lines)


class CreateParams(BaseModel):
    description: str = Field(min_length=3, max_length=2000,
                             description="e.g. 'no RDP from the internet'")
    sql: str | None = Field(None, max_length=20000,
                            description="rows are violations")
    name: str | None = Field(None, max_length=80)
    periodicity: Periodicity = Field("5min")
    score: int = Field(100, ge=1, le=1000, description="per violation")
    alert_message: str | None = Field(None, max_length=500)


@tool(returns=Returns.OWNED, write=True, destructive=False, title="Create AI policy",
      example={"description": "No SSH or RDP from the internet", "periodicity": "5min"})
async def create_ai_policy(call: ToolContext, params: CreateParams) -> PolicyResult:
    """Turn a requirement (plain language or SQL) into a scheduled query whose rows raise alerts.

    Turn a plain-language requirement into a scheduled ClickHouse query; every row it returns is a
    violation and raises a policy_violation alert with the row as evidence. Compiled from `sql` if given
    (checked like the query tool), else by the configured LLM, else by built-in intents: port scan,
    host bytes per period, application used by/to a network, traffic to/from a country, new MAC/device,
    SSH/Telnet/RDP to/from the internet, DNS to non-approved servers, clear-text credentials, traffic
    over N times its baseline, a given flow risk. Refuses duplicates; returns what it matches now."""
    svc = _svc(call)
    res = await _do(svc.create, call.principal, params.description, params.sql, params.name, params.periodicity,
                    params.score, params.alert_message)
    return PolicyResult(policy=Policy.of(res["policy"]), dry_run=DryRun(**res["dry_run"]),
                        explanation=res["explanation"], notes=res["notes"])


class ListParams(BaseModel):
    limit: int = Field(200, ge=1, le=2000)


class PolicyList(BaseModel):
    policies: list[Policy]
    truncated: bool

    def text(self) -> str:
        return "\n".join([f"{len(self.policies)} polic{'y' if len(self.policies) == 1 else 'ies'}"]
                         + [p.line() for p in self.policies])


@tool(returns=Returns.OWNED, title="List AI policies", example={})
async def list_ai_policies(call: ToolContext, params: ListParams) -> PolicyList:
    """AI policies with their SQL, schedule, state and last run.

    Policies with their SQL, schedule, state and last run (your own, or all for admins). A policy
    runs with its owner's current rights; it is paused, with the reason, when its owner is removed
    or loses the admin role it was made with."""
    items = _svc(call).list_for(call.principal)
    return PolicyList(policies=[Policy.of(p) for p in items[:params.limit]], truncated=len(items) > params.limit)


class Ref(BaseModel):
    policy: str = Field(max_length=80, description="id or name")


class UpdateParams(Ref):
    description: str | None = Field(None, min_length=3, max_length=2000,
                                    description="recompiled unless sql is given")
    sql: str | None = Field(None, max_length=20000)
    name: str | None = Field(None, max_length=80)
    periodicity: Periodicity | None = None
    score: int | None = Field(None, ge=1, le=1000)
    alert_message: str | None = Field(None, max_length=500)


def _ref(text: str) -> int | str:
    return int(text) if text.isdigit() else text


@tool(returns=Returns.OWNED, write=True, title="Update AI policy", example={"policy": "no-rdp-from-internet", "periodicity": "hourly"})
async def update_ai_policy(call: ToolContext, params: UpdateParams) -> PolicyResult:
    """Change a policy's requirement, SQL, name, schedule, score or alert message.

    Change a policy's description (recompiled), SQL, name, schedule, score or alert message. A new
    query is dry-run and returned; violations already alerted are forgotten when the query changes."""
    svc = _svc(call)
    res = await _do(svc.update, call.principal, _ref(params.policy), description=params.description, sql=params.sql,
                    name=params.name, periodicity=params.periodicity, score=params.score,
                    alert_message=params.alert_message)
    return PolicyResult(policy=Policy.of(res["policy"]),
                        dry_run=DryRun(**res["dry_run"]) if res["dry_run"] else None, notes=res["notes"])


class PolicyOnly(BaseModel):
    policy: Policy
    message: str

    def text(self) -> str:
        return self.message + "\n" + self.policy.line()


@tool(returns=Returns.OWNED, write=True, title="Pause AI policy", example={"policy": "no-rdp-from-internet"})
async def pause_ai_policy(call: ToolContext, params: Ref) -> PolicyOnly:
    """Stop running a policy on its schedule (kept, resumable)."""
    p = await _do(_svc(call).set_paused, call.principal, _ref(params.policy), True)
    return PolicyOnly(policy=Policy.of(p), message=f"policy {p['name']} paused")


@tool(returns=Returns.OWNED, write=True, destructive=False, title="Resume AI policy", example={"policy": "no-rdp-from-internet"})
async def resume_ai_policy(call: ToolContext, params: Ref) -> PolicyOnly:
    """Run a paused policy on its schedule again.

    Run a paused policy on its schedule again, with its owner's current rights (its SQL must pass
    the guard with them)."""
    p = await _do(_svc(call).set_paused, call.principal, _ref(params.policy), False)
    return PolicyOnly(policy=Policy.of(p), message=f"policy {p['name']} resumed")


@tool(returns=Returns.OWNED, write=True, title="Delete AI policy", example={"policy": "no-rdp-from-internet"})
async def delete_ai_policy(call: ToolContext, params: Ref) -> PolicyOnly:
    """Delete a policy (its past alerts stay)."""
    p = await _do(_svc(call).delete, call.principal, _ref(params.policy))
    return PolicyOnly(policy=Policy.of(p), message=f"policy {p['name']} deleted")


class RunResult(BaseModel):
    policy_id: int
    ok: bool
    matches: int
    new: int = 0
    alerts: int
    truncated: bool = False
    error: str | None = None

    def text(self) -> str:
        if not self.ok:
            return f"policy {self.policy_id} failed: {self.error}"
        return (f"policy {self.policy_id}: {self.matches} matching row(s), {self.new} new, "
                f"{self.alerts} alert(s) raised")


@tool(returns=Returns.OWNED, write=True, destructive=False, title="Run AI policy now", example={"policy": "no-rdp-from-internet"})
async def run_ai_policy(call: ToolContext, params: Ref) -> RunResult:
    """Run a policy now; new violations raise alerts.

    Run a policy now instead of waiting for its schedule; new violations raise alerts."""
    return RunResult(**await _do(_svc(call).run_for, call.principal, _ref(params.policy)))
