"""Wiring used by the CLI and the API: build a run's context from settings and drive a strategy."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console

from ponder.agents import (
    Context,
    ErrorRaised,
    Event,
    EvidenceChecked,
    FinalAnswer,
    LLMCall,
    NeedsHuman,
    PlanUpdated,
    StepStarted,
    Task,
    TextDelta,
    ToolCalled,
    ToolReturned,
    get_strategy,
)
from ponder.config import Settings
from ponder.llm import ChatModel, ChatRequest, user
from ponder.llm._factory import build_model


def build_context(settings: Settings, model: ChatModel | None = None) -> Context:
    return Context(
        model=model or build_model(settings.llm),
        checkpoint_url=settings.checkpoint_url,
    )


class EventPrinter:
    """Prints events for a person at a terminal; streamed text is shown as it comes, not repeated after."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.streaming = False
        self.streamed = False

    def __call__(self, event: Event) -> None:
        console = self.console
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
    strategy = get_strategy(strategy_name)
    ctx = build_context(settings)
    printer = EventPrinter(console)
    async for event in strategy.run(task, ctx):
        if as_json:
            console.print(event.model_dump_json(), highlight=False, soft_wrap=True)
        else:
            printer(event)


async def describe_model(settings: Settings, *, check: bool = True) -> dict[str, Any]:
    info: dict[str, Any] = {"backend": settings.llm.backend.value}
    if settings.llm.base_url:
        info["base_url"] = settings.llm.base_url
    model = build_model(settings.llm)
    info["model"] = model.name
    info["constraints"] = ", ".join(sorted(model.capabilities.constraints))
    if check:
        start = time.perf_counter()
        try:
            response = await model.complete(ChatRequest(messages=[user("Say OK.")], max_tokens=4))
            info["answers"] = True
            info["reply"] = response.text.strip()
            info["latency_s"] = round(time.perf_counter() - start, 2)
        except Exception as exc:  # noqa: BLE001 - any failure means "does not answer"; shown to the user
            info["answers"] = False
            info["error"] = str(exc)
    return info
