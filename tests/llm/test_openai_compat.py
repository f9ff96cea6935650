"""OpenAICompatModel over ``httpx.MockTransport``: retries with backoff, error translation, sequential n,
settings and client ownership."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from ponder.config import Backend, LLMSettings
from ponder.errors import (
    ConfigError,
    ModelRateLimited,
    ModelRequestRejected,
    ModelServerError,
    ModelUnavailable,
    UnsupportedConstraint,
)
from ponder.llm import ChatRequest, ChoiceConstraint, RegexConstraint, user
from ponder.llm.openai_compat import OpenAICompatModel

Handler = Callable[[httpx.Request], httpx.Response]
REQUEST = ChatRequest(messages=[user("hi")], max_tokens=4)


def _ok(text: str = "hello", finish: str = "stop", index: int = 0) -> dict[str, object]:
    return {
        "model": "m",
        "choices": [{"index": index, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }


class Script:
    """Answers requests from a list of responses (or exceptions to raise), recording the bodies."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _model(handler: Handler, dialect: Backend = Backend.vllm, retries: int = 2) -> OpenAICompatModel:
    client = httpx.AsyncClient(base_url="http://server.test/v1", transport=httpx.MockTransport(handler))
    return OpenAICompatModel(client, dialect=dialect, model="m", max_retries=retries, backoff_s=0.001, owns_client=True)


async def test_5xx_and_429_are_retried_then_succeed() -> None:
    script = Script(
        httpx.Response(503),
        httpx.Response(429, json={"error": {"message": "slow down"}}),
        httpx.Response(200, json=_ok()),
    )
    async with _model(script) as model:
        response = await model.complete(REQUEST)
    assert response.text == "hello"
    assert len(script.bodies) == 3
    assert script.bodies[0] == script.bodies[2]


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, ModelServerError), (502, ModelServerError), (429, ModelRateLimited), (408, ModelServerError)],
)
async def test_retryable_statuses_give_up_with_a_typed_error(status: int, error: type[Exception]) -> None:
    script = Script(*[httpx.Response(status, json={"error": {"message": "boom"}})] * 3)
    async with _model(script, retries=2) as model:
        with pytest.raises(error) as caught:
            await model.complete(REQUEST)
    assert len(script.bodies) == 3, "one attempt plus max_retries"
    assert "boom" in str(caught.value) and str(status) in str(caught.value)


@pytest.mark.parametrize(("status", "hint"), [(400, "request"), (401, "API_KEY"), (404, "BASE_URL"), (422, "request")])
async def test_client_errors_are_rejected_without_retry(status: int, hint: str) -> None:
    script = Script(httpx.Response(status, json={"object": "error", "message": "bad field 'x'"}))
    async with _model(script) as model:
        with pytest.raises(ModelRequestRejected, match="bad field") as caught:
            await model.complete(REQUEST)
    assert len(script.bodies) == 1
    assert not caught.value.retryable
    assert hint in caught.value.hint


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")]
)
async def test_transport_failures_are_retried_then_unavailable(exc: Exception) -> None:
    script = Script(exc, exc)
    async with _model(script, retries=1) as model:
        with pytest.raises(ModelUnavailable):
            await model.complete(REQUEST)
    assert len(script.bodies) == 2


async def test_connection_refused_by_a_real_closed_port_is_unavailable() -> None:
    settings = LLMSettings(backend=Backend.vllm, base_url="http://127.0.0.1:9/v1", max_retries=0, timeout_s=5)
    async with OpenAICompatModel.from_settings(settings) as model:
        with pytest.raises(ModelUnavailable, match="cannot reach"):
            await model.complete(REQUEST)


@pytest.mark.parametrize("reply", [httpx.Response(200, text="<html>"), httpx.Response(200, json=["x"])])
async def test_non_completion_replies_are_server_errors_not_retried(reply: httpx.Response) -> None:
    script = Script(reply)
    async with _model(script) as model:
        with pytest.raises(ModelServerError):
            await model.complete(REQUEST)
    assert len(script.bodies) == 1


