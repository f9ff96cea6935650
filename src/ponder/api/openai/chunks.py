"""A strategy run streamed as ``chat.completion.chunk`` events: its reasoning as ``reasoning_content`` deltas (the field
DeepSeek's API and most clients read; vLLM 0.33 itself emits ``reasoning``), then the answer as ``content`` or
``tool_calls``. A client that goes away before the end cancels the run (nobody would read its answer)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import ponder.errors as errors
from ponder.agents import (
    ErrorRaised,
    Event,
    LLMCall,
    NeedsHuman,
    StepStarted,
    TextDelta,
    ToolCalled,
    ToolReturned,
    event_adapter,
)
from ponder.api._deps import ServiceDep
from ponder.api._record import RunStatus
from ponder.api._store import StoredEvent
from ponder.api.openai.answer import final_answer
from ponder.api.openai.protocol import ChatCompletionRequest, Chunks, PonderInfo


class ReasoningText:
    """What of each event a person reading the reasoning wants to see, as text. A step's reasoning is sent once:
    as it streams (text deltas), or whole with its LLM call when it did not stream."""

    def __init__(self) -> None:
        self.streamed = False  # text deltas were sent since the last LLM call

    def __call__(self, event: Event) -> str:
        match event:
            case TextDelta(field=field, text=text) if field != "answer":
                self.streamed = True
                return text
            case StepStarted(name=name, detail=detail):
                return f"\n▸ {name}" + (f": {detail}" if detail else "") + "\n"
            case LLMCall(output=output):
                streamed, self.streamed = self.streamed, False
                if streamed:
                    return "\n"
                reasoning = output.get("reasoning") if isinstance(output, dict) else None
                return f"{reasoning}\n" if reasoning else ""
            case ToolCalled(tool=tool, args=args):
                return f"⚙ {tool} {json.dumps(args)[:500]}\n"
            case ToolReturned(ok=ok, output=output, error=error):
                return f"← {'ok' if ok else 'error'} {str(output or error)[:500]}\n"
            case NeedsHuman(question=question):
                return f"? {question}\n"
        return ""


async def stream_run(
    service: ServiceDep,
    owner: str,
    run_id: str,
    chunks: Chunks,
    body: ChatCompletionRequest,
    takes_tools: bool,
    after: int = 0,
) -> AsyncIterator[dict[str, str]]:
    ended = False
    try:
        yield chunks.delta(role="assistant", content="")
        reasoning_text = ReasoningText()
        async for item in service.events.follow(run_id, after):
            if isinstance(item, StoredEvent):
                event = event_adapter.validate_json(item.data)
                text = reasoning_text(event)
                if text:
                    yield chunks.delta(reasoning_content=text)
                if isinstance(event, ErrorRaised) and event.fatal:
                    yield chunks.delta(content=f"error: {event.error.get('message')}")
            elif item.status.finished or item.status is RunStatus.waiting:
                ended = True
                record = await service.store.get_run(run_id)
                if record is None:
                    break
                answer = await final_answer(service, record, body, takes_tools)
                if answer.tool_calls:
                    calls = [{"index": i, **c.model_dump()} for i, c in enumerate(answer.tool_calls)]
                    yield chunks.delta(tool_calls=calls)
                elif answer.content is not None:
                    yield chunks.delta(content=answer.content)
                yield chunks.delta(answer.finish, ponder=PonderInfo(run_id=run_id, status=record.status.value))
                if body.include_usage():
                    yield chunks.usage(answer.usage)
                break
        yield chunks.done()
    finally:
        if not ended:  # the client disconnected mid-run (sse-starlette closed this generator)
            with contextlib.suppress(errors.PonderError):
                await asyncio.shield(service.runs.cancel(run_id, owner))
