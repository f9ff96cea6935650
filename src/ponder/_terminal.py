"""The CLI's terminal rendering: events printed for a person (streamed text as it comes, a status line for a model
call that takes a while), and ``ponder ask``'s drive of one strategy."""

from __future__ import annotations

import asyncio
import json

from rich.console import Console
from rich.status import Status

from ponder.agents import (
    ErrorRaised,
    Event,
    EvidenceChecked,
    FinalAnswer,
    LiveModel,
    LLMCall,
    ModelProgress,
    NeedsHuman,
    PlanUpdated,
    StepStarted,
    Task,
    TextDelta,
    ToolCalled,
    ToolReturned,
    drive,
    get_strategy,
)
from ponder.agents._live import describe_progress
from ponder.config import Settings
from ponder.wiring import open_context


class EventPrinter:
    """Prints events for a person at a terminal; streamed text is shown as it comes, not repeated after; a model
    call that takes a while shows its progress on a transient status line (terminals only)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.streaming = False
        self.streamed = False
        self.status: Status | None = None

    def __call__(self, event: Event) -> None:
        console = self.console
        if isinstance(event, ModelProgress):
            self.progress(event)
            return
        self.stop_status()
        if self.streaming and not isinstance(event, TextDelta):
            console.print()
            self.streaming = False
        if isinstance(event, TextDelta):
            if not self.streaming:
                console.print(f"[cyan]{event.field}:[/] ", end="")
            self.streaming = self.streamed = True
            console.print(event.text, end="", highlight=False, markup=False, soft_wrap=True)
        else:
            render_event(event, console, show_reasoning=not self.streamed)

    def progress(self, event: ModelProgress) -> None:
        if event.phase == "done" or self.streaming or not self.console.is_terminal:
            self.stop_status()
            return
        text = f"[dim]{describe_progress(event)}[/]"
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def stop_status(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def render_event(event: Event, console: Console, *, show_reasoning: bool = True) -> None:
    """Print one event for a person at a terminal."""
    if isinstance(event, StepStarted):
        console.print(f"[dim]▸ {event.name}[/] {event.detail}")
    elif isinstance(event, TextDelta):
        console.print(event.text, end="", highlight=False, markup=False)
    elif isinstance(event, LLMCall):
        output = event.output
        if show_reasoning and isinstance(output, dict) and "reasoning" in output:
            console.print(f"[cyan]reasoning:[/] {output['reasoning']}", highlight=False)
        console.print(
            f"[dim]  llm {event.purpose}: {event.prompt_tokens}+{event.completion_tokens} tokens, "
            f"{event.seconds:.1f}s[/]"
        )
    elif isinstance(event, ToolCalled):
        console.print(f"[magenta]⚙ {event.tool}[/] {json.dumps(event.args)[:300]}", highlight=False)
    elif isinstance(event, ToolReturned):
        status = "ok" if event.ok else f"error: {event.error}"
        console.print(f"[dim]  ← {status} {str(event.output)[:300]}[/]", highlight=False)
    elif isinstance(event, EvidenceChecked):
        for t in event.triples:
            mark = "✓" if t.get("supported") else "✗"
            console.print(f"  {mark} ({t.get('subject')}, {t.get('relation')}, {t.get('object')})", highlight=False)
    elif isinstance(event, PlanUpdated):
        console.print(f"[blue]plan[/] {event.change}")
    elif isinstance(event, NeedsHuman):
        console.print(f"[yellow]? {event.question}[/]")
    elif isinstance(event, ErrorRaised):
        console.print(f"[red]error:[/] {event.error.get('message')}")
    elif isinstance(event, FinalAnswer):
        console.print(f"[bold green]answer:[/] {event.text}", highlight=False)


async def ask_and_print(
    settings: Settings, strategy_name: str, task: Task, console: Console, *, as_json: bool = False
) -> None:
    from ponder.telemetry import TracedModel, setup_tracing

    setup_tracing()
    strategy = get_strategy(strategy_name)
    printer = EventPrinter(console)

    def emit(event: Event) -> None:
        if as_json:
            console.print(event.model_dump_json(), highlight=False, soft_wrap=True)
        else:
            printer(event)

    try:
        async with open_context(settings) as ctx:
            ctx.model = LiveModel(TracedModel(ctx.model), emit)
            if strategy.resumable:  # questions are answered at the prompt, then the run resumes
                from ponder.agents.planner import run_interactive

                async def ask(question: str) -> str:
                    printer.stop_status()
                    return await asyncio.to_thread(console.input, "[yellow]answer> [/]")

                await run_interactive(strategy, task, ctx, ask, on_event=emit)
            else:
                async for event in drive(strategy, task, ctx):
                    emit(event)
    finally:
        printer.stop_status()
