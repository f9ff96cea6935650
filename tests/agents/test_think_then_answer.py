"""Think, then answer (issue 24): free-text reasoning, then an answer constrained to its schema."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from ponder.agents import Context, FinalAnswer, Task, TaskFamily, TextDelta, get_strategy, run_to_result
from ponder.config import Backend
from ponder.errors import InputError, OutputTruncated, OutputValidationError
from ponder.llm import ANSWER_MARKER, ChatRequest, Choice, think_then_answer_n, user
from ponder.llm._openai_payload import build_payload
from tests.fakes import FunctionModel, ScriptedModel


class Answer(BaseModel):
    answer: int


async def test_cot_free_form_constrains_only_the_answer() -> None:
    model = ScriptedModel(["3 pens of 4 sheep: 3 * 4 = 12.\n", {"answer": 12}])
    events = [
        e
        async for e in get_strategy("cot", form="free").run(
            Task(question="3 pens of 4 sheep?", family="number"), Context(model)
        )
    ]
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.answer == 12.0
    reasoning, answer = model.requests
    assert reasoning.constraint is None and reasoning.stop == [ANSWER_MARKER]  # free text up to the marker
    assert "plain text" in reasoning.messages[0].content
    assert answer.constraint is not None and list(answer.constraint.json_schema["properties"]) == ["answer"]
    # the answer request continues the same conversation: the reasoning is the assistant's turn
    assert answer.messages[: len(reasoning.messages)] == reasoning.messages
    assert answer.messages[-2].role == "assistant" and answer.messages[-2].content.startswith("3 pens")
    assert answer.temperature == 0.0
    assert final.result["details"]["reasoning"].startswith("3 pens")
    model.assert_complete()


async def test_a_reasoning_that_never_reaches_the_answer_is_a_truncation_not_a_guess() -> None:
    model = ScriptedModel([Choice(index=0, text="First, 3 * 4 is", finish_reason="length")])
    with pytest.raises(OutputTruncated, match="reasoning was cut off"):
        await think_then_answer_n(model, [user("3 * 4?")], Answer, max_tokens=8)
    assert len(model.requests) == 1  # no answer request: nothing is guessed


async def test_sc_free_form_votes_over_answered_reasonings() -> None:
    def play(request: ChatRequest) -> object:
        if request.constraint is None:
            return ["a: 12", "b: 12", "c: 13"]
        return {"answer": int(request.messages[-2].content.split(": ")[1].split()[0])}

    model = FunctionModel(play)
    task = Task(question="3 pens of 4 sheep?", family="number")
    result = await run_to_result(get_strategy("sc", k=3, form="free").run(task, Context(model)))
    assert result.answer == 12.0
    assert result.details["votes"] == {"12.0": 2, "13.0": 1}
    assert sum(r.constraint is None for r in model.requests) == 1  # one n=3 request for the reasonings


async def test_the_streamed_reasoning_comes_before_the_answer() -> None:
    model = ScriptedModel(["Step one. Step two.", {"answer": 5}])
    events = [
        e async for e in get_strategy("cot", form="free").run(Task(question="2 + 3?", family="number"), Context(model))
    ]
    deltas = [i for i, e in enumerate(events) if isinstance(e, TextDelta)]
    final = next(i for i, e in enumerate(events) if isinstance(e, FinalAnswer))
    assert deltas and max(deltas) < final
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Step one. Step two."


def test_both_requests_are_bodies_vllm_accepts() -> None:
    from ponder.llm import schema_constraint

    first = ChatRequest(messages=[user("q")], stop=[ANSWER_MARKER], max_tokens=256)
    second = ChatRequest(messages=[user("q")], constraint=schema_constraint(Answer), max_tokens=64)
    plain, constrained = build_payload(first, "m", Backend.vllm), build_payload(second, "m", Backend.vllm)
    assert plain["stop"] == [ANSWER_MARKER] and "response_format" not in plain and "structured_outputs" not in plain
    schema = constrained["response_format"]["json_schema"]["schema"]  # vLLM's json_schema response format
    assert schema["properties"]["answer"]["type"] == "integer"


@pytest.mark.embedded
async def test_the_embedded_model_thinks_then_answers(embedded_model: object) -> None:
    task = Task(question="A farmer has 3 pens with 4 sheep in each pen. How many sheep in total?", family="number")
    result = await run_to_result(get_strategy("cot", form="free").run(task, Context(embedded_model)))  # type: ignore[arg-type]
    assert result.answer == 12.0
    assert result.details["reasoning"] and ANSWER_MARKER not in result.details["reasoning"]


def test_auto_picks_the_measured_form_per_family() -> None:
    from ponder.agents.cot import FAMILY_FORM, ChainOfThought

    cot = ChainOfThought()  # form="auto", the default
    assert cot.form_for(Task(question="q", family="number")) == FAMILY_FORM[TaskFamily.number] == "free"
    assert cot.form_for(Task(question="q", family="choice", choices=[{"label": "A", "text": "a"}])) == "free"
    assert cot.form_for(Task(question="q", family="open")) == "text"  # read by a person, not consumed
    assert cot.form_for(Task(question="q", family="string")) == "json"  # not measured: the JSON form stays
    with pytest.raises(InputError, match="open questions only"):
        ChainOfThought(form="text").form_for(Task(question="q", family="number"))
    assert ChainOfThought(form="json").form_for(Task(question="q", family="number")) == "json"


async def test_open_questions_answer_in_plain_text_after_the_final_line() -> None:
    model = ScriptedModel([f"He had 17 sheep and buys 5 more.\n17 + 5 = 22\n{ANSWER_MARKER} 22 sheep"])
    events = [e async for e in get_strategy("cot").run(Task(question="And now?"), Context(model))]
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.answer == "22 sheep"
    assert final.result["details"]["answer_from"] == "the 'Final answer:' line"
    assert final.result["details"]["reasoning"] == "He had 17 sheep and buys 5 more.\n17 + 5 = 22"
    (request,) = model.requests  # one call, unconstrained, not stopped at the marker
    assert request.constraint is None and ANSWER_MARKER not in request.stop
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed.startswith("He had 17 sheep")


async def test_an_open_answer_without_its_final_line_is_the_last_line_and_says_so() -> None:
    from ponder.agents.cot import LAST_LINE

    model = ScriptedModel(["17 + 5 = 22\n\nSo he has 22 sheep now.\n"])
    result = await run_to_result(get_strategy("cot").run(Task(question="And now?"), Context(model)))
    assert result.answer == "So he has 22 sheep now."
    assert result.details["answer_from"] == LAST_LINE


@pytest.mark.parametrize(
    ("reply", "error"),
    [(Choice(index=0, text="17 + 5 is", finish_reason="length"), OutputTruncated), ("  \n ", OutputValidationError)],
)
async def test_an_open_reply_cut_off_or_empty_is_an_error_not_an_answer(reply: object, error: type) -> None:
    with pytest.raises(error):
        await run_to_result(get_strategy("cot").run(Task(question="And now?"), Context(ScriptedModel([reply]))))


async def test_the_streamed_reasoning_of_an_open_answer_stops_before_its_final_line() -> None:
    from collections.abc import AsyncIterator

    from ponder.agents._stream import stream_text
    from ponder.llm import ChatResponse, StreamChunk

    class Pieces(ScriptedModel):
        async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
            response = await self.complete(request)
            for i in range(0, len(response.text), 2):  # the marker arrives split across pieces
                yield StreamChunk(delta=response.text[i : i + 2])
            yield StreamChunk(response=response)

    text = f"17 + 5 = 22\n{ANSWER_MARKER} 22"
    items = [i async for i in stream_text(Pieces([text]), [user("q")], field="reasoning", until=ANSWER_MARKER)]
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == "17 + 5 = 22"
    assert isinstance(items[-1], ChatResponse) and items[-1].text == text
    fin = "He said: Fin"  # ends like the marker's beginning, but the reply ends there: the tail is sent
    items = [i async for i in stream_text(Pieces([fin]), [user("q")], until=ANSWER_MARKER)]
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == fin


async def test_sc_free_votes_over_the_samples_that_reached_their_answer() -> None:
    def play(request: ChatRequest) -> object:
        if request.constraint is None:
            cut = Choice(index=0, text="First, 3 * 4 is", finish_reason="length")
            return ["a: 12", cut, "c: 12", "d: 13", cut]
        return {"answer": int(request.messages[-2].content.split(": ")[1].split()[0])}

    result = await run_to_result(
        get_strategy("sc", k=5, form="free").run(
            Task(question="3 pens of 4 sheep?", family="number"), Context(FunctionModel(play))
        )
    )
    assert result.answer == 12.0 and result.details["votes"] == {"12.0": 2, "13.0": 1}
    assert result.details["cut_off"] == 2  # left out of the vote, counted
    everything_cut = FunctionModel(lambda r: [Choice(index=0, text="3 *", finish_reason="length")] * 3)
    with pytest.raises(OutputTruncated, match="every one of the 3 reasonings"):
        await think_then_answer_n(everything_cut, [user("3 * 4?")], Answer, n=3, skip_truncated=True)
