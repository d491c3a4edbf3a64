"""Compact JSON schemas for `tools/list`: the same types and constraints as pydantic's, without
the boilerplate an agent pays for on every connection.

- no auto-generated `title`s (the property name says it);
- `anyOf [X, null]` with a null default becomes X (inputs: leave it out) or `type: [X, "null"]`
  (outputs: the field may be null);
- no `"default": null` in inputs, no defaults at all in outputs (every field is always sent);
- inputs do not repeat `additionalProperties: false` on every tool: the server refuses unknown
  arguments itself, naming the valid ones (flowscope.mcp.vocabulary); the ntopng `content`
  convention is still accepted but not advertised, nor are `secret` markers (audit masking);
- an argument described the same way by several tools of a toolset is described once, by the
  first read tool of that toolset; the others point to it (`describe_once`);
- outputs leave out what JSON Schema implies: `type` beside `properties` or `items` below the
  top level, and `additionalProperties: true`.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel

from flowscope.mcp import vocabulary
from flowscope.mcp.toolkit import ToolSpec

_DROP = ("title",)


def _nullable(branches: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The non-null branch of `anyOf [X, {"type": "null"}]`, else None."""
    if len(branches) != 2 or {"type": "null"} not in branches:
        return None
    other = branches[0] if branches[1] == {"type": "null"} else branches[1]
    return other


def _compact(node: Any, output: bool) -> Any:
    if isinstance(node, list):
        return [_compact(x, output) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP and not isinstance(value, dict):
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: _compact(sub, output) for name, sub in value.items()}
        else:
            out[key] = _compact(value, output)
    if "default" in out and (output or out["default"] is None):
        del out["default"]  # outputs always carry every field
    other = _nullable(out.get("anyOf", [])) if "anyOf" in out else None
    if other is not None:
        del out["anyOf"]
        if not output:
            out = {**other, **out}
        elif isinstance(other.get("type"), str):
            out = {**other, **out, "type": [other["type"], "null"]}
        else:
            out["anyOf"] = [other, {"type": "null"}]
    return out


@functools.cache
def _model_input(model: type[BaseModel]) -> dict[str, Any]:
    return _compact(model.model_json_schema(), output=False)


def input_schema(spec: ToolSpec) -> dict[str, Any]:
    """Arguments under their shared names; shared arguments described once, in the instructions."""
    schema = dict(_model_input(spec.params))
    props = schema.get("properties", {})
    renamed = {wire: field for wire, field in vocabulary.wire_names(spec).items() if wire != field}
    wire_of = {field: wire for wire, field in renamed.items()}
    out = {}
    for field, prop in props.items():
        wire = wire_of.get(field, field)
        hidden = ("secret", "description") if wire in vocabulary.SHARED_ARGS else ("secret",)
        out[wire] = {k: v for k, v in prop.items() if k not in hidden}
    schema["properties"] = out
    if "required" in schema:
        schema["required"] = [wire_of.get(f, f) for f in schema["required"]]
    return schema


def _inline_single_use(schema: dict[str, Any]) -> dict[str, Any]:
    """Definitions referenced once are written in place: a `$ref` only pays off when shared."""
    defs = schema.get("$defs")
    if not defs:
        return schema
    text = json.dumps(schema)
    single = {name for name in defs if text.count(f'"#/$defs/{name}"') == 1}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref", "")
        name = ref.rsplit("/", 1)[-1] if ref.startswith("#/$defs/") else None
        if name in single:
            rest = {k: walk(v) for k, v in node.items() if k != "$ref"}
            return {**walk(defs[name]), **rest}
        return {k: (walk(v) if k != "$defs" else v) for k, v in node.items()}

    out = walk({k: v for k, v in schema.items() if k != "$defs"})
    kept = {name: walk(d) for name, d in defs.items() if name not in single}
    return {**out, "$defs": kept} if kept else out


@functools.cache
def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The answer's shape: every field is always sent, so no `required` list and no defaults;
    field meanings are in the tool description and the text rendering."""
    schema = _compact(model.model_json_schema(mode="serialization"), output=True)
    schema = _strip(schema, ("description", "required"))
    schema = _inline_single_use(schema)
    return {**_implied(schema), "type": "object"}


_IMPLIED = {"object": ("properties", "additionalProperties"), "array": ("items",)}


def _implied(node: Any, in_names: bool = False) -> Any:
    """`node` without what its other keywords imply: an object's type beside `properties`, an
    array's beside `items`, and `additionalProperties: true` (the default)."""
    if isinstance(node, list):
        return [_implied(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _implied(v, k in ("properties", "$defs") and not in_names) for k, v in node.items()
           if in_names or not (k == "additionalProperties" and v is True)}
    if not in_names and isinstance(out.get("type"), str) and any(k in out for k in _IMPLIED.get(out["type"], ())):
        del out["type"]
    return out


def describe_once(schemas: dict[str, dict[str, Any]], toolset_of: dict[str, str], anchors: set[str],
                  descriptions: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Input schemas (tool -> schema, in listing order) where an argument that several tools of a
    toolset describe alike keeps its description in the first of `anchors` (tools everyone who
    sees the toolset sees: read tools); the others say `as in <that tool>`, or nothing when their
    own description (`descriptions`) already names that tool."""
    first: dict[tuple[str, str, str], str] = {}
    for name, schema in schemas.items():
        if name in anchors:
            for arg, prop in schema.get("properties", {}).items():
                if "description" in prop:
                    first.setdefault((toolset_of[name], arg, prop["description"]), name)
    out = {}
    for name, schema in schemas.items():
        props = {}
        for arg, prop in schema.get("properties", {}).items():
            anchor = first.get((toolset_of[name], arg, prop.get("description", "")))
            pointer = f"as in {anchor}"
            if anchor in (None, name) or len(pointer) >= len(prop["description"]):
                pass
            elif anchor in descriptions.get(name, ""):
                prop = {k: v for k, v in prop.items() if k != "description"}
            else:
                prop = {**prop, "description": pointer}
            props[arg] = prop
        out[name] = {**schema, "properties": props} if "properties" in schema else schema
    return out


def _strip(node: Any, keys: tuple[str, ...], in_names: bool = False) -> Any:
    if isinstance(node, list):
        return [_strip(x, keys) for x in node]
    if not isinstance(node, dict):
        return node
    return {k: _strip(v, keys, k in ("properties", "$defs") and not in_names)
            for k, v in node.items() if in_names or k not in keys}
