"""Drive a strategy: the one way the CLI, evals and the API run one (a trace with its steps as spans; a start, a
resume with an answer, or a recovery after a crash), and a stream's final result."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Literal

from ponder.agents._base import Context, Strategy, StrategyResult, Task
from ponder.agents._events import Event, FinalAnswer, StepStarted
from ponder.errors import InputError, NotFoundError, StrategyError
from ponder.llm import Costs, MeteredModel

Mode = Literal["start", "answer", "recover"]


async def drive(
    strategy: Strategy,
    task: Task,
    ctx: Context,
    *,
    mode: Mode = "start",
    answer: str | None = None,
    costs: Costs | None = None,
) -> AsyncIterator[Event]:
    """``strategy``'s events for ``task``: ``start`` runs it; ``answer`` resumes run ``ctx.run_id`` with a person's
    answer (or a client tool's result); ``recover`` resumes it after a crash from its checkpoint, or starts it
    afresh when it never reached one (a strategy that cannot resume starts afresh). The run is one trace
    (``invoke_agent``), each step a span holding the model and tool calls made in it. The model is metered once,
    here (into ``costs`` when given: the caller's running total), and the strategy's ``ctx.metered()`` is that meter.
    """
    from ponder.telemetry import StepSpans, run_span  # OpenTelemetry loads with the first run, not the import

    resumable = strategy.resumable
    if mode == "answer" and not resumable:
        raise InputError(f"strategy {strategy.name!r} cannot be resumed, so it cannot take an answer")
    if not isinstance(ctx.model, MeteredModel):
        ctx = dataclasses.replace(ctx, model=MeteredModel(ctx.model, costs))
    run_id = ctx.run_id or "run"
    with run_span(strategy.name, run_id) as root, StepSpans(root) as steps:
        if mode == "start" or not resumable:
            events = strategy.run(task, ctx)
        elif mode == "answer":
            events = strategy.resume(run_id, answer, ctx)
        else:
            events = _resume_or_restart(strategy.resume(run_id, None, ctx), strategy.run(task, ctx))
        async for event in events:
            if isinstance(event, StepStarted):
                steps.start(event.name, event.detail)
            yield event


async def _resume_or_restart(resumed: AsyncIterator[Event], fresh: AsyncIterator[Event]) -> AsyncIterator[Event]:
    """After a crash: resume from the checkpoint, or start afresh when the run never reached one."""
    try:
        first = await anext(resumed)
    except NotFoundError:
        async for event in fresh:
            yield event
        return
    except StopAsyncIteration:
        return
    yield first
    async for event in resumed:
        yield event


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
