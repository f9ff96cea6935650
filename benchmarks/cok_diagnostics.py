"""What F²-verification and rethinking did on real chains: read finished `cok-f2` runs (and the `cok` and `cot`
runs of the same datasets beside them) and report, per dataset, how often a chain was judged unreliable and
rethought, how often rethinking changed the answer and in which direction (wrong → right, right → wrong), the mean
factuality and faithfulness of first-round chains, and exact McNemar tests of CoK + F² against CoT and against
plain CoK on the items both finished. Also (issue 39) the knowledge path: **coverage**, the share of items whose
first-round retrieval (the evidence and corrections the checks found for the chain's triples) holds a content word
of the gold answer (choice questions: the gold option's text, read from the run's dataset file; yes/no questions:
any evidence at all), and the mean factuality and faithfulness of first-round chains whose final answer was right
against those whose answer was wrong. Reads the records (and the dataset for the option texts) only: no model is
called. Last line: one JSON object.

    python benchmarks/cok_diagnostics.py runs/reasoning
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from ponder.agents import TaskFamily
from ponder.evals import load_dataset, load_run, score_answer
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
    found = (folder / "results.jsonl").is_file() or (folder / "results.jsonl.gz").is_file()
    return load_run(folder) if found else None


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


_STOP = {"the", "and", "for", "with", "that", "this", "from", "are", "was", "its", "into", "than", "them", "they"}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in _STOP}


def gold_texts(run: Run) -> dict[str, str]:
    """item id -> the gold option's text (choice datasets; empty when the dataset file is not here)."""
    if TaskFamily(run.meta.family) is not TaskFamily.choice:
        return {}
    try:
        path = Path(run.meta.dataset_path)  # the built-in dataset's own field mapping (choices included)
        data = load_dataset(run.meta.dataset, data_dir=path.parent)
    except Exception:  # noqa: BLE001 - the dataset file moved: coverage is left out, the rest still reported
        return {}
    texts = {}
    for item in data.items:
        by_label = {c.label: c.text for c in item.task.choices}
        texts[item.id] = by_label.get(str(item.gold), "")
    return texts


def knowledge_path(run: Run) -> dict[str, Any]:
    """Coverage of the gold answer by the first round's retrieval, and F²'s scores on right vs wrong answers."""
    family = TaskFamily(run.meta.family)
    golds = gold_texts(run)
    covered = counted = 0
    scores: dict[str, dict[bool, list[float]]] = {
        "factuality": {True: [], False: []},
        "faithfulness": {True: [], False: []},
    }
    for item_id, record in run.records.items():
        rounds = record.details.get("rounds") or []
        if record.status != "ok" or not rounds or "verdict" not in rounds[0]:
            continue
        verdict = rounds[0]["verdict"]
        found = " ".join(
            " ".join(t.get("evidence") or []) + " " + (t.get("correction") or "") for t in verdict["triples"]
        )
        if family is TaskFamily.choice and golds.get(item_id):
            counted += 1
            covered += bool(_words(golds[item_id]) & _words(found))
        elif family is not TaskFamily.choice:
            counted += 1
            covered += bool(found.strip())
        for name in scores:
            if verdict.get(name) is not None:
                scores[name][bool(record.correct)].append(float(verdict[name]))

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 3) if values else None

    return {
        "coverage": round(covered / counted, 3) if counted else None,
        "coverage_items": counted,
        **{f"{name}_right": mean(v[True]) for name, v in scores.items()},
        **{f"{name}_wrong": mean(v[False]) for name, v in scores.items()},
    }


def main(runs_dir: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for folder in sorted(runs_dir.glob("*-cok-f2")):
        dataset = folder.name.removesuffix("-cok-f2")
        run = load_run(folder)
        f2 = correctness(run)
        row = diagnose(run) | knowledge_path(run)
        row["vs_cot"] = paired(f2, correctness(load_if_run(runs_dir / f"{dataset}-cot")))
        row["vs_cok"] = paired(f2, correctness(load_if_run(runs_dir / f"{dataset}-cok")))
        figures[dataset] = row
        cot, cok = row["vs_cot"], row["vs_cok"]
        print(
            f"{dataset}: {row['chains']} chains, {row['rethought']} rethought, {row['answer_changed']} answers changed "
            f"({row['wrong_to_right']} wrong→right, {row['right_to_wrong']} right→wrong); first-round factuality "
            f"{row['mean_factuality']}, faithfulness {row['mean_faithfulness']}; CoK+F² vs CoT on {cot['n']}: "
            f"+{cot['a_only']}/-{cot['b_only']} p={cot['p']}; vs CoK on {cok['n']}: "
            f"+{cok['a_only']}/-{cok['b_only']} p={cok['p']}; coverage of the gold answer {row['coverage']} "
            f"(of {row['coverage_items']}); factuality right/wrong "
            f"{row['factuality_right']}/{row['factuality_wrong']}, "
            f"faithfulness right/wrong {row['faithfulness_right']}/{row['faithfulness_wrong']}"
        )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_dir", type=Path, help="the folder holding <dataset>-cok-f2, -cok and -cot runs")
    print(json.dumps(main(parser.parse_args().runs_dir)))
