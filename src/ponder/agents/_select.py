"""The selection layer (issue 32): from candidate answers — each with the mode that produced it, the model's
confidence and what running it gave — to one answer, with the reasons a person can check.

Sampling strategies find the right answer more often than a plain vote returns it; what separates them is how the
candidates are weighed. One function serves every strategy that chooses among samples (``sc``, ``pot-sc``, CoK with
several chains), so a rule measured once applies everywhere:

- ``majority``: one vote per candidate (ties go to the candidate sampled first);
- ``weighted``: each candidate's vote weighted by its confidence, softmax-normalised over the candidates
  (confidence-informed self-consistency, CISC, arXiv 2502.06233), with ``temperature`` setting how far the weights
  spread;
- ``best``: the single most confident candidate.

A candidate without a confidence (a backend that measures none) weighs as the candidates' mean, so ``weighted`` falls
back to ``majority`` when nothing is measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from ponder.agents._base import TaskFamily
from ponder.errors import InputError
from ponder.llm import Confidence

Rule = Literal["majority", "weighted", "best"]
Measure = Literal["mean_logprob", "lowest_window", "self_certainty"]


def vote_key(family: TaskFamily, answer: Any) -> Any:
    """The value answers are grouped by: numbers compare after rounding, strings without case or outer space."""
    if family is TaskFamily.number and isinstance(answer, int | float) and not isinstance(answer, bool):
        return round(float(answer), 6)
    if isinstance(answer, str):
        return " ".join(answer.split()).casefold()
    return answer


@dataclass
class Candidate:
    """One candidate answer: from which ``mode`` (e.g. "cot", "program") and sample, how sure the model was of it,
    and whether execution backed it (a program that ran and printed it)."""

    answer: Any
    mode: str = "cot"
    confidence: Confidence | None = None
    executed: bool = False


class Selection(BaseModel):
    """The chosen answer and why: the rule, the weight behind each answer, how many candidates gave it and from
    which modes, and the share of the weight behind the winner (1.0: every candidate agreed)."""

    answer: Any
    rule: Rule
    measure: Measure | None = None
    weights: dict[str, float] = Field(
        description="the weight behind each answer: votes under majority, summed softmax weights under weighted, "
        "the highest confidence under best"
    )
    counts: dict[str, int] = Field(description="candidates per answer")
    modes: dict[str, list[str]] = Field(description="the modes each answer came from")
    agreement: float = Field(
        description="the share of the weight behind the chosen answer (of the candidates, under best)"
    )
    candidates: int

    def votes(self) -> dict[str, int]:
        """Candidates per answer, the heaviest answer first."""
        return {key: self.counts[key] for key in self.weights}


class VoteOptions(BaseModel):
    """How a sampling strategy chooses among its samples (the fields its ``Options`` take on). The defaults follow
    docs/results/selection: on GSM8K (embedded model, 5 programs + 5 chains per item) a vote weighted by mean token
    log-probability at T = 0.3 was never below the plain majority, for programs, chains or both, on the 40 items it was
    chosen on nor on 40 fresh ones (programs 71.3 -> 76.3 %, chains 66.3 -> 70.0 %, both 77.5 -> 78.8 %, 80 items;
    not significant alone); without measured confidences it is the majority vote."""

    vote: Rule = Field(
        default="weighted",
        description="majority: one vote per sample; weighted: each vote weighted by the model's confidence in the "
        "sample (CISC); best: the single most confident sample",
    )
    vote_measure: Measure = Field(
        default="mean_logprob", description="the confidence weighted and best use (it separated best on programs)"
    )
    vote_temperature: float = Field(default=0.3, gt=0, le=100, description="how far weighted votes spread")


def candidate_of(row: dict[str, Any], mode: str, *, executed: bool = False) -> Candidate:
    """A candidate from a recorded sample (``{"answer", "confidence"}``, as sample_chains and programs record)."""
    raw = row.get("confidence")
    return Candidate(row["answer"], mode, Confidence.model_validate(raw) if raw else None, executed)


def choose(family: TaskFamily, candidates: Sequence[Candidate], options: VoteOptions) -> Selection:
    """:func:`select` with a strategy's vote options."""
    return select(
        family,
        candidates,
        rule=options.vote,
        measure=options.vote_measure,
        temperature=options.vote_temperature,
    )


def confidence_value(confidence: Confidence | None, measure: Measure) -> float | None:
    if confidence is None:
        return None
    value = getattr(confidence, measure)
    return float(value) if value is not None else None


def select(
    family: TaskFamily,
    candidates: Sequence[Candidate],
    *,
    rule: Rule = "majority",
    measure: Measure = "mean_logprob",
    temperature: float = 0.3,
) -> Selection:
    """The answer ``rule`` picks among ``candidates`` (see the module's doc), with its reasons."""
    if not candidates:
        raise InputError("selection needs at least one candidate answer")
    keys = [vote_key(family, c.answer) for c in candidates]
    weights = _weights(candidates, rule, measure, temperature)
    by_answer: dict[Any, float] = {}
    for key, weight in zip(keys, weights, strict=True):
        if rule == "best":  # a confidence is not a share (log-probabilities are negative): each answer's highest
            by_answer[key] = max(by_answer.get(key, weight), weight)
        else:
            by_answer[key] = by_answer.get(key, 0.0) + weight
    if rule == "best":
        chosen = max(range(len(candidates)), key=lambda i: (weights[i], -i))
    else:
        top = max(by_answer.values())
        chosen = next(i for i, k in enumerate(keys) if math.isclose(by_answer[k], top, rel_tol=1e-12))
    counts: dict[str, int] = {}
    modes: dict[str, list[str]] = {}
    for key, candidate in zip(keys, candidates, strict=True):
        counts[str(key)] = counts.get(str(key), 0) + 1
        seen = modes.setdefault(str(key), [])
        if candidate.mode not in seen:
            seen.append(candidate.mode)
    if rule == "best":
        agreement = counts[str(keys[chosen])] / len(candidates)
    else:
        agreement = by_answer[keys[chosen]] / (sum(by_answer.values()) or 1.0)
    ranked = sorted(by_answer.items(), key=lambda kv: -kv[1])
    return Selection(
        answer=candidates[chosen].answer,
        rule=rule,
        measure=None if rule == "majority" else measure,
        weights={str(k): round(v, 4) for k, v in ranked},
        counts=counts,
        modes=modes,
        agreement=round(agreement, 4),
        candidates=len(candidates),
    )


def _weights(candidates: Sequence[Candidate], rule: Rule, measure: Measure, temperature: float) -> list[float]:
    if rule == "majority":
        return [1.0] * len(candidates)
    values = [confidence_value(c.confidence, measure) for c in candidates]
    known = [v for v in values if v is not None]
    if not known:
        return [1.0] * len(candidates)  # nothing measured: every candidate counts the same
    mean = sum(known) / len(known)
    filled = [mean if v is None else v for v in values]
    if rule == "best":
        return filled
    top = max(filled)  # softmax, shifted for stability
    exps = [math.exp((v - top) / temperature) for v in filled]
    total = sum(exps)
    return [e / total for e in exps]
