"""A wrapper that counts a model's calls, tokens and seconds, so strategies can report their costs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from pydantic import BaseModel

from ponder.llm._types import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    ModelWrapper,
    StreamChunk,
    stream_or_complete,
)


class Costs(BaseModel):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens a prefix cache served (part of prompt_tokens)
    llm_seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ObservedModel(ModelWrapper):
    """A wrapper that sees the outcome of every call, completed or streamed (the inner model's stream is forwarded
    token by token): subclasses implement :meth:`observe`, called once per call."""

    def observe(self, response: ChatResponse | None, seconds: float, *, failed: bool) -> None:
        """``response`` is None when the call produced none; ``failed`` when the model raised (a consumer that
        stops reading a stream early is not a failure)."""
        raise NotImplementedError

    async def complete(self, request: ChatRequest) -> ChatResponse:
        start = time.perf_counter()
        response: ChatResponse | None = None
        failed = False
        try:
            response = await self.inner.complete(request)
            return response
        except BaseException:
            failed = True
            raise
        finally:
            self.observe(response, time.perf_counter() - start, failed=failed)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        start = time.perf_counter()
        observed = failed = False
        try:
            async for chunk in stream_or_complete(self.inner, request):
                if chunk.response is not None:  # the last chunk: observed now, not when the consumer lets go
                    observed = True
                    self.observe(chunk.response, time.perf_counter() - start, failed=False)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException:
            failed = True
            raise
        finally:
            if not observed:
                self.observe(None, time.perf_counter() - start, failed=failed)


class MeteredModel(ObservedModel):
    """Delegates to ``inner`` and adds every call's usage to :attr:`costs`."""

    def __init__(self, inner: ChatModel, costs: Costs | None = None) -> None:
        super().__init__(inner)
        self.costs = costs if costs is not None else Costs()

    def observe(self, response: ChatResponse | None, seconds: float, *, failed: bool) -> None:
        self.costs.llm_calls += 1
        self.costs.llm_seconds += seconds
        if response is not None:
            self.costs.prompt_tokens += response.usage.prompt_tokens
            self.costs.completion_tokens += response.usage.completion_tokens
            self.costs.cached_tokens += response.usage.cached_tokens