async def test_unsupported_constraint_is_refused_before_any_request() -> None:
    script = Script()
    async with _model(script, dialect=Backend.openai) as model:
        with pytest.raises(UnsupportedConstraint):
            await model.complete(ChatRequest(messages=[user("x")], constraint=ChoiceConstraint(choices=["a"])))
    assert script.bodies == []


async def test_untranslatable_regex_is_refused_before_any_request_on_llamacpp() -> None:
    script = Script()
    async with _model(script, dialect=Backend.llamacpp) as model:
        with pytest.raises(UnsupportedConstraint, match="grammar cannot express"):
            await model.complete(ChatRequest(messages=[user("x")], constraint=RegexConstraint(pattern=r"(a)\1")))
    assert script.bodies == []


async def test_llamacpp_samples_n_sequentially_advancing_the_seed() -> None:
    script = Script(*[httpx.Response(200, json=_ok(text=f"t{i}")) for i in range(3)])
    async with _model(script, dialect=Backend.llamacpp) as model:
        assert not model.capabilities.native_n
        response = await model.complete(ChatRequest(messages=[user("x")], n=3, seed=5, temperature=0.7))
    assert [c.text for c in response.choices] == ["t0", "t1", "t2"]
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert [b["seed"] for b in script.bodies] == [5, 6, 7]
    assert all("n" not in b for b in script.bodies)
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (9, 3)


async def test_truncated_reply_is_returned_as_length_and_timings_are_filled() -> None:
    data = {**_ok(text="one two", finish="length"), "timings": {"prompt_ms": 12.5}}
    async with _model(Script(httpx.Response(200, json=data)), dialect=Backend.llamacpp) as model:
        response = await model.complete(REQUEST)
    assert response.choices[0].finish_reason == "length"
    assert response.timings.prompt_s == pytest.approx(0.0125)
    assert response.timings.total_s > 0


async def test_from_settings_uses_url_key_timeout_retries_and_owns_its_client() -> None:
    settings = LLMSettings(
        backend=Backend.openai,
        base_url="http://127.0.0.1:1/v1",
        api_key=SecretStr("sk-test"),
        model="gpt-x",
        timeout_s=7.5,
        max_retries=4,
    )
    model = OpenAICompatModel.from_settings(settings)
    assert model.client.headers["Authorization"] == "Bearer sk-test"
    assert model.client.timeout.read == 7.5
    assert model.max_retries == 4
    assert model.name == "openai:gpt-x"
    await model.aclose()
    assert model.client.is_closed


async def test_an_injected_client_stays_open() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(Script()))
    async with OpenAICompatModel(client, dialect=Backend.vllm):
        pass
    assert not client.is_closed
    await client.aclose()


def test_from_settings_without_url_says_what_to_set() -> None:
    with pytest.raises(ConfigError, match="server URL"):
        OpenAICompatModel.from_settings(LLMSettings(backend=Backend.vllm))


def _sse(*events: dict[str, object] | str) -> httpx.Response:
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return httpx.Response(200, content="".join(lines).encode(), headers={"content-type": "text/event-stream"})


def _delta(text: str, finish: str | None = None, logprob: float | None = None) -> dict[str, object]:
    choice: dict[str, object] = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    if logprob is not None:
        choice["logprobs"] = {"content": [{"token": text, "logprob": logprob, "top_logprobs": []}]}
    return {"choices": [choice]}


async def test_stream_yields_deltas_then_the_whole_response_and_retries_opening() -> None:
    events = [_delta("Hel", logprob=-0.1), _delta("lo", "length", logprob=-0.2)]
    usage = {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}
    script = Script(httpx.Response(503), _sse(*events, usage, "[DONE]"))
    async with _model(script) as model:
        request = ChatRequest(messages=[user("x")], max_tokens=2, logprobs=True, n=1)
        chunks = [c async for c in model.stream(request)]
    assert [c.delta for c in chunks[:-1]] == ["Hel", "lo"]
    final = chunks[-1].response
    assert final is not None
    assert final.text == "Hello" and final.choices[0].finish_reason == "length"
    assert [t.logprob for t in final.choices[0].logprobs or []] == [-0.1, -0.2]
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (4, 2)
    assert final.timings.first_token_s is not None
    assert len(script.bodies) == 2
    assert script.bodies[1]["stream"] is True and script.bodies[1]["stream_options"] == {"include_usage": True}


