"""Run a structured call while streaming one of its string fields as :class:`TextDelta` events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import from_json

from ponder.agents._events import TextDelta
from ponder.llm import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    Message,
    stream_or_complete,
    structured,
    think_then_answer_n,
)

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")


class _FieldTail:
    """Follows a growing JSON document and returns what was added to one top-level string field.

    pydantic-core's partial JSON parser does the parsing; this only remembers how much was already shown.
    """

    def __init__(self, field: str) -> None:
        self.field = field
        self.buffer = ""
        self.shown = 0

    def feed(self, delta: str) -> str:
        self.buffer += delta
        try:
            doc = from_json(self.buffer, allow_partial="trailing-strings")
        except ValueError:
            return ""
        value = doc.get(self.field) if isinstance(doc, dict) else None
        if not isinstance(value, str) or len(value) <= self.shown:
            return ""
        new = value[self.shown :]
        self.shown = len(value)
        return new

    def reset(self) -> None:
        self.buffer = ""
        self.shown = 0


async def stream_structured(
    model: ChatModel,
    messages: Sequence[Message],
    output_type: type[T],
    *,
    field: str,
    **options: Any,
) -> AsyncIterator[TextDelta | T]:
    """Yield :class:`TextDelta` events for ``field`` as the reply streams, then the validated object."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    tail = _FieldTail(field)

    def on_text(delta: str) -> None:
        new = tail.feed(delta)
        if new:
            queue.put_nowait(new)

    task = asyncio.create_task(structured(model, messages, output_type, on_text=on_text, **options))
    async for item in _streamed(task, queue, field):
        yield item


async def _streamed(task: asyncio.Task[R], queue: asyncio.Queue[str], field: str) -> AsyncIterator[TextDelta | R]:
    """Yield what ``task``'s text callback puts in ``queue`` as :class:`TextDelta` events, then its result."""
    try:
        while not task.done() or not queue.empty():
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield TextDelta(field=field, text=getter.result())
            else:
                getter.cancel()
        yield task.result()
    finally:
        if not task.done():
            task.cancel()


async def stream_think_then_answer(
    model: ChatModel,
    messages: Sequence[Message],
    output_type: type[T],
    *,
    field: str = "reasoning",
    **options: Any,
) -> AsyncIterator[TextDelta | tuple[str, T]]:
    """Yield the free-text reasoning as :class:`TextDelta` events while it is generated, then (reasoning, answer)
    (see :func:`ponder.llm.think_then_answer_n`)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(
        think_then_answer_n(model, messages, output_type, n=1, on_text=queue.put_nowait, **options)
    )
    async for item in _streamed(task, queue, field):
        yield item[0] if isinstance(item, list) else item


async def stream_text(
    model: ChatModel, messages: Sequence[Message], *, field: str = "text", until: str | None = None, **options: Any
) -> AsyncIterator[TextDelta | ChatResponse]:
    """An unconstrained reply: :class:`TextDelta` events as it is generated, then the whole response. With ``until``
    the deltas stop where that marker starts (the reply's answer line is not part of the streamed reasoning); a
    tail that could be the marker's beginning, or trailing whitespace, is held back until it is clear what follows."""
    sent = 0
    text = ""
    done = False
    async for chunk in stream_or_complete(model, ChatRequest(messages=list(messages), **options)):
        if chunk.delta and not done:
            text += chunk.delta
            cut = text.find(until) if until else -1
            if cut >= 0:
                end, done = cut, True
            elif until:
                end = len(text) - _partial_suffix(text, until)
            else:
                end = len(text)
            while until and end > sent and text[end - 1].isspace():  # the line before the marker: held too
                end -= 1
            if end > sent:
                yield TextDelta(field=field, text=text[sent:end])
                sent = end
        if chunk.response is not None:
            if not done and until and sent < len(text):  # the held-back tail was not the marker after all
                yield TextDelta(field=field, text=text[sent:])
            yield chunk.response


def _partial_suffix(text: str, marker: str) -> int:
    """The length of the longest end of ``text`` that is a beginning of ``marker``."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return 0
