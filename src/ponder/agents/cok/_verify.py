"""F²-verification of a chain of knowledge.

* **Factuality**: each triple is checked by computing it when it is a calculation or a letter operation, else by
  the knowledge base's ``support(s, r, o)`` and by the local search index (how much of the triple's content is
  covered by the best passage). A triple's score is the best of its sources; factuality is the mean over triples.
* **Faithfulness**: does the explanation agree with the question, the evidence and the answer? Judged by the model
  under a constrained yes/no schema (:class:`LLMJudge`) or by embedding similarity (:class:`EmbeddingJudge`).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import re
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from ponder.agents._base import Task, render_question
from ponder.agents.cok._compute import check_computable
from ponder.agents.cok._prompt import EvidenceTriple
from ponder.errors import InputError, SearchError
from ponder.llm import ChatModel, structured, system, user

_STOP = frozenset(
    re.findall(
        r"\w+",
        "a an the of to in on at for by with from is are was were be been it its this that and or not no as into "
        "than then so do does did has have had can could would should will",
    )
)


class TripleCheck(BaseModel):
    """One triple and how well the knowledge backs it."""

    subject: str
    relation: str
    object: str
    score: float | None = Field(description="support in [0, 1]; None when no source could judge the triple")
    supported: bool
    source: str = "none"  # "computed" | "question" | "kb" | "search" | "none"
    evidence: list[str] = Field(default_factory=list)
    correction: str | None = Field(default=None, description="the best retrieved knowledge to use instead")

    def triple(self) -> EvidenceTriple:
        return EvidenceTriple(subject=self.subject, relation=self.relation, object=self.object)


class Verdict(BaseModel):
    triples: list[TripleCheck]
    factuality: float | None
    faithfulness: float | None
    score: float


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 1}


def _numbers(text: str) -> set[str]:
    """Numbers as words (``1,200`` -> ``1200``) so a restated quantity matches the problem text."""
    return {n.replace(",", "") for n in re.findall(r"\d[\d,]*", text)}


class FactChecker:
    """Scores triples against whatever knowledge is configured (``kb``: a ``ponder.search.KnowledgeBase``,
    ``search``: a ``ponder.search.SearchEngine``); computable triples need neither."""

    def __init__(self, kb: Any = None, search: Any = None, *, search_k: int = 3) -> None:
        self.kb = kb
        self.search = search
        self.search_k = search_k

    async def check(self, triple: EvidenceTriple, given: str | None = None) -> TripleCheck:
        """``given``: text whose statements count as facts (a word problem's own data): a triple whose subject
        and object words all occur in it is supported by the context, not by knowledge."""
        s, r, o = triple.subject, triple.relation, triple.object
        computed = check_computable(s, r, o)
        if computed is not None:
            return TripleCheck(
                subject=s,
                relation=r,
                object=o,
                score=1.0 if computed.correct else 0.0,
                supported=computed.correct,
                source="computed",
                evidence=[computed.statement],
                correction=None if computed.correct else computed.statement,
            )
        if given is not None and computed is None:
            words = _words(f"{s} {o}")
            if words and words <= _words(given) | _numbers(given):
                return TripleCheck(
                    subject=s, relation=r, object=o, score=1.0, supported=True, source="question", evidence=[given]
                )
        best: float | None = None
        source = "none"
        evidence: list[tuple[float, str]] = []
        notes: list[str] = []
        if self.kb is not None:
            try:
                support = await self.kb.support(s, r, o)
            except (InputError, SearchError) as exc:  # e.g. a phrase too long to look up: this triple stays unjudged
                notes.append(f"knowledge base: {exc.message}")
            else:
                best, source = support.score, "kb"
                evidence += [(item.score, item.text) for item in support.evidence]
        if self.search is not None:
            try:
                hits = await self.search.search(f"{s} {o}", k=self.search_k)
            except (InputError, SearchError) as exc:
                notes.append(f"search: {exc.message}")
                hits = []
            wanted = _words(f"{s} {o}")
            for hit in hits:
                text = f"{hit.title}: {hit.snippet}" if hit.title else hit.snippet
                coverage = len(wanted & _words(text)) / len(wanted) if wanted else 0.0
                evidence.append((coverage, text))
                if best is None or coverage > best:
                    best, source = coverage, "search"
        evidence.sort(key=lambda e: -e[0])
        texts = [t for _, t in evidence]
        supported = best is not None and best >= 0.5
        return TripleCheck(
            subject=s,
            relation=r,
            object=o,
            score=best,
            supported=supported,
            source=source,
            evidence=texts[:3] + notes,
            correction=None if supported or not texts else texts[0],
        )


@runtime_checkable
class FaithfulnessJudge(Protocol):
    async def judge(
        self, task: Task, evidence: Sequence[EvidenceTriple], explanation: str, answer_text: str, model: ChatModel
    ) -> float:
        """Agreement of the explanation with question + evidence + answer, in [0, 1]."""
        ...


class _Consistency(BaseModel):
    consistent: bool = Field(
        description="true if the explanation follows from the evidence and leads to the answer, false otherwise"
    )


JUDGE_SYSTEM = (
    "You check reasoning. Given a question, evidence facts, an explanation and an answer, decide whether the "
    "explanation is consistent with the evidence and actually leads to the answer. Reply with a JSON object only."
)


def chain_text(task: Task, evidence: Sequence[EvidenceTriple], explanation: str, answer_text: str) -> str:
    facts = "\n".join(f"- {t.render()}" for t in evidence)
    return f"{render_question(task)}\n\nEvidence:\n{facts}\n\nExplanation: {explanation}\n\nAnswer: {answer_text}"


class LLMJudge:
    """The model itself judges consistency under a constrained ``{"consistent": bool}`` schema (one short call)."""

    name = "llm"

    def __init__(self, *, max_tokens: int = 24) -> None:
        self.max_tokens = max_tokens

    async def judge(
        self, task: Task, evidence: Sequence[EvidenceTriple], explanation: str, answer_text: str, model: ChatModel
    ) -> float:
        out = await structured(
            model,
            [system(JUDGE_SYSTEM), user(chain_text(task, evidence, explanation, answer_text))],
            _Consistency,
            temperature=0.0,
            max_tokens=self.max_tokens,
        )
        return 1.0 if out.consistent else 0.0


@runtime_checkable
class Embedder(Protocol):
    """Sentence embeddings; ``embed`` may be async or blocking (a blocking one runs in a worker thread)."""

    def embed(self, texts: Sequence[str]) -> Any: ...


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class EmbeddingJudge:
    """Cosine similarity between the explanation and question + evidence + answer (clipped to [0, 1])."""

    name = "embedding"

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    async def judge(
        self, task: Task, evidence: Sequence[EvidenceTriple], explanation: str, answer_text: str, model: ChatModel
    ) -> float:
        facts = "; ".join(t.render() for t in evidence)
        context = f"{task.question} {facts} Answer: {answer_text}"
        texts = [explanation, context]
        if inspect.iscoroutinefunction(self.embedder.embed):
            vectors = await self.embedder.embed(texts)
        else:
            vectors = await asyncio.to_thread(self.embedder.embed, texts)
        a, b = (list(map(float, v)) for v in vectors)
        return max(0.0, min(1.0, cosine(a, b)))


def combine(factuality: float | None, faithfulness: float | None, *, weight: float = 0.5) -> float:
    """Weighted mean of the available scores (``weight`` on factuality); 1.0 when nothing could be judged."""
    if factuality is None and faithfulness is None:
        return 1.0
    if factuality is None:
        return float(faithfulness)  # type: ignore[arg-type]
    if faithfulness is None:
        return factuality
    return weight * factuality + (1 - weight) * faithfulness
