"""The Chain-of-Knowledge strategy (Wang et al. 2023, arXiv 2306.06427) with F²-verification and rethinking.

1. Ask for ``{evidence: [triples], explanation, answer}`` with few-shot exemplars of the task's family
   (optionally ``samples`` chains and a majority vote over their answers: self-consistency over CoK chains).
2. With ``verify=True``: score factuality (each triple against computation, the knowledge base and the local
   index) and faithfulness (explanation vs question + evidence + answer); combine them.
3. While the combined score is under ``threshold`` and rounds are left: keep the supported triples, replace the
   unsupported ones by the best retrieved knowledge, and ask again. The best-scoring chain is the answer (ties go
   to the later round).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from ponder.agents._base import Context, StrategyResult, Task, TaskFamily, format_answer, render_question
from ponder.agents._events import Event, EvidenceChecked, FinalAnswer, LLMCall, StepStarted
from ponder.agents.cok._prompt import EvidenceTriple, cok_output_model, exemplars_for, first_messages, rethink_messages
from ponder.agents.cok._verify import (
    EmbeddingJudge,
    FactChecker,
    FaithfulnessJudge,
    LLMJudge,
    TripleCheck,
    Verdict,
    combine,
)
from ponder.agents.sc import majority_vote
from ponder.errors import ConfigError, InputError
from ponder.llm import Message, MeteredModel, structured_n

JudgeName = Literal["llm", "embedding", "none"]


class ChainOfKnowledge:
    name: ClassVar[str] = "cok"
    description: ClassVar[str] = "chain of knowledge: evidence triples, explanation, typed answer"

    def __init__(
        self,
        *,
        verify: bool = False,
        judge: JudgeName = "llm",
        threshold: float = 0.6,
        weight: float = 0.5,
        rethink_rounds: int = 1,
        samples: int = 1,
        temperature: float | None = None,
        max_tokens: int = 512,
        max_triples: int = 4,
        exemplars: list[dict[str, Any]] | None = None,
    ) -> None:
        if samples < 1 or rethink_rounds < 0 or not 0.0 <= threshold <= 1.0 or not 0.0 <= weight <= 1.0:
            raise InputError(
                "CoK needs samples >= 1, rethink_rounds >= 0, and threshold and weight in [0, 1]",
                hint=f"got samples={samples}, rethink_rounds={rethink_rounds}, threshold={threshold}, weight={weight}",
            )
        if judge not in ("llm", "embedding", "none"):
            raise InputError(f"unknown faithfulness judge {judge!r}", hint="use 'llm', 'embedding' or 'none'")
        self.verify = verify
        self.judge_name = judge
        self.threshold = threshold
        self.weight = weight
        self.rethink_rounds = rethink_rounds
        self.samples = samples
        self.temperature = temperature if temperature is not None else (0.7 if samples > 1 else 0.0)
        self.max_tokens = max_tokens
        self.max_triples = max_triples
        self.exemplars = exemplars

    def _judge(self, ctx: Context) -> FaithfulnessJudge | None:
        if self.judge_name == "none":
            return None
        if self.judge_name == "llm":
            return LLMJudge()
        embedder = ctx.options.get("embedder") or getattr(ctx.search, "embedder", None)
        if embedder is None:
            from ponder.search import MiniLMEmbedder  # the packaged MiniLM; loads on first use

            embedder = MiniLMEmbedder()
        return EmbeddingJudge(embedder)

    async def _ask(
        self, model: MeteredModel, messages: list[Message], task: Task, output_type: type[BaseModel]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One chain (or ``samples`` chains and the vote) and the LLM-call record for the event."""
        t0 = time.perf_counter()
        before = model.costs.model_copy()
        outs = await structured_n(
            model, messages, output_type, n=self.samples, temperature=self.temperature, max_tokens=self.max_tokens
        )
        chains = [o.model_dump() for o in outs]
        chain = chains[0]
        if self.samples > 1:
            answer, votes = majority_vote(task.family, [c["answer"] for c in chains])
            chain = next(c for c in chains if c["answer"] == answer)
            chain = {**chain, "votes": votes}
        call = {
            "prompt_tokens": model.costs.prompt_tokens - before.prompt_tokens,
            "completion_tokens": model.costs.completion_tokens - before.completion_tokens,
            "seconds": time.perf_counter() - t0,
            "output": chains if self.samples > 1 else chain,
        }
        return chain, call

    async def _check(
        self, task: Task, chain: dict[str, Any], checker: FactChecker, judge: FaithfulnessJudge | None, model: Any
    ) -> Verdict:
        triples = [EvidenceTriple.model_validate(t) for t in chain["evidence"]]
        # a word problem states its own data: triples restating it are grounded in the question itself
        given = render_question(task) if task.family is TaskFamily.number else None
        checks: list[TripleCheck] = [await checker.check(t, given) for t in triples]
        judged = [c.score for c in checks if c.score is not None]
        factuality = sum(judged) / len(judged) if judged else None
        faithfulness = None
        if judge is not None:
            faithfulness = await judge.judge(
                task, triples, chain["explanation"], format_answer(task, chain["answer"]), model
            )
        score = combine(factuality, faithfulness, weight=self.weight)
        return Verdict(triples=checks, factuality=factuality, faithfulness=faithfulness, score=score)

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        model, start = ctx.metered()
        exemplars = self.exemplars if self.exemplars is not None else exemplars_for(task)
        output_type = cok_output_model(task, self.max_triples)
        checker = FactChecker(ctx.kb, ctx.search)
        judge = self._judge(ctx) if self.verify else None
        if (
            self.verify
            and ctx.kb is None
            and ctx.search is None
            and task.family not in (TaskFamily.number, TaskFamily.string)
        ):
            raise ConfigError(
                "CoK verification needs a knowledge base or a search index for non-arithmetic tasks",
                hint="build the knowledge base (`ponder kb build`) and index, or run `cok` without verification",
            )
        detail = f"{len(exemplars)} exemplars" + (f", {self.samples} samples" if self.samples > 1 else "")
        yield StepStarted(name="chain", detail=detail)
        chain, call = await self._ask(model, first_messages(task, exemplars), task, output_type)
        yield LLMCall(purpose="chain of knowledge", **call)
        rounds: list[dict[str, Any]] = []
        best_round = 0
        if not self.verify:
            yield EvidenceChecked(round=0, triples=[{**t, "supported": None} for t in chain["evidence"]])
            rounds.append({"chain": chain})
        else:
            for number in range(self.rethink_rounds + 1):
                yield StepStarted(name="verify", detail=f"round {number}")
                verdict = await self._check(task, chain, checker, judge, model)
                yield EvidenceChecked(
                    round=number,
                    triples=[c.model_dump() for c in verdict.triples],
                    factuality=verdict.factuality,
                    faithfulness=verdict.faithfulness,
                )
                rounds.append({"chain": chain, "verdict": verdict.model_dump()})
                if verdict.score >= rounds[best_round]["verdict"]["score"]:
                    best_round = number
                if verdict.score >= self.threshold or number == self.rethink_rounds:
                    break
                kept = [c.triple() for c in verdict.triples if c.supported or c.score is None]
                dropped = [c.triple() for c in verdict.triples if not c.supported and c.score is not None]
                corrections = list(
                    dict.fromkeys(c.correction for c in verdict.triples if not c.supported and c.correction)
                )
                yield StepStarted(
                    name="rethink",
                    detail=f"score {verdict.score:.2f} < {self.threshold}: {len(dropped)} unsupported triples, "
                    f"{len(corrections)} corrections",
                )
                messages = rethink_messages(task, exemplars, kept, corrections, dropped)
                chain, call = await self._ask(model, messages, task, output_type)
                yield LLMCall(purpose=f"rethink {number + 1}", **call)
        chosen = rounds[best_round]["chain"]
        answer = chosen["answer"]
        verdict_info = rounds[best_round].get("verdict") or {}
        result = StrategyResult(
            answer=answer,
            text=format_answer(task, answer),
            costs=model.costs,
            seconds=time.perf_counter() - start,
            details={
                "evidence": chosen["evidence"],
                "explanation": chosen["explanation"],
                "factuality": verdict_info.get("factuality"),
                "faithfulness": verdict_info.get("faithfulness"),
                "score": verdict_info.get("score"),
                "chosen_round": best_round,
                "rounds": rounds,
            },
        )
        yield FinalAnswer(answer=answer, text=result.text, result=result.model_dump(mode="json"))


class VerifiedChainOfKnowledge(ChainOfKnowledge):
    """Chain of Knowledge with F²-verification and rethinking switched on."""

    name: ClassVar[str] = "cok-f2"
    description: ClassVar[str] = "chain of knowledge + F²-verification (factuality, faithfulness) + rethinking"

    def __init__(self, *, verify: bool = True, **options: Any) -> None:
        super().__init__(verify=verify, **options)
