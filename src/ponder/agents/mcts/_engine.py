"""The generic MCTS engine: select, expand (k candidates from one model request), evaluate with the domain's
reward, backpropagate; within a budget of LLM calls, tokens and seconds, several expansions at once.

Concurrency is batch-synchronous: each round selects up to ``workers`` leaves one after another, each selection
adding a virtual loss along its path so the next one goes elsewhere; the round's expansions and evaluations then
run concurrently, and their results are merged into the tree in selection order. The tree therefore depends only
on the seed and on what the model and the evaluator return, never on which call finished first.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ponder.agents._events import Event, StepStarted, TreeUpdated
from ponder.agents.mcts._tree import FinalRule, Node, Selection, Tree
from ponder.errors import PonderError
from ponder.llm import ChatModel, ChatRequest, ChatResponse, Costs, ModelWrapper


class Budget(BaseModel):
    """Whichever limit is reached first ends the search. A request sampling k candidates counts as k LLM calls,
    so budgets compare fairly between backends with and without native ``n``."""

    llm_calls: int | None = Field(default=16, ge=1)
    tokens: int | None = Field(default=None, ge=1)
    seconds: float | None = Field(default=None, gt=0)


class SearchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=3, ge=1, le=32, description="candidates sampled per expansion, in one request")
    c: float = Field(default=1.0, ge=0.0, description="exploration constant")
    selection: Selection = "puct"
    workers: int = Field(default=1, ge=1, le=32, description="expansions run concurrently (virtual loss)")
    virtual_loss: int = Field(default=1, ge=0)
    max_depth: int = Field(default=6, ge=1)
    max_children: int = Field(default=0, ge=0, description="re-expand a node whose children all failed, up to this")
    seed: int = 0
    temperature: float = Field(default=0.8, ge=0.0, le=2.0)
    greedy_first: bool = Field(
        default=False,
        description="the root's first expansion includes the temperature-0 candidate (one of its k), first in id "
        "order, so a search whose check accepts greedy's answer keeps it",
    )
    reflect: bool = False
    stop_on_verified: bool = True
    final_rule: FinalRule | None = None


@dataclass
class Candidate:
    """A proposed step: the action text (shown in the tree) and the domain state it leads to."""

    action: str
    state: Any
    prior: float | None = None


@dataclass
class Evaluation:
    reward: float
    terminal: bool = False
    verified: bool = False
    answer: Any = None
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)


class Domain(Protocol):
    """What the engine needs from a domain (code, math, proof, or a toy in tests)."""

    final_rule: FinalRule
    calls_per_candidate: int  # LLM calls spent evaluating one candidate (e.g. a self-evaluation), for budgeting

    def root_state(self) -> Any: ...

    async def expand(self, model: ChatModel, node: Node, k: int, *, seed: int, temperature: float) -> list[Candidate]:
        """Propose up to ``k`` children of ``node`` (one request with ``n=k`` where possible)."""
        ...

    async def evaluate(self, model: ChatModel, node: Node) -> Evaluation:
        """Score a new node. Must not raise for a bad candidate: return reward 0 with the reason."""
        ...

    async def reflect(self, model: ChatModel, node: Node) -> str:
        """A short lesson from a failed node, fed to the expansion of its children (LATS)."""
        ...


class CountingModel(ModelWrapper):
    """Counts samples (choices) on top of a metered model, for the budget."""

    def __init__(self, inner: ChatModel) -> None:
        super().__init__(inner)
        self.samples = 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.samples += request.n
        return await self.inner.complete(request)


@dataclass
class SearchOutcome:
    tree: Tree
    chosen: Node | None
    samples: int
    rounds: int
    stopped_by: str
    seconds: float


def derive_seed(seed: int, node_id: int, salt: str = "") -> int:
    digest = hashlib.sha256(f"{seed}:{node_id}:{salt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class MCTS:
    def __init__(self, config: SearchConfig | None = None, budget: Budget | None = None) -> None:
        self.config = config or SearchConfig()
        self.budget = budget or Budget()
        self.outcome: SearchOutcome | None = None

    def _exhausted(self, model: CountingModel, costs: Costs, start: float) -> str | None:
        b = self.budget
        if b.llm_calls is not None and model.samples >= b.llm_calls:
            return "llm_calls"
        if b.tokens is not None and costs.tokens >= b.tokens:
            return "tokens"
        if b.seconds is not None and time.perf_counter() - start >= b.seconds:
            return "seconds"
        return None

    async def search(self, domain: Domain, model: ChatModel, costs: Costs) -> AsyncIterator[Event]:
        """Run the search, yielding tree updates; the result is left in :attr:`outcome`.

        ``model`` should be the run's metered model and ``costs`` its counters (tokens count against the budget).
        """
        cfg = self.config
        counting = CountingModel(model)
        tree = Tree(domain.root_state(), rng=random.Random(cfg.seed))
        start = time.perf_counter()
        rounds = 0
        stopped_by = "tree_exhausted"
        while True:
            reason = self._exhausted(counting, costs, start)
            if reason is not None:
                stopped_by = reason
                break
            leaves = self._select_round(tree)
            if not leaves:
                break
            ks = self._allot(counting, domain, len(leaves))
            for unused in leaves[len(ks) :]:
                tree.remove_virtual_loss(unused, cfg.virtual_loss)
            leaves = leaves[: len(ks)]
            rounds += 1
            yield StepStarted(name="expand", detail=f"round {rounds}: nodes {[leaf.id for leaf in leaves]}")
            results = await asyncio.gather(
                *(self._expand_and_evaluate(domain, counting, leaf, k) for leaf, k in zip(leaves, ks, strict=True)),
                return_exceptions=True,
            )
            for leaf, res in zip(leaves, results, strict=True):
                tree.remove_virtual_loss(leaf, cfg.virtual_loss)
                self._merge(tree, leaf, res)
            yield TreeUpdated(tree=tree.to_dict())
            if cfg.stop_on_verified and any(n.verified for n in tree.nodes):
                stopped_by = "verified"
                break
        chosen = tree.choose(cfg.final_rule or domain.final_rule)
        self.outcome = SearchOutcome(
            tree=tree,
            chosen=chosen,
            samples=counting.samples,
            rounds=rounds,
            stopped_by=stopped_by,
            seconds=time.perf_counter() - start,
        )
        yield TreeUpdated(tree=tree.to_dict(chosen=chosen))

    def _select_round(self, tree: Tree) -> list[Node]:
        cfg = self.config
        leaves: list[Node] = []
        for _ in range(cfg.workers):
            leaf = tree.select(cfg.c, cfg.selection, cfg.max_depth, cfg.max_children)
            if leaf is None:
                break
            tree.add_virtual_loss(leaf, cfg.virtual_loss)
            leaves.append(leaf)
        return leaves

    def _allot(self, model: CountingModel, domain: Domain, n_leaves: int) -> list[int]:
        """Children per selected leaf, so the round does not run past the LLM-call budget."""
        k = self.config.k
        if self.budget.llm_calls is None:
            return [k] * n_leaves
        per_candidate = 1 + domain.calls_per_candidate
        remaining = max(self.budget.llm_calls - model.samples, 0)
        ks: list[int] = []
        for _ in range(n_leaves):
            take = min(k, remaining // per_candidate) if remaining >= per_candidate else 0
            if take == 0 and not ks:
                take = 1  # always make progress: the budget check before the round said calls remain
            if take == 0:
                break
            ks.append(take)
            remaining -= take * per_candidate
        return ks

    async def _expand_and_evaluate(
        self, domain: Domain, model: CountingModel, leaf: Node, k: int
    ) -> list[tuple[Candidate, Evaluation]]:
        cfg = self.config
        if cfg.reflect and leaf.parent is not None and leaf.reason and leaf.reflection is None:
            leaf.reflection = await domain.reflect(model, leaf)
        seed = derive_seed(cfg.seed, leaf.id, str(len(leaf.children)))
        if cfg.greedy_first and leaf.parent is None and not leaf.expanded and cfg.temperature > 0:
            # Two requests in flight together (greedy decoding cannot share a sampled request); k samples in all.
            batches = await asyncio.gather(
                domain.expand(model, leaf, 1, seed=seed, temperature=0.0),
                *([domain.expand(model, leaf, k - 1, seed=seed, temperature=cfg.temperature)] if k > 1 else []),
            )
            candidates = [c for batch in batches for c in batch]
        else:
            candidates = await domain.expand(model, leaf, k, seed=seed, temperature=cfg.temperature)
        probes = [Node(id=-1, parent=leaf, state=c.state, action=c.action, depth=leaf.depth + 1) for c in candidates]
        evaluations = await asyncio.gather(*(domain.evaluate(model, p) for p in probes))
        for cand, probe in zip(candidates, probes, strict=True):
            cand.state = probe.state  # an evaluation may complete the state (e.g. a computed value)
        return list(zip(candidates, evaluations, strict=True))

    def _merge(self, tree: Tree, leaf: Node, result: list[tuple[Candidate, Evaluation]] | BaseException) -> None:
        leaf.expanded = True
        if isinstance(result, BaseException):
            if not isinstance(result, PonderError):
                raise result
            # A failing model call or sandbox fails this one expansion, not the run.
            leaf.info["expand_error"] = result.to_dict()
            leaf.terminal = True
            tree.backpropagate(leaf, 0.0)
            return
        uniform = 1.0 / max(len(result), 1)
        for cand, ev in result:
            child = tree.add(leaf, cand.state, action=cand.action, prior=cand.prior or uniform)
            child.reward = min(max(ev.reward, 0.0), 1.0)
            child.terminal = ev.terminal
            child.verified = ev.verified
            child.answer = ev.answer
            child.reason = ev.reason
            child.info = ev.info
            tree.backpropagate(child, child.reward)
