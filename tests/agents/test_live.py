"""Liveness (issue 23): a model call that runs for a while reports its progress, whatever the strategy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ponder.agents import (
    Context,
    LiveModel,
    ModelProgress,
    Task,
    get_strategy,
    run_to_result,
)
from ponder.agents._live import describe_progress, writing_field
from ponder.llm import ChatRequest, ChatResponse, Choice, JsonSchemaConstraint, StreamChunk, stream_or_complete, user
from ponder.llm._progress import current_progress
from tests.fakes import FunctionModel


class Reporting:
    """A backend that reports like the embedded one: reads its prompt, then writes, updating the progress record."""

    name = "reporting"

    def __init__(self, text: str, pause_s: float) -> None:
        self.text, self.pause_s = text, pause_s

    @property
    def capabilities(self):  # type: ignore[no-untyped-def]
        return FunctionModel(lambda r: "").capabilities

    async def complete(self, request: ChatRequest) -> ChatResponse:
        progress = current_progress()
        assert progress is not None, "a watched call carries its progress record"
        progress.prompt_tokens = 100
        for done in (40, 100):
            progress.prompt_done = done
            await asyncio.sleep(self.pause_s)
        for i in range(1, len(self.text) + 1):
            progress.sampled()
            progress.text = self.text[:i]
            await asyncio.sleep(self.pause_s / 4)
        return ChatResponse(model=self.name, choices=[Choice(text=self.text)])


async def test_a_slow_call_reports_reading_then_writing_with_the_field_then_done() -> None:
    seen: list[ModelProgress] = []
    model = LiveModel(Reporting('{"reasoning": "abcdefgh", "answer": 4}', 0.06), seen.append, interval_s=0.05)
    request = ChatRequest(messages=[user("q")], constraint=JsonSchemaConstraint(json_schema={"type": "object"}))
    response = await model.complete(request)
    assert response.text.endswith("4}")
    phases = [p.phase for p in seen]
    assert phases[0] == "reading" and "writing" in phases and phases[-1] == "done"
    assert phases.index("writing") > phases.index("reading")
    reading = next(p for p in seen if p.phase == "reading")
    assert reading.prompt_tokens == 100 and 0 < reading.prompt_done <= 100
    fields = {p.field for p in seen if p.phase == "writing"}
    assert "reasoning" in fields  # the field being filled, read from the partial JSON
    writing = [p for p in seen if p.phase == "writing"]
    assert writing[-1].tokens > writing[0].tokens and writing[-1].tokens_per_s
    assert {p.call for p in seen} == {1}
    line = describe_progress(reading.model_copy(update={"prompt_done": 40}))
    assert line.startswith("model call 1: reading the prompt: 40 of 100 tokens (40%), ")


async def test_a_quick_call_reports_nothing_and_a_backend_that_cannot_tell_reports_waiting() -> None:
    seen: list[ModelProgress] = []

    async def slow(request: ChatRequest) -> str:
        await asyncio.sleep(0.25)
        return "ok"

    quick = LiveModel(FunctionModel(lambda r: "ok"), seen.append, interval_s=0.05)
    await quick.complete(ChatRequest(messages=[user("q")]))
    assert seen == []
    remote = LiveModel(FunctionModel(slow), seen.append, interval_s=0.05)
    await remote.complete(ChatRequest(messages=[user("q")]))
    assert {p.phase for p in seen[:-1]} == {"waiting"} and seen[-1].phase == "done"
    assert seen[-1].seconds >= 0.2


async def test_concurrent_calls_are_numbered_apart() -> None:
    seen: list[ModelProgress] = []

    async def slow(request: ChatRequest) -> str:
        await asyncio.sleep(0.2)
        return "ok"

    model = LiveModel(FunctionModel(slow), seen.append, interval_s=0.05)
    await asyncio.gather(*(model.complete(ChatRequest(messages=[user(str(i))])) for i in range(3)))
    assert {p.call for p in seen} == {1, 2, 3}
    assert sorted(p.call for p in seen if p.phase == "done") == [1, 2, 3]


class Streaming(FunctionModel):
    """Streams one character at a time, slowly, and does not report progress itself."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        text = "one two three"
        for ch in text:
            await asyncio.sleep(0.02)
            yield StreamChunk(delta=ch)
        yield StreamChunk(response=ChatResponse(model="s", choices=[Choice(text=text)]))


