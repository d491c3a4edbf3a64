"""Prompts: common investigations as a path of at most three calls, each naming the tools and
resources it uses (and their toolsets), with arguments completed by `completion/complete`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import mcp_types as types
from mcp.shared.exceptions import MCPError


@dataclass(frozen=True)
class Arg:
    name: str
    description: str
    required: bool = False
    default: str = ""


@dataclass(frozen=True)
class PromptSpec:
    name: str
    title: str
    description: str
    args: tuple[Arg, ...]
    steps: tuple[str, ...]  # format strings over the arguments
    then: str


BEGIN = Arg("begin", "Time range start: ISO time, epoch seconds or a span back such as 24h "
                     "(default: all stored flows)")


def _j(**kw) -> str:
    return json.dumps({k: v for k, v in kw.items() if v not in (None, "")}, separators=(",", ":"))


PROMPTS: dict[str, PromptSpec] = {p.name: p for p in (
    PromptSpec(
        "investigate_host", "Investigate a host",
        "What a host is, whom it talks to, over which applications, and whether anything is wrong.",
        (Arg("host", "The host's IP address", required=True), BEGIN),
        ("Read resource flowscope://hosts/{host} (same as tool get_host_info {{\"host\":\"{host}\"}}): identity, "
         "totals, top peers, applications, listening services, score.",
         "Call get_historical_flow {hist}: its riskiest flows, with first/last seen and duration.",
         "Call get_alerts {alerts}: alerts involving it, with occurrences."),
        "Answer: what the host is, its main peers and applications (with bytes), and anything unusual, "
        "citing flow ids and alert ids."),
    PromptSpec(
        "triage_alerts", "Triage current alerts",
        "Which engaged alerts matter most now, grouped, with the entity to look at first.",
        (Arg("min_severity", "info, notice, warning, error, critical or emergency (default warning)",
             default="warning"),),
        ("Call get_alert_stats {stats}: counts by type, severity and entity (distinct alerts and occurrences).",
         "Call get_alerts {alerts}: the highest-scored engaged alerts.",
         "For the top entity, read resource flowscope://hosts/<ip> (or flowscope://flows/<flow_id>)."),
        "Answer: a ranked list (alert type, entity, occurrences, why it matters, next step). Distinct alerts "
        "and occurrences are different numbers: report both."),
    PromptSpec(
        "security_sweep", "Security sweep over a period",
        "Risky flows, the hosts with the highest scores and the alerts of a time range.",
        (BEGIN, Arg("end", "Time range end (default now)")),
        ("Call get_alert_stats {range}: alerts of the period by type and entity.",
         "Call get_top_talkers {talkers}: hosts ranked by nDPI risk score.",
         "Call get_historical_flow {flows}: the riskiest flows (flow_risk names the nDPI risks)."),
        "Answer: findings by severity, each with hosts, applications, counts and flow ids; say what is "
        "benign (e.g. self-signed certificates on a lab network) and what needs action."),
    PromptSpec(
        "bandwidth_report", "Bandwidth report",
        "Traffic of one monitored interface or one flow exporter over a period: totals, top applications, "
        "top talkers and a chart.",
        (Arg("interface_id", "A monitored source id (see get_interfaces); leave empty for all"),
         Arg("exporter", "A NetFlow/IPFIX/sFlow exporter address (see list_flow_exporters) instead"), BEGIN),
        ("Call {first}",
         "Call get_top_talkers {talkers}: the hosts behind the traffic.",
         "Read resource flowscope://charts/interface/bytes (or call chart {chart}): traffic over time as a PNG."),
        "Answer: total volume, peak, top applications and talkers with shares, and anything that changed."),
    PromptSpec(
        "explain_flow", "Explain one flow",
        "What one flow is: its ends, application, volumes, timing and nDPI risks, in plain words.",
        (Arg("flow_id", "The flow id (from any flow answer)", required=True),),
        ("Read resource flowscope://flows/{flow_id} (same as get_historical_flow {{\"flow_id\":{flow_id}}}).",
         "Call resolve_proto {{\"names\":[\"<the flow's application>\"]}}: what the application and its "
         "category are.",
         "Read resource flowscope://hosts/<src_ip> for the local end."),
        "Answer: who talked to whom, over what, how much, when and for how long, and whether the risks "
        "matter."),
)}


def _values(spec: PromptSpec, given: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(given) - {a.name for a in spec.args})
    if unknown:
        raise MCPError(code=types.INVALID_PARAMS,
                       message=f"unknown argument(s) {', '.join(unknown)} for prompt {spec.name}; "
                               f"valid: {', '.join(a.name for a in spec.args)}")
    values = {}
    for a in spec.args:
        value = (given.get(a.name) or "").strip() or a.default
        if a.required and not value:
            raise MCPError(code=types.INVALID_PARAMS, message=f"prompt {spec.name} needs argument {a.name!r}")
        values[a.name] = value
    if spec.name == "explain_flow" and not values["flow_id"].isdigit():
        raise MCPError(code=types.INVALID_PARAMS, message="flow_id is a number, e.g. 12345")
    return values


def _fields(spec: PromptSpec, v: dict[str, str]) -> dict[str, str]:
    b, e = v.get("begin"), v.get("end")
    iface = int(v["interface_id"]) if v.get("interface_id", "").isdigit() else None
    if v.get("exporter"):
        first = "get_exporter_interfaces " + _j(exporter=v["exporter"], begin=b) + \
            ": the exporter's interfaces with bytes in and out."
    else:
        first = "get_top_applications " + _j(interface_id=iface, begin=b, limit=10) + \
            ": the applications with the most bytes, with shares."
    return {
        **v,
        "hist": _j(host=v.get("host"), begin=b, sort="score", limit=20),
        "alerts": _j(host=v.get("host")) if spec.name == "investigate_host" else
        _j(status="engaged", min_severity=v.get("min_severity"), order="score", limit=20),
        "stats": _j(status="engaged", min_severity=v.get("min_severity")),
        "range": _j(begin=b, end=e),
        "talkers": _j(by="score" if spec.name == "security_sweep" else "bytes", begin=b, end=e, limit=10),
        "flows": _j(begin=b, end=e, sort="score", limit=20),
        "first": first,
        "chart": _j(entity="interface", metric="bytes", begin=b),
    }


def render(spec: PromptSpec, given: dict[str, str]) -> str:
    values = _fields(spec, _values(spec, given))
    steps = "\n".join(f"{i}. {step.format(**values)}" for i, step in enumerate(spec.steps, 1))
    return f"{spec.description}\n\nFollow these {len(spec.steps)} calls:\n{steps}\n\n{spec.then}"


async def list_prompts(ctx, params) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=[
        types.Prompt(name=p.name, title=p.title, description=p.description, arguments=[
            types.PromptArgument(name=a.name, description=a.description, required=a.required) for a in p.args])
        for p in PROMPTS.values()])


async def get_prompt(ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    spec = PROMPTS.get(params.name)
    if spec is None:
        raise MCPError(code=types.INVALID_PARAMS,
                       message=f"unknown prompt {params.name!r}; prompts: {', '.join(PROMPTS)}")
    text = render(spec, dict(params.arguments or {}))
    return types.GetPromptResult(description=spec.description, messages=[
        types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))])
