"""The strategies the API offers: the registry's, plus any given to the app, with their options as JSON schema.

Each strategy class declares its ``Options`` (the one place its options are validated) and its capabilities
(``resumable``, ``requires_toolserver``, ``accepts_client_tools``, ``asks_humans``: see
:class:`ponder.agents.BaseStrategy`); the catalog only looks them up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ponder.agents import BaseStrategy, parse_options, strategy_class, strategy_names
from ponder.errors import NotFoundError

StrategyClass = type[BaseStrategy[Any]]


def options_model(cls: StrategyClass) -> type[BaseModel]:
    return cls.Options


class StrategyCatalog:
    """Names to strategy classes: the registry's (imported on first use, never built to be looked at) and
    ``extra`` ones."""

    def __init__(self, extra: Mapping[str, StrategyClass] | None = None) -> None:
        self.extra = dict(extra or {})

    def names(self) -> dict[str, str]:
        names = strategy_names()
        for name, cls in self.extra.items():
            names[name] = cls.description
        return dict(sorted(names.items()))

    def strategy_class(self, name: str) -> StrategyClass:
        if name in self.extra:
            return self.extra[name]
        if name not in strategy_names():
            raise NotFoundError(
                f"unknown strategy {name!r}", hint=f"choose one of: {', '.join(self.names()) or '(none)'}"
            )
        return strategy_class(name)

    def options_model(self, name: str) -> type[BaseModel]:
        return options_model(self.strategy_class(name))

    def validate_options(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options as given (and valid), in JSON form for storing with the run."""
        parsed = parse_options(self.strategy_class(name), options)
        data: dict[str, Any] = parsed.model_dump(mode="json", exclude_unset=True)
        return data

    def build(self, name: str, options: Mapping[str, Any]) -> BaseStrategy[Any]:
        return self.strategy_class(name)(**options)

    def describe(self, name: str) -> dict[str, Any]:
        cls = self.strategy_class(name)
        return {
            "name": name,
            "description": self.names().get(name, ""),
            "resumable": cls.resumable,
            "requires_toolserver": cls.requires_toolserver,
            "accepts_client_tools": cls.accepts_client_tools,
            "asks_humans": cls.asks_humans,
            "options_schema": options_model(cls).model_json_schema(),
        }
