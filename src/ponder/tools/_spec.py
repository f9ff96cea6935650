"""Tool specifications: a pydantic argument model plus a description, exported as an OpenAI function spec.

Planners constrain a tool call to ``{"tool": <enum of names>, "args": <that tool's schema>}``; see
:func:`tool_call_schema`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ponder.errors import ToolArgumentsInvalid, UnknownTool


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
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
            )
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
