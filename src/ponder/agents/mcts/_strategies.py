"""The MCTS strategies (``mcts-code``, ``mcts-math``, ``mcts-proof``): a domain, the engine, one final answer.

A strategy sees only the :class:`Task` (no gold answer, no hidden tests) and the :class:`Context`; it reports the
one answer its domain rule chose, with the tree and the costs in the result's details.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import ValidationError

from ponder.agents._base import Context, StrategyResult, Task, format_answer
from ponder.agents._events import Event, FinalAnswer, StepStarted
from ponder.agents.mcts._engine import MCTS, Budget, Domain, SearchConfig
from ponder.agents.mcts._pool import SessionPool
from ponder.agents.mcts._tree import FinalRule
from ponder.errors import ConfigError, InputError, describe_validation


class MCTSStrategy:
    """Shared wiring. Options: ``budget`` (LLM calls), ``tokens``, ``seconds``, and any :class:`SearchConfig`
    field (``k``, ``c``, ``selection``, ``workers``, ``seed``, ``reflect``, ``final_rule`` ...)."""

    name: ClassVar[str] = "mcts"
    description: ClassVar[str] = "Monte Carlo tree search over LLM steps"
    needs_toolserver: ClassVar[bool] = True
    default_config: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        budget: int | None = 16,
        tokens: int | None = None,
        seconds: float | None = None,
        sessions: int = 1,
        domain_options: dict[str, Any] | None = None,
        **config: Any,
    ) -> None:
        try:
            self.budget = Budget(llm_calls=budget, tokens=tokens, seconds=seconds)
            self.config = SearchConfig(**{**self.default_config, **config})
        except ValidationError as exc:
            fields = ", ".join(sorted(SearchConfig.model_fields))
            raise InputError(
                f"{self.name}: bad options: {describe_validation(exc.errors())}",
                hint=f"options are budget, tokens, seconds, sessions, domain_options and: {fields}",
            ) from exc
        self.sessions = sessions
        self.domain_options = domain_options or {}

    def make_domain(self, task: Task, pool: SessionPool) -> Domain:
        raise NotImplementedError

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        if self.needs_toolserver and ctx.toolserver is None:
            raise ConfigError(
                f"strategy {self.name!r} runs candidates in the sandbox and needs a ToolServer",
                hint="start the Docker engine and build the node image (`ponder toolserver build-image`)",
            )
        model, start = ctx.metered()
        engine = MCTS(self.config, self.budget)
        yield StepStarted(name="search", detail=f"{self.name}: budget {self.budget.model_dump(exclude_none=True)}")
        async with SessionPool(ctx.toolserver, self.sessions) as pool:
            domain = self.make_domain(task, pool)
            async for event in engine.search(domain, model, model.costs):
                yield event
        outcome = engine.outcome
        assert outcome is not None  # set by search() before it returns
        chosen = outcome.chosen
        answer = chosen.answer if chosen is not None else None
        result = StrategyResult(
            answer=answer,
            text=format_answer(task, answer) if answer is not None else "",
            costs=model.costs,
            tool_calls=sum(1 for n in outcome.tree.nodes if n.parent is not None),
            seconds=time.perf_counter() - start,
            details={
                "chosen": chosen.id if chosen is not None else None,
                "verified": bool(chosen is not None and chosen.verified),
                "reward": chosen.reward if chosen is not None else 0.0,
                "samples": outcome.samples,
                "rounds": outcome.rounds,
                "nodes": len(outcome.tree.nodes),
                "stopped_by": outcome.stopped_by,
                "final_rule": (self.config.final_rule or domain.final_rule).value,
                "tree": outcome.tree.to_dict(chosen=chosen),
            },
        )
        yield FinalAnswer(answer=answer, text=result.text, result=result.model_dump(mode="json"))


class MCTSCode(MCTSStrategy):
    """Programs as nodes, refined on their failures; reward = fraction of the visible tests passed."""

    name: ClassVar[str] = "mcts-code"
    description: ClassVar[str] = "MCTS over programs, rewarded by visible tests run in the sandbox"
    default_config: ClassVar[dict[str, Any]] = {
        "k": 3,
        "max_depth": 4,
        "max_children": 6,
        "final_rule": FinalRule.verified,
    }

    def make_domain(self, task: Task, pool: SessionPool) -> Domain:
        from ponder.agents.mcts._code import CodeDomain

        return CodeDomain(task, pool, **self.domain_options)


class MCTSMath(MCTSStrategy):
    """Reasoning steps as nodes; arithmetic executed in the sandbox; self-evaluation and answer agreement."""

    name: ClassVar[str] = "mcts-math"
    description: ClassVar[str] = "MCTS over reasoning steps with sandbox-checked arithmetic and answer voting"
    default_config: ClassVar[dict[str, Any]] = {"k": 2, "max_depth": 6, "max_children": 6, "final_rule": FinalRule.vote}

    def make_domain(self, task: Task, pool: SessionPool) -> Domain:
        from ponder.agents.mcts._math import MathDomain

        return MathDomain(task, pool, **self.domain_options)


class MCTSProof(MCTSStrategy):
    """Proof states as nodes, tactics as actions, Coq as the judge; proofs re-checked whole by ``coqc``."""

    name: ClassVar[str] = "mcts-proof"
    description: ClassVar[str] = "MCTS over Coq tactics, checked by Coq in the sandbox"
    default_config: ClassVar[dict[str, Any]] = {
        "k": 3,
        "max_depth": 8,
        "max_children": 9,
        "final_rule": FinalRule.verified,
    }

    def make_domain(self, task: Task, pool: SessionPool) -> Domain:
        from ponder.agents.mcts._proof import ProofDomain

        return ProofDomain(task, pool, **self.domain_options)
