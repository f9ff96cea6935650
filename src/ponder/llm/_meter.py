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
    llm_seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class MeteredModel(ModelWrapper):
    """Delegates to ``inner`` and adds every call's usage to :attr:`costs`."""

    def __init__(self, inner: ChatModel, costs: Costs | None = None) -> None:
        super().__init__(inner)
        self.costs = costs if costs is not None else Costs()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        start = time.perf_counter()
        try:
            response = await self.inner.complete(request)
        finally:
            self.costs.llm_calls += 1
            self.costs.llm_seconds += time.perf_counter() - start
        self.costs.prompt_tokens += response.usage.prompt_tokens
        self.costs.completion_tokens += response.usage.completion_tokens
        return response

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        start = time.perf_counter()
        try:
            async for chunk in stream_or_complete(self.inner, request):
                if chunk.response is not None:
                    self.costs.prompt_tokens += chunk.response.usage.prompt_tokens
                    self.costs.completion_tokens += chunk.response.usage.completion_tokens
                yield chunk
        finally:
            self.costs.llm_calls += 1
            self.costs.llm_seconds += time.perf_counter() - start
