"""What the GSM8K sweep's votes could still give (issue 17): exploratory, computed after the fact from the committed
records of ``execution.py --domain math``, no new model call.

``pot_sc_5`` missed its target (CoT + 15 points) while its five programs held the right number on far more items
than its vote picked. This reads the votes the records kept (SC's five chains, pot-sc's five executed programs)
and scores, on the same items and against the same CoT:

* the ceiling a perfect selector would reach (any of the five right);
* one vote over the ten answers of ``sc_5`` and ``pot_sc_5`` together (10 calls; ties go to the programs);
* pot-sc's five programs plus CoT's answer as a sixth vote (6 calls).

These combinations were chosen after seeing the records, so their p-values are descriptive, not a test: a strategy
built on one of them has to be measured on fresh items. The gold answers are read from ``../shared/benchmarks``
(the records hold only whether each method's own answer was right)::

    python benchmarks/execution_votes.py
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from execution import RESULTS, SHARED, paired, read_records, same_number  # type: ignore[import-not-found]

from ponder.evals import load_dataset
from ponder.evals._report import mcnemar_exact, wilson


def votes(details: dict[str, Any]) -> Counter[float]:
    out: Counter[float] = Counter()
    for key, count in (details.get("votes") or {}).items():
        try:
            out[round(float(key), 6)] += int(count)
        except ValueError:  # a vote key that is not a number counts for nothing
            continue
    return out


def winner(counts: Counter[float]) -> float | None:
    return counts.most_common(1)[0][0] if counts else None  # ties: the first counted (Counter keeps insertion order)


def main(results: Path, data_dir: Path) -> dict[str, Any]:
    records = read_records(results / "runs" / "math.jsonl.gz")
    items = paired(records, ["cot", "sc_5", "pot_sc_5"])
    gold = {item.id: float(item.gold) for item in load_dataset("gsm8k", data_dir=data_dir).items if item.id in items}
    cot = {i: bool(m["cot"]["correct"]) for i, m in items.items()}
    variants: dict[str, dict[str, bool]] = {"cot": cot, "sc_5": {}, "pot_sc_5": {}}
    ceiling: dict[str, dict[str, bool]] = {"any of sc_5 right": {}, "any of pot_sc_5 right": {}}
    mixed: dict[str, dict[str, bool]] = {"sc_5 + pot_sc_5 vote (10 calls)": {}, "pot_sc_5 + cot vote (6 calls)": {}}
    for i, m in items.items():
        programs, chains = votes(m["pot_sc_5"]["details"]), votes(m["sc_5"]["details"])
        variants["sc_5"][i] = bool(m["sc_5"]["correct"])
        variants["pot_sc_5"][i] = bool(m["pot_sc_5"]["correct"])
        ceiling["any of sc_5 right"][i] = any(same_number(a, gold[i]) for a in chains)
        ceiling["any of pot_sc_5 right"][i] = any(same_number(a, gold[i]) for a in programs)
        mixed["sc_5 + pot_sc_5 vote (10 calls)"][i] = same_number(winner(programs + chains), gold[i])
        with_cot = programs.copy()
        if isinstance(m["cot"]["answer"], int | float):
            with_cot[round(float(m["cot"]["answer"]), 6)] += 1
        mixed["pot_sc_5 + cot vote (6 calls)"][i] = same_number(winner(with_cot), gold[i])
    n = len(items)
    out: dict[str, Any] = {"n": n}
    print(f"GSM8K, {n} items every method answered (exploratory: combinations chosen after seeing the records)")
    print(f"{'answer':<34} {'accuracy (95% CI)':<22} {'vs cot':>8} {'p':>8}")
    for name, scored in {**variants, **ceiling, **mixed}.items():
        k = sum(scored.values())
        lo, hi = wilson(k, n)
        wins = sum(scored[i] and not cot[i] for i in items)
        losses = sum(cot[i] and not scored[i] for i in items)
        p = mcnemar_exact(wins, losses)
        print(f"{name:<34} {k / n:6.1%} ({lo:.0%}–{hi:.0%})      {wins:>3}/{losses:<3} {p:8.4f}")
        out[name] = {"accuracy": round(k / n, 4), "wins": wins, "losses": losses, "p_vs_cot": round(p, 4)}
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    cli = parser.parse_args()
    print(json.dumps(main(cli.results, cli.data_dir)))