async def test_stream_error_status_is_typed_and_a_broken_stream_is_unavailable() -> None:
    async with _model(Script(httpx.Response(400, json={"message": "no"})), retries=0) as model:
        with pytest.raises(ModelRequestRejected, match="no"):
            _ = [c async for c in model.stream(REQUEST)]

    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n'
            raise httpx.ReadError("connection reset")

    script = Script(httpx.Response(200, stream=Broken(), headers={"content-type": "text/event-stream"}))
    seen: list[str] = []

    async def consume(model: OpenAICompatModel) -> None:
        async for chunk in model.stream(REQUEST):
            seen.append(chunk.delta)

    async with _model(script) as model:
        with pytest.raises(ModelUnavailable, match="broke off"):
            await consume(model)
    assert seen == ["a"]
    assert len(script.bodies) == 1, "a stream that already began is not retried"


async def test_a_streamed_error_event_is_a_typed_error_not_a_short_reply() -> None:
    error = {"error": {"object": "error", "message": "CUDA out of memory", "type": "InternalServerError", "code": 500}}
    script = Script(_sse(_delta("partial"), error, "[DONE]"))
    seen: list[str] = []

    async def consume(model: OpenAICompatModel) -> None:
        async for chunk in model.stream(REQUEST):
            seen.append(chunk.delta)

    async with _model(script) as model:
        with pytest.raises(ModelServerError, match="CUDA out of memory") as caught:
            await consume(model)
    assert seen == ["partial"] and caught.value.retryable


async def test_stream_without_a_usage_event_counts_one_token_per_content_event() -> None:
    script = Script(_sse(_delta("a"), _delta("b"), _delta("c", "stop"), "[DONE]"))
    async with _model(script, dialect=Backend.llamacpp) as model:
        chunks = [c async for c in model.stream(REQUEST)]
    final = chunks[-1].response
    assert final is not None and final.usage.completion_tokens == 3
    assert "stream_options" not in script.bodies[0] and "n" not in script.bodies[0]


async def test_the_embedded_backend_is_not_a_dialect() -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(ConfigError, match="not an OpenAI-compatible dialect"):
            OpenAICompatModel(client, dialect=Backend.embedded)


async def test_retry_after_is_honoured_up_to_the_backoff_cap() -> None:
    slow_down = httpx.Response(429, headers={"retry-after": "0.3"}, json={"error": {"message": "wait"}})
    script = Script(slow_down, httpx.Response(200, json=_ok()))
    client = httpx.AsyncClient(base_url="http://server.test/v1", transport=httpx.MockTransport(script))
    async with OpenAICompatModel(client, max_retries=1, backoff_s=0.001, backoff_max_s=5.0, owns_client=True) as m:
        start = time.perf_counter()
        assert (await m.complete(REQUEST)).text == "hello"
        waited = time.perf_counter() - start
    assert waited >= 0.3
    capped = Script(httpx.Response(503, headers={"retry-after": "3600"}), httpx.Response(200, json=_ok()))
    client = httpx.AsyncClient(base_url="http://server.test/v1", transport=httpx.MockTransport(capped))
    async with OpenAICompatModel(client, max_retries=1, backoff_s=0.001, backoff_max_s=0.05, owns_client=True) as m:
        start = time.perf_counter()
        await m.complete(REQUEST)
        assert time.perf_counter() - start < 5.0


async def test_greedy_n_on_vllm_is_one_decode_copied() -> None:
    """vLLM refuses n > 1 at temperature 0; the fake refuses it as vLLM does, and ponder never sends it."""
    from tests.llm.openai_fake import FakeOpenAIServer

    fake = FakeOpenAIServer("vllm")
    async with _model(fake.handle) as model:
        greedy = await model.complete(ChatRequest(messages=[user("echo me")], n=3, temperature=0.0))
        sampled = await model.complete(ChatRequest(messages=[user("echo me")], n=3, temperature=0.7, seed=1))
    assert fake.rejected == []
    assert [b.get("n") for b in fake.bodies] == [1, 3]
    assert [c.index for c in greedy.choices] == [0, 1, 2]
    assert len({c.text for c in greedy.choices}) == 1 and len(sampled.choices) == 3
