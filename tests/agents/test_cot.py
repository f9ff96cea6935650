"""Chain of thought end to end with a scripted model: typed answers per family, retries, events."""

from __future__ import annotations

import json

import pytest

from ponder.agents import (
    AnswerChoice,
    Context,
    FinalAnswer,
    LLMCall,
    Task,
    TaskFamily,
    get_strategy,
    run_to_result,
)
from ponder.errors import NotFoundError, OutputValidationError
from tests.fakes import ScriptedModel


async def test_number_answer_is_typed_and_costs_are_counted() -> None:
    model = ScriptedModel([{"reasoning": "3 pens * 4 sheep = 12", "answer": 12}])
    strategy = get_strategy("cot", form="json")  # the JSON form; test_think_then_answer covers "free"
    events = [e async for e in strategy.run(Task(question="3 pens of 4 sheep?", family="number"), Context(model))]
    final = events[-1]
    assert isinstance(final, FinalAnswer)
    assert final.answer == 12.0
    assert final.text == "12"
    assert any(isinstance(e, LLMCall) and e.output["reasoning"].startswith("3 pens") for e in events)
    assert final.result["costs"]["llm_calls"] == 1
    # the request was constrained to the typed schema
    constraint = model.requests[0].constraint
    assert constraint is not None and constraint.kind == "json_schema"
    assert constraint.json_schema["properties"]["answer"]["type"] == "number"
    assert list(constraint.json_schema["properties"]) == ["reasoning", "answer"]
    model.assert_complete()


async def test_choice_answer_must_be_one_of_the_labels() -> None:
    task = Task(
        question="Where do fish live?",
        family=TaskFamily.choice,
        choices=[AnswerChoice(label="A", text="desert"), AnswerChoice(label="B", text="water")],
    )
    # the first reply names a label that does not exist: it is retried with the error fed back
    model = ScriptedModel([{"reasoning": "r", "answer": "C"}, {"reasoning": "fish swim", "answer": "B"}])
    result = await run_to_result(get_strategy("cot", form="json").run(task, Context(model)))
    assert result.answer == "B"
    assert result.text == "B: water"
    assert result.costs.llm_calls == 2
    feedback = model.requests[1].messages[-1].content
    assert "could not be used" in feedback and "answer" in feedback
    schema = model.requests[0].constraint.json_schema  # type: ignore[union-attr]
    assert schema["properties"]["answer"]["enum"] == ["A", "B"]


async def test_yes_no_and_few_shot_exemplars_are_in_the_prompt() -> None:
    model = ScriptedModel([json.dumps({"reasoning": "Paris is in France", "answer": True})])
    strategy = get_strategy(
        "cot", form="json", exemplars=[{"question": "Is ice cold?", "reasoning": "ice is frozen water", "answer": True}]
    )
    result = await run_to_result(strategy.run(Task(question="Is Paris in France?", family="yes_no"), Context(model)))
    assert result.answer is True and result.text == "yes"
    roles = [m.role for m in model.requests[0].messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert json.loads(model.requests[0].messages[2].content)["answer"] is True


async def test_persistently_invalid_output_raises_typed_error() -> None:
    model = ScriptedModel(["not json", "{}", '{"reasoning": 1}'])
    with pytest.raises(OutputValidationError) as info:
        await run_to_result(get_strategy("cot", form="json").run(Task(question="q", family="number"), Context(model)))
    assert "ChainOfThought" in info.value.message
    model.assert_complete()


def test_unknown_strategy_names_the_choices() -> None:
    with pytest.raises(NotFoundError) as info:
        get_strategy("nope")
    assert "cot" in info.value.hint


class _StreamingScripted(ScriptedModel):
    """A scripted model that also streams its reply in small pieces (the StreamingChatModel protocol)."""

    async def stream(self, request):  # type: ignore[no-untyped-def]
        from ponder.llm import StreamChunk

        response = await self.complete(request)
        text = response.text
        for i in range(0, len(text), 3):
            yield StreamChunk(delta=text[i : i + 3])
        yield StreamChunk(response=response)


async def test_reasoning_streams_as_text_deltas() -> None:
    from ponder.agents import TextDelta

    reasoning = 'Each pen has 4 sheep; "3 pens" means 3 * 4 = 12.'
    model = _StreamingScripted([{"reasoning": reasoning, "answer": 12}])
    events = [
        e async for e in get_strategy("cot", form="json").run(Task(question="q", family="number"), Context(model))
    ]
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3, "the reasoning should arrive in several pieces"
    assert "".join(d.text for d in deltas) == reasoning
    assert isinstance(events[-1], FinalAnswer) and events[-1].answer == 12
