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

import dataclasses
import re
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from ponder.agents._base import (
    BaseStrategy,
    Context,
    Options,
    StrategyResult,
    Task,
    TaskFamily,
    format_answer,
    render_question,
)
from ponder.agents._events import Event, EvidenceChecked, FinalAnswer, LLMCall, StepStarted
from ponder.agents.cok._prompt import (
    EvidenceTriple,
    cok_output_model,
    exemplars_for,
    first_messages,
    rethink_messages,
)
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
from ponder.errors import ConfigError
from ponder.llm import Message, MeteredModel, structured_n, think_then_answer_n

JudgeName = Literal["llm", "embedding", "none"]


class CoKOptions(Options):
    verify: bool = Field(default=False, description="F²-verification of the evidence triples, then rethinking")
    judge: JudgeName = Field(default="llm", description="faithfulness judge: llm, embedding or none")
    threshold: float = Field(default=0.6, ge=0.0, le=1.0, description="verification score below which to rethink")
    weight: float = Field(default=0.5, ge=0.0, le=1.0, description="weight of factuality against faithfulness")
    rethink_rounds: int = Field(default=1, ge=0, le=8, description="rounds of rethinking unsupported evidence")
    samples: int = Field(default=1, ge=1, le=32, description="chains sampled (more than 1: majority vote)")
    temperature: float | None = Field(
        default=None, ge=0.0, le=2.0, description="sampling temperature (default 0, or 0.7 with several samples)"
    )
    max_tokens: int = Field(default=512, ge=1, le=16384, description="longest reply, in tokens")
    max_triples: int = Field(default=4, ge=1, le=32, description="evidence triples per chain")
    exemplars: list[dict[str, Any]] | None = Field(default=None, description="worked examples (default: packaged)")
    route: bool = Field(
        default=False,
        description="with verify: when the knowledge finds nothing on any of the chain's facts, answer as cot would "
        "(step by step, free text) instead of rethinking from nothing; the run's events say which happened",
    )
    form: Literal["json", "free"] = Field(
        default="json",
        description="json: facts, explanation and answer in one constrained JSON object; free: facts and "
        "explanation in plain text, then the triples and the answer constrained after it (as cot reasons)",
    )


class CoKF2Options(CoKOptions):
    verify: bool = Field(default=True, description="F²-verification of the evidence triples, then rethinking")


