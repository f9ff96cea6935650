"""Proof search under a tactic grammar built from the proof state, against free tactics (issue 38).

40 lemmas: every provable lemma of Coq's ``Bool/Bool.v``, then ``Lists/List.v`` in file order until 40 (the same
extraction as ``mcts_coq_lemmas.py``: the prelude is the file before the lemma, earlier proofs ``Admitted.``). Four
methods at budgets 8 and 16 on the same lemmas: ``greedy_N`` (a temperature-0 tactic chain, retried sampled after a
repeat), ``mcts_N`` (the search, k = 3), and both with ``domain_options.grammar`` on. Every answer is re-checked by
``coqc``. Each failed step of every tree is classed: unknown reference (a name that does not exist there), syntax,
no progress, other. Records are appended to ``docs/results/proof/runs/proof40.jsonl.gz`` (resumable; one gzip
member per record); ``--report`` writes ``docs/results/proof/summary.json`` and ``report.md`` from them alone.

    python benchmarks/proof_grammar.py --concurrency 2           # run (resumes)
    python benchmarks/proof_grammar.py --report
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execution import lemma_task, read_records, run_one
from mcts_coq_lemmas import load_lemmas

from ponder.evals._report import mcnemar_exact, wilson

FILES = ["Bool/Bool.v", "Lists/List.v"]
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "proof"
RECORDS = RESULTS / "runs" / "proof40.jsonl.gz"
BUDGETS = (8, 16)


def methods(seed: int) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for grammar in (False, True):
        prefix = "grammar_" if grammar else ""
        domain = {"domain_options": {"grammar": True}} if grammar else {}
        for n in BUDGETS:
            greedy = {"seed": seed, "budget": n, "k": 1, "temperature": 0.0, "max_depth": n, **domain}
            out.append((f"{prefix}greedy_{n}", "mcts-proof", greedy))
            out.append(
                (f"{prefix}mcts_{n}", "mcts-proof", {"seed": seed, "budget": n, "k": 3, "max_depth": 8, **domain})
            )
    return out


def failure_class(reason: str) -> str:
    if "was not found in the current environment" in reason or "not a defined object" in reason:
        return "unknown_reference"
    if "Syntax error" in reason or "Lexer" in reason or "forbidden in a tactic" in reason:
        return "syntax"
    if reason.startswith("no progress"):
        return "no_progress"
    return "other"


def failed_steps(record: dict[str, Any]) -> list[str]:
    tree = record["details"].get("tree") or {}
    return [
        failure_class(str(n.get("reason") or ""))
        for n in tree.get("nodes", [])
        if n.get("terminal") and n.get("answer") is None and n.get("reason")
    ]


async def measure(args: argparse.Namespace) -> None:
    from ponder.agents import Context
    from ponder.agents.mcts.scoring import SandboxCodeChecker
    from ponder.config import Settings
    from ponder.llm._factory import build_model
    from ponder.wiring import build_toolserver

    settings = Settings()
    settings.toolserver.instance = "proof-bench"
    model = build_model(settings.llm)
    lemmas = load_lemmas(40, FILES)
    items = [(lemma["id"], lemma_task(lemma), lemma) for lemma in lemmas]
    plan = methods(args.seed)
    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["id"], r["method"]) for r in read_records(RECORDS)}
    print(f"model: {model.name}; {len(items)} lemmas x {len(plan)} methods; {len(done)} records already", flush=True)
    async with build_toolserver(settings.toolserver) as ts:
        ctx = Context(model=model, toolserver=ts)
        gate = asyncio.Semaphore(args.concurrency)

        async def job(item: tuple[str, Any, Any], method: tuple[str, str, dict[str, Any]]) -> None:
            async with gate:
                record = await run_one("proof", item, method, ctx, SandboxCodeChecker(ts))
            record["dataset"] = "coq40"
            record["failed_steps"] = dict(Counter(failed_steps(record)))
            with gzip.open(RECORDS, "at", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            print(json.dumps({k: record[k] for k in ("id", "method", "correct", "samples", "seconds")}), flush=True)

        todo = [(item, m) for item in items for m in plan if (item[0], m[0]) not in done]
        start = time.time()
        await asyncio.gather(*(job(item, m) for item, m in todo))
        print(f"{len(todo)} runs in {time.time() - start:.0f} s", flush=True)
    report()


def report() -> dict[str, Any]:
    rows = read_records(RECORDS)
    labels = [label for label, _, _ in methods(0)]
    by_id: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_id.setdefault(r["id"], {})[r["method"]] = r
    items = {i: m for i, m in by_id.items() if all(label in m for label in labels)}
    n = len(items)
    lines = [
        "# Proof search under a tactic grammar (issue 38)",
        "",
        f"{n} lemmas of {', '.join(FILES)} answered by every method (embedded Qwen2.5-Coder-1.5B Q4_K_M); "
        "every proof re-checked by coqc. Failed steps are the failed leaves of the search trees.",
        "",
        "| method | proved (95 % CI) | vs | wins / losses | p | calls / lemma | s / lemma | failed steps | unknown "
        "reference | syntax | no progress | other |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary: dict[str, Any] = {"n": n}
    shares: dict[str, float | None] = {}
    for label in labels:
        recs = [m[label] for m in items.values()]
        k = sum(r["correct"] for r in recs)
        lo, hi = wilson(k, n) if n else (0.0, 0.0)
        base = label.removeprefix("grammar_").replace("mcts_", "greedy_")
        vs = ""
        if base != label and n:
            wins = sum(m[label]["correct"] and not m[base]["correct"] for m in items.values())
            losses = sum(m[base]["correct"] and not m[label]["correct"] for m in items.values())
            vs = f"{base} | {wins} / {losses} | {mcnemar_exact(wins, losses):.3f}"
        else:
            vs = "| | "
        classes = Counter()
        for r in recs:
            classes.update(r.get("failed_steps") or {})
        total = sum(classes.values())
        shares[label] = round((classes["unknown_reference"] + classes["syntax"]) / total, 4) if total else None
        calls = sum(r["samples"] for r in recs) / n if n else 0
        seconds = sum(r["seconds"] for r in recs) / n if n else 0
        acc = k / n if n else 0.0
        lines.append(
            f"| {label} | {acc:.1%} ({lo:.0%}–{hi:.0%}) | {vs} | {calls:.1f} | {seconds:.0f} | {total} | "
            f"{classes['unknown_reference']} | {classes['syntax']} | {classes['no_progress']} | {classes['other']} |"
        )
        summary[label] = round(acc, 4) if n else None
    if n:
        wins = sum(m["grammar_mcts_16"]["correct"] and not m["greedy_16"]["correct"] for m in items.values())
        losses = sum(m["greedy_16"]["correct"] and not m["grammar_mcts_16"]["correct"] for m in items.values())
        summary["p_grammar_mcts_16_vs_greedy_16"] = round(mcnemar_exact(wins, losses), 4)
    free = [label for label in labels if not label.startswith("grammar_")]
    constrained = [label for label in labels if label.startswith("grammar_")]

    def share(group: list[str], kind: str) -> float | None:
        counts: Counter[str] = Counter()
        for label in group:
            for m in items.values():
                counts.update(m[label].get("failed_steps") or {})
        total = sum(counts.values())
        return round(counts[kind] / total, 4) if total else None

    summary["unknown_reference_share_before"] = share(free, "unknown_reference")
    summary["unknown_reference_share_after"] = share(constrained, "unknown_reference")
    summary["syntax_share_before"] = share(free, "syntax")
    summary["syntax_share_after"] = share(constrained, "syntax")
    if not n:
        print("no lemma answered by every method yet")
        return summary
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", "-c", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", action="store_true", help="only write the report from the records")
    args = parser.parse_args()
    if not args.report:
        asyncio.run(measure(args))
    print(json.dumps(report()))


if __name__ == "__main__":
    main()
