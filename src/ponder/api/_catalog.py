"""The strategies the API offers: the registry's, plus any given to the app, with their options as JSON schema.

A strategy that can stop for a human and carry on later implements :class:`ResumableStrategy`: its ``run`` yields
:class:`~ponder.agents.NeedsHuman` and returns (having checkpointed under ``ctx.run_id``), and ``resume`` continues
from that checkpoint with the human's answer, or with ``None`` after a server restart.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from ponder.agents import Context, Event, Strategy, Task, get_strategy, strategy_names
from ponder.errors import InputError, NotFoundError


@runtime_checkable
class ResumableStrategy(Protocol):
    """A strategy that can continue a run from its checkpoint (keyed by ``ctx.run_id``)."""

    name: ClassVar[str]
    description: ClassVar[str]

    def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]: ...

    def resume(self, task: Task, ctx: Context, answer: str | None) -> AsyncIterator[Event]:
        """Continue after an interruption: ``answer`` is the human's reply to the pending question, or ``None``
        when the server restarted mid-run and the strategy should carry on from its last checkpoint."""
        ...


def is_resumable(strategy: object) -> bool:
    return callable(getattr(strategy, "resume", None))


def options_model(cls: type) -> type[BaseModel]:
    """A pydantic model of a strategy class's keyword options, read from its ``__init__`` signature."""
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:  # noqa: BLE001 - unresolvable annotations: accept any value for those options
        hints = {}
    fields: dict[str, Any] = {}
    init = cls.__init__  # type: ignore[misc]
    for param in inspect.signature(init).parameters.values():
        if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints.get(param.name, Any), default)
    model: type[BaseModel] = create_model(
        f"{cls.__name__}Options", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields
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

    def validate_options(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        model = self.options_model(name)
        try:
            parsed = model.model_validate(dict(options))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
            )
            raise InputError(
                f"invalid options for strategy {name!r}: {problems}",
                hint=f"see GET /strategies for the options {name!r} accepts",
            ) from exc
        return parsed.model_dump(exclude_unset=True)

    def build(self, name: str, options: Mapping[str, Any]) -> Strategy:
        cls = self.strategy_class(name)
        strategy: Strategy = cls(**self.validate_options(name, options))
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
