"""The generic engine with a function-played model and a toy reward: guess a hidden digit string one digit per
step; the reward is the share of the target matched by the node's prefix."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from ponder.agents import TreeUpdated, event_adapter
from ponder.agents.mcts import MCTS, Budget, Candidate, Evaluation, FinalRule, Node, SearchConfig, Tree
from ponder.errors import ModelServerError
from ponder.llm import ChatModel, ChatRequest, Costs, MeteredModel, user
from tests.fakes import FunctionModel

ALPHABET = "01234"


class DigitDomain:
    final_rule = FinalRule.verified
    calls_per_candidate = 0

    def __init__(self, target: str = "314") -> None:
        self.target = target
        self.reflected: list[int] = []

    def root_state(self) -> str:
        return ""

    async def expand(self, model: ChatModel, node: Node, k: int, *, seed: int, temperature: float) -> list[Candidate]:
        prompt = f"extend {node.state!r}" + (f" ({node.reflection})" if node.reflection else "")
        request = ChatRequest(messages=[user(prompt)], n=k, seed=seed, temperature=temperature)
        response = await model.complete(request)
        return [Candidate(action=c.text, state=node.state + c.text.strip()[:1]) for c in response.choices]

    async def evaluate(self, model: ChatModel, node: Node) -> Evaluation:
        s: str = node.state
        matched = 0
        for a, b in zip(s, self.target, strict=False):
            if a != b:
                break
            matched += 1
        done = len(s) >= len(self.target)
        return Evaluation(
            reward=matched / len(self.target),
            terminal=done,
            verified=s == self.target,
            answer=s if done else None,
            reason="" if s == self.target[: len(s)] else f"digit {matched + 1} is wrong",
        )

    async def reflect(self, model: ChatModel, node: Node) -> str:
        self.reflected.append(node.id)
        return f"avoid {node.state}"


def digit_model(delay: float = 0.0, inflight: list[int] | None = None) -> FunctionModel:
    """Digits drawn from a generator seeded by the request's seed; optional seeded random latency."""
    state = {"now": 0}

    async def fn(request: ChatRequest) -> list[Any]:
        rng = random.Random(request.seed)
        if inflight is not None:
            state["now"] += 1
            inflight.append(state["now"])
        if delay:
            await asyncio.sleep(delay * rng.random())
        if inflight is not None:
            state["now"] -= 1
        digits = [rng.choice(ALPHABET) for _ in range(request.n)]
        return digits if request.n > 1 else digits[0]

    return FunctionModel(fn)


async def run_search(
    model: ChatModel, domain: Any, config: SearchConfig, budget: Budget
) -> tuple[MCTS, list[Any], Costs]:
    metered = MeteredModel(model)
    engine = MCTS(config, budget)
    events = [e async for e in engine.search(domain, metered, metered.costs)]
    return engine, events, metered.costs


def tree_shape(engine: MCTS) -> list[tuple[Any, ...]]:
    assert engine.outcome is not None
    nodes = engine.outcome.tree.nodes
    return [(n.id, n.parent.id if n.parent else None, n.state, n.visits, n.value_sum) for n in nodes]


# --- selection -------------------------------------------------------------------------------------------------


def make_tree(values: list[tuple[int, float]], priors: list[float] | None = None) -> Tree:
    tree = Tree("", rng=random.Random(0))
    tree.root.expanded = True
    for i, (visits, value_sum) in enumerate(values):
        child = tree.add(tree.root, str(i), prior=(priors[i] if priors else 1.0))
        child.visits, child.value_sum = visits, value_sum
        tree.root.visits += visits
    return tree


def test_uct_prefers_higher_value_at_equal_visits_and_unvisited_first() -> None:
    tree = make_tree([(4, 1.0), (4, 3.0)])
    assert tree.select(1.0, "uct", max_depth=5) is tree.nodes[2]
    tree = make_tree([(4, 3.0), (0, 0.0)])
    assert tree.select(1.0, "uct", max_depth=5) is tree.nodes[2]


def test_uct_exploration_term_overrides_value_when_c_is_large() -> None:
    tree = make_tree([(50, 30.0), (1, 0.0)])
    assert tree.select(0.0, "uct", max_depth=5) is tree.nodes[1]
    assert tree.select(5.0, "uct", max_depth=5) is tree.nodes[2]


