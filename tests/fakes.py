"""Fakes at ponder's own seams: a scripted ChatModel and a function-driven one.

``ScriptedModel`` answers from a queue of replies (strings, dicts/pydantic objects serialised as JSON, Choice
objects, or exceptions to raise), records every request, and ``assert_complete()`` checks the queue was used up.
``FunctionModel`` lets a plain function play the model, so a loop can be tested step by step.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pydantic import BaseModel

from ponder.llm import Capabilities, ChatRequest, ChatResponse, Choice, Usage

Reply = str | dict[str, Any] | list[Any] | BaseModel | Choice | BaseException

ALL_CONSTRAINTS = frozenset({"json_schema", "regex", "choice", "grammar"})


def _to_choice(reply: Reply, index: int) -> Choice:
    if isinstance(reply, Choice):
        return reply.model_copy(update={"index": index})
    if isinstance(reply, BaseModel):
        return Choice(index=index, text=reply.model_dump_json())
    if isinstance(reply, dict | list):
        return Choice(index=index, text=json.dumps(reply))
    return Choice(index=index, text=str(reply))


def _usage(request: ChatRequest, choices: list[Choice]) -> Usage:
    prompt = sum(len(m.content.split()) for m in request.messages)
    return Usage(prompt_tokens=prompt, completion_tokens=sum(len(c.text.split()) for c in choices))


class ScriptedModel:
    """Answers each request with the next reply(ies) from a queue; ``n`` replies are taken for ``n > 1``."""

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        name: str = "scripted",
        capabilities: Capabilities | None = None,
    ) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[ChatRequest] = []
        self._name = name
        self._capabilities = capabilities or Capabilities(constraints=ALL_CONSTRAINTS, native_n=True)

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def add(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        choices = []
        for i in range(request.n):
            if not self.replies:
                raise AssertionError(
                    f"ScriptedModel ran out of replies at request {len(self.requests)}: "
                    f"{request.messages[-1].content[:200]!r}"
                )
            reply = self.replies.popleft()
            if isinstance(reply, BaseException):
                raise reply
            choices.append(_to_choice(reply, i))
        return ChatResponse(model=self._name, choices=choices, usage=_usage(request, choices))

    def assert_complete(self) -> None:
        assert not self.replies, f"{len(self.replies)} scripted replies were never requested"


ModelFunction = Callable[[ChatRequest], Reply | list[Reply] | Awaitable[Reply | list[Reply]]]


class FunctionModel:
    """A model played by ``fn(request)``, which returns one reply (or a list of ``n`` replies)."""

    def __init__(self, fn: ModelFunction, *, name: str = "function", capabilities: Capabilities | None = None) -> None:
        self.fn = fn
        self.requests: list[ChatRequest] = []
        self._name = name
        self._capabilities = capabilities or Capabilities(constraints=ALL_CONSTRAINTS, native_n=True)

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        out = self.fn(request)
        if isinstance(out, Awaitable):
            out = await out
        replies = out if isinstance(out, list) and request.n > 1 else [out] * request.n
        choices = []
        for i, reply in enumerate(replies):
            if isinstance(reply, BaseException):
                raise reply
            choices.append(_to_choice(reply, i))
        return ChatResponse(model=self._name, choices=choices, usage=_usage(request, choices))
