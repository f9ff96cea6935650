"""The embedded backend: model-file errors, constraint engines and their selection, and (marked ``embedded``) a few
short generations on the real default model proving each engine's constraint holds on real output."""

from __future__ import annotations

import re
import struct
from contextlib import aclosing
from enum import StrEnum
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from ponder.config import ConstraintEngine, LLMSettings, Settings
from ponder.errors import ModelFileError, UnsupportedConstraint
from ponder.llm import (
    ChatRequest,
    ChoiceConstraint,
    GrammarConstraint,
    JsonSchemaConstraint,
    RegexConstraint,
    schema_constraint,
    user,
)
from ponder.llm.embedded import EmbeddedModel
from ponder.llm.embedded._model_files import verify

ALL_ENGINES = list(ConstraintEngine)


def truncated_gguf(path: Path) -> Path:
    """A GGUF header that promises one tensor and then ends: what an interrupted copy looks like."""
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 0))
    return path


# --- model files --------------------------------------------------------------------------------------------------


def test_missing_model_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError) as info:
        EmbeddedModel.from_settings(LLMSettings(model_path=tmp_path / "nope.gguf"))
    assert "does not exist" in info.value.message
    assert "PONDER_LLM__MODEL_PATH" in info.value.hint


def test_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        EmbeddedModel.from_settings(LLMSettings(model_path=bad))


def test_corrupted_default_model_fails_verification(tmp_path: Path) -> None:
    blob = tmp_path / "model.gguf"
    blob.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(ModelFileError, match="truncated"):
        verify(blob, size=128, sha256="00" * 32)
    with pytest.raises(ModelFileError, match="corrupted") as info:
        verify(blob, size=64, sha256="00" * 32)
    assert "ponder[model]" in info.value.hint


