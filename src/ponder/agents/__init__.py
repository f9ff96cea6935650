"""Reasoning strategies and the registry that names them.

A strategy turns a :class:`Task` and a :class:`Context` into a stream of :mod:`events <ponder.agents._events>`
that ends with a :class:`FinalAnswer`. A strategy subclasses :class:`BaseStrategy` (its ``Options``, its declared
capabilities) and is registered in ``_registry.py``.
"""

from ponder.agents import _registry as _registry
from ponder.agents._base import (
    AnswerChoice,
    BaseStrategy,
    Context,
    Options,
    Strategy,
    StrategyResult,
    Task,
    TaskFamily,
    Turn,
    answer_model,
    conversation,
    format_answer,
    get_strategy,
    parse_options,
    register,
    render_question,
    strategy_class,
    strategy_names,
)
from ponder.agents._events import (
    ErrorRaised,
    Event,
    EvidenceChecked,
    FinalAnswer,
    LLMCall,
    ModelCalled,
    ModelProgress,
    NeedsHuman,
    PlanUpdated,
    StepStarted,
    TextDelta,
    ToolCalled,
    ToolReturned,
    TreeUpdated,
    event_adapter,
)
from ponder.agents._live import LiveModel
from ponder.agents._run import drive, run_to_result

__all__ = [
    "AnswerChoice",
    "BaseStrategy",
    "Context",
    "ErrorRaised",
    "Event",
    "EvidenceChecked",
    "FinalAnswer",
    "LLMCall",
    "LiveModel",
    "ModelCalled",
    "ModelProgress",
    "NeedsHuman",
    "Options",
    "PlanUpdated",
    "StepStarted",
    "Strategy",
    "StrategyResult",
    "Task",
    "TaskFamily",
    "TextDelta",
    "ToolCalled",
    "ToolReturned",
    "TreeUpdated",
    "Turn",
    "answer_model",
    "conversation",
    "drive",
    "event_adapter",
    "format_answer",
    "get_strategy",
    "parse_options",
    "register",
    "render_question",
    "run_to_result",
    "strategy_class",
    "strategy_names",
]
