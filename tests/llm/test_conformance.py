"""The one conformance suite every ChatModel backend passes (parametrised by the ``conformance`` fixture in
``tests/llm/conftest.py``): the embedded model, a real llama.cpp server on loopback, and the vLLM and OpenAI
dialects behind ``httpx.MockTransport``. ``scripts/conformance_live.py`` runs it against a live vLLM server.

Where a backend's ``capabilities`` say it cannot enforce a constraint, the test asserts that asking for it raises
:class:`UnsupportedConstraint` before anything is generated (no request reaches the server).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from ponder.errors import ModelServerError, OutputTruncated, UnsupportedConstraint
from ponder.llm import (
    ChatRequest,
    ChatResponse,
    ChoiceConstraint,
    Constraint,
    RecordingModel,
    RegexConstraint,
    StreamingChatModel,
    structured,
    system,
    user,
)
from tests.llm.conftest import Harness


class Point(BaseModel):
    x: int = Field(ge=0, le=100)
    y: int = Field(ge=0, le=100)


class Drawing(BaseModel):
    """A tiny drawing: nested object, enum, bounded array and an optional field."""

    title: str = Field(max_length=24)
    shape: Literal["circle", "square", "triangle"]
    origin: Point
    tags: list[str] = Field(min_length=1, max_length=3)
    note: str | None = None


CODE_PATTERN = r"[A-Z]{2}-\d{3}"
COLOURS = ["red", "green", "blue"]


async def _expect_unsupported(harness: Harness, constraint: Constraint) -> None:
    before = harness.requests_sent() if harness.requests_sent else None
    with pytest.raises(UnsupportedConstraint):
        await harness.model.complete(ChatRequest(messages=[user("hi")], constraint=constraint, max_tokens=8))
    if harness.requests_sent is not None:
        assert harness.requests_sent() == before, "the request was sent although the constraint is unsupported"


async def test_plain_completion(conformance: Harness) -> None:
    request = ChatRequest(messages=[system("Answer briefly."), user("Say hello to Ada.")], max_tokens=16)
    response = await conformance.model.complete(request)
    assert len(response.choices) == 1
    choice = response.choices[0]
    assert choice.text.strip()
    assert choice.finish_reason in ("stop", "length")
    assert 0 < response.usage.completion_tokens <= 16
    assert response.usage.prompt_tokens > 0
    assert response.timings.total_s > 0


async def test_json_schema_constraint(conformance: Harness, tmp_path: Path) -> None:
    """structured() (the path every strategy uses) gets a valid object; the raw reply, recorded on the way, is a
    complete JSON document with no keys outside the schema."""
    messages = [user("Describe a small drawing of a red circle as JSON with a title, shape, origin and tags.")]
    recording = tmp_path / "calls.jsonl"
    drawing = await structured(RecordingModel(conformance.model, recording), messages, Drawing, max_tokens=160)
    assert isinstance(drawing, Drawing)
    assert 1 <= len(drawing.tags) <= 3
    assert drawing.shape in ("circle", "square", "triangle")
    calls = [json.loads(line) for line in recording.read_text().splitlines()]
    assert calls[0]["request"]["constraint"]["json_schema"] == Drawing.model_json_schema()
    last = ChatResponse.model_validate(calls[-1]["response"]).choices[0]
    assert last.finish_reason == "stop", last.text
    assert set(json.loads(last.text)) <= set(Drawing.model_fields)
    assert Drawing.model_validate_json(last.text) == drawing


async def test_regex_constraint(conformance: Harness) -> None:
    constraint = RegexConstraint(pattern=CODE_PATTERN)
    if "regex" not in conformance.model.capabilities.constraints:
        await _expect_unsupported(conformance, constraint)
        return
    messages = [user("Invent a product code: two capital letters, a dash, three digits (like QX-417).")]
    response = await conformance.model.complete(ChatRequest(messages=messages, constraint=constraint, max_tokens=12))
    assert re.fullmatch(CODE_PATTERN, response.text), response.text


async def test_choice_constraint(conformance: Harness) -> None:
    constraint = ChoiceConstraint(choices=COLOURS)
    if "choice" not in conformance.model.capabilities.constraints:
        await _expect_unsupported(conformance, constraint)
        return
    messages = [user("Which colour is the sky on a clear day? Answer with one word.")]
    response = await conformance.model.complete(ChatRequest(messages=messages, constraint=constraint, max_tokens=8))
    assert response.text in COLOURS


async def test_n_choices(conformance: Harness) -> None:
    caps = conformance.model.capabilities
    constraint = ChoiceConstraint(choices=COLOURS) if "choice" in caps.constraints else None
    messages = [user("Name a colour: red, green or blue.")]
    request = ChatRequest(messages=messages, constraint=constraint, n=3, temperature=1.0, seed=11, max_tokens=6)
    response = await conformance.model.complete(request)
    assert [c.index for c in response.choices] == [0, 1, 2]
    for choice in response.choices:
        assert choice.text.strip()
        if constraint is not None:
            assert choice.text in COLOURS
    assert response.usage.completion_tokens >= 3


async def test_stop_sequence(conformance: Harness) -> None:
    """With a stop string taken from the unstopped reply, the reply ends right before it."""
    messages = [user("Count from 1 to 12, separated by commas.")]
    reference = (await conformance.model.complete(ChatRequest(messages=messages, max_tokens=24))).text
    numbers = re.findall(r"\d+", reference)
    assert len(numbers) >= 2, reference
    stop = numbers[1]
    expected = reference[: reference.index(stop)]
    response = await conformance.model.complete(ChatRequest(messages=messages, max_tokens=24, stop=[stop]))
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    assert stop not in choice.text
    assert choice.text == expected


async def test_truncation_is_reported(conformance: Harness) -> None:
    messages = [user("Write the numbers from 1 to 50 in words, separated by spaces.")]
    response = await conformance.model.complete(ChatRequest(messages=messages, max_tokens=4))
    choice = response.choices[0]
    assert choice.finish_reason == "length"
    assert 0 < response.usage.completion_tokens <= 4


async def test_logprobs(conformance: Harness) -> None:
    if not conformance.model.capabilities.logprobs:
        pytest.skip("this backend reports no logprobs")
    request = ChatRequest(messages=[user("Say yes.")], max_tokens=3, logprobs=True, top_logprobs=2)
    choice = (await conformance.model.complete(request)).choices[0]
    assert choice.logprobs, "logprobs were asked for but none came back"
    for item in choice.logprobs:
        assert item.logprob <= 0.0
        assert len(item.top) <= 2


async def test_server_error_is_typed(conformance: Harness) -> None:
    if conformance.provoke_server_error is None:
        pytest.skip("no server behind this backend")
    with pytest.raises(ModelServerError) as caught:
        await conformance.provoke_server_error()
    assert caught.value.retryable
    assert "500" in caught.value.message


async def test_streaming_matches_complete(conformance: Harness) -> None:
    model = conformance.model
    if not isinstance(model, StreamingChatModel):
        pytest.skip("this backend does not stream")
    request = ChatRequest(messages=[user("Name three primary colours.")], max_tokens=12)
    # Asked once first, so that the reply compared and the stream both find the prompt in the server's KV cache: a
    # prompt evaluated afresh and one served from the cache can round differently and so decode differently.
    await model.complete(request)
    whole = await model.complete(request)
    chunks = [chunk async for chunk in model.stream(request)]
    final = chunks[-1].response
    assert final is not None and all(c.response is None for c in chunks[:-1])
    deltas = [c.delta for c in chunks[:-1]]
    assert len(deltas) >= 2, "the reply came in one piece: not streamed"
    assert "".join(deltas) == final.text == whole.text
    assert final.choices[0].finish_reason == whole.choices[0].finish_reason
    assert final.timings.first_token_s is not None and final.timings.first_token_s <= final.timings.total_s


async def test_structured_never_accepts_a_truncated_reply(conformance: Harness) -> None:
    messages = [user("Describe a small drawing of a red circle as JSON with a title, shape, origin and tags.")]
    with pytest.raises(OutputTruncated) as caught:
        await structured(conformance.model, messages, Drawing, retries=1, max_tokens=6)
    assert caught.value.raw, "the cut-off text is kept for debugging"
