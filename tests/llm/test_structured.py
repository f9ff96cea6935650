"""structured()/structured_n() against ScriptedModel: validation, retries that feed the error back, truncation."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from ponder.errors import ModelServerError, OutputTruncated, OutputValidationError, UnsupportedConstraint
from ponder.llm import Capabilities, Choice, JsonSchemaConstraint, structured, structured_n, user
from tests.fakes import FunctionModel, ScriptedModel


class Answer(BaseModel):
    reasoning: str
    answer: int = Field(ge=0)


MESSAGES = [user("3 pens of 4 sheep: how many sheep?")]


async def test_valid_reply_is_parsed_and_the_schema_is_sent() -> None:
    model = ScriptedModel([{"reasoning": "3*4", "answer": 12}])
    result = await structured(model, MESSAGES, Answer, max_tokens=64)
    assert result == Answer(reasoning="3*4", answer=12)
    request = model.requests[0]
    assert isinstance(request.constraint, JsonSchemaConstraint)
    assert request.constraint.json_schema == Answer.model_json_schema()
    assert request.constraint.name == "Answer"
    assert request.max_tokens == 64
    model.assert_complete()


async def test_invalid_reply_is_retried_with_the_validation_error_fed_back() -> None:
    model = ScriptedModel([{"reasoning": "oops", "answer": -1}, {"reasoning": "3*4", "answer": 12}])
    result = await structured(model, MESSAGES, Answer)
    assert result.answer == 12
    retry = model.requests[1]
    assert [m.role for m in retry.messages] == ["user", "assistant", "user"]
    assert retry.messages[1].content == '{"reasoning": "oops", "answer": -1}'
    assert "greater than or equal to 0" in retry.messages[2].content
    assert retry.constraint == model.requests[0].constraint
    model.assert_complete()


async def test_reply_invalid_after_all_retries_raises_a_typed_error_with_the_raw_text() -> None:
    model = ScriptedModel(["not json", "still not", "never"])
    with pytest.raises(OutputValidationError, match="after 2 retries") as caught:
        await structured(model, MESSAGES, Answer, retries=2)
    assert caught.value.raw == "never"
    assert len(model.requests) == 3
    assert len(model.requests[2].messages) == 5, "each retry keeps the earlier attempts and their errors"
    model.assert_complete()


async def test_truncated_reply_is_never_accepted_even_when_it_parses() -> None:
    complete_but_cut = Choice(text='{"reasoning": "x", "answer": 1}', finish_reason="length")
    model = ScriptedModel([complete_but_cut, {"reasoning": "short", "answer": 1}])
    result = await structured(model, MESSAGES, Answer)
    assert result.reasoning == "short"
    assert "cut off at max_tokens" in model.requests[1].messages[-1].content


async def test_always_truncated_raises_output_truncated() -> None:
    cut = Choice(text='{"reasoning": "aaaa', finish_reason="length")
    model = ScriptedModel([cut, cut])
    with pytest.raises(OutputTruncated) as caught:
        await structured(model, MESSAGES, Answer, retries=1)
    assert caught.value.raw == cut.text
    assert "max_tokens" in caught.value.hint


async def test_structured_n_validates_each_choice_and_retries_only_the_bad_one() -> None:
    model = ScriptedModel(
        [{"reasoning": "a", "answer": 1}, "garbage", {"reasoning": "c", "answer": 3}, {"reasoning": "b", "answer": 2}]
    )
    results = await structured_n(model, MESSAGES, Answer, n=3)
    assert [r.answer for r in results] == [1, 2, 3]
    assert [r.n for r in model.requests] == [3, 1]
    model.assert_complete()


async def test_backend_without_json_schema_support_fails_before_generating() -> None:
    model = ScriptedModel([], capabilities=Capabilities(constraints=frozenset({"regex"})))
    with pytest.raises(UnsupportedConstraint, match="json_schema"):
        await structured(model, MESSAGES, Answer)
    assert model.requests == []


async def test_a_backend_returning_fewer_choices_than_n_is_a_typed_error() -> None:
    model = FunctionModel(lambda request: [{"reasoning": "a", "answer": 1}])  # ignores n
    with pytest.raises(ModelServerError, match="returned 1 choices for n=3"):
        await structured_n(model, MESSAGES, Answer, n=3)
