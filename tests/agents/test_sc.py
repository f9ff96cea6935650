"""Self-consistency end to end with a scripted model: one n=k sampled request, majority vote on typed answers."""

from __future__ import annotations

from typing import Any

import pytest

from ponder.agents import AnswerChoice, Context, FinalAnswer, LLMCall, Task, TaskFamily, get_strategy, run_to_result
from ponder.agents.sc import majority_vote
from ponder.errors import InputError, OutputTruncated
from ponder.llm import ChatRequest
from tests.fakes import FunctionModel, ScriptedModel


async def test_majority_of_k_samples_wins_and_the_request_samples_k_at_temperature() -> None:
    model = ScriptedModel(
        [
            {"reasoning": "3 * 4 = 12", "answer": 12},
            {"reasoning": "3 + 4 = 7", "answer": 7},
            {"reasoning": "4 * 3 = 12", "answer": 12.0},
            {"reasoning": "guess", "answer": 13},
            {"reasoning": "12", "answer": 12.0000001},
        ]
    )
    strategy = get_strategy("sc", k=5, temperature=0.8, form="json")
    events = [e async for e in strategy.run(Task(question="3 boxes of 4?", family="number"), Context(model))]
    final = events[-1]
    assert isinstance(final, FinalAnswer)
    assert final.answer == 12 and final.text == "12"
    assert final.result["details"]["votes"] == {"12.0": 3, "7.0": 1, "13.0": 1}
    assert len(final.result["details"]["samples"]) == 5
    (request,) = model.requests
    assert request.n == 5 and request.temperature == 0.8
    assert final.result["costs"]["llm_calls"] == 1
    assert any(isinstance(e, LLMCall) and len(e.output) == 5 for e in events)
    model.assert_complete()


async def test_choice_vote_and_tie_goes_to_the_first_sampled() -> None:
    task = Task(
        question="Where do fish live?",
        family=TaskFamily.choice,
        choices=[AnswerChoice(label="A", text="desert"), AnswerChoice(label="B", text="water")],
    )
    model = ScriptedModel([{"reasoning": "r", "answer": a} for a in ["B", "A", "A", "B"]])
    result = await run_to_result(get_strategy("sc", k=4, form="json").run(task, Context(model)))
    assert result.answer == "B" and result.text == "B: water"


def test_vote_groups_strings_without_case_and_space() -> None:
    answer, votes = majority_vote(TaskFamily.string, ["Paris", " paris ", "Rome"])
    assert answer == "Paris" and votes == {"paris": 2, "rome": 1}
    with pytest.raises(InputError):
        majority_vote(TaskFamily.string, [])


def test_bad_options_are_refused() -> None:
    with pytest.raises(InputError, match="temperature"):
        get_strategy("sc", temperature=0.0)
    with pytest.raises(InputError, match="k: Input should be greater than or equal to 1"):
        get_strategy("sc", k=0)


async def test_a_weighted_vote_follows_the_models_confidence_and_records_why() -> None:
    """Two unsure chains agree on 7, one sure chain says 12: the majority returns 7, the confidence-weighted vote
    12, and the details say which answer had which weight and count."""
    from ponder.llm import Choice, Confidence

    def chain(answer: int, mean: float) -> Choice:
        confidence = Confidence(tokens=30, mean_logprob=mean, lowest_window=mean, self_certainty=None)
        return Choice(text=f'{{"reasoning": "so {answer}", "answer": {answer}}}', confidence=confidence)

    task = Task(question="3 boxes of 4?", family="number")
    for vote, expected in (("majority", 7), ("weighted", 12)):
        model = ScriptedModel([chain(7, -1.2), chain(12, -0.05), chain(7, -1.0)])
        strategy = get_strategy("sc", k=3, form="json", vote=vote)
        result = await run_to_result(strategy.run(task, Context(model)))
        assert result.answer == expected, vote
        selection = result.details["selection"]
        assert selection["rule"] == vote and selection["counts"] == {"7.0": 2, "12.0": 1}
        assert result.details["samples"][1]["confidence"]["mean_logprob"] == -0.05


async def test_with_greedy_first_the_greedy_chain_votes_beside_k_minus_1_samples_and_wins_a_tie() -> None:
    async def answers(request: ChatRequest) -> Any:
        if request.constraint is not None:  # each chain's typed answer, from its own reasoning
            return {"answer": 7 if "plus" in str(request.messages[-2].content) else 12}
        if request.temperature == 0.0:
            return "3 boxes of 4 make 12"
        return ["3 plus 4", "3 boxes of 4: 12", "3 plus 4 again"][: request.n]

    model = FunctionModel(answers)
    task = Task(question="3 boxes of 4?", family="number")
    result = await run_to_result(get_strategy("sc", k=4, greedy_first=True).run(task, Context(model)))
    assert result.answer == 12.0 and result.details["greedy"] == 12  # 2 - 2: the greedy chain's side wins the tie
    assert result.details["votes"] == {"12.0": 2, "7.0": 2} and result.details["samples"][0]["greedy"] is True
    chains = sorted((r.n, r.temperature) for r in model.requests if r.constraint is None)
    assert chains == [(1, 0.0), (3, 0.7)]

    cut_off = FunctionModel(lambda r: {"answer": 7} if r.constraint else (
        OutputTruncated("cut off") if r.temperature == 0.0 else ["3 plus 4"] * r.n))  # fmt: skip
    result = await run_to_result(get_strategy("sc", k=3, greedy_first=True).run(task, Context(cut_off)))
    assert result.answer == 7.0 and result.details["greedy"] is None and len(result.details["samples"]) == 2