def test_puct_follows_the_prior_between_equal_children() -> None:
    tree = make_tree([(1, 0.5), (1, 0.5)], priors=[0.2, 0.8])
    assert tree.select(1.0, "puct", max_depth=5) is tree.nodes[2]


def test_selection_skips_terminal_and_in_flight_nodes() -> None:
    tree = make_tree([(1, 1.0), (1, 0.0)])
    tree.nodes[1].terminal = True
    assert tree.select(1.0, "uct", max_depth=5) is tree.nodes[2]
    tree.add_virtual_loss(tree.nodes[2], 1)
    assert tree.select(1.0, "uct", max_depth=5) is None
    tree.remove_virtual_loss(tree.nodes[2], 1)
    assert tree.select(1.0, "uct", max_depth=5) is tree.nodes[2]


def test_virtual_loss_lowers_value_and_moves_the_next_selection() -> None:
    tree = make_tree([(2, 1.2), (2, 1.0)])
    first = tree.select(0.1, "uct", max_depth=5)
    assert first is tree.nodes[1]
    # the leaf is in flight: its subtree looks like a loss until it returns
    tree.add_virtual_loss(first, 3)
    assert first.value == pytest.approx(1.2 / 5)
    assert tree.select(0.1, "uct", max_depth=5) is tree.nodes[2]


# --- final-answer rules ----------------------------------------------------------------------------------------


def test_final_rules_choose_differently() -> None:
    tree = Tree("", rng=random.Random(0))
    a = tree.add(tree.root, "a")
    b = tree.add(tree.root, "b")
    c = tree.add(b, "c")
    d = tree.add(tree.root, "d")
    a.visits, a.reward, a.answer = 1, 0.9, "A"
    b.visits, b.reward = 5, 0.4
    c.visits, c.reward, c.answer = 4, 0.5, "C"
    d.visits, d.reward, d.answer, d.verified = 1, 0.6, "D", True
    e = tree.add(tree.root, "e")
    e.visits, e.reward, e.answer = 1, 0.4, "C"
    assert tree.choose(FinalRule.best_value) is a
    assert tree.choose(FinalRule.most_visited) is c
    assert tree.choose(FinalRule.verified) is d
    assert tree.choose(FinalRule.vote) is c  # "C" twice: 0.5 + 0.4 > 0.9
    d.verified = False
    assert tree.choose(FinalRule.verified) is a  # no verified node: best value


# --- the search ------------------------------------------------------------------------------------------------


async def test_each_expansion_is_one_request_sampling_k_and_backprop_adds_up() -> None:
    model = digit_model()
    engine, _, costs = await run_search(
        model, DigitDomain("4444"), SearchConfig(k=3, seed=1, stop_on_verified=False), Budget(llm_calls=12)
    )
    assert [r.n for r in model.requests] == [3, 3, 3, 3]
    assert costs.llm_calls == 4
    assert engine.outcome is not None
    tree = engine.outcome.tree
    children = tree.nodes[1:]
    assert len(children) == 12
    assert tree.root.visits == 12
    assert tree.root.value_sum == pytest.approx(sum(n.reward for n in children))
    for node in tree.nodes:  # every node's visits = itself + its descendants' backups
        assert node.visits == sum(1 for n in tree.nodes if node in n.path() and n is not tree.root)
        assert node.virtual == 0
    expanded = [n for n in tree.nodes if n.expanded]
    assert len(expanded) == 4 and all(len(n.children) == 3 for n in expanded)


async def test_greedy_first_puts_the_temperature_0_candidate_first_and_keeps_it_on_a_tie() -> None:
    def fn(request: ChatRequest) -> Any:
        if request.temperature == 0.0:
            return "3 greedy"
        return ["3 sampled"] * request.n

    model = FunctionModel(fn)
    config = SearchConfig(k=3, seed=1, greedy_first=True, temperature=0.8)
    engine, _, costs = await run_search(model, DigitDomain("3"), config, Budget(llm_calls=8))
    assert sorted((r.n, r.temperature) for r in model.requests) == [(1, 0.0), (2, 0.8)]
    assert costs.llm_calls == 2  # two requests, three samples
    assert engine.outcome is not None and engine.outcome.samples == 3
    assert engine.outcome.stopped_by == "verified"
    assert [n.action for n in engine.outcome.tree.root.children] == ["3 greedy", "3 sampled", "3 sampled"]
    assert engine.outcome.chosen is not None and engine.outcome.chosen.action == "3 greedy"

    plain = FunctionModel(fn)
    engine, _, _ = await run_search(
        plain, DigitDomain("3"), config.model_copy(update={"greedy_first": False}), Budget(llm_calls=8)
    )
    assert [(r.n, r.temperature) for r in plain.requests] == [(3, 0.8)]
    assert engine.outcome is not None and engine.outcome.chosen is not None
    assert engine.outcome.chosen.action == "3 sampled"


