"""Drive a planner run to its end, answering its human questions with a callback (a terminal prompt, a UI)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable

from ponder.agents._base import Context, Strategy, Task
from ponder.agents._events import Event, FinalAnswer, NeedsHuman
from ponder.agents._run import drive

Ask = Callable[[str], Awaitable[str]]


async def run_interactive(
    planner: Strategy,
    task: Task,
    ctx: Context,
    ask: Ask,
    on_event: Callable[[Event], None] | None = None,
) -> FinalAnswer | None:
    """Run ``task``; whenever the run waits on a person, ``await ask(question)`` and resume with the answer.
    Returns the final answer (None only if the stream ended without one, e.g. a fatal error event)."""
    ctx = dataclasses.replace(ctx, run_id=ctx.run_id or uuid.uuid4().hex)
    assert ctx.run_id is not None
    events = drive(planner, task, ctx)
    while True:
        question: str | None = None
        final: FinalAnswer | None = None
        async for event in events:
            if on_event is not None:
                on_event(event)
            if isinstance(event, NeedsHuman):
                question = event.question
            elif isinstance(event, FinalAnswer):
                final = event
        if question is None:
            return final
        events = drive(planner, task, ctx, mode="answer", answer=await ask(question))
