"""What an agent reads about a tool: the one-line summary `tools/list` shows, and the tool's manual
(resource flowscope://tools/{tool}): the whole description, every argument with its type,
default and meaning (shared ones included), who may call it, and the example."""

from __future__ import annotations

import json
from typing import Any

from flowscope.mcp import schemas, vocabulary
from flowscope.mcp.toolkit import ToolSpec


def summary(spec: ToolSpec) -> str:
    """The docstring's first paragraph, on one line."""
    return " ".join(spec.description.split("\n\n", 1)[0].split())


def example(spec: ToolSpec) -> str:
    """The tool's example under the shared argument names."""
    renames = {field: wire for wire, field in vocabulary.wire_names(spec).items()}
    return json.dumps({renames.get(k, k): v for k, v in spec.example.items()}, separators=(",", ":"))


def manual(spec: ToolSpec, toolset: str) -> str:
    paragraphs = [" ".join(p.split()) for p in spec.description.split("\n\n") if p.strip()]
    who = ("write tool: refused to read-only tokens" + (" and to non-admins" if spec.admin else "")
           if spec.write else "read-only" + (", admins only" if spec.admin else ""))
    schema = schemas.input_schema(spec)
    required = set(schema.get("required", []))
    fields = vocabulary.wire_names(spec)
    lines = [f"# {spec.name}: {spec.title}", f"Toolset {toolset}; {who}.", "", *paragraphs, "", "## Arguments"]
    for name, prop in schema.get("properties", {}).items():
        own = spec.params.model_fields[fields[name]].description  # the listing leaves shared ones out
        meaning = own or vocabulary.SHARED_ARGS.get(name, "")
        facts = [_type(prop)] + (["required"] if name in required else []) + \
            ([f"default {json.dumps(prop['default'])}"] if "default" in prop else [])
        lines.append(f"- {name} ({', '.join(facts)})" + (f": {meaning}" if meaning else ""))
    if len(lines) and lines[-1] == "## Arguments":
        lines.append("none")
    lines += ["", f"Example: {example(spec)}"]
    return "\n".join(lines) + "\n"


def _type(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    kind = prop.get("type", "object" if "properties" in prop else "value")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    bounds = [f"{k} {prop[k]}" for k in ("minimum", "maximum", "minLength", "maxLength") if k in prop]
    return ", ".join([kind, *bounds])
