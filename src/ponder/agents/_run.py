"""Drive a strategy's event stream to its final result."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from ponder.agents._base import StrategyResult
from ponder.agents._events import Event, FinalAnswer
from ponder.errors import StrategyError


async def run_to_result(
    events: AsyncIterator[Event], on_event: Callable[[Event], None] | None = None
) -> StrategyResult:
    final: FinalAnswer | None = None
    async for event in events:
        if on_event is not None:
            on_event(event)
        if isinstance(event, FinalAnswer):
            final = event
    if final is None:
        raise StrategyError("the strategy ended without a final answer")
    return StrategyResult.model_validate(final.result)
