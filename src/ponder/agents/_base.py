"""The strategy seam: a task and a context in, a stream of typed events out, ending with a final answer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ponder.agents._events import Event
from ponder.errors import ConfigError, Conflict, InputError, NotFoundError, describe_validation
from ponder.llm import ChatModel, Costs, Message, MeteredModel
from ponder.search._protocols import KnowledgeBase, SearchEngine
from ponder.tools._protocols import ToolServer


class TaskFamily(StrEnum):
    """How a task's answer is typed, so no regex scraping of free text is needed."""

    number = "number"
    choice = "choice"
    yes_no = "yes_no"
    string = "string"
    code = "code"
    open = "open"


class AnswerChoice(BaseModel):
    label: str
    text: str


class Turn(BaseModel):
    """One earlier turn of a conversation the question continues."""

    role: Literal["user", "assistant"]
    content: str


class Task(BaseModel):
    """What a strategy is asked. It never carries the gold answer or hidden tests."""

    question: str = Field(min_length=1)
    family: TaskFamily = TaskFamily.open
    choices: list[AnswerChoice] = Field(default_factory=list)
    context: str | None = None
    conversation: list[Turn] = Field(
        default_factory=list, description="earlier turns of the chat, oldest first: the model reads them as turns"
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


def conversation(task: Task) -> list[Message]:
    """The task's earlier turns as messages: strategies put them between their instructions and the question, so the
    model reads a chat as a chat (not flattened into the question's text)."""
    return [Message(role=t.role, content=t.content) for t in task.conversation]


def answer_type(task: Task) -> Any:
    """The python type of the typed ``answer`` field for this task's family."""
    if task.family is TaskFamily.number:
        return float
    if task.family is TaskFamily.yes_no:
        return bool
    if task.family is TaskFamily.choice:
        if not task.choices:
            raise InputError("a multiple-choice task needs its choices")
        return Literal[tuple(c.label for c in task.choices)]
    return str


def answer_model(name: str, task: Task, fields: dict[str, Any], doc: str = "") -> type[BaseModel]:
    """A pydantic model with the given leading fields and a typed ``answer`` last (the answer comes after
    the reasoning in generation order)."""
    description = {
        TaskFamily.number: "the final numeric answer, a number only",
        TaskFamily.yes_no: "the final answer: true for yes, false for no",
        TaskFamily.choice: "the label of the correct choice",
        TaskFamily.string: "the final answer alone, exactly the value, word or name asked for, not a sentence",
    }.get(task.family, "the final answer")
    model: type[BaseModel] = create_model(
        name, __doc__=doc or None, **fields, answer=(answer_type(task), Field(description=description))
    )
    return model


def format_answer(task: Task, answer: Any) -> str:
    if task.family is TaskFamily.number and isinstance(answer, float) and answer.is_integer():
        return str(int(answer))
    if task.family is TaskFamily.yes_no and isinstance(answer, bool):
        return "yes" if answer else "no"
    if task.family is TaskFamily.choice:
        text = next((c.text for c in task.choices if c.label == answer), "")
        return f"{answer}: {text}" if text else str(answer)
    return str(answer)


def render_question(task: Task) -> str:
    parts = []
    if task.context:
        parts.append(f"Context:\n{task.context}")
    parts.append(f"Question: {task.question}")
    if task.choices:
        parts.append("Choices:\n" + "\n".join(f"{c.label}. {c.text}" for c in task.choices))
    return "\n\n".join(parts)


class StrategyResult(BaseModel):
    """What every strategy's final event carries: the typed ``answer``, its ``text``, the ``reasoning`` behind it
    as a person reads it (the chain of thought, the winning sample, the program, the search's path, the
    subtasks' conclusions), what it cost, and the strategy's own ``details``."""

    answer: Any
    text: str
    reasoning: str | None = None
    costs: Costs = Field(default_factory=Costs)
    tool_calls: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = Field(default_factory=dict)


@dataclass
class Context:
    """What a strategy may use. Optional parts are None when not configured; strategies that need one raise
    :class:`ponder.errors.ConfigError` saying how to enable it."""

    model: ChatModel
    toolserver: ToolServer | None = None
    search: SearchEngine | None = None
    kb: KnowledgeBase | None = None
    options: dict[str, Any] = field(default_factory=dict)
    checkpoint_url: str | None = None
    # an open LangGraph checkpointer the runs share (the API opens one, pooled, per app); without it a resumable
    # strategy opens one from checkpoint_url per run
    checkpointer: Any = None
    run_id: str | None = None
    mcp_servers: list[Any] = field(default_factory=list)  # ponder.config.MCPServerSettings: their tools, for agents

    def metered(self) -> tuple[MeteredModel, float]:
        """The run's metered model (the one :func:`~ponder.agents.drive` put in the context; a new meter when a
        strategy is run without it), and the start time."""
        model = self.model if isinstance(self.model, MeteredModel) else MeteredModel(self.model)
        return model, time.perf_counter()


class Options(BaseModel):
    """The base of every strategy's ``Options``: its options with their defaults, bounds and descriptions, the one
    place they are validated (by the strategy's constructor, the API's ``/strategies`` and run requests, and the
    eval CLI). An option no strategy field names is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


def parse_options(cls: type[BaseStrategy[Any]], options: Mapping[str, Any]) -> Any:
    """``options`` validated against ``cls.Options``, every problem named in one :class:`InputError`."""
    model = cls.Options
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        name = cls.name
        takes = [f"{name!r} takes: {', '.join(model.model_fields) or 'no options'}"]
        for error in exc.errors():  # an unknown field of a nested options object: name what that object takes
            nested = _nested_model(model, error["loc"][:-1])
            if error["type"] == "extra_forbidden" and nested is not None:
                path = ".".join(map(str, error["loc"][:-1]))
                takes.append(f"{path} takes: {', '.join(nested.model_fields) or 'no options'}")
        raise InputError(
            f"invalid options for strategy {name!r}: {describe_validation(exc.errors())}",
            hint="; ".join(dict.fromkeys(takes)) + " (GET /strategies describes them)",
        ) from exc


def _nested_model(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The options model at ``loc`` inside ``model`` (None when ``loc`` is empty or leads elsewhere)."""
    current: Any = model
    for key in loc:
        field = current.model_fields.get(key) if isinstance(current, type) and issubclass(current, BaseModel) else None
        if field is None:
            return None
        current = field.annotation
    return current if loc and isinstance(current, type) and issubclass(current, BaseModel) else None


@runtime_checkable
class Strategy(Protocol):
    """A reasoning strategy: ``run`` turns a task into events ending with a :class:`FinalAnswer`; ``resume``
    continues a run from its checkpoint (keyed by ``ctx.run_id``) after a human's answer or a restart, and is
    refused by strategies that are not ``resumable``. ``Options`` are its options (see :class:`Options`); the
    capabilities are declared, never inferred from names. Subclass :class:`BaseStrategy` to get all of it."""

    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[BaseModel]]
    resumable: ClassVar[bool]
    requires_toolserver: ClassVar[bool]
    accepts_client_tools: ClassVar[bool]
    asks_humans: ClassVar[bool]

    def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]: ...

    def resume(self, run_id: str, answer: str | None, ctx: Context) -> AsyncIterator[Event]: ...