async def test_greedy_first_applies_to_the_roots_first_expansion_only() -> None:
    model = digit_model()
    config = SearchConfig(k=3, seed=1, greedy_first=True, stop_on_verified=False)
    engine, _, _ = await run_search(model, DigitDomain("4444"), config, Budget(llm_calls=9))
    assert sorted((r.n, r.temperature) for r in model.requests[:2]) == [(1, 0.0), (2, 0.8)]
    assert [(r.n, r.temperature) for r in model.requests[2:]] == [(3, 0.8), (3, 0.8)]
    assert engine.outcome is not None and engine.outcome.samples == 9


async def test_search_finds_the_target_and_stops_when_verified() -> None:
    engine, events, _ = await run_search(
        digit_model(), DigitDomain("314"), SearchConfig(k=4, c=0.5, seed=3, max_children=8), Budget(llm_calls=200)
    )
    assert engine.outcome is not None
    assert engine.outcome.stopped_by == "verified"
    assert engine.outcome.chosen is not None and engine.outcome.chosen.answer == "314"
    assert engine.outcome.samples < 200
    assert isinstance(events[-1], TreeUpdated) and events[-1].tree["chosen"] == engine.outcome.chosen.id


async def test_llm_call_budget_counts_samples_and_trims_the_last_expansion() -> None:
    model = digit_model()
    engine, _, _ = await run_search(
        model, DigitDomain("4444"), SearchConfig(k=4, stop_on_verified=False), Budget(llm_calls=10)
    )
    assert [r.n for r in model.requests] == [4, 4, 2]
    assert engine.outcome is not None and engine.outcome.stopped_by == "llm_calls"
    assert engine.outcome.samples == 10


async def test_token_budget_stops_the_search() -> None:
    engine, _, costs = await run_search(
        digit_model(), DigitDomain("4444"), SearchConfig(k=2, stop_on_verified=False), Budget(llm_calls=None, tokens=20)
    )
    assert engine.outcome is not None and engine.outcome.stopped_by == "tokens"
    assert costs.tokens >= 20
    assert costs.tokens < 20 + 2 * 10  # at most one request past the limit


async def test_seconds_budget_stops_a_slow_search() -> None:
    engine, _, _ = await run_search(
        digit_model(delay=0.2),
        DigitDomain("4444"),
        SearchConfig(k=2, stop_on_verified=False),
        Budget(llm_calls=None, seconds=0.3),
    )
    assert engine.outcome is not None and engine.outcome.stopped_by == "seconds"
    assert engine.outcome.seconds < 2.0


async def test_concurrent_expansions_go_to_distinct_leaves_under_virtual_loss() -> None:
    inflight: list[int] = []
    model = digit_model(delay=0.02, inflight=inflight)
    engine, events, _ = await run_search(
        model,
        DigitDomain("4444"),
        SearchConfig(k=2, workers=4, seed=5, stop_on_verified=False, max_depth=4),
        Budget(llm_calls=40),
    )
    assert max(inflight) == 4  # four model requests really were in flight together
    rounds = [json.loads(e.detail.split(": nodes ")[1]) for e in events if getattr(e, "name", "") == "expand"]
    assert any(len(r) == 4 for r in rounds)
    for selected in rounds:
        assert len(set(selected)) == len(selected)
    assert engine.outcome is not None
    assert all(n.virtual == 0 and not n.in_flight for n in engine.outcome.tree.nodes)


async def test_same_seed_same_tree_whatever_the_completion_order() -> None:
    config = SearchConfig(k=3, workers=3, seed=11, stop_on_verified=False)
    shapes = []
    for _ in range(2):
        engine, _, _ = await run_search(digit_model(delay=0.01), DigitDomain("4321"), config, Budget(llm_calls=30))
        shapes.append(tree_shape(engine))
    assert shapes[0] == shapes[1]
    other, _, _ = await run_search(
        digit_model(delay=0.01), DigitDomain("4321"), config.model_copy(update={"seed": 12}), Budget(llm_calls=30)
    )
    assert tree_shape(other) != shapes[0]


