"""Liveness for every model call a strategy makes, whatever the strategy: :class:`LiveModel` wraps the run's model
and, while a call runs longer than a moment, reports how far it has got as :class:`ModelProgress` events (prompt
tokens read, tokens written, tokens per second, the JSON field being written). The API sends them over SSE and the
chat UI and the CLI show them, so a 60-second planner step is never a silent one."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from pydantic_core import from_json

from ponder.agents._events import ModelCalled, ModelProgress
from ponder.llm import ChatModel, ChatRequest, ChatResponse, ModelWrapper, StreamChunk, stream_or_complete
from ponder.llm._progress import CallProgress, watching


def writing_field(text: str) -> str | None:
    """The top-level field a partial JSON object is writing now (the last key it has opened)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        doc = from_json(text, allow_partial="trailing-strings")
    except ValueError:
        return None
    return next(reversed(doc), None) if isinstance(doc, dict) and doc else None


class LiveModel(ModelWrapper):
    """Delegates to ``inner``; ``emit`` receives a :class:`ModelProgress` every ``interval_s`` while a call runs
    (none for a call that ends sooner) and one ``done`` after a call that sent any; with ``record_calls``, a
    :class:`ModelCalled` after every call (its messages, parameters and outputs)."""

    def __init__(
        self,
        inner: ChatModel,
        emit: Callable[[ModelProgress | ModelCalled], None],
        *,
        interval_s: float = 1.0,
        record_calls: bool = False,
        max_chars: int = 20_000,
    ) -> None:
        super().__init__(inner)
        self._emit = emit
        self._interval_s = interval_s
        self._record = record_calls
        self._max_chars = max_chars
        self._calls = 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        async with self._watched(request) as progress:
            try:
                with watching(progress):
                    response = await self.inner.complete(request)
            except Exception as exc:
                self._called(request, progress, None, f"{type(exc).__name__}: {exc}")
                raise
            self._called(request, progress, response)
            return response

    def _called(
        self, request: ChatRequest, progress: CallProgress, response: ChatResponse | None, error: str = ""
    ) -> None:
        if not self._record:
            return
        cut = self._max_chars

        def clip(text: str) -> str:
            return text if len(text) <= cut else text[:cut] + f" …[{len(text) - cut} more characters]"

        params = request.model_dump(exclude={"messages"}, exclude_defaults=True, mode="json")
        usage = response.usage if response is not None else None
        self._emit(
            ModelCalled(
                call=progress.call,
                model=self.name,
                messages=[{"role": m.role, "content": clip(m.content)} for m in request.messages],
                params=params,
                outputs=[clip(c.text) for c in response.choices] if response is not None else [],
                finish_reasons=[c.finish_reason for c in response.choices] if response is not None else [],
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                cached_tokens=usage.cached_tokens if usage else 0,
                seconds=round(time.perf_counter() - progress.started, 3),
                error=error or None,
            )
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        async with self._watched(request) as progress:
            chunks = stream_or_complete(self.inner, request)
            try:
                # the backend picks up the progress record when its stream starts (inside the first step); the
                # context variable is not left set across a yield, where it would leak into the consumer
                with watching(progress):
                    first = await anext(chunks)
            except StopAsyncIteration:
                return
            deltas = 0
            pending: StreamChunk | None = first
            while pending is not None:
                if pending.delta:
                    deltas += 1
                    progress.text += pending.delta
                    if progress.peek is None and progress.generated < deltas:  # the backend does not count
                        progress.sampled()
                if pending.response is not None:
                    self._called(request, progress, pending.response)
                yield pending
                pending = await anext(chunks, None)

    @contextlib.asynccontextmanager
    async def _watched(self, request: ChatRequest) -> AsyncIterator[CallProgress]:
        self._calls += 1
        call, progress, reported = self._calls, CallProgress(), [False]
        progress.call = call

        async def tick() -> None:
            while True:
                await asyncio.sleep(self._interval_s)
                self._emit(self._report(call, request, progress))
                reported[0] = True

        ticker = asyncio.create_task(tick())
        try:
            yield progress
        finally:
            ticker.cancel()  # it waits only in its sleep, so it can report nothing more
            if reported[0]:
                self._emit(self._report(call, request, progress, done=True))

    @staticmethod
    def _report(call: int, request: ChatRequest, progress: CallProgress, *, done: bool = False) -> ModelProgress:
        now = time.perf_counter()
        rate = None
        if progress.first_token_at is not None and progress.generated > 1 and now > progress.first_token_at:
            rate = round((progress.generated - 1) / (now - progress.first_token_at), 2)
        if done:
            phase = "done"
        elif progress.generated:
            phase = "writing"
        elif progress.prompt_tokens and progress.prompt_done < progress.prompt_tokens:
            phase = "reading"
        else:
            phase = "waiting"
        json_out = request.constraint is not None and request.constraint.kind == "json_schema"
        return ModelProgress(
            call=call,
            phase=phase,
            seconds=round(now - progress.started, 2),
            prompt_tokens=progress.prompt_tokens,
            prompt_done=progress.prompt_done,
            tokens=progress.generated,
            tokens_per_s=rate,
            field=writing_field(progress.text_so_far()) if json_out and progress.generated else None,
        )


def describe_progress(event: ModelProgress) -> str:
    """One line for a person: "reading the prompt: 1,200 of 1,800 tokens (67%), 31 s" and the like."""
    if event.phase == "reading" and event.prompt_tokens:
        share = 100 * event.prompt_done // event.prompt_tokens
        what = f"reading the prompt: {event.prompt_done:,} of {event.prompt_tokens:,} tokens ({share}%)"
    elif event.phase == "writing":
        rate = f" at {event.tokens_per_s:.1f} tok/s" if event.tokens_per_s else ""
        into = f", writing {event.field!r}" if event.field else ""
        what = f"writing: {event.tokens:,} tokens{rate}{into}"
    elif event.phase == "done":
        what = "done"
    else:
        what = "waiting for the model"
    return f"model call {event.call}: {what}, {event.seconds:.0f} s"