async def test_truncated_gguf_fails_on_load_with_model_file_error(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    model = EmbeddedModel.from_settings(LLMSettings(model_path=truncated_gguf(tmp_path / "cut.gguf")))
    with pytest.raises(ModelFileError, match="could not load") as info:
        await model.complete(ChatRequest(messages=[user("hi")], max_tokens=1))
    assert "PONDER_LLM__MODEL_PATH" in info.value.hint


# --- engine selection and unsupported constraints (no model needed: they fail before it loads) ---------------------


def test_constraint_engine_comes_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_LLM__CONSTRAINT_ENGINE", "outlines_core")
    monkeypatch.setenv("PONDER_LLM__MODEL_PATH", str(truncated_gguf(tmp_path / "m.gguf")))
    model = EmbeddedModel.from_settings(Settings().llm)
    assert model.constraint_engine is ConstraintEngine.outlines_core
    assert "grammar" not in model.capabilities.constraints
    assert model.with_engine(ConstraintEngine.llamacpp_grammar).capabilities.constraints == {
        "json_schema",
        "choice",
        "grammar",
    }
    assert LLMSettings().constraint_engine is ConstraintEngine.llguidance  # the measured fastest correct engine


@pytest.mark.parametrize(
    ("engine", "constraint"),
    [
        (ConstraintEngine.outlines_core, GrammarConstraint(grammar='root ::= "a"')),
        (ConstraintEngine.llamacpp_grammar, RegexConstraint(pattern=r"\d+")),
    ],
)
async def test_unsupported_kind_raises_before_the_model_loads(
    tmp_path: Path, engine: ConstraintEngine, constraint: GrammarConstraint | RegexConstraint
) -> None:
    # The file cannot load: reaching llama.cpp would raise ModelFileError, so UnsupportedConstraint proves the
    # check ran first.
    model = EmbeddedModel(truncated_gguf(tmp_path / "m.gguf"), constraint_engine=engine)
    with pytest.raises(UnsupportedConstraint, match=constraint.kind):
        await model.complete(ChatRequest(messages=[user("hi")], constraint=constraint))


# --- the real model -----------------------------------------------------------------------------------------------

QUESTION = [user("What is the capital of France? Answer in one word.")]


@pytest.mark.embedded
@pytest.mark.parametrize("engine", ALL_ENGINES, ids=[e.value for e in ALL_ENGINES])
async def test_choice_holds_on_real_output(embedded_model: EmbeddedModel, engine: ConstraintEngine) -> None:
    model = embedded_model.with_engine(engine)
    free = await model.complete(ChatRequest(messages=QUESTION, max_tokens=8))
    choices = ["zebra-7", "quokka-3"]
    assert free.text not in choices  # the model would not say these unconstrained
    reply = await model.complete(
        ChatRequest(messages=QUESTION, constraint=ChoiceConstraint(choices=choices), max_tokens=8)
    )
    assert reply.text in choices
    assert reply.choices[0].finish_reason == "stop"


@pytest.mark.embedded
@pytest.mark.parametrize(
    "engine", [ConstraintEngine.llguidance, ConstraintEngine.outlines_core], ids=["llguidance", "outlines_core"]
)
async def test_regex_holds_on_real_output(embedded_model: EmbeddedModel, engine: ConstraintEngine) -> None:
    # outlines_core's numpy mask kernel is numba-compiled; without numba this test fails instead of passing vacuously
    pattern = r"[A-Z]{3}-[0-9]{4}"
    reply = await embedded_model.with_engine(engine).complete(
        ChatRequest(messages=QUESTION, constraint=RegexConstraint(pattern=pattern), max_tokens=12)
    )
    assert re.fullmatch(pattern, reply.text), reply.text


class Color(StrEnum):
    teal = "teal"
    mauve = "mauve"


class Part(BaseModel):
    name: str = Field(max_length=20)
    count: int = Field(ge=1, le=9)


class Order(BaseModel):
    color: Color
    parts: list[Part] = Field(min_length=2, max_length=2)
    note: str | None = None


@pytest.mark.embedded
async def test_json_schema_holds_on_real_output(embedded_model: EmbeddedModel) -> None:
    messages = [user("Write an order for a bicycle as JSON.")]
    reply = await embedded_model.complete(
        ChatRequest(messages=messages, constraint=schema_constraint(Order), max_tokens=80)
    )
    assert reply.choices[0].finish_reason == "stop", reply.text
    order = Order.model_validate_json(reply.text)
    assert len(order.parts) == 2


@pytest.mark.embedded
async def test_schema_the_engine_cannot_compile_is_refused_before_generating(embedded_model: EmbeddedModel) -> None:
    lookbehind = JsonSchemaConstraint(json_schema={"type": "string", "pattern": "(?<=a)b"})
    with pytest.raises(UnsupportedConstraint):
        await embedded_model.prepare(lookbehind)
    with pytest.raises(UnsupportedConstraint, match="could not parse"):
        await embedded_model.with_engine(ConstraintEngine.llamacpp_grammar).prepare(
            GrammarConstraint(grammar="root ::= (")
        )


@pytest.mark.embedded
async def test_sampling_options(embedded_model: EmbeddedModel) -> None:
    cut = await embedded_model.complete(ChatRequest(messages=[user("Tell me a long story.")], max_tokens=5))
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens == 5
    assert cut.usage.prompt_tokens > 5
    assert cut.timings.first_token_s is not None
    assert 0 < cut.timings.first_token_s <= cut.timings.total_s

    count = [user("Count from 1 to 9, separated by commas and spaces.")]
    stopped = await embedded_model.complete(ChatRequest(messages=count, stop=["5"], max_tokens=30))
    assert stopped.choices[0].finish_reason == "stop"
    assert "4" in stopped.text
    assert "5" not in stopped.text

    sample = ChatRequest(messages=QUESTION, n=2, temperature=0.9, seed=7, max_tokens=6, logprobs=True, top_logprobs=3)
    first, again = await embedded_model.complete(sample), await embedded_model.complete(sample)
    assert [c.text for c in first.choices] == [c.text for c in again.choices]  # seeded: reproducible
    assert [c.index for c in first.choices] == [0, 1]
    for choice in first.choices:
        assert choice.logprobs
        assert all(lp.logprob <= 0 and 1 <= len(lp.top) <= 3 for lp in choice.logprobs)
    assert sum(len(c.logprobs or []) for c in first.choices) == first.usage.completion_tokens


@pytest.mark.embedded
@pytest.mark.parametrize("engine", ALL_ENGINES, ids=[e.value for e in ALL_ENGINES])
async def test_n_samples_decoded_together_each_hold_the_constraint(
    embedded_model: EmbeddedModel, engine: ConstraintEngine
) -> None:
    model = embedded_model.with_engine(engine)
    choices = ["zebra-7", "quokka-3", "ibis-5"]
    request = ChatRequest(
        messages=QUESTION, n=6, temperature=1.5, seed=11, max_tokens=24, constraint=ChoiceConstraint(choices=choices)
    )
    reply = await model.complete(request)
    assert [c.index for c in reply.choices] == list(range(6))
    assert all(c.text in choices and c.finish_reason == "stop" for c in reply.choices)
    assert len({c.text for c in reply.choices}) > 1  # six independent draws at T=1.5, not one copied six times
    # (max_tokens leaves room for a choice spelled a character at a time, which high temperatures do)
    assert [c.text for c in (await model.complete(request)).choices] == [c.text for c in reply.choices]


@pytest.mark.embedded
async def test_batched_samples_keep_their_own_stops_and_limits(embedded_model: EmbeddedModel) -> None:
    count = [user("Count from 1 to 9, separated by commas and spaces.")]
    stopped = await embedded_model.complete(ChatRequest(messages=count, n=3, stop=["5"], max_tokens=30))
    for choice in stopped.choices:  # greedy: three copies of the same reply, each cut at its own stop
        assert choice.finish_reason == "stop"
        assert "4" in choice.text and "5" not in choice.text
    cut = await embedded_model.complete(
        ChatRequest(messages=[user("Tell me a long story.")], n=3, temperature=0.9, seed=1, max_tokens=5)
    )
    assert [c.finish_reason for c in cut.choices] == ["length"] * 3
    assert cut.usage.completion_tokens == 15
    # more samples than one batch holds (8) are decoded one after another, and a single sample still works
    # after the batch context was used: the two contexts do not disturb each other
    many = await embedded_model.complete(ChatRequest(messages=QUESTION, n=10, temperature=0.9, seed=3, max_tokens=4))
    assert len(many.choices) == 10 and all(c.text for c in many.choices)
    assert "Paris" in (await embedded_model.complete(ChatRequest(messages=QUESTION, max_tokens=8))).text


@pytest.mark.embedded
async def test_a_prompt_asked_again_gets_bit_identical_logits(embedded_model: EmbeddedModel) -> None:
    """The second time, all but the last prompt token come from the KV cache; the logits must not change (greedy
    replies and seeded samples repeat), one sample at a time and n at a time."""
    for n in (1, 3):
        ask = ChatRequest(messages=[user(f"Name {n} rivers.")], n=n, max_tokens=3, logprobs=True, top_logprobs=5)
        await embedded_model.complete(ChatRequest(messages=QUESTION, max_tokens=2))  # something else in between
        first = await embedded_model.complete(ask)
        again = await embedded_model.complete(ask)
        assert [c.logprobs for c in again.choices] == [c.logprobs for c in first.choices]


@pytest.mark.embedded
async def test_stream_pieces_join_to_the_reply_and_leaving_early_frees_the_model(
    embedded_model: EmbeddedModel,
) -> None:
    counting = [user("Count from 1 to 9, separated by commas and spaces.")]
    count = ChatRequest(messages=counting, stop=["5"], max_tokens=30)
    chunks = [chunk async for chunk in embedded_model.stream(count)]
    final = chunks[-1].response
    assert final is not None
    assert len(chunks) > 3
    assert "".join(c.delta for c in chunks[:-1]) == final.text  # text that might start "5" was held back
    assert "5" not in final.text
    assert final.choices[0].finish_reason == "stop"

    story = ChatRequest(messages=[user("Tell me a long story.")], max_tokens=400)
    async with aclosing(embedded_model.stream(story)) as pieces:
        async for _ in pieces:
            break  # aclose() stops decoding and waits for the worker
    again = await embedded_model.complete(ChatRequest(messages=QUESTION, max_tokens=3))
    assert again.text
