"""What F²-verification and rethinking did on real chains: read finished `cok-f2` runs (and the `cok` and `cot`
runs of the same datasets beside them) and report, per dataset, how often a chain was judged unreliable and
rethought, how often rethinking changed the answer and in which direction (wrong → right, right → wrong), the mean
factuality and faithfulness of first-round chains, and exact McNemar tests of CoK + F² against CoT and against
plain CoK on the items both finished. Reads the records only: no model is called. Last line: one JSON object.

    python benchmarks/cok_diagnostics.py runs/reasoning
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ponder.agents import TaskFamily
from ponder.evals import load_run, score_answer
from ponder.evals._report import Run, mcnemar_exact


def paired(a: dict[str, bool], b: dict[str, bool]) -> dict[str, Any]:
    """McNemar on the items both runs finished: ``a_only`` right only in ``a``, ``b_only`` right only in ``b``."""
    common = sorted(set(a) & set(b))
    a_only = sum(a[i] and not b[i] for i in common)
    b_only = sum(b[i] and not a[i] for i in common)
    return {"n": len(common), "a_only": a_only, "b_only": b_only, "p": round(mcnemar_exact(a_only, b_only), 4)}


def correctness(run: Run | None) -> dict[str, bool]:
    return {i: r.correct for i, r in run.records.items()} if run else {}  # a failed item counts as wrong


def load_if_run(folder: Path) -> Run | None:
    return load_run(folder) if (folder / "results.jsonl").is_file() else None


def diagnose(run: Run) -> dict[str, Any]:
    family = TaskFamily(run.meta.family)
    chains = rethought = changed = fixed = broken = 0
    factuality: list[float] = []
    faithfulness: list[float] = []
    for record in run.records.values():
        rounds = record.details.get("rounds") or []
        if record.status != "ok" or not rounds:
            continue
        chains += 1
        first = rounds[0].get("verdict") or {}
        if first.get("factuality") is not None:
            factuality.append(float(first["factuality"]))
        if first.get("faithfulness") is not None:
            faithfulness.append(float(first["faithfulness"]))
        if len(rounds) < 2:
            continue
        rethought += 1
        before = score_answer(family, rounds[0]["chain"]["answer"], record.gold).correct
        after = bool(record.correct)
        if rounds[0]["chain"]["answer"] != record.answer:
            changed += 1
            fixed += after and not before
            broken += before and not after
    return {
        "chains": chains,
        "rethought": rethought,
        "answer_changed": changed,
        "wrong_to_right": fixed,
        "right_to_wrong": broken,
        "mean_factuality": round(sum(factuality) / len(factuality), 3) if factuality else None,
        "mean_faithfulness": round(sum(faithfulness) / len(faithfulness), 3) if faithfulness else None,
    }


def main(runs_dir: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for folder in sorted(runs_dir.glob("*-cok-f2")):
        dataset = folder.name.removesuffix("-cok-f2")
        run = load_run(folder)
        f2 = correctness(run)
        row = diagnose(run)
        row["vs_cot"] = paired(f2, correctness(load_if_run(runs_dir / f"{dataset}-cot")))
        row["vs_cok"] = paired(f2, correctness(load_if_run(runs_dir / f"{dataset}-cok")))
        figures[dataset] = row
        cot, cok = row["vs_cot"], row["vs_cok"]
        print(
            f"{dataset}: {row['chains']} chains, {row['rethought']} rethought, {row['answer_changed']} answers changed "
            f"({row['wrong_to_right']} wrong→right, {row['right_to_wrong']} right→wrong); first-round factuality "
            f"{row['mean_factuality']}, faithfulness {row['mean_faithfulness']}; CoK+F² vs CoT on {cot['n']}: "
            f"+{cot['a_only']}/-{cot['b_only']} p={cot['p']}; vs CoK on {cok['n']}: "
            f"+{cok['a_only']}/-{cok['b_only']} p={cok['p']}"
        )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_dir", type=Path, help="the folder holding <dataset>-cok-f2, -cok and -cot runs")
    print(json.dumps(main(parser.parse_args().runs_dir)))
