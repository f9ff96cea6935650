"""The strategies the API offers: the registry's, plus any given to the app, with their options as JSON schema.

A strategy that can stop for a human and carry on later implements :class:`ResumableStrategy`: its ``run`` yields
:class:`~ponder.agents.NeedsHuman` and returns (having checkpointed under ``ctx.run_id``), and ``resume`` continues
from that checkpoint with the human's answer, or with ``None`` after a server restart.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from ponder.agents import Context, Event, Strategy, Task, get_strategy, strategy_names
from ponder.errors import InputError, NotFoundError, describe_validation


@runtime_checkable
class ResumableStrategy(Protocol):
    """A strategy that can continue a run from its checkpoint (keyed by ``ctx.run_id``), like the planner."""

    name: ClassVar[str]
    description: ClassVar[str]

    def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]: ...

    def resume(self, run_id: str, answer: str | None, ctx: Context) -> AsyncIterator[Event]:
        """Continue run ``run_id`` after an interruption: ``answer`` is the human's reply to the pending question,
        or ``None`` when the server restarted mid-run and the strategy should carry on from its last checkpoint."""
        ...


def is_resumable(strategy: object) -> bool:
    return callable(getattr(strategy, "resume", None))


def options_model(cls: type) -> type[BaseModel]:
    """A pydantic model of a strategy class's keyword options, read from its ``__init__`` signature. Options
    whose type has no JSON form (e.g. Python objects such as extra tools) cannot be set over the API."""
    init = cls.__init__  # type: ignore[misc]
    try:
        hints = typing.get_type_hints(init, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable annotations: accept any value for those options
        hints = {}
    fields: dict[str, Any] = {}
    extra: Literal["allow", "forbid"] = "forbid"
    for param in inspect.signature(init).parameters.values():
        if param.name == "self" or param.kind is param.VAR_POSITIONAL:
            continue
        if param.kind is param.VAR_KEYWORD:
            extra = "allow"  # the strategy validates these itself
            continue
        annotation = hints.get(param.name, Any)
        try:
            TypeAdapter(annotation).json_schema()
        except Exception:  # noqa: BLE001 - not expressible in JSON: leave the option out
            continue
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    model: type[BaseModel] = create_model(
        f"{cls.__name__}Options", __config__=ConfigDict(extra=extra, arbitrary_types_allowed=True), **fields
    )
    return model


class StrategyCatalog:
    """Names to strategy classes: the registry's (imported on first use) and ``extra`` ones."""

    def __init__(self, extra: Mapping[str, type] | None = None) -> None:
        self.extra = dict(extra or {})
        self._classes: dict[str, type] = {}
        self._options: dict[str, type[BaseModel]] = {}

    def names(self) -> dict[str, str]:
        names = strategy_names()
        for name, cls in self.extra.items():
            names[name] = str(getattr(cls, "description", ""))
        return dict(sorted(names.items()))

    def strategy_class(self, name: str) -> type:
        if name in self.extra:
            return self.extra[name]
        if name not in self._classes:
            if name not in strategy_names():
                raise NotFoundError(
                    f"unknown strategy {name!r}", hint=f"choose one of: {', '.join(self.names()) or '(none)'}"
                )
            self._classes[name] = type(get_strategy(name))
        return self._classes[name]

    def options_model(self, name: str) -> type[BaseModel]:
        if name not in self._options:
            self._options[name] = options_model(self.strategy_class(name))
        return self._options[name]

    def _parse(self, name: str, options: Mapping[str, Any]) -> BaseModel:
        try:
            return self.options_model(name).model_validate(dict(options))
        except ValidationError as exc:
            raise InputError(
                f"invalid options for strategy {name!r}: {describe_validation(exc.errors())}",
                hint=f"see GET /strategies for the options {name!r} accepts",
            ) from exc

    def validate_options(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options as given (and valid), in JSON form for storing with the run."""
        parsed = self._parse(name, options)
        data: dict[str, Any] = parsed.model_dump(mode="json", exclude_unset=True)
        return data

    def build(self, name: str, options: Mapping[str, Any]) -> Strategy:
        parsed = self._parse(name, options)
        kwargs = {key: getattr(parsed, key) for key in parsed.model_fields_set if key in type(parsed).model_fields}
        kwargs.update(parsed.model_extra or {})
        try:
            strategy: Strategy = self.strategy_class(name)(**kwargs)
        except TypeError as exc:
            raise InputError(f"invalid options for strategy {name!r}: {exc}") from exc
        return strategy

    def describe(self, name: str) -> dict[str, Any]:
        cls = self.strategy_class(name)
        try:
            schema = self.options_model(name).model_json_schema()
        except Exception:  # noqa: BLE001 - an option type without a JSON schema: describe it as free-form
            schema = {"type": "object"}
        return {
            "name": name,
            "description": self.names().get(name, ""),
            "resumable": is_resumable(cls),
            "options_schema": schema,
        }
