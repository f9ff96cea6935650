"""Self-consistency (Wang et al. 2022): sample k chains of thought at a temperature above zero and take the
majority vote over their typed answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from pydantic import Field

from ponder.agents._base import (
    BaseStrategy,
    Context,
    StrategyResult,
    Task,
    TaskFamily,
    answer_model,
    format_answer,
)
from ponder.agents._events import Event, FinalAnswer, LLMCall, StepStarted
from ponder.agents._select import Candidate, VoteOptions, candidate_of, choose, select, vote_key
from ponder.agents.cot import ChainOfThought, CoTOptions
from ponder.errors import PonderError
from ponder.llm import ChatModel, Confidence, structured_n, think_then_answer_n


def majority_vote(family: TaskFamily, answers: Sequence[Any]) -> tuple[Any, dict[str, int]]:
    """The most frequent answer (ties go to the one sampled first) and the vote counts by answer, most first."""
    selection = select(family, [Candidate(answer) for answer in answers], rule="majority")
    return selection.answer, selection.votes()


async def sample_chains(
    cot: ChainOfThought,
    model: ChatModel,
    task: Task,
    *,
    k: int,
    temperature: float,
    max_tokens: int,
    seed: int | None,
) -> list[dict[str, Any]]:
    """``k`` sampled chains of thought, each ``{"reasoning": ..., "answer": ..., "confidence": ...}``: one ``n = k``
    request in the task's form (a JSON object, or free reasoning then a constrained answer, batched together). A free
    reasoning cut off at ``max_tokens`` is left out (it has no answer to vote with); only all of them cut off raises.
    ``confidence`` is the sample's :class:`~ponder.llm.Confidence` (of its reasoning) where the backend measures one.
    """
    confidences: list[Confidence | None] = []
    if cot.form_for(task) == "json":
        output_type = answer_model(
            "ChainOfThought",
            task,
            {"reasoning": (str, Field(description="step-by-step reasoning, short and concrete"))},
        )
        samples = await structured_n(
            model,
            cot.messages(task),
            output_type,
            n=k,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            confidences=confidences,
        )
        rows = [s.model_dump() for s in samples]
    else:
        pairs = await think_then_answer_n(
            model,
            cot.messages(task),
            answer_model("Answer", task, {}),
            n=k,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            skip_truncated=True,
            confidences=confidences,
        )
        rows = [{"reasoning": reasoning, **answer.model_dump()} for reasoning, answer in pairs]
    for row, confidence in zip(rows, confidences, strict=True):
        row["confidence"] = confidence.model_dump() if confidence is not None else None
    return rows


class SCOptions(CoTOptions, VoteOptions):
    k: int = Field(default=5, ge=1, le=64, description="chains of thought sampled (one batched request)")
    temperature: float = Field(
        default=0.7,
        gt=0.0,
        le=2.0,
        description="sampling temperature, above 0 (identical greedy samples make the vote meaningless)",
    )
    seed: int | None = Field(
        default=None, description="fixes the samples on backends that honour it (the embedded model, vLLM)"
    )
    greedy_first: bool = Field(
        default=False,
        description="one of the k chains is the greedy one (temperature 0, the chain cot writes), requested beside "
        "the k - 1 sampled; it votes with them and wins a tie",
    )


class SelfConsistency(BaseStrategy[SCOptions]):
    """``k`` sampled chains of thought (one ``n=k`` request), a vote on the typed answer (the selection layer's:
    weighted by each chain's confidence by default)."""

    name: ClassVar[str] = "sc"
    description: ClassVar[str] = "self-consistency: k sampled chains of thought, majority vote on the typed answer"
    Options: ClassVar[type[SCOptions]] = SCOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        self._cot = ChainOfThought(exemplars=o.exemplars, max_tokens=o.max_tokens, form=o.form)

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        model, start = ctx.metered()
        yield StepStarted(
            name="sample", detail=f"{self.options.k} chains of thought at temperature {self.options.temperature}"
        )
        t0 = time.perf_counter()
        chains = await self._sample(model, task)
        yield LLMCall(
            purpose=f"sample x{self.options.k}",
            prompt_tokens=model.costs.prompt_tokens,
            completion_tokens=model.costs.completion_tokens,
            seconds=time.perf_counter() - t0,
            output=chains,
        )
        selection = choose(task.family, [candidate_of(c, "cot") for c in chains], self.options)  # greedy first
        answer, votes = selection.answer, selection.votes()
        yield StepStarted(name="vote", detail=", ".join(f"{k}: {v}" for k, v in votes.items()))
        winner = next((c for c in chains if c["answer"] == answer), chains[0])  # a chain that reached the answer
        share = f"{votes[str(vote_key(task.family, answer))]} of {len(chains)} samples agree"
        result = StrategyResult(
            answer=answer,
            text=format_answer(task, answer),
            reasoning=f"{winner['reasoning']}\n({share})",
            costs=model.costs,
            seconds=time.perf_counter() - start,
            details={
                "votes": votes,
                "selection": selection.model_dump(mode="json"),
                "samples": chains,
                "cut_off": self.options.k - len(chains),
                "greedy": next((c["answer"] for c in chains if c.get("greedy")), None),
            },
        )
        yield FinalAnswer(answer=answer, text=result.text, result=result.model_dump(mode="json"))

    async def _sample(self, model: ChatModel, task: Task) -> list[dict[str, Any]]:
        """The k chains: all sampled, or (``greedy_first``) the greedy chain and k - 1 sampled, requested together.
        A greedy chain that fails (cut off, say) leaves the sampled ones to vote."""
        o = self.options

        async def chains(k: int, temperature: float, seed: int | None) -> list[dict[str, Any]]:
            return await sample_chains(
                self._cot, model, task, k=k, temperature=temperature, max_tokens=o.max_tokens, seed=seed
            )

        if not o.greedy_first or o.k == 1:
            return await chains(o.k, o.temperature, o.seed)
        found = await asyncio.gather(
            chains(1, 0.0, None), chains(o.k - 1, o.temperature, o.seed), return_exceptions=True
        )
        greedy, sampled = found
        if isinstance(sampled, BaseException):
            raise sampled
        if isinstance(greedy, BaseException):
            if not isinstance(greedy, PonderError):
                raise greedy
            return sampled
        for row in greedy:
            row["greedy"] = True
        return greedy + sampled