async def test_a_streamed_call_counts_its_deltas_and_passes_them_through() -> None:
    seen: list[ModelProgress] = []
    model = LiveModel(Streaming(lambda r: ""), seen.append, interval_s=0.05)
    chunks = [c async for c in stream_or_complete(model, ChatRequest(messages=[user("q")]))]
    assert "".join(c.delta for c in chunks) == "one two three" and chunks[-1].response is not None
    writing = [p for p in seen if p.phase == "writing"]
    assert writing and 0 < writing[-1].tokens <= len("one two three")


async def test_a_strategy_through_the_live_model_gives_the_same_result() -> None:
    seen: list[ModelProgress] = []

    async def slow(request: ChatRequest) -> object:
        await asyncio.sleep(0.12)
        return {"answer": 12} if request.constraint else "3 * 4 = 12\n"

    ctx = Context(LiveModel(FunctionModel(slow), seen.append, interval_s=0.05))
    result = await run_to_result(get_strategy("cot").run(Task(question="3*4?", family="number"), ctx))
    assert result.answer == 12.0
    assert sorted({p.call for p in seen}) == [1, 2]  # the reasoning and the answer, each reported


@pytest.mark.parametrize(
    ("text", "field"),
    [('{"reasoning": "a b', "reasoning"), ('{"reasoning": "x", "answer": 4', "answer"), ("plain", None), ("{", None)],
)
def test_the_field_being_written(text: str, field: str | None) -> None:
    assert writing_field(text) == field


async def test_the_embedded_model_reports_its_prompt_and_its_tokens(embedded_model: object) -> None:
    """The real backend fills the progress record from its scheduler: prompt tokens read, tokens written."""
    from pydantic import BaseModel

    from ponder.llm import schema_constraint

    class Notes(BaseModel):
        notes: str
        count: int

    seen: list[ModelProgress] = []
    model = LiveModel(embedded_model, seen.append, interval_s=0.2)  # type: ignore[arg-type]
    filler = " ".join(f"item {i} is a stone;" for i in range(120))  # ~700 prompt tokens: a few prefill chunks
    request = ChatRequest(
        messages=[user(f"{filler}\nWrite short notes on the list, then count the items.")],
        constraint=schema_constraint(Notes),
        max_tokens=48,
    )
    await model.complete(request)
    reading = [p for p in seen if p.phase == "reading"]
    writing = [p for p in seen if p.phase == "writing"]
    assert reading and reading[0].prompt_tokens > 500 and reading[0].prompt_done < reading[0].prompt_tokens
    assert writing and writing[-1].tokens > 0 and writing[-1].field in ("notes", "count")
    assert seen[-1].phase == "done"


async def test_recorded_calls_carry_messages_parameters_outputs_and_failures() -> None:
    from ponder.agents import ModelCalled
    from ponder.errors import ModelUnavailable

    seen: list[object] = []
    replies = iter(["twelve", ModelUnavailable("down")])
    model = LiveModel(FunctionModel(lambda r: next(replies)), seen.append, record_calls=True, max_chars=5)
    await model.complete(ChatRequest(messages=[user("3 times 4?")], max_tokens=7, seed=1))
    with pytest.raises(ModelUnavailable):
        await model.complete(ChatRequest(messages=[user("again")]))
    first, second = (e for e in seen if isinstance(e, ModelCalled))
    assert first.call == 1 and first.messages == [{"role": "user", "content": "3 tim …[5 more characters]"}]
    assert first.params == {"max_tokens": 7, "seed": 1} and first.outputs == ["twelv …[1 more characters]"]
    assert first.finish_reasons == ["stop"] and first.completion_tokens == 1 and first.error is None
    assert second.call == 2 and second.outputs == [] and "ModelUnavailable" in (second.error or "")
    quiet: list[object] = []
    await LiveModel(FunctionModel(lambda r: "x"), quiet.append).complete(ChatRequest(messages=[user("q")]))
    assert quiet == []  # recording is asked for, not the default of the wrapper
