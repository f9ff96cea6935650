"""A :class:`ChatModel` over any OpenAI-compatible chat server: vLLM, OpenAI itself, or llama.cpp's server.

The caller injects the ``httpx.AsyncClient`` (``from_settings`` builds one from :class:`LLMSettings`). Requests are
formatted by the pure :func:`build_payload`; transport failures, 429 and 5xx are retried with exponential backoff
and jitter (tenacity; never sooner than the server's ``Retry-After``), and every failure leaves as a
:mod:`ponder.errors` type. A reply cut off at ``max_tokens`` is returned with ``finish_reason="length"``;
:func:`ponder.llm.structured` refuses it. :meth:`OpenAICompatModel.stream` streams one choice over SSE.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from httpx_sse import EventSource
from opentelemetry import propagate
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from ponder.config import Backend, LLMSettings
from ponder.errors import (
    ConfigError,
    ModelError,
    ModelRateLimited,
    ModelRequestRejected,
    ModelServerError,
    ModelUnavailable,
)
from ponder.llm._openai_payload import (
    StreamDelta,
    build_payload,
    capabilities_for,
    confidence_of,
    parse_choices,
    server_message,
    stream_payload,
)
from ponder.llm._structured import check_supported
from ponder.llm._types import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    Choice,
    FinishReason,
    StreamChunk,
    Timings,
    TokenLogprob,
    Usage,
)

__all__ = ["OpenAICompatModel", "build_payload"]

CHAT_PATH = "chat/completions"
T = TypeVar("T")


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ModelError) and exc.retryable


def _status_error(response: httpx.Response) -> ModelError:
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    message = f"HTTP {response.status_code} from {response.request.url}: {server_message(data, response.text)}"
    status = response.status_code
    if status == 429:
        return ModelRateLimited(message)
    if status == 408 or status >= 500:
        return ModelServerError(message)
    if status in (401, 403):
        return ModelRequestRejected(message, hint="set PONDER_LLM__API_KEY to a key this server accepts")
    if status == 404:
        return ModelRequestRejected(
            message, hint="check PONDER_LLM__BASE_URL (it should end in /v1) and PONDER_LLM__MODEL"
        )
    return ModelRequestRejected(message)


class OpenAICompatModel:
    """Chat completions from an OpenAI-compatible server in one of three dialects (see ``_openai_payload``)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        dialect: Backend = Backend.vllm,
        model: str | None = None,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        backoff_max_s: float = 20.0,
        owns_client: bool = False,
    ) -> None:
        self._capabilities = capabilities_for(dialect)
        self.client = client
        self.dialect = dialect
        self.model = model
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._owns_client = owns_client

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> OpenAICompatModel:
        """A model with its own client: ``base_url``, ``api_key``, ``timeout_s`` and ``max_retries`` from settings."""
        if not settings.base_url:
            raise ConfigError(
                f"backend {settings.backend.value!r} needs a server URL",
                hint="set PONDER_LLM__BASE_URL (e.g. http://localhost:8000/v1) or pass --base-url",
            )
        headers = {}
        if settings.api_key is not None:
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        client = httpx.AsyncClient(
            base_url=settings.base_url,
            headers=headers,
            timeout=httpx.Timeout(settings.timeout_s, connect=min(settings.timeout_s, 10.0)),
        )
        return cls(
            client,
            dialect=settings.backend,
            model=settings.model,
            max_retries=settings.max_retries,
            owns_client=True,
        )

    @property
    def name(self) -> str:
        return f"{self.dialect.value}:{self.model or self.client.base_url}"

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def aclose(self) -> None:
        """Close the HTTP client if this model built it (``from_settings``); an injected client stays open."""
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if request.constraint is not None:
            check_supported(self, request.constraint.kind)
        start = time.perf_counter()
        copies = 1
        if request.n > 1 and request.temperature == 0 and self.dialect is Backend.vllm:
            # vLLM refuses n > 1 at temperature 0 ("n must be 1 when using greedy sampling"); greedy decoding is
            # deterministic, so one choice decoded once is each of the n
            copies, request = request.n, request.model_copy(update={"n": 1})
        if self._capabilities.native_n or request.n == 1:
            data = await self._post(build_payload(request, self.model, self.dialect))
            choices, usage = parse_choices(data)
            if copies > 1:
                choices = [c.model_copy(update={"index": i}) for i in range(copies) for c in choices]
            model_name = str(data.get("model") or self.model or "")
            prompt_s = _prompt_seconds(data)
        else:
            choices, usage, model_name, prompt_s = await self._sample_sequentially(request)
        return ChatResponse(
            model=model_name or self.name,
            choices=choices,
            usage=usage,
            timings=Timings(total_s=time.perf_counter() - start, prompt_s=prompt_s),
        )

    async def _sample_sequentially(self, request: ChatRequest) -> tuple[list[Choice], Usage, str, float | None]:
        """``n`` one-choice requests; a fixed seed is advanced per sample so the samples can differ."""
        choices: list[Choice] = []
        usage = Usage()
        model_name = ""
        prompt_s: float | None = None
        for i in range(request.n):
            seed = None if request.seed is None else request.seed + i
            one = request.model_copy(update={"n": 1, "seed": seed})
            data = await self._post(build_payload(one, self.model, self.dialect))
            got, got_usage = parse_choices(data, index_offset=i)
            choices.append(got[0])
            usage = usage + got_usage
            model_name = str(data.get("model") or model_name)
            prompt_s = _prompt_seconds(data) if prompt_s is None else prompt_s
        return choices, usage, model_name, prompt_s

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        """Text deltas of one choice as the server sends them (SSE), then the whole response.

        Opening the stream is retried like :meth:`complete`; a stream that breaks after it began is not (the
        caller has already seen part of it) and raises :class:`ModelUnavailable`.
        """
        if request.constraint is not None:
            check_supported(self, request.constraint.kind)
        payload = stream_payload(request, self.model, self.dialect)
        start = time.perf_counter()
        response = await self._retrying(self._open_stream, payload)
        text: list[str] = []
        logprobs: list[TokenLogprob] = []
        finish: FinishReason = "stop"
        usage = Usage()
        first_token_s: float | None = None
        try:
            async for sse in EventSource(response).aiter_sse():  # httpx-sse: multi-line data, comments, retries
                data = sse.data.strip()
                if not data:
                    continue
                if data == "[DONE]":
                    break
                try:
                    event = json.loads(data)
                except ValueError as exc:
                    raise ModelServerError(f"a streamed event is not JSON: {data[:200]!r}", retryable=False) from exc
                if isinstance(event, dict) and "error" in event:
                    # vLLM reports a generation that fails after the stream began as `data: {"error": ...}` then
                    # [DONE]; read as a chunk, it would end the reply early with finish_reason "stop"
                    raise ModelServerError(
                        f"the server failed during the streamed reply: {server_message(event, data)}",
                        hint="the partial reply was discarded; retry the call",
                    )
                delta = StreamDelta(event)
                if delta.text:
                    if first_token_s is None:
                        first_token_s = time.perf_counter() - start
                    text.append(delta.text)
                    yield StreamChunk(delta=delta.text)
                logprobs += delta.logprobs
                finish = delta.finish_reason or finish
                usage = delta.usage or usage
        except httpx.TransportError as exc:
            raise ModelUnavailable(f"the stream from {self.client.base_url} broke off: {exc}") from exc
        finally:
            await response.aclose()
        if usage == Usage():
            # llama.cpp's servers send no usage event; each content event carries one token there (and in vLLM).
            usage = Usage(completion_tokens=len(text))
        kept = logprobs if request.logprobs else None
        choice = Choice(text="".join(text), finish_reason=finish, logprobs=kept, confidence=confidence_of(kept))
        timings = Timings(total_s=time.perf_counter() - start, first_token_s=first_token_s)
        model_name = self.model or self.name
        yield StreamChunk(response=ChatResponse(model=model_name, choices=[choice], usage=usage, timings=timings))

    async def _retrying(self, fn: Callable[[dict[str, Any]], Awaitable[T]], payload: dict[str, Any]) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        return await retrying(fn, payload)

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, but never less than the server's ``Retry-After`` (capped)."""
        backoff = wait_exponential_jitter(multiplier=self.backoff_s, max=self.backoff_max_s, jitter=self.backoff_s)
        seconds = backoff(state)
        exc = state.outcome.exception() if state.outcome is not None else None
        cause = exc.__cause__ if exc is not None else None
        if isinstance(cause, httpx.HTTPStatusError):
            retry_after = _retry_after_s(cause.response)
            if retry_after is not None:
                seconds = max(seconds, min(retry_after, self.backoff_max_s))
        return seconds

    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._retrying(self._post_once, payload)

    async def _send(self, payload: dict[str, Any], *, stream: bool) -> httpx.Response:
        """One HTTP request; transport failures and error statuses leave as typed errors."""
        try:
            # the W3C trace context, so the server (vLLM) joins its spans to the caller's trace
            headers: dict[str, str] = {}
            propagate.inject(headers)
            request = self.client.build_request("POST", CHAT_PATH, json=payload, headers=headers)
            response = await self.client.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise ModelUnavailable(
                f"the model server at {self.client.base_url} timed out ({type(exc).__name__})",
                hint="raise PONDER_LLM__TIMEOUT_S or lower max_tokens",
            ) from exc
        except httpx.TransportError as exc:
            raise ModelUnavailable(f"cannot reach the model server at {self.client.base_url}: {exc}") from exc
        if response.status_code >= 400:
            if stream:
                await response.aread()
                await response.aclose()
            cause = httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request, response=response)
            raise _status_error(response) from cause
        return response

    async def _open_stream(self, payload: dict[str, Any]) -> httpx.Response:
        return await self._send(payload, stream=True)

    async def _post_once(self, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self._send(payload, stream=False)
        try:
            data = response.json()
        except ValueError as exc:
            raise ModelServerError(
                f"the server at {self.client.base_url} answered with non-JSON: {response.text[:200]!r}",
                retryable=False,
            ) from exc
        if not isinstance(data, dict):
            raise ModelServerError(f"the server answered with a JSON {type(data).__name__}", retryable=False)
        return data


def _retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (the delay form; an HTTP date is ignored)."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _prompt_seconds(data: dict[str, Any]) -> float | None:
    """llama.cpp's server reports ``timings.prompt_ms``; others report nothing."""
    timings = data.get("timings")
    if isinstance(timings, dict) and isinstance(timings.get("prompt_ms"), int | float):
        return float(timings["prompt_ms"]) / 1000.0
    return None
