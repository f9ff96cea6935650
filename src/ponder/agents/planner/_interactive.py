"""Drive a planner run to its end, answering its human questions with a callback (a terminal prompt, a UI)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, runtime_checkable

from ponder.agents._base import Context, Task
from ponder.agents._events import Event, FinalAnswer, NeedsHuman
from ponder.agents._run import drive

Ask = Callable[[str], Awaitable[str]]


@runtime_checkable
class Resumable(Protocol):
    """A strategy whose runs can wait on a person and go on later (the planner)."""

    def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]: ...

    def resume(self, run_id: str, answer: str | None, ctx: Context) -> AsyncIterator[Event]: ...


async def run_interactive(
    planner: Resumable,
    task: Task,
    ctx: Context,
    ask: Ask,
    on_event: Callable[[Event], None] | None = None,
) -> FinalAnswer | None:
    """Run ``task``; whenever the run waits on a person, ``await ask(question)`` and resume with the answer.
    Returns the final answer (None only if the stream ended without one, e.g. a fatal error event)."""
    ctx = dataclasses.replace(ctx, run_id=ctx.run_id or uuid.uuid4().hex)
    assert ctx.run_id is not None
    events = drive(planner, task, ctx)  # type: ignore[arg-type]
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
        events = drive(planner, task, ctx, mode="answer", answer=await ask(question))  # type: ignore[arg-type]
