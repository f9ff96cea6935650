"""F²-verification parts: computable triples, the embedding faithfulness judge, the combined score."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pytest

from ponder.agents import Task, TaskFamily
from ponder.agents.cok import (
    EmbeddingJudge,
    EvidenceTriple,
    FactChecker,
    check_computable,
    combine,
    evaluate,
    load_exemplars,
)
from tests.fakes import ScriptedModel


def test_evaluate_is_plain_arithmetic_only() -> None:
    assert evaluate("3 * (4 + 2)") == 18
    assert evaluate("1,200 / 4") == 300
    assert evaluate("$12 × 3") == 36
    assert evaluate("7") is None  # no operator: not a calculation
    assert evaluate("__import__('os')") is None
    assert evaluate("2 ** 1000") is None  # exponent bounded
    assert evaluate("1 / 0") is None


@pytest.mark.parametrize(
    ("triple", "correct", "expected"),
    [
        (("12 * 3", "equals", "36"), True, "36"),
        (("12 * 3", "equals", "38"), False, "36"),
        (("eggs", "total", "12 * 3 = 38 eggs"), False, "36"),
        (("cost", "is", "$4.50 + $0.50 = $5"), True, "5"),
        (("Felix", "last letter", "x"), True, "x"),
        (("Felix", "last letter of", "f"), False, "x"),
        (("blue", "first letter", "B"), True, "b"),
    ],
)
def test_computable_triples(triple: tuple[str, str, str], correct: bool, expected: str) -> None:
    verdict = check_computable(*triple)
    assert verdict is not None
    assert verdict.correct is correct and verdict.expected == expected


def test_non_computable_triples_are_left_to_the_knowledge() -> None:
    assert check_computable("penguin", "IsA", "bird") is None
    assert check_computable("price", "equals", "unknown") is None


def test_packaged_arithmetic_and_symbolic_exemplars_check_out() -> None:
    for name in ("arithmetic", "symbolic"):
        for ex in load_exemplars(name):
            for t in ex["evidence"]:
                verdict = check_computable(t["subject"], t["relation"], t["object"])
                assert verdict is not None and verdict.correct, (name, t)


async def test_fact_checker_without_sources_cannot_judge() -> None:
    check = await FactChecker().check(EvidenceTriple(subject="penguin", relation="IsA", object="bird"))
    assert check.score is None and check.supported is False and check.source == "none"


class BagOfWords:
    """A tiny deterministic embedder (hashed word counts) standing in for MiniLM at the Embedder seam."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vec = [0.0] * 64
            for word in re.findall(r"[a-z]+", text.lower()):
                vec[sum(map(ord, word)) % 64] += 1.0
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            out.append([v / norm for v in vec])
        return out


async def test_embedding_judge_scores_a_grounded_explanation_above_an_unrelated_one() -> None:
    judge = EmbeddingJudge(BagOfWords())
    task = Task(question="Can a penguin fly?", family=TaskFamily.yes_no)
    evidence = [EvidenceTriple(subject="penguin", relation="IsA", object="flightless bird")]
    model = ScriptedModel([])
    grounded = await judge.judge(task, evidence, "A penguin is a flightless bird, so it cannot fly.", "no", model)
    unrelated = await judge.judge(task, evidence, "Tomatoes grow in summer gardens.", "no", model)
    assert 0.0 <= unrelated < grounded <= 1.0
    assert not model.requests  # no LLM call


def test_combine_weights_available_scores() -> None:
    assert combine(None, None) == 1.0
    assert combine(0.4, None) == 0.4
    assert combine(None, 0.0) == 0.0
    assert combine(1.0, 0.0, weight=0.75) == 0.75


async def test_cok_f2_with_the_embedding_judge_makes_no_judge_call() -> None:
    from ponder.agents import Context, get_strategy, run_to_result
    from tests.agents.test_cok import DictKB

    chain = {
        "evidence": [{"subject": "penguin", "relation": "IsA", "object": "bird"}],
        "explanation": "A penguin is a bird.",
        "answer": True,
    }
    model = ScriptedModel([chain])
    ctx = Context(model, kb=DictKB([("penguin", "IsA", "bird")]), options={"embedder": BagOfWords()})
    task = Task(question="Is a penguin a bird?", family=TaskFamily.yes_no)
    result = await run_to_result(get_strategy("cok-f2", judge="embedding").run(task, ctx))
    assert result.answer is True and len(model.requests) == 1
    assert 0.0 < result.details["faithfulness"] <= 1.0 and result.details["factuality"] == 1.0