class ChainOfKnowledge(BaseStrategy[CoKOptions]):
    name: ClassVar[str] = "cok"
    description: ClassVar[str] = "chain of knowledge: evidence triples, explanation, typed answer"
    Options: ClassVar[type[CoKOptions]] = CoKOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        # greedy by default; sampled at 0.7 when several chains vote
        self.temperature: float = o.temperature if o.temperature is not None else (0.7 if o.samples > 1 else 0.0)

    def _judge(self, ctx: Context) -> FaithfulnessJudge | None:
        if self.options.judge == "none":
            return None
        if self.options.judge == "llm":
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
        o = self.options
        if o.form == "free":
            pairs = await think_then_answer_n(
                model,
                messages,
                cok_output_model(task, o.max_triples, explanation=False),
                n=o.samples,
                temperature=self.temperature,
                max_tokens=o.max_tokens,
                answer_max_tokens=64 + 48 * o.max_triples,
                skip_truncated=o.samples > 1,
            )
            chains = [{**typed.model_dump(), "explanation": _explanation(text)} for text, typed in pairs]
        else:
            outs = await structured_n(
                model, messages, output_type, n=o.samples, temperature=self.temperature, max_tokens=o.max_tokens
            )
            chains = [out.model_dump() for out in outs]
        chain = chains[0]
        if len(chains) > 1:
            answer, votes = majority_vote(task.family, [c["answer"] for c in chains])
            chain = next(c for c in chains if c["answer"] == answer)
            chain = {**chain, "votes": votes}
        call = {
            "prompt_tokens": model.costs.prompt_tokens - before.prompt_tokens,
            "completion_tokens": model.costs.completion_tokens - before.completion_tokens,
            "seconds": time.perf_counter() - t0,
            "output": chains if o.samples > 1 else chain,
        }
        return chain, call

    async def _as_cot(self, task: Task, ctx: Context, start: float) -> AsyncIterator[Event]:
        """The answer cot gives (its events, then its answer, marked as routed), for a question the knowledge
        base knows nothing about. ``ctx`` holds this run's metered model, so the costs are the whole run's."""
        from ponder.agents.cot import ChainOfThought

        async for event in ChainOfThought(max_tokens=self.options.max_tokens).run(task, ctx):
            if isinstance(event, FinalAnswer):
                result = StrategyResult.model_validate(event.result)
                result.details = {**result.details, "routed": "cot", "why": "no knowledge on the chain's facts"}
                result.seconds = time.perf_counter() - start
                yield FinalAnswer(answer=event.answer, text=event.text, result=result.model_dump(mode="json"))
            else:
                yield event

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
        score = combine(factuality, faithfulness, weight=self.options.weight)
        return Verdict(triples=checks, factuality=factuality, faithfulness=faithfulness, score=score)

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        model, start = ctx.metered()
        exemplars = self.options.exemplars if self.options.exemplars is not None else exemplars_for(task)
        output_type = cok_output_model(task, self.options.max_triples)
        checker = FactChecker(ctx.kb, ctx.search)
        judge = self._judge(ctx) if self.options.verify else None
        if (
            self.options.verify
            and ctx.kb is None
            and ctx.search is None
            and task.family not in (TaskFamily.number, TaskFamily.string)
        ):
            raise ConfigError(
                "CoK verification needs a knowledge base or a search index for non-arithmetic tasks",
                hint="build the knowledge base (`ponder kb build`) and index, or run `cok` without verification",
            )
        detail = f"{len(exemplars)} exemplars" + (
            f", {self.options.samples} samples" if self.options.samples > 1 else ""
        )
        yield StepStarted(name="chain", detail=detail)
        free = self.options.form == "free"
        chain, call = await self._ask(model, first_messages(task, exemplars, free=free), task, output_type)
        yield LLMCall(purpose="chain of knowledge", **call)
        rounds: list[dict[str, Any]] = []
        best_round = 0
        if not self.options.verify:
            yield EvidenceChecked(round=0, triples=[{**t, "supported": None} for t in chain["evidence"]])
            rounds.append({"chain": chain})
        else:
            for number in range(self.options.rethink_rounds + 1):
                yield StepStarted(name="verify", detail=f"round {number}")
                verdict = await self._check(task, chain, checker, judge, model)
                yield EvidenceChecked(
                    round=number,
                    triples=[c.model_dump() for c in verdict.triples],
                    factuality=verdict.factuality,
                    faithfulness=verdict.faithfulness,
                )
                rounds.append({"chain": chain, "verdict": verdict.model_dump()})
                if number == 0 and self.options.route and not _any_knowledge(verdict):
                    yield StepStarted(
                        name="route",
                        detail="the knowledge base holds nothing on these facts: answering step by step instead",
                    )
                    async for event in self._as_cot(task, dataclasses.replace(ctx, model=model), start):
                        yield event
                    return
                if verdict.score >= rounds[best_round]["verdict"]["score"]:
                    best_round = number
                if verdict.score >= self.options.threshold or number == self.options.rethink_rounds:
                    break
                kept = [c.triple() for c in verdict.triples if c.supported or c.score is None]
                dropped = [c.triple() for c in verdict.triples if not c.supported and c.score is not None]
                corrections = list(
                    dict.fromkeys(c.correction for c in verdict.triples if not c.supported and c.correction)
                )
                yield StepStarted(
                    name="rethink",
                    detail=f"score {verdict.score:.2f} < {self.options.threshold}: {len(dropped)} unsupported triples, "
                    f"{len(corrections)} corrections",
                )
                messages = rethink_messages(task, exemplars, kept, corrections, dropped, free=free)
                chain, call = await self._ask(model, messages, task, output_type)
                yield LLMCall(purpose=f"rethink {number + 1}", **call)
        chosen = rounds[best_round]["chain"]
        answer = chosen["answer"]
        verdict_info = rounds[best_round].get("verdict") or {}
        facts = "; ".join(f"{t['subject']} {t['relation']} {t['object']}" for t in chosen["evidence"])
        result = StrategyResult(
            answer=answer,
            text=format_answer(task, answer),
            reasoning=f"Evidence: {facts}\n{chosen['explanation']}" if facts else str(chosen["explanation"]),
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


def _any_knowledge(verdict: Verdict) -> bool:
    """Whether any source had something on any of the chain's facts (support, or related evidence)."""
    return any((c.score or 0.0) > 0.0 or c.evidence or c.correction for c in verdict.triples)


def _explanation(reasoning: str) -> str:
    """The free form's explanation: its reasoning without the fact lines (those are the evidence)."""
    lines = [line for line in reasoning.splitlines() if line.strip() and not _TRIPLE_LINE.match(line.strip())]
    return " ".join(" ".join(lines).split()) or reasoning.strip()


_TRIPLE_LINE = re.compile(r"^(?:[-*\d.]+\s*)?\([^()]*,[^()]*,[^()]*\)[.;]?$")


class VerifiedChainOfKnowledge(ChainOfKnowledge):
    """Chain of Knowledge with F²-verification and rethinking switched on."""

    name: ClassVar[str] = "cok-f2"
    description: ClassVar[str] = "chain of knowledge + F²-verification (factuality, faithfulness) + rethinking"
    Options: ClassVar[type[CoKOptions]] = CoKF2Options
