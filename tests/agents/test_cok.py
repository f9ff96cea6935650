"""Chain of Knowledge end to end with a scripted model and a small knowledge base at the KnowledgeBase seam:
the constrained schema, packaged exemplars, F²-verification and a rethinking round."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from ponder.agents import (
    AnswerChoice,
    Context,
    EvidenceChecked,
    FinalAnswer,
    StepStarted,
    Task,
    TaskFamily,
    get_strategy,
    run_to_result,
)
from ponder.agents.cok import EXEMPLAR_SETS, cok_output_model, load_exemplars
from ponder.errors import ConfigError, InputError
from ponder.search import EvidenceItem, Hit, Support, Triple
from tests.fakes import ScriptedModel


class DictKB:
    """A knowledge base of a few triples: a known triple is supported; a known subject gives related evidence."""

    def __init__(self, triples: Sequence[tuple[str, str, str]], facts: dict[str, str] | None = None) -> None:
        self.triples = {tuple(x.lower() for x in t) for t in triples}
        self.facts = facts or {}
        self.asked: list[tuple[str, str, str]] = []

    async def support(self, subject: str, relation: str, obj: str) -> Support:
        self.asked.append((subject, relation, obj))
        key = (subject.lower(), relation.lower(), obj.lower())
        if key in self.triples:
            triple = Triple(subject=subject, relation=relation, object=obj)
            return Support(
                score=1.0,
                evidence=[EvidenceItem(text=f"{subject} {relation} {obj}", source="dict", score=1.0, triple=triple)],
            )
        fact = self.facts.get(subject.lower())
        if fact:
            return Support(score=0.1, evidence=[EvidenceItem(text=fact, source="dict", score=0.6, stance="related")])
        return Support(score=0.0)


def choice_task() -> Task:
    return Task(
        question="Where would you keep milk cold?",
        family=TaskFamily.choice,
        choices=[AnswerChoice(label=x, text=t) for x, t in zip("ABC", ["oven", "fridge", "closet"], strict=True)],
    )


async def test_cok_asks_for_evidence_explanation_and_typed_answer_with_family_exemplars() -> None:
    chain = {
        "evidence": [{"subject": "milk", "relation": "AtLocation", "object": "fridge"}],
        "explanation": "Milk is kept cold in a fridge.",
        "answer": "B",
    }
    model = ScriptedModel([chain])
    events = [e async for e in get_strategy("cok").run(choice_task(), Context(model))]
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.answer == "B" and final.text == "B: fridge"
    assert final.result["details"]["evidence"] == chain["evidence"]
    checked = [e for e in events if isinstance(e, EvidenceChecked)]
    assert checked[0].triples[0]["object"] == "fridge" and checked[0].triples[0]["supported"] is None
    (request,) = model.requests
    schema = request.constraint.json_schema  # type: ignore[union-attr]
    assert list(schema["properties"]) == ["evidence", "explanation", "answer"]
    assert schema["properties"]["answer"]["enum"] == ["A", "B", "C"]
    # system + 3 multiple-choice exemplars (question, reply) + the question
    roles = [m.role for m in request.messages]
    assert roles == ["system"] + ["user", "assistant"] * 3 + ["user"]
    exemplar_reply = json.loads(request.messages[2].content)
    assert exemplar_reply["answer"] in "ABCDE" and exemplar_reply["evidence"][0]["relation"]
    assert "Choices:" in request.messages[1].content
    model.assert_complete()


async def test_unsupported_triple_triggers_rethinking_with_retrieved_knowledge() -> None:
    kb = DictKB(
        [("penguin", "IsA", "bird"), ("penguin", "CapableOf", "swimming")],
        facts={"penguin": "Penguins are flightless birds that swim."},
    )
    first = {
        "evidence": [
            {"subject": "penguin", "relation": "IsA", "object": "bird"},
            {"subject": "penguin", "relation": "CapableOf", "object": "flying"},
        ],
        "explanation": "Penguins are birds and birds fly.",
        "answer": True,
    }
    second = {
        "evidence": [
            {"subject": "penguin", "relation": "IsA", "object": "bird"},
            {"subject": "penguin", "relation": "CapableOf", "object": "swimming"},
        ],
        "explanation": "Penguins are flightless birds that swim, so they cannot fly over a house.",
        "answer": False,
    }
    model = ScriptedModel([first, {"consistent": False}, second, {"consistent": True}])
    task = Task(question="Can a penguin fly over a house?", family=TaskFamily.yes_no)
    events = [e async for e in get_strategy("cok-f2", threshold=0.7).run(task, Context(model, kb=kb))]

    checked = [e for e in events if isinstance(e, EvidenceChecked)]
    assert [e.round for e in checked] == [0, 1]
    round0 = checked[0].triples
    assert [t["supported"] for t in round0] == [True, False]
    assert round0[1]["correction"] == "Penguins are flightless birds that swim."
    assert checked[0].factuality == pytest.approx(0.55) and checked[0].faithfulness == 0.0
    assert [t["supported"] for t in checked[1].triples] == [True, True] and checked[1].faithfulness == 1.0
    assert any(isinstance(e, StepStarted) and e.name == "rethink" for e in events)

    rethink_prompt = model.requests[2].messages[-1].content
    assert "Penguins are flightless birds that swim." in rethink_prompt
    assert "(penguin, IsA, bird)" in rethink_prompt  # the supported triple is kept
    assert "(penguin, CapableOf, flying)" in rethink_prompt.split("could not be verified")[1]
    # the judge saw the chain it judged
    assert "birds fly" in model.requests[1].messages[-1].content

    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.answer is False and final.text == "no"
    details = final.result["details"]
    assert details["chosen_round"] == 1 and details["score"] == pytest.approx(1.0)
    assert len(details["rounds"]) == 2
    assert final.result["costs"]["llm_calls"] == 4
    assert ("penguin", "CapableOf", "flying") in kb.asked
    model.assert_complete()


async def test_wrong_arithmetic_is_recomputed_and_corrected_without_a_knowledge_base() -> None:
    wrong = {
        "evidence": [
            {"subject": "12 * 3", "relation": "equals", "object": "38"},
            {"subject": "38 + 2", "relation": "equals", "object": "40"},
        ],
        "explanation": "12 * 3 = 38, plus 2 is 40.",
        "answer": 40,
    }
    right = {
        "evidence": [
            {"subject": "12 * 3", "relation": "equals", "object": "36"},
            {"subject": "36 + 2", "relation": "equals", "object": "38"},
        ],
        "explanation": "12 * 3 = 36, plus 2 is 38.",
        "answer": 38,
    }
    model = ScriptedModel([wrong, right])
    task = Task(question="3 crates of 12 eggs and 2 more eggs: how many eggs?", family=TaskFamily.number)
    result = await run_to_result(get_strategy("cok-f2", judge="none").run(task, Context(model)))
    assert result.answer == 38
    rounds = result.details["rounds"]
    assert [t["supported"] for t in rounds[0]["verdict"]["triples"]] == [False, True]
    assert rounds[0]["verdict"]["triples"][0]["source"] == "computed"
    assert "(12 * 3, equals, 36)" in model.requests[1].messages[-1].content
    model.assert_complete()


async def test_a_worse_rethought_chain_does_not_replace_a_better_one() -> None:
    kb = DictKB([("milk", "AtLocation", "fridge")])
    good = {
        "evidence": [{"subject": "milk", "relation": "AtLocation", "object": "fridge"}],
        "explanation": "Milk is kept in a fridge.",
        "answer": "B",
    }
    worse = {
        "evidence": [{"subject": "milk", "relation": "AtLocation", "object": "oven"}],
        "explanation": "Ovens are warm.",
        "answer": "A",
    }
    # faithfulness says "no" twice, so even the good chain (0.5) stays under the threshold and is rethought
    model = ScriptedModel([good, {"consistent": False}, worse, {"consistent": False}])
    result = await run_to_result(get_strategy("cok-f2", threshold=0.9).run(choice_task(), Context(model, kb=kb)))
    assert result.answer == "B" and result.details["chosen_round"] == 0
    model.assert_complete()


async def test_self_consistency_over_cok_chains_votes_on_answers() -> None:
    chains = [
        {"evidence": [{"subject": "milk", "relation": "AtLocation", "object": o}], "explanation": "e", "answer": a}
        for o, a in [("fridge", "B"), ("oven", "A"), ("fridge", "B")]
    ]
    model = ScriptedModel(chains)
    result = await run_to_result(get_strategy("cok", samples=3).run(choice_task(), Context(model)))
    assert result.answer == "B"
    assert model.requests[0].n == 3 and model.requests[0].temperature == 0.7
    assert result.details["rounds"][0]["chain"]["votes"] == {"b": 2, "a": 1}


async def test_verification_without_knowledge_is_a_config_error_for_commonsense() -> None:
    model = ScriptedModel([])
    with pytest.raises(ConfigError, match="knowledge base"):
        await run_to_result(get_strategy("cok-f2").run(choice_task(), Context(model)))


async def test_search_hits_count_as_support() -> None:
    class Index:
        async def search(self, query: str, k: int = 10) -> list[Hit]:
            return [Hit(doc_id="d1", title="Refrigerator", snippet="A fridge keeps milk and food cold.")]

        async def open(self, ref: str) -> None:  # pragma: no cover - not used
            raise NotImplementedError

    chain = {
        "evidence": [{"subject": "milk", "relation": "AtLocation", "object": "fridge"}],
        "explanation": "Milk is kept cold in a fridge.",
        "answer": "B",
    }
    model = ScriptedModel([chain, {"consistent": True}])
    result = await run_to_result(get_strategy("cok-f2").run(choice_task(), Context(model, search=Index())))
    triple = result.details["rounds"][0]["verdict"]["triples"][0]
    assert triple["source"] == "search" and triple["supported"] is True
    assert triple["evidence"] == ["Refrigerator: A fridge keeps milk and food cold."]
    assert len(result.details["rounds"]) == 1  # score 1.0: no rethinking


@pytest.mark.parametrize("name", EXEMPLAR_SETS)
def test_packaged_exemplars_fit_the_constrained_schema(name: str) -> None:
    family = {
        "arithmetic": TaskFamily.number,
        "multiple_choice": TaskFamily.choice,
        "yes_no": TaskFamily.yes_no,
        "symbolic": TaskFamily.string,
    }[name]
    exemplars = load_exemplars(name)
    assert len(exemplars) >= 2
    for ex in exemplars:
        choices = [AnswerChoice(**c) for c in ex.get("choices", [])]
        model = cok_output_model(Task(question=ex["question"], family=family, choices=choices))
        parsed = model.model_validate(
            {"evidence": ex["evidence"], "explanation": ex["explanation"], "answer": ex["answer"]}
        )
        assert parsed.model_dump()["evidence"]


async def test_a_triple_the_knowledge_base_refuses_stays_unjudged_and_the_chain_goes_on() -> None:
    class PickyKB(DictKB):
        async def support(self, subject: str, relation: str, obj: str) -> Support:
            if len(obj) > 20:
                raise InputError("the object of the triple is too long", hint="use short phrases")
            return await super().support(subject, relation, obj)

    kb = PickyKB([("milk", "AtLocation", "fridge")])
    chain = {
        "evidence": [
            {"subject": "milk", "relation": "AtLocation", "object": "fridge"},
            {"subject": "fridge", "relation": "UsedFor", "object": "keeping food and drinks cold for days"},
        ],
        "explanation": "Milk is kept cold in a fridge.",
        "answer": "B",
    }
    model = ScriptedModel([chain, {"consistent": True}])
    result = await run_to_result(get_strategy("cok-f2").run(choice_task(), Context(model, kb=kb)))
    triples = result.details["rounds"][0]["verdict"]["triples"]
    assert triples[1]["score"] is None and "too long" in triples[1]["evidence"][-1]
    assert result.details["factuality"] == 1.0 and result.answer == "B"


async def test_few_shot_cot_shows_the_cok_exemplars_as_prose_reasoning() -> None:
    model = ScriptedModel([{"reasoning": "milk AtLocation fridge", "answer": "B"}])
    result = await run_to_result(get_strategy("cot-fs", form="json").run(choice_task(), Context(model)))
    assert result.answer == "B"
    messages = model.requests[0].messages
    assert [m.role for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert "Choices:" in messages[1].content and "A. cupboard" in messages[1].content
    shown = json.loads(messages[2].content)
    assert shown["answer"] == "A" and shown["reasoning"].startswith("plate AtLocation cupboard")
    assert list(model.requests[0].constraint.json_schema["properties"]) == ["reasoning", "answer"]  # type: ignore[union-attr]


async def test_word_problem_data_restated_in_a_triple_counts_as_given() -> None:
    chain = {
        "evidence": [
            {"subject": "James", "relation": "runs", "object": "3 sprints"},
            {"subject": "3 * 60", "relation": "equals", "object": "180"},
            {"subject": "week", "relation": "has", "object": "7 days"},
        ],
        "explanation": "3 sprints of 60 meters make 180 meters.",
        "answer": 180,
    }
    model = ScriptedModel([chain])
    task = Task(question="James runs 3 sprints of 60 meters. How far does he run?", family=TaskFamily.number)
    kb = DictKB([])
    strategy = get_strategy("cok-f2", judge="none", rethink_rounds=0)
    result = await run_to_result(strategy.run(task, Context(model, kb=kb)))
    triples = result.details["rounds"][0]["verdict"]["triples"]
    assert [(t["source"], t["supported"]) for t in triples] == [("question", True), ("computed", True), ("kb", False)]
    assert kb.asked == [("week", "has", "7 days")]  # only the triple that is neither given nor computable


async def test_free_form_reasons_in_text_then_constrains_the_triples_and_the_answer() -> None:
    kb = DictKB([("penguin", "IsA", "bird")], facts={"penguin": "Penguins are flightless birds that swim."})
    reasoning = "(penguin, IsA, bird)\n(penguin, CapableOf, flying)\nPenguins are birds, and birds fly."
    typed = {
        "evidence": [
            {"subject": "penguin", "relation": "IsA", "object": "bird"},
            {"subject": "penguin", "relation": "CapableOf", "object": "flying"},
        ],
        "answer": True,
    }
    rethought = "(penguin, IsA, bird)\nPenguins are flightless birds that swim; they cannot fly over a house."
    model = ScriptedModel(
        [reasoning, typed, {"consistent": False},
         rethought, {"evidence": [typed["evidence"][0]], "answer": False}, {"consistent": True}]
    )  # fmt: skip
    task = Task(question="Can a penguin fly over a house?", family=TaskFamily.yes_no)
    result = await run_to_result(get_strategy("cok-f2", form="free", threshold=0.7).run(task, Context(model, kb=kb)))
    assert result.answer is False and result.details["chosen_round"] == 1
    first = result.details["rounds"][0]["chain"]
    assert first["explanation"] == "Penguins are birds, and birds fly."  # the fact lines are the evidence
    assert [t["object"] for t in first["evidence"]] == ["bird", "flying"]
    reason_request, answer_request = model.requests[0], model.requests[1]
    assert reason_request.constraint is None and reason_request.stop == ["Final answer:"]
    assert "Final answer:" in reason_request.messages[0].content
    exemplar = reason_request.messages[2].content  # an exemplar reply as prose: facts, explanation, final answer
    assert exemplar.startswith("(") and "\nFinal answer: " in exemplar and "{" not in exemplar
    schema = answer_request.constraint.json_schema  # type: ignore[union-attr]
    assert list(schema["properties"]) == ["evidence", "answer"]
    assert "rely on it" in model.requests[3].messages[-1].content  # the rethink round asks in the free form too
    assert model.requests[3].constraint is None
    model.assert_complete()


async def test_with_route_a_question_the_knowledge_base_knows_nothing_about_is_answered_as_cot() -> None:
    kb = DictKB([("milk", "AtLocation", "fridge")])  # nothing on these facts
    chain = {"evidence": [{"subject": "zorblat", "relation": "IsA", "object": "glimmer"}], "explanation": "?",
             "answer": True}  # fmt: skip
    model = ScriptedModel([chain, {"consistent": True}, "Zorblats are not known to glimmer.", {"answer": False}])
    task = Task(question="Is a zorblat a glimmer?", family=TaskFamily.yes_no)
    events = [e async for e in get_strategy("cok-f2", route=True).run(task, Context(model, kb=kb))]
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.answer is False
    assert final.result["details"]["routed"] == "cot"
    assert final.result["costs"]["llm_calls"] == 4  # the chain, its judge, and cot's reasoning and answer
    routed = [e for e in events if isinstance(e, StepStarted) and e.name == "route"]
    assert routed and "holds nothing" in routed[0].detail
    model.assert_complete()

    known = DictKB([("penguin", "IsA", "bird")])  # the knowledge has something: no routing, CoK's answer stands
    penguin = {"evidence": [{"subject": "penguin", "relation": "IsA", "object": "bird"}], "explanation": "birds",
               "answer": True}  # fmt: skip
    model = ScriptedModel([penguin, {"consistent": True}])
    result = await run_to_result(
        get_strategy("cok-f2", route=True).run(Task(question="Is a penguin a bird?", family="yes_no"),
                                                Context(model, kb=known))
    )  # fmt: skip
    assert result.answer is True and "routed" not in result.details
