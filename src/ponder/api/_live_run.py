"""A run executing in this process, and the log line each of its steps writes."""

from __future__ import annotations

import asyncio
import logging

from ponder.agents import ErrorRaised, Event, FinalAnswer, LLMCall, NeedsHuman, StepStarted, ToolCalled, ToolReturned

log = logging.getLogger("ponder.api._runs")  # the runs' log, as before the split


class LiveRun:
    """A run executing in this process."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.task: asyncio.Task[None] | None = None
        self.lost = False  # another replica took the run over: stop without touching its record

    def stop(self, lost: bool) -> None:
        self.lost = self.lost or lost
        if self.task is not None:
            self.task.cancel()


def log_event(run_id: str, event: Event) -> None:
    """One INFO line per step of a run (streamed text and progress ticks are left to the event stream)."""
    if isinstance(event, StepStarted):
        log.info("%s step %s%s", run_id, event.name, f": {event.detail[:120]}" if event.detail else "")
    elif isinstance(event, LLMCall):
        log.info(
            "%s llm %s: %d+%d tokens, %.1f s",
            run_id, event.purpose, event.prompt_tokens, event.completion_tokens, event.seconds,
        )  # fmt: skip
    elif isinstance(event, ToolCalled):
        log.info("%s tool %s called", run_id, event.tool)
    elif isinstance(event, ToolReturned):
        log.info("%s tool %s %s in %.2f s", run_id, event.tool, "ok" if event.ok else "failed", event.seconds)
    elif isinstance(event, NeedsHuman):
        log.info("%s waits for a human: %s", run_id, event.question[:120])
    elif isinstance(event, FinalAnswer):
        log.info("%s answered: %s", run_id, event.text[:120])
    elif isinstance(event, ErrorRaised):
        log.log(logging.WARNING if event.fatal else logging.INFO, "%s error: %s", run_id, event.error.get("message"))
