"""What the planner's nodes share: budget checks, cost accounting and event emission."""

from __future__ import annotations

import time
from typing import Any

from langgraph.config import get_stream_writer

from ponder.agents._events import Event, LLMCall
from ponder.agents.planner._state import Counters, Deps, PlannerLimits, PlannerState, add_costs, new_counters
from ponder.llm import MeteredModel


def emit(event: Event) -> None:
    """Send an event to whoever streams the run (the graph's ``custom`` stream)."""
    get_stream_writer()(event)


def over_budget(state: PlannerState, limits: PlannerLimits) -> str | None:
    """Why the run must stop now, or None."""
    c = state.get("counters") or new_counters()
    if c["llm_calls"] >= limits.max_llm_calls:
        return f"the budget of {limits.max_llm_calls} LLM calls was used up"
    if c["prompt_tokens"] + c["completion_tokens"] >= limits.max_total_tokens:
        return f"the budget of {limits.max_total_tokens} tokens was used up"
    if c["seconds"] >= limits.max_seconds:
        return f"the time budget of {limits.max_seconds:g} s was used up"
    return None


class Accounting:
    """A metered view of the model for one node, and the node's time; folded into the state's counters."""

    def __init__(self, deps: Deps, state: PlannerState) -> None:
        self.model = MeteredModel(deps.model)
        self.start = time.perf_counter()
        self.base: Counters = state.get("counters") or new_counters()
        self._mark = self.start
        self._tokens = (0, 0)

    def counters(self, **bump: int) -> Counters:
        out = add_costs(self.base, self.model.costs, time.perf_counter() - self.start)
        for key, value in bump.items():
            out[key] += value  # type: ignore[literal-required]
        return out

    def llm_event(self, purpose: str, output: Any, group: str | None = None) -> LLMCall:
        """An event for the calls made since the previous one."""
        now = time.perf_counter()
        p, c = self.model.costs.prompt_tokens, self.model.costs.completion_tokens
        event = LLMCall(
            purpose=purpose,
            prompt_tokens=p - self._tokens[0],
            completion_tokens=c - self._tokens[1],
            seconds=now - self._mark,
            output=output,
            group=group,
        )
        self._mark, self._tokens = now, (p, c)
        return event
