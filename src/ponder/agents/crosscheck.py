"""``math``: a chain of thought and a program that check each other (issue 32).

One greedy chain of thought (the request ``cot`` sends) and one greedy program (the request ``pot`` sends, run in
the sandbox) are asked together. When their answers agree, that is the answer: two samples, and on GSM8K the two
modes are wrong on different items (``benchmarks/execution_votes.py``), so agreement is strong evidence. When they
disagree, or one fails, ``per_round`` more programs and ``per_round`` more chains are sampled per round, until the
leading answer is backed by both modes and by more than half the candidates, or ``budget`` samples are spent; the
answer is then the selection layer's confidence-weighted vote over every candidate (programs count only when they
ran and printed a number: execution is what backs them). Cross-mode agreement as a stopping rule follows arXiv
2604.17433; the weighted vote is CISC (arXiv 2502.06233), measured in docs/results/selection.

Checking a chain's own arithmetic by execution was measured and is not used: on GSM8K dev items 0-39 the chains
whose written equations (``a op b = c``) do not hold were right about as often as the others (12 of 21 against 96
of 175), so it does not separate right chains from wrong ones; the program written for the same question is the
check that does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import Field, model_validator

from ponder.agents._base import Context, Options, StrategyResult, Task, TaskFamily, format_answer
from ponder.agents._events import Event, FinalAnswer, LLMCall, StepStarted
from ponder.agents._select import Candidate, Selection, VoteOptions, candidate_of, choose, vote_key
from ponder.agents.mcts._math import format_value
from ponder.agents.pot import Attempt, ProgramOfThought
from ponder.errors import PonderError, StrategyError
from ponder.llm import MeteredModel
from ponder.tools import ToolSession


class CrossCheckOptions(Options, VoteOptions):
    budget: int = Field(
        default=6, ge=2, le=64, description="most samples (chains and programs together) spent on one question"
    )
    per_round: int = Field(
        default=2, ge=1, le=16, description="programs and chains (each) sampled per round after a disagreement"
    )
    temperature: float = Field(
        default=0.7, gt=0.0, le=2.0, description="sampling temperature of the rounds after the greedy pair"
    )
    max_tokens: int = Field(default=400, ge=1, le=8192, description="longest program, in tokens")
    chain_max_tokens: int = Field(default=512, ge=1, le=16384, description="longest chain of thought, in tokens")
    timeout_s: float = Field(default=10.0, gt=0.0, le=120.0, description="time limit of one program run")
    repair: bool = Field(default=True, description="show a failed program its failure once and run its repair")
    k: int = Field(default=1, description="(fixed: the first round is one greedy program)")

    @model_validator(mode="after")
    def _one_greedy_program(self) -> CrossCheckOptions:
        if self.k != 1:
            raise ValueError("math starts from one greedy program; set budget and per_round for more samples")
        return self


class CrossCheckMath(ProgramOfThought):
    """Greedy chain of thought and greedy program; their agreement answers, else more of both and a weighted vote."""

    name: ClassVar[str] = "math"
    description: ClassVar[str] = (
        "math word problems: a chain of thought and a program run in the sandbox check each other; when they "
        "disagree, more of both are sampled and a confidence-weighted vote decides"
    )
    Options: ClassVar[type[CrossCheckOptions]] = CrossCheckOptions  # type: ignore[assignment]
    options: CrossCheckOptions  # type: ignore[assignment]

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        toolserver = self.toolserver(ctx, "runs the model's programs in the sandbox")
        messages = self.messages(task)  # raises for a question that is not a number question
        model, start = ctx.metered()
        o = self.options
        attempts: list[Attempt] = []
        chains: list[dict[str, Any]] = []
        chain_errors: list[str] = []
        rounds: list[dict[str, Any]] = []
        settled = "budget"
        async with toolserver.session() as session:
            yield StepStarted(name="chain and program", detail="one chain of thought and one program, greedy")
            async for event in self._round(session, model, task, messages, attempts, chains, chain_errors, 1, 0.0):
                yield event
            candidates = _candidates(attempts, chains)
            rounds.append({"samples": _samples(attempts, chains, chain_errors), "answers": _answers(candidates)})
            if _agree(task.family, candidates):
                settled = "agreement"
            while settled != "agreement" and _samples(attempts, chains, chain_errors) < o.budget:
                left = o.budget - _samples(attempts, chains, chain_errors)
                each = max(1, min(o.per_round, left // 2))
                yield StepStarted(
                    name="sample more",
                    detail=f"{_disagreement(candidates)}: {each} more program(s) and chain(s) of thought",
                )
                async for event in self._round(
                    session, model, task, messages, attempts, chains, chain_errors, each, o.temperature
                ):
                    yield event
                candidates = _candidates(attempts, chains)
                rounds.append({"samples": _samples(attempts, chains, chain_errors), "answers": _answers(candidates)})
                if _settled(task.family, candidates):
                    settled = "majority of both modes"
                    break
        if not candidates:
            reasons = [f"program {a.sample + 1}: {a.error}" for a in attempts] + chain_errors
            raise StrategyError(
                f"no chain of thought gave an answer and no program printed a number ({'; '.join(reasons)})"[:600],
                hint="see the run's tool calls",
            )
        selection = choose(task.family, candidates, o)
        yield StepStarted(name="choose", detail=_why(selection, settled))
        answer = selection.answer
        key = vote_key(task.family, answer)
        program = next((a for a in attempts if a.answer is not None and vote_key(task.family, a.answer) == key), None)
        chain = next((c for c in chains if vote_key(task.family, float(c["answer"])) == key), None)
        reasoning = chain["reasoning"] if chain else None
        if program is not None and program.code:
            checked = f"Checked by a program:\n```python\n{program.code}\n```"
            reasoning = f"{reasoning}\n\n{checked}" if reasoning else checked
        greedy_program = attempts[0].answer if attempts else None
        greedy_chain = next((c["answer"] for c in chains if c.get("greedy")), None)
        result = StrategyResult(
            answer=answer,
            text=format_answer(task, answer),
            reasoning=reasoning,
            costs=model.costs,
            tool_calls=len(attempts) + sum(a.repaired for a in attempts),
            seconds=time.perf_counter() - start,
            details={
                "greedy_cot": greedy_chain,
                "greedy_program": greedy_program,
                "settled": settled,
                "samples": _samples(attempts, chains, chain_errors),
                "rounds": rounds,
                "selection": selection.model_dump(mode="json"),
                "votes": selection.votes(),
                "programs": [a.record() for a in attempts],
                "chains": chains,
                "chain_errors": chain_errors,
                "program": program.code if program else None,
            },
        )
        yield FinalAnswer(answer=answer, text=result.text, result=result.model_dump(mode="json"))

    async def _round(
        self,
        session: ToolSession,
        model: MeteredModel,
        task: Task,
        messages: list[Any],
        attempts: list[Attempt],
        chains: list[dict[str, Any]],
        chain_errors: list[str],
        n: int,
        temperature: float,
    ) -> AsyncIterator[Event]:
        """``n`` programs (run) and ``n`` chains of thought, requested together (a batching backend decodes them at
        once); a round's failed chains are recorded, never the run's failure."""
        seed = len(attempts)
        chains_job = asyncio.ensure_future(self._chains(model, task, n, temperature, seed))
        try:
            async for event in self.programs(
                session, model, messages, attempts, n=n, temperature=temperature, seed=seed, first=len(attempts)
            ):
                yield event
            try:
                rows, costs, seconds = await chains_job
            except PonderError as exc:
                chain_errors.append(f"chain(s) of thought: {exc.message}")
                return
        finally:
            if not chains_job.done():
                chains_job.cancel()
        for row in rows:
            row["greedy"] = temperature == 0.0
        chains.extend(rows)
        yield LLMCall(
            purpose="chain of thought" if n == 1 else f"chains of thought x{n}",
            prompt_tokens=costs.prompt_tokens,
            completion_tokens=costs.completion_tokens,
            seconds=seconds,
            output=rows,
        )


def _candidates(attempts: list[Attempt], chains: list[dict[str, Any]]) -> list[Candidate]:
    """Programs first (a tie of the weighted vote goes to the first candidate: an executed one), then chains."""
    out = [Candidate(a.answer, "program", a.confidence, True) for a in attempts if a.answer is not None]
    return out + [candidate_of({**row, "answer": float(row["answer"])}, "cot") for row in chains]


def _samples(attempts: list[Attempt], chains: list[dict[str, Any]], chain_errors: list[str]) -> int:
    """Samples spent: programs written (a repair is not a new sample), chains kept, and chains lost to an error or
    a cut-off (counted as one each round they failed in)."""
    return len(attempts) + len(chains) + len(chain_errors)


def _answers(candidates: list[Candidate]) -> list[dict[str, Any]]:
    return [{"mode": c.mode, "answer": c.answer} for c in candidates]


def _agree(family: TaskFamily, candidates: list[Candidate]) -> bool:
    keys = {(c.mode, vote_key(family, c.answer)) for c in candidates}
    modes = {mode for mode, _ in keys}
    return modes == {"program", "cot"} and len({key for _, key in keys}) == 1


def _settled(family: TaskFamily, candidates: list[Candidate]) -> bool:
    """The leading answer holds more than half the candidates and comes from both modes."""
    counts: dict[Any, list[Candidate]] = {}
    for c in candidates:
        counts.setdefault(vote_key(family, c.answer), []).append(c)
    top = max(counts.values(), key=len, default=[])
    return 2 * len(top) > len(candidates) and {c.mode for c in top} == {"program", "cot"}


def _disagreement(candidates: list[Candidate]) -> str:
    if not candidates:
        return "no answer yet"
    seen = ", ".join(f"{c.mode} says {format_value(c.answer)}" for c in candidates)
    return f"no agreement ({seen})" if len(candidates) > 1 else f"only one answer ({seen})"


def _why(selection: Selection, settled: str) -> str:
    if settled == "agreement":
        return f"the chain of thought and the program agree on {format_value(selection.answer)}"
    heaviest = ", ".join(f"{answer}: {count}" for answer, count in selection.votes().items())
    return f"{selection.candidates} answers ({heaviest}); {selection.rule} vote, agreement {selection.agreement:.0%}"
