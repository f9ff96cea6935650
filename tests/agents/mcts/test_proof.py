"""The proof domain end to end: a function-played model proposing tactics, real Coq in the Docker sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from ponder.agents import Context, Task, TreeUpdated, get_strategy, run_to_result
from ponder.agents.mcts import SessionPool
from ponder.agents.mcts._proof import CoqChecker
from ponder.llm import ChatRequest
from ponder.tools import ToolServer
from tests.fakes import FunctionModel

STATEMENT = "Lemma my_add_0_r : forall n : nat, n + 0 = n."
TASK = Task(question=STATEMENT, context="Require Import Arith.")


def tactic_model(by_last: dict[str, list[str]]) -> FunctionModel:
    """Tactics keyed by the last tactic already in the proof shown in the prompt ("" at the start)."""

    def fn(request: ChatRequest) -> Any:
        prompt = request.messages[-1].content
        proof = prompt.split("Proof.\n", 1)[1].split("```", 1)[0].strip()
        last = proof.splitlines()[-1] if proof else ""
        tactics = by_last[last]
        replies = [{"tactic": tactics[i % len(tactics)]} for i in range(request.n)]  # repeats are merged
        return replies if request.n > 1 else replies[0]

    return FunctionModel(fn)


@pytest.mark.docker
async def test_coq_reports_goals_and_errors(toolserver: ToolServer) -> None:
    async with SessionPool(toolserver) as pool:
        coq = CoqChecker(pool)
        start = await coq.state(TASK.context or "", STATEMENT, [])
        assert start.ok and start.n_goals == 1 and "n + 0 = n" in start.goals
        split = await coq.state(TASK.context or "", STATEMENT, ["intros n.", "induction n."])
        assert split.ok and split.n_goals == 2
        bad = await coq.state(TASK.context or "", STATEMENT, ["intros n.", "exact I."])
        assert not bad.ok and "exact I" not in bad.error and bad.error  # Coq's own message
        assert not (await coq.check(TASK.context or "", STATEMENT, ["intros n."])).ok  # goals remain: no Qed


@pytest.mark.docker
async def test_search_finds_a_proof_that_coqc_accepts(toolserver: ToolServer) -> None:
    model = tactic_model(
        {
            "": ["reflexivity.", "admit.", "intros n."],
            "intros n.": ["induction n as [|n IH].", "simpl."],
            "induction n as [|n IH].": ["- reflexivity.", "reflexivity."],
            "- reflexivity.": ["- simpl. rewrite IH. reflexivity.", "- auto."],
            "simpl.": ["simpl."],
        }
    )
    events: list[Any] = []
    ctx = Context(model=model, toolserver=toolserver)
    result = await run_to_result(get_strategy("mcts-proof", budget=15, k=3).run(TASK, ctx), on_event=events.append)

    assert result.details["verified"] is True
    assert result.answer.startswith("Proof.\nintros n.\ninduction n as [|n IH].\n- reflexivity.\n")
    assert result.answer.endswith("Qed.")
    tree = [e for e in events if isinstance(e, TreeUpdated)][-1].tree
    by_action = {n["action"]: n for n in tree["nodes"][1:4]}
    assert by_action["reflexivity."]["reward"] == 0.0 and by_action["reflexivity."]["reason"]  # Coq rejected it
    assert "forbidden" in by_action["admit."]["reason"]
    assert by_action["intros n."]["reward"] > 0.0
    # the accepted proof compiles whole in a fresh session
    async with SessionPool(toolserver) as pool:
        tactics = result.answer.removeprefix("Proof.\n").removesuffix("\nQed.").splitlines()
        assert (await CoqChecker(pool).check(TASK.context or "", STATEMENT, tactics)).ok


@pytest.mark.docker
async def test_no_proof_within_budget_gives_no_answer(toolserver: ToolServer) -> None:
    model = tactic_model({"": ["intros n.", "reflexivity."], "intros n.": ["simpl.", "idtac."]})
    ctx = Context(model=model, toolserver=toolserver)
    result = await run_to_result(get_strategy("mcts-proof", budget=4, k=2).run(TASK, ctx))
    assert result.answer is None and result.details["verified"] is False
    tree = result.details["tree"]
    pruned = [n for n in tree["nodes"] if n["reason"].startswith("no progress")]
    assert pruned  # `simpl.` / `idtac.` leave `n + 0 = n` as it was, so the branch is cut


@pytest.mark.docker
async def test_a_greedy_retry_that_repeats_a_failed_tactic_is_sampled_from_then_on(toolserver: ToolServer) -> None:
    """Asked greedily again at the same state, a small model repeats the tactic that failed (157 of greedy_16's 220
    tactics in the first Coq sweep); after one repeat the search samples there instead."""

    def fn(request: ChatRequest) -> Any:
        return {"tactic": "reflexivity." if request.temperature == 0 else "intros n."}

    model = FunctionModel(fn)
    ctx = Context(model=model, toolserver=toolserver)
    strategy = get_strategy("mcts-proof", budget=3, k=1, temperature=0.0, max_depth=3)
    result = await run_to_result(strategy.run(TASK, ctx))

    asked = [r for r in model.requests if "Next tactic?" in r.messages[-1].content]
    assert [r.temperature for r in asked] == [0.0, 0.0, 0.8]
    assert "Tactics that already failed here:\n- reflexivity." in asked[1].messages[-1].content
    root, *children = result.details["tree"]["nodes"]
    assert root["info"]["repeated"] == 1 and [c["action"] for c in children] == ["reflexivity."] * 2 + ["intros n."]
    assert children[2]["reward"] > 0  # the sampled retry got past the repeat


@pytest.mark.docker
async def test_the_embedded_model_drives_a_tactic_search(embedded_model: Any, toolserver: ToolServer) -> None:
    """The real model (constrained to the tactic schema) against real Coq: whatever it proposes, the search ends
    within its budget, and any answer it gives is a proof coqc accepts."""
    task = Task(question="Lemma neg_neg : forall b : bool, negb (negb b) = b.")
    ctx = Context(model=embedded_model, toolserver=toolserver)
    result = await run_to_result(get_strategy("mcts-proof", budget=4, k=2, seed=1).run(task, ctx))
    assert result.details["samples"] <= 4 + 2  # a reply failing the schema may cost a retry or two
    tree = result.details["tree"]
    assert len(tree["nodes"]) > 1 and all(n["action"].endswith(".") for n in tree["nodes"][1:])
    if result.answer is not None:
        tactics = result.answer.removeprefix("Proof.\n").removesuffix("\nQed.").splitlines()
        async with SessionPool(toolserver) as pool:
            assert (await CoqChecker(pool).check("", task.question, tactics)).ok


@pytest.mark.docker
async def test_with_grammar_each_tactic_is_generated_under_the_states_grammar(toolserver: ToolServer) -> None:
    async with SessionPool(toolserver) as pool:
        found = await CoqChecker(pool).search("Require Import Bool.", ["negb"])
    assert "negb_involutive" in dict(found)  # Coq's own Search, in the sandbox

    asked: list[ChatRequest] = []

    def fn(request: ChatRequest) -> Any:
        asked.append(request)
        proof = request.messages[-1].content.split("Proof.\n", 1)[1].split("```", 1)[0].strip()
        tactic = "intros b." if not proof else "apply negb_involutive."
        return [tactic] * request.n if request.n > 1 else tactic

    task = Task(question="Lemma nn : forall b : bool, negb (negb b) = b.", context="Require Import Bool.")
    ctx = Context(model=FunctionModel(fn), toolserver=toolserver)
    options = {"budget": 4, "k": 1, "domain_options": {"grammar": True}}
    result = await run_to_result(get_strategy("mcts-proof", **options).run(task, ctx))
    assert result.details["verified"] and "apply negb_involutive." in result.answer
    grammars = [r.constraint.grammar for r in asked if r.constraint is not None]  # type: ignore[union-attr]
    assert len(grammars) == len(asked) == 2  # every tactic under a grammar, none as JSON
    assert 'var ::= "b"' in grammars[0] and "hyp ::=" not in grammars[0]  # b is quantified, nothing introduced
    assert '"negb_involutive"' in grammars[1] and 'hyp ::= "b"' in grammars[1]  # after intros: b is in context
    assert "only" in asked[0].messages[0].content  # the grammar's prompt asks for the tactic alone


@pytest.mark.docker
async def test_the_embedded_model_under_the_grammar_names_nothing_that_does_not_exist(
    embedded_model: Any, toolserver: ToolServer
) -> None:
    """The real model under each state's grammar: no step fails for an unknown name or for not being Coq."""
    task = Task(question="Lemma neg_neg : forall b : bool, negb (negb b) = b.", context="Require Import Bool.")
    ctx = Context(model=embedded_model, toolserver=toolserver)
    options = {"budget": 4, "k": 2, "seed": 1, "domain_options": {"grammar": True}}
    result = await run_to_result(get_strategy("mcts-proof", **options).run(task, ctx))
    steps = result.details["tree"]["nodes"][1:]
    assert steps and all(n["action"].endswith(".") for n in steps)
    reasons = " ".join(n["reason"] for n in steps)
    assert "was not found in the current environment" not in reasons and "Syntax error" not in reasons
