"""Tool specifications: a pydantic argument model plus a description, exported as an OpenAI function spec.

Planners constrain a tool call to ``{"tool": <enum of names>, "args": <that tool's schema>}``; see
:func:`tool_call_schema`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ponder.errors import ToolArgumentsInvalid, UnknownTool, describe_validation


class ToolSpec(BaseModel):
    """A tool's name, what it does (the model reads this) and its argument model."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    description: str
    args_model: type[BaseModel]

    def parameters(self) -> dict[str, Any]:
        return self.args_model.model_json_schema()

    def function_spec(self) -> dict[str, Any]:
        """The OpenAI ``tools=[...]`` entry for this tool."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters()},
        }

    def validate_args(self, args: dict[str, Any]) -> BaseModel:
        try:
            return self.args_model.model_validate(args)
        except ValidationError as exc:
            problems = describe_validation(exc.errors())
            raise ToolArgumentsInvalid(f"arguments for tool {self.name!r} are invalid: {problems}") from exc


def find_tool(specs: Sequence[ToolSpec], name: str) -> ToolSpec:
    for spec in specs:
        if spec.name == name:
            return spec
    raise UnknownTool(f"unknown tool {name!r}", hint=f"available tools: {', '.join(s.name for s in specs)}")


def inline_refs(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """The schema with every local ``{"$ref": "#/$defs/X"}`` replaced by its definition.

    Each tool's argument schema carries its own ``$defs``; nested under ``anyOf/…/args`` its root-relative refs would
    no longer resolve (constraint engines reject them), so they are inlined. Argument models are not recursive.
    """
    if isinstance(schema, list):
        return [inline_refs(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$defs" in schema:
        defs = {**(defs or {}), **schema["$defs"]}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and defs and ref[8:] in defs:
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return inline_refs({**defs[ref[8:]], **rest}, defs)
    return {k: inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}


def tool_call_schema(specs: Sequence[ToolSpec], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON schema for one call of any of ``specs``: ``{"tool": name, "args": {...}}`` where ``args`` must match
    the schema of the named tool (one ``anyOf`` branch per tool, each pinning ``tool`` to a ``const``)."""
    branches = []
    for spec in specs:
        props: dict[str, Any] = dict(extra or {})
        props["tool"] = {"const": spec.name}
        props["args"] = inline_refs(spec.parameters())
        branches.append(
            {
                "type": "object",
                "properties": props,
                "required": [*(extra or {}), "tool", "args"],
                "additionalProperties": False,
            }
        )
    return {"anyOf": branches} if len(branches) > 1 else branches[0]


_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list[Any],
    "object": dict[str, Any],
}


def _field_type(schema: Mapping[str, Any]) -> Any:
    if "anyOf" in schema:  # e.g. pydantic's ``str | None``: {"anyOf": [{"type": "string"}, {"type": "null"}]}
        kinds = [_field_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = any(s.get("type") == "null" for s in schema["anyOf"])
        base = kinds[0] if len(kinds) == 1 else Any
        return base | None if nullable and base is not Any else base
    if "const" in schema:
        return Literal[schema["const"]]
    if "enum" in schema:
        return Literal[tuple(schema["enum"])]
    kind = schema.get("type", "string")
    if isinstance(kind, list):  # e.g. ["string", "null"]
        kinds = [k for k in kind if k != "null"]
        base = _JSON_TYPES.get(kinds[0], Any) if kinds else Any
        return base | None if "null" in kind else base
    return _JSON_TYPES.get(kind, Any)


def spec_from_function(function_spec: Mapping[str, Any]) -> ToolSpec:
    """A :class:`ToolSpec` from an OpenAI-style function spec (what ``ToolServer.specs()`` returns).

    Hand-written because pydantic builds schemas from models but not models from schemas; the ToolServer's
    argument schemas are flat objects of plain JSON types, which is all this covers.
    """
    fn = function_spec.get("function", function_spec)
    params = fn.get("parameters") or {}
    required = set(params.get("required", []))
    fields: dict[str, Any] = {}
    for prop, schema in (params.get("properties") or {}).items():
        info = Field(description=schema.get("description"))
        if prop in required:
            fields[prop] = (_field_type(schema), info)
        else:
            info = Field(default=schema.get("default"), description=schema.get("description"))
            fields[prop] = (_field_type(schema) | None, info)
    args_model: type[BaseModel] = create_model(f"{fn['name']}_args", **fields)
    return ToolSpec(name=str(fn["name"]), description=str(fn.get("description", "")), args_model=args_model)
