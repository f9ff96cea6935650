"""Request and response types of the model seam, and the :class:`ChatModel` protocol."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


def system(content: str) -> Message:
    return Message(role="system", content=content)


def user(content: str) -> Message:
    return Message(role="user", content=content)


def assistant(content: str) -> Message:
    return Message(role="assistant", content=content)


class JsonSchemaConstraint(BaseModel):
    """The reply must be a JSON document valid against ``json_schema``."""

    kind: Literal["json_schema"] = "json_schema"
    json_schema: dict[str, Any]
    name: str = "output"


class RegexConstraint(BaseModel):
    """The whole reply must match ``pattern``."""

    kind: Literal["regex"] = "regex"
    pattern: str


class ChoiceConstraint(BaseModel):
    """The reply must be exactly one of ``choices``."""

    kind: Literal["choice"] = "choice"
    choices: list[str] = Field(min_length=1)


class GrammarConstraint(BaseModel):
    """The reply must match a context-free grammar (GBNF / Lark, as the backend understands)."""

    kind: Literal["grammar"] = "grammar"
    grammar: str


Constraint = Annotated[
    JsonSchemaConstraint | RegexConstraint | ChoiceConstraint | GrammarConstraint, Field(discriminator="kind")
]


class ChatRequest(BaseModel):
    messages: list[Message] = Field(min_length=1)
    constraint: Constraint | None = None
    n: int = Field(default=1, ge=1, le=64)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=512, ge=1)
    stop: list[str] = Field(default_factory=list)
    logprobs: bool = False
    top_logprobs: int = Field(default=0, ge=0, le=20)
    seed: int | None = None

    def fingerprint(self) -> str:
        """A stable hash of the request, used by record/replay."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:32]


FinishReason = Literal["stop", "length", "error"]


class TokenLogprob(BaseModel):
    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


WINDOW = 16  # tokens per window of ``Confidence.lowest_window`` (DeepConf's groups are larger; replies here are short)


class Confidence(BaseModel):
    """How sure the model was of one reply, from its own token distributions (before a constraint's mask), for
    choosing among samples (issue 32). Higher is surer for all three.

    - ``mean_logprob``: the mean log-probability of the tokens it took;
    - ``lowest_window``: the lowest mean log-probability over any ``WINDOW`` consecutive tokens (DeepConf's
      lowest-group confidence, arXiv 2508.15260: one unsure stretch marks a reply);
    - ``self_certainty``: the mean KL divergence of each step's distribution from uniform (arXiv 2502.18581); it needs
      the whole distribution, so only the embedded backend gives it (None from a server's top logprobs).
    """

    tokens: int = Field(description="sampled tokens measured (the end-of-reply token included)")
    mean_logprob: float
    lowest_window: float
    self_certainty: float | None = None

    @classmethod
    def of(cls, logprobs: Sequence[float], certainty_sum: float | None = None) -> Confidence | None:
        """From the chosen tokens' log-probabilities (and the sum of each step's self-certainty, where known)."""
        n = len(logprobs)
        if n == 0:
            return None
        width = min(WINDOW, n)
        window = sum(logprobs[:width])
        lowest = window
        for i in range(width, n):
            window += logprobs[i] - logprobs[i - width]
            lowest = min(lowest, window)
        return cls(
            tokens=n,
            mean_logprob=sum(logprobs) / n,
            lowest_window=lowest / width,
            self_certainty=None if certainty_sum is None else certainty_sum / n,
        )


class Choice(BaseModel):
    index: int = 0
    text: str
    finish_reason: FinishReason = "stop"
    logprobs: list[TokenLogprob] | None = None
    confidence: Confidence | None = Field(default=None, description="how sure the model was (where measurable)")


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens served from a prefix cache rather than evaluated (part of ``prompt_tokens``)."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class Timings(BaseModel):
    total_s: float = 0.0
    first_token_s: float | None = None
    prompt_s: float | None = None


class ChatResponse(BaseModel):
    model: str
    choices: list[Choice] = Field(min_length=1)
    usage: Usage = Field(default_factory=Usage)
    timings: Timings = Field(default_factory=Timings)

    @property
    def text(self) -> str:
        return self.choices[0].text


class Capabilities(BaseModel):
    """What a backend can enforce and do, so callers fail before generating instead of after."""

    constraints: frozenset[str] = frozenset({"json_schema", "regex", "choice"})
    native_n: bool = False
    logprobs: bool = True
    seed: bool = True


@runtime_checkable
class ChatModel(Protocol):
    """The model seam: one async call from a request to a response.

    Implementations raise only :class:`ponder.errors.ModelError` subclasses. ``n > 1`` must always work; a backend
    without native support samples sequentially (``capabilities.native_n`` tells which).
    """

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def complete(self, request: ChatRequest) -> ChatResponse: ...


class ModelWrapper:
    """Base of the wrappers around a model (metering, recording, counting): forwards ``name``, ``capabilities`` and
    ``complete``. It defines no ``stream``, so a subclass streams only where it forwards the inner stream itself
    (with :func:`stream_or_complete`) instead of passing itself off as a streaming model."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return await self.inner.complete(request)


class StreamChunk(BaseModel):
    """A piece of a streamed reply: text deltas of choice 0, then one last chunk carrying the whole response."""

    delta: str = ""
    response: ChatResponse | None = None


@runtime_checkable
class StreamingChatModel(ChatModel, Protocol):
    """A model that can also stream its reply token by token (``n`` must be 1)."""

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]: ...


async def stream_or_complete(model: ChatModel, request: ChatRequest) -> AsyncIterator[StreamChunk]:
    """Stream when the model can, else one chunk with the whole text: callers need not care which."""
    if request.n == 1 and isinstance(model, StreamingChatModel):
        async for chunk in model.stream(request):
            yield chunk
        return
    response = await model.complete(request)
    yield StreamChunk(delta=response.text)
    yield StreamChunk(response=response)
