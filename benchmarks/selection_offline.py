"""How well each confidence measure and selection rule picks the right answer from candidates already sampled
(issue 32): no model calls, only the run records of ``pot-sc`` with chains of thought beside its programs.

For every item the records hold k sampled programs (their printed answers) and k sampled chains of thought, each
with its confidence (``ponder.llm.Confidence``, measured by the embedded backend while decoding). This script:

- measures how well each confidence measure separates right candidates from wrong ones (AUROC: the chance that a
  random right candidate scores above a random wrong one; 0.5 is no better than a coin), per mode and pooled;
- replays "agree first" (the first program and the first chain of thought agree: answer with those two samples;
  otherwise every candidate goes to a rule), the cross-mode policy of arXiv 2604.17433, with the first sample of each
  mode standing in for a greedy one, and the samples it spends per item;
- replays every rule of the selection layer (``ponder.agents._select.select``: majority, confidence-weighted at a
  few temperatures, the single most confident) on the same candidates, and reports the accuracy of each beside the
  oracle (any candidate right), so the share of the gap a rule closes is visible.

Items that chose a rule here are seen: state any figure that follows from this choice on other items.

    python benchmarks/selection_offline.py docs/results/selection/runs/gsm8k-potsc-k5-chains5-dev0-39
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, get_args

from ponder.agents import TaskFamily
from ponder.agents._select import Candidate, Measure, Rule, confidence_value, select, vote_key
from ponder.evals._report import mcnemar_exact
from ponder.llm import Confidence

TEMPERATURES = (0.05, 0.1, 0.3, 1.0)


def candidates_of(record: dict[str, Any]) -> list[Candidate]:
    details = record.get("details") or {}
    found = [
        Candidate(float(p["answer"]), "program", _confidence(p.get("confidence")), executed=True)
        for p in details.get("programs", [])
        if p.get("answer") is not None
    ]
    found += [
        Candidate(float(c["answer"]), "cot", _confidence(c.get("confidence")))
        for c in details.get("chains", [])
        if c.get("answer") is not None
    ]
    return found


def _confidence(raw: dict[str, Any] | None) -> Confidence | None:
    return Confidence.model_validate(raw) if raw else None


def auroc(right: list[float], wrong: list[float]) -> float | None:
    """Mann-Whitney: P(a right candidate's score > a wrong one's), ties counting one half."""
    if not right or not wrong:
        return None
    wins = sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
    return wins / (len(right) * len(wrong))


def analyse(folders: list[Path]) -> dict[str, Any]:
    items: list[tuple[Any, list[Candidate]]] = []
    for folder in folders:
        for line in (folder / "results.jsonl").read_text().splitlines():
            record = json.loads(line)
            found = candidates_of(record)
            if record.get("gold") is not None and found:
                items.append((vote_key(TaskFamily.number, float(record["gold"])), found))
    figures: dict[str, Any] = {"items": len(items), "auroc": {}, "rules": {}}

    def right(candidate: Candidate, gold: Any) -> bool:
        return bool(vote_key(TaskFamily.number, candidate.answer) == gold)

    for measure in get_args(Measure):
        for mode in ("program", "cot", "all"):
            scored = [
                (confidence_value(c.confidence, measure), right(c, gold))
                for gold, found in items
                for c in found
                if mode in ("all", c.mode)
            ]
            yes = [v for v, ok in scored if v is not None and ok]
            no = [v for v, ok in scored if v is not None and not ok]
            value = auroc(yes, no)
            figures["auroc"][f"{measure}/{mode}"] = round(value, 3) if value is not None else None
    figures["candidates"] = sum(len(found) for _, found in items)
    figures["oracle"] = _share(any(right(c, gold) for c in found) for gold, found in items)
    pools = {"programs": ("program",), "chains": ("cot",), "both": ("program", "cot")}
    for pool, modes in pools.items():
        chosen = [(gold, [c for c in found if c.mode in modes]) for gold, found in items]
        chosen = [(gold, found) for gold, found in chosen if found]
        figures["rules"][f"{pool}/majority"] = _accuracy(chosen, "majority", "mean_logprob", 1.0, len(items))
        for measure in get_args(Measure):
            figures["rules"][f"{pool}/best/{measure}"] = _accuracy(chosen, "best", measure, 1.0, len(items))
            for t in TEMPERATURES:
                key = f"{pool}/weighted/{measure}/T={t}"
                figures["rules"][key] = _accuracy(chosen, "weighted", measure, t, len(items))
        for rule, measure, t in (("majority", "mean_logprob", 1.0), ("weighted", "self_certainty", 0.1)):
            if pool != "both":
                continue
            hits, spent = 0, 0
            for gold, found in chosen:
                answer, used = agree_first(found, rule, measure, t)  # type: ignore[arg-type]
                hits += vote_key(TaskFamily.number, answer) == gold
                spent += used
            key = f"agree-first/{rule}" + ("" if rule == "majority" else f"/{measure}/T={t}")
            figures["rules"][key] = round(hits / len(items), 4) if items else 0.0
            figures.setdefault("samples_per_item", {})[key] = round(spent / len(items), 2) if items else 0.0
    figures["chosen"] = _chosen_pairs(items)
    return figures


def agree_first(found: list[Candidate], rule: Rule, measure: Measure, t: float) -> tuple[Any, int]:
    """The answer "agree first" gives and the samples it spends: the first program's when the first chain agrees
    with it (2 samples), else what ``rule`` picks among every candidate."""
    programs = [c for c in found if c.mode == "program"][:1]
    chains = [c for c in found if c.mode == "cot"][:1]
    if (
        programs
        and chains
        and vote_key(TaskFamily.number, programs[0].answer) == vote_key(TaskFamily.number, chains[0].answer)
    ):
        return programs[0].answer, 2
    return select(TaskFamily.number, found, rule=rule, measure=measure, temperature=t).answer, len(found)


def _chosen_pairs(items: list[tuple[Any, list[Candidate]]]) -> dict[str, Any]:
    """The two comparisons chosen on the dev items (docs/results/selection/README.md), item by item, with exact
    McNemar: CISC over the programs against their majority, and "agree first" against the majority of all."""

    def right(found: list[Candidate], gold: Any, rule: Rule, t: float = 0.3) -> bool:
        pick = select(TaskFamily.number, found, rule=rule, measure="mean_logprob", temperature=t)
        return bool(vote_key(TaskFamily.number, pick.answer) == gold)

    out: dict[str, Any] = {}
    a_b = []
    for gold, found in items:
        programs = [c for c in found if c.mode == "program"]
        if programs:
            a_b.append((right(programs, gold, "majority"), right(programs, gold, "weighted")))
    out["programs_weighted_vs_majority"] = _mcnemar(a_b)
    pairs, spent = [], 0
    for gold, found in items:
        answer, used = agree_first(found, "majority", "mean_logprob", 0.3)
        pairs.append((right(found, gold, "majority"), bool(vote_key(TaskFamily.number, answer) == gold)))
        spent += used
    out["agree_first_vs_majority_of_all"] = {
        **_mcnemar(pairs),
        "samples_per_item": round(spent / max(1, len(items)), 2),
    }
    return out


def _mcnemar(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    wins = sum(b and not a for a, b in pairs)
    losses = sum(a and not b for a, b in pairs)
    n = len(pairs)
    return {
        "n": n,
        "before": round(sum(a for a, _ in pairs) / n, 4) if n else None,
        "after": round(sum(b for _, b in pairs) / n, 4) if n else None,
        "wins": wins,
        "losses": losses,
        "p": float(f"{mcnemar_exact(losses, wins):.3g}"),
    }


def _accuracy(items: list[tuple[Any, list[Candidate]]], rule: Rule, measure: Measure, t: float, n: int) -> float:
    hits = sum(
        vote_key(TaskFamily.number, select(TaskFamily.number, found, rule=rule, measure=measure, temperature=t).answer)
        == gold
        for gold, found in items
    )
    return round(hits / n, 4) if n else 0.0


def _share(flags: Any) -> float:
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="eval run folders of pot-sc with chains > 0")
    args = parser.parse_args()
    figures = analyse(args.runs)
    print(f"{figures['items']} items, {figures['candidates']} candidates, oracle {figures['oracle']:.1%}")
    print("AUROC (right vs wrong candidates):")
    for key, value in figures["auroc"].items():
        print(f"  {key:<28} {value}")
    for name, figures_of in figures["chosen"].items():
        print(f"chosen on dev: {name}: {figures_of}")
    print("accuracy by rule:")
    for key, value in sorted(figures["rules"].items(), key=lambda kv: -kv[1]):
        print(f"  {key:<40} {value:.1%}")
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
