"""The selection layer: one rule set for every strategy that chooses among candidates."""

from __future__ import annotations

import pytest

from ponder.agents import TaskFamily
from ponder.agents._select import Candidate, select
from ponder.agents.sc import majority_vote
from ponder.errors import InputError
from ponder.llm import Confidence


def sure(mean: float) -> Confidence:
    return Confidence(tokens=20, mean_logprob=mean, lowest_window=mean, self_certainty=None)


def test_majority_counts_and_ties_go_to_the_first_sampled() -> None:
    got = select(TaskFamily.number, [Candidate(3.0), Candidate(4.0), Candidate(4.0000001), Candidate(3.0)])
    assert got.answer == 3.0 and got.counts == {"3.0": 2, "4.0": 2} and got.agreement == 0.5
    assert majority_vote(TaskFamily.number, [1.0, 2.0, 2.0]) == (2.0, {"2.0": 2, "1.0": 1})


def test_confident_minority_wins_a_weighted_vote_and_the_reasons_say_so() -> None:
    candidates = [
        Candidate(7.0, "cot", sure(-0.9)),
        Candidate(7.0, "cot", sure(-0.8)),
        Candidate(12.0, "program", sure(-0.05), executed=True),
    ]
    assert select(TaskFamily.number, candidates).answer == 7.0  # majority
    weighted = select(TaskFamily.number, candidates, rule="weighted", temperature=0.1)
    assert weighted.answer == 12.0 and weighted.measure == "mean_logprob"
    assert weighted.modes == {"7.0": ["cot"], "12.0": ["program"]} and weighted.agreement > 0.99
    assert select(TaskFamily.number, candidates, rule="best").answer == 12.0
    # a wide temperature flattens the weights back towards a vote
    assert select(TaskFamily.number, candidates, rule="weighted", temperature=100.0).answer == 7.0


def test_unmeasured_candidates_weigh_as_the_mean_and_nothing_measured_is_a_vote() -> None:
    blind = [Candidate("b"), Candidate("a"), Candidate("a")]
    assert select(TaskFamily.string, blind, rule="weighted").answer == "a"
    mixed = [Candidate("x", confidence=sure(-2.0)), Candidate("y"), Candidate("y", confidence=sure(-0.1))]
    assert select(TaskFamily.string, mixed, rule="weighted").answer == "y"
    with pytest.raises(InputError, match="at least one candidate"):
        select(TaskFamily.string, [])


def test_best_reports_each_answers_highest_confidence_and_its_share_of_candidates() -> None:
    candidates = [Candidate(1.0, confidence=sure(-0.5)), Candidate(2.0, confidence=sure(-1.0)), Candidate(1.0)]
    got = select(TaskFamily.number, candidates, rule="best")
    assert got.answer == 1.0 and got.weights == {"1.0": -0.5, "2.0": -1.0}
    assert got.agreement == pytest.approx(2 / 3, abs=1e-4) and got.votes() == {"1.0": 2, "2.0": 1}