_BaseOptions = Options  # the class attribute ``Options`` below shadows the name inside the class body
OptionsT = TypeVar("OptionsT", bound=BaseModel)


class BaseStrategy(Generic[OptionsT]):
    """What every strategy shares: its options parsed once into ``self.options`` (an instance of the class's
    ``Options``, so a strategy reads ``self.options.k`` and never copies fields), and its declared capabilities:

    - ``resumable``: ``resume`` continues a run from its checkpoint (the default ``resume`` refuses);
    - ``requires_toolserver``: it cannot run without a sandbox (:meth:`toolserver` says how to get one);
    - ``accepts_client_tools``: it takes OpenAI function specs the API client runs (``client_tools``);
    - ``asks_humans``: it may stop on a question for a person (callers without one pass ``ask_human=False``).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = _BaseOptions
    resumable: ClassVar[bool] = False
    requires_toolserver: ClassVar[bool] = False
    accepts_client_tools: ClassVar[bool] = False
    asks_humans: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options: OptionsT = parse_options(type(self), options)

    def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        raise NotImplementedError

    def resume(self, run_id: str, answer: str | None, ctx: Context) -> AsyncIterator[Event]:
        raise Conflict(
            f"strategy {self.name!r} cannot be resumed",
            hint="start a new run with the extra information in the task's context",
        )

    def toolserver(self, ctx: Context, why: str) -> ToolServer:
        """The context's ToolServer; a clear :class:`ConfigError` saying ``why`` the strategy needs one if absent."""
        if ctx.toolserver is None:
            raise ConfigError(
                f"strategy {self.name!r} {why} and needs a ToolServer",
                hint="start the Docker engine and build the node image (`ponder toolserver build-image`)",
            )
        return ctx.toolserver


_REGISTRY: dict[str, tuple[str, str]] = {}


def register(name: str, target: str, description: str) -> None:
    """Register a strategy by name as ``"module:Class"`` so importing the registry stays cheap."""
    _REGISTRY[name] = (target, description)


def strategy_names() -> dict[str, str]:
    return {name: desc for name, (_, desc) in sorted(_REGISTRY.items())}


def strategy_class(name: str) -> type[BaseStrategy[Any]]:
    """The class registered as ``name`` (its module imported now), without building a strategy."""
    if name not in _REGISTRY:
        raise NotFoundError(f"unknown strategy {name!r}", hint=f"choose one of: {', '.join(sorted(_REGISTRY))}")
    import importlib

    module_name, _, cls_name = _REGISTRY[name][0].partition(":")
    cls: type[BaseStrategy[Any]] = getattr(importlib.import_module(module_name), cls_name)
    return cls


def get_strategy(name: str, **options: Any) -> BaseStrategy[Any]:
    return strategy_class(name)(**options)