async def test_a_failing_model_call_fails_one_expansion_not_the_search() -> None:
    calls = {"n": 0}

    def fn(request: ChatRequest) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            return ModelServerError("boom")
        return [random.Random(request.seed).choice(ALPHABET) for _ in range(request.n)]

    engine, _, _ = await run_search(
        FunctionModel(fn), DigitDomain("4444"), SearchConfig(k=2, stop_on_verified=False), Budget(llm_calls=10)
    )
    assert engine.outcome is not None
    failed = [n for n in engine.outcome.tree.nodes if "expand_error" in n.info]
    assert len(failed) == 1 and failed[0].info["expand_error"]["type"] == "ModelServerError"
    assert calls["n"] == 5  # the search went on after the failure


async def test_reflection_on_failed_nodes_conditions_their_expansion() -> None:
    model = digit_model()
    domain = DigitDomain("4444")
    engine, _, _ = await run_search(
        model, domain, SearchConfig(k=2, reflect=True, stop_on_verified=False), Budget(llm_calls=12)
    )
    assert engine.outcome is not None
    assert domain.reflected  # failed nodes were reflected upon before being expanded
    node = engine.outcome.tree.nodes[domain.reflected[0]]
    assert node.reflection == f"avoid {node.state}"
    assert any(f"(avoid {node.state})" in r.messages[-1].content for r in model.requests)


async def test_tree_events_serialise_and_round_trip() -> None:
    _, events, _ = await run_search(digit_model(), DigitDomain("33"), SearchConfig(k=2, seed=2), Budget(llm_calls=8))
    trees = [e for e in events if isinstance(e, TreeUpdated)]
    assert trees
    for e in trees:
        back = event_adapter.validate_json(e.model_dump_json())
        assert isinstance(back, TreeUpdated) and back.tree == json.loads(json.dumps(e.tree))
    last = trees[-1].tree
    assert {n["id"] for n in last["nodes"]} == set(range(len(last["nodes"])))
    assert all(n["parent"] is None or n["parent"] < n["id"] for n in last["nodes"])


def test_unknown_or_bad_strategy_options_are_typed_input_errors() -> None:
    from ponder.agents import get_strategy
    from ponder.errors import InputError

    with pytest.raises(InputError, match="invalid options for strategy 'mcts-code': budgte") as info:
        get_strategy("mcts-code", budgte=4)
    assert "budget" in info.value.hint
    with pytest.raises(InputError, match="k"):
        get_strategy("mcts-math", k=0)


class DeadEndDomain(DigitDomain):
    """Any digit but the target's first one is a dead end (terminal, reward 0)."""

    async def evaluate(self, model: ChatModel, node: Node) -> Evaluation:
        ev = await super().evaluate(model, node)
        if node.state[0] != self.target[0]:
            return Evaluation(0.0, terminal=True, reason="dead end")
        return ev


async def test_a_node_whose_children_all_died_is_expanded_again_with_new_samples() -> None:
    def fn(request: ChatRequest) -> Any:
        rng = random.Random(request.seed)
        digits = ["0" if rng.random() < 0.7 else "1" for _ in range(request.n)]
        return digits if request.n > 1 else digits[0]

    narrow, _, _ = await run_search(
        FunctionModel(fn), DeadEndDomain("11"), SearchConfig(k=1, seed=0), Budget(llm_calls=20)
    )
    wide_model = FunctionModel(fn)
    wide, _, _ = await run_search(
        wide_model, DeadEndDomain("11"), SearchConfig(k=1, seed=0, max_children=6), Budget(llm_calls=20)
    )
    assert narrow.outcome is not None and wide.outcome is not None
    assert narrow.outcome.tree.nodes[1].state == "0"  # the only sample was a dead end ...
    assert narrow.outcome.stopped_by == "tree_exhausted" and narrow.outcome.samples == 1  # ... and ended the search
    assert wide.outcome.chosen is not None and wide.outcome.chosen.answer == "11"
    root_seeds = [r.seed for r in wide_model.requests if "extend ''" in r.messages[-1].content]
    assert len(root_seeds) > 1 and len(set(root_seeds)) == len(root_seeds)  # each re-expansion samples afresh
