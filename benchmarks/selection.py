"""The selection layer measured on items that chose nothing (issue 32): what a strategy returns against one greedy
call, and against what its candidates held (oracle@k: any candidate right), so the share of the gap closed shows.

* math (GSM8K items 120-319): the records of ``ponder eval run -d gsm8k -s math --offset 120 --limit 200`` (the
  ``math`` strategy: greedy chain of thought + greedy program, more of both when they disagree, a weighted vote).
  Its greedy chain is the request ``cot`` sends (same messages, temperature 0, same token limit), recorded in the
  run's details, so ``cot`` here is that chain's answer on the same item, not a second run.
* code (HumanEval+ and MBPP+ items 40-119): ``run-code`` runs ``mcts-code`` as best-of-7 whose first program is
  greedy's (one temperature-0 request beside one n=6 sampled request), the programs checked on the prompt's visible
  examples, then chosen by behaviour on 6 model-written inputs (one more request: 8 in all). After the strategy
  has answered, every distinct program of its tree is scored on the hidden tests, so one run gives: ``greedy`` (the
  temperature-0 program), ``tests`` (the old rule: the first program that passed the visible examples), ``selected``
  (the behaviour choice the strategy returned) and ``oracle`` (any of the 7 right). Records are appended to
  ``docs/results/selection/runs/code-<dataset>.jsonl``; rerunning resumes.

    python benchmarks/selection.py run-code --dataset mbpp_plus humaneval_plus --offset 40 --limit 80 -c 3
    python benchmarks/selection.py report     # summary.json and report.md from the committed records alone

Exact McNemar against the baseline and Wilson 95 % intervals; the last line printed is the summary as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from ponder.evals._report import mcnemar_exact, wilson

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "docs" / "results" / "selection"
SHARED = HERE.parent / ".." / "shared" / "benchmarks"
MATH_RUN = RESULTS / "runs" / "gsm8k-math-fresh120-319"
CODE_OPTIONS: dict[str, Any] = {
    "budget": 7,
    "k": 7,
    "max_depth": 1,
    "greedy_first": True,
    "choose_by": "behaviour",
    "inputs": 6,
    "seed": 0,
    "domain_options": {"model_tests": 0},  # as benchmarks/execution.py: model-written expected outputs mislead
}


# --- code: run -------------------------------------------------------------------------------------------------


def code_rows(dataset: str, offset: int, limit: int, data_dir: Path) -> list[dict[str, Any]]:
    with gzip.open(data_dir / f"{dataset}.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return rows[offset : offset + limit]


def programs_of(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """The tree's evaluated programs (root excluded), in id order: the first is greedy's under greedy_first."""
    return sorted((n for n in tree["nodes"] if n["parent"] is not None and n["answer"]), key=lambda n: n["id"])


def tests_rule(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the search chose before the behaviour layer: the verified program with the highest (reward, visits)
    and lowest id (``Tree.choose``'s verified rule), else the best reward."""
    verified = [n for n in nodes if n["verified"]] or nodes
    return max(verified, key=lambda n: (n["reward"], n["visits"], -n["id"])) if verified else None


async def run_code(args: argparse.Namespace) -> None:
    from ponder.agents import Context, get_strategy, run_to_result
    from ponder.agents.mcts.scoring import SandboxCodeChecker, code_item
    from ponder.config import Settings
    from ponder.llm._factory import build_model
    from ponder.wiring import build_toolserver

    settings = Settings()
    settings.toolserver.instance = "selection-bench"
    model = build_model(settings.llm)  # one model process for every dataset: two would halve each other's speed
    todo: list[tuple[str, dict[str, Any]]] = []
    for dataset in args.dataset:
        done = {r["id"] for r in read_jsonl(RESULTS / "runs" / f"code-{dataset}.jsonl")}
        rows = code_rows(dataset, args.offset, args.limit, args.data_dir)
        todo += [(dataset, r) for r in rows if r["task_id"] not in done]
        print(f"{dataset}: {sum(r['task_id'] not in done for r in rows)} items to run, {len(done)} already", flush=True)
    print(f"model: {model.name}", flush=True)
    (RESULTS / "runs").mkdir(parents=True, exist_ok=True)
    async with build_toolserver(settings.toolserver) as ts:
        ctx = Context(model=model, toolserver=ts)
        checker = SandboxCodeChecker(ts)
        gate = asyncio.Semaphore(args.concurrency)

        async def one(dataset: str, row: dict[str, Any]) -> None:
            task, hidden = code_item(row, dataset)
            async with gate:
                start = time.perf_counter()
                try:
                    result = await run_to_result(get_strategy("mcts-code", **CODE_OPTIONS).run(task, ctx))
                    error = None
                except Exception as exc:  # noqa: BLE001 - one failing item is recorded, the run goes on
                    result, error = None, f"{type(exc).__name__}: {exc}"[:600]
                seconds = time.perf_counter() - start
                record: dict[str, Any] = {"id": row["task_id"], "dataset": dataset, "error": error}
                if result is not None:
                    nodes = programs_of(result.details["tree"])
                    distinct = list(dict.fromkeys(str(n["answer"]) for n in nodes))
                    verdicts = await asyncio.gather(
                        *(checker.check(p, hidden["tests"], {"entry_point": hidden["entry_point"]}) for p in distinct)
                    )
                    right = dict(zip(distinct, verdicts, strict=True))
                    by_rule = tests_rule(nodes)
                    record |= {
                        "greedy": bool(nodes) and right[str(nodes[0]["answer"])],
                        "tests": by_rule is not None and right[str(by_rule["answer"])],
                        "selected": result.answer is not None and right.get(str(result.answer), False),
                        "oracle": any(verdicts),
                        "candidates": len(nodes),
                        "distinct": len(distinct),
                        "passing_visible": sum(bool(n["verified"]) for n in nodes),
                        "right": [right[str(n["answer"])] for n in nodes],
                        "behaviour": result.details.get("behaviour"),
                        "samples": result.details["samples"],
                        "requests": result.costs.llm_calls,
                        "tokens": result.costs.tokens,
                        "seconds": round(seconds, 2),
                    }
                    if str(result.answer) not in right:  # the chosen program is always one of the tree's
                        record["selected"] = await checker.check(
                            str(result.answer), hidden["tests"], {"entry_point": hidden["entry_point"]}
                        )
                record["load_1m"] = round(os.getloadavg()[0], 2)
            with (RESULTS / "runs" / f"code-{dataset}.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            keys = ("id", "greedy", "tests", "selected", "oracle", "requests", "seconds", "error")
            print(json.dumps({k: record.get(k) for k in keys}), flush=True)

        await asyncio.gather(*(one(dataset, r) for dataset, r in todo))


# --- report ----------------------------------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def same(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)
    except (TypeError, ValueError):
        return False


def compare(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """Baseline vs method on the same items: wins, losses, exact McNemar p."""
    wins = sum(1 for base, new in pairs if new and not base)
    losses = sum(1 for base, new in pairs if base and not new)
    return {"wins": wins, "losses": losses, "p": float(f"{mcnemar_exact(losses, wins):.3g}")}


def rate(flags: list[bool]) -> dict[str, Any]:
    k, n = sum(flags), len(flags)
    low, high = wilson(k, n)
    return {"accuracy": round(k / n, 4) if n else 0.0, "ci95": [round(low, 3), round(high, 3)]}


def per_item(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Samples, oracle@k, requests, tokens and seconds per item: the same keys for every domain."""
    n = len(rows)
    return {
        "samples_per_item": round(sum(r["samples"] for r in rows) / n, 2),
        "oracle": rate([r["oracle"] for r in rows])["accuracy"],
        "requests_per_item": round(sum(r["requests"] for r in rows) / n, 2),
        "tokens_per_item": round(sum(r["tokens"] for r in rows) / n),
        "seconds_per_item": round(sum(r["seconds"] for r in rows) / n, 1),
    }


def math_summary(run: Path) -> tuple[dict[str, Any], list[str]]:
    records = [r for r in read_jsonl(run / "results.jsonl") if r.get("status") == "ok" or r.get("error")]
    rows = []
    for r in records:
        d = r.get("details") or {}
        gold = r["gold"]
        candidates = [p["answer"] for p in d.get("programs", [])] + [c["answer"] for c in d.get("chains", [])]
        rows.append(
            {
                "id": r["id"],
                "cot": same(d.get("greedy_cot"), gold),
                "program": same(d.get("greedy_program"), gold),
                "selected": bool(r.get("correct")),
                "oracle": any(same(a, gold) for a in candidates),
                "samples": int(d.get("samples") or 0),
                "requests": int(r.get("calls") or 0),
                "tokens": int(r.get("prompt_tokens") or 0) + int(r.get("completion_tokens") or 0),
                "seconds": float(r.get("seconds") or 0.0),
                "settled": d.get("settled", "error"),
                "agreed_wrong": d.get("settled") == "agreement" and not r.get("correct"),
            }
        )
    n = len(rows)
    if not n:
        return {"n": 0}, ["GSM8K: no records yet"]
    summary = {
        "n": n,
        "cot": rate([r["cot"] for r in rows])["accuracy"],
        "program": rate([r["program"] for r in rows])["accuracy"],
        "selected": rate([r["selected"] for r in rows])["accuracy"],
        "p_selected_vs_cot": compare([(r["cot"], r["selected"]) for r in rows])["p"],
        **per_item(rows),
        "settled_by_agreement": round(sum(r["settled"] == "agreement" for r in rows) / n, 3),
    }
    lost = [r for r in rows if r["oracle"] and not r["selected"]]
    lines = [
        f"GSM8K items from 120 (n = {n}): cot {summary['cot']:.1%} {rate([r['cot'] for r in rows])['ci95']}, "
        f"greedy program {summary['program']:.1%}, math (selected) {summary['selected']:.1%} "
        f"{rate([r['selected'] for r in rows])['ci95']}, oracle {summary['oracle']:.1%}",
        f"  selected vs cot: {compare([(r['cot'], r['selected']) for r in rows])}; "
        f"vs greedy program: {compare([(r['program'], r['selected']) for r in rows])}",
        f"  samples/item {summary['samples_per_item']}, requests/item {summary['requests_per_item']}, "
        f"tokens/item {summary['tokens_per_item']}, seconds/item {summary['seconds_per_item']} "
        "(items run 8 at a time, the first 16 at 4)",
        f"  settled by agreement of the greedy pair: {summary['settled_by_agreement']:.1%} "
        f"(right {sum(r['selected'] for r in rows if r['settled'] == 'agreement')} of "
        f"{sum(r['settled'] == 'agreement' for r in rows)}); oracle right but not returned: {len(lost)} "
        f"(the greedy pair agreed on a wrong answer: {sum(r['agreed_wrong'] and r['oracle'] for r in rows)}; "
        f"the vote after more samples: {sum(r['settled'] != 'agreement' for r in lost)})",
    ]
    return summary, lines


def code_summary(dataset: str) -> tuple[dict[str, Any], list[str]]:
    records = read_jsonl(RESULTS / "runs" / f"code-{dataset}.jsonl")
    rows = [r for r in records if r.get("error") is None]
    errors = [r for r in records if r.get("error") is not None]
    n = len(rows)
    if not n:
        return {"n": 0}, [f"{dataset}: no records yet"]
    summary = {
        "n": n,
        "greedy": rate([r["greedy"] for r in rows])["accuracy"],
        "tests": rate([r["tests"] for r in rows])["accuracy"],
        "selected": rate([r["selected"] for r in rows])["accuracy"],
        "p_selected_vs_greedy": compare([(r["greedy"], r["selected"]) for r in rows])["p"],
        **per_item(rows),
        "errors": len(errors),
    }
    chose = [r for r in rows if r.get("behaviour") and r["behaviour"].get("chosen") is not None]
    lines = [
        f"{dataset} items from 40 (n = {n}): greedy {summary['greedy']:.1%} "
        f"{rate([r['greedy'] for r in rows])['ci95']}, first passing program {summary['tests']:.1%}, selected by "
        f"behaviour {summary['selected']:.1%} {rate([r['selected'] for r in rows])['ci95']}, "
        f"oracle@7 {summary['oracle']:.1%}",
        f"  selected vs greedy: {compare([(r['greedy'], r['selected']) for r in rows])}; "
        f"vs the first passing program: {compare([(r['tests'], r['selected']) for r in rows])}",
        f"  behaviour compared programs on {len(chose)} items; samples/item {summary['samples_per_item']}, "
        f"requests/item {summary['requests_per_item']}, seconds/item {summary['seconds_per_item']}; "
        f"oracle right but not returned: {sum(r['oracle'] and not r['selected'] for r in rows)} "
        f"(no right program passed the visible examples: "
        f"{sum(r['oracle'] and not r['selected'] and not _right_passing(r) for r in rows)})",
    ]
    return summary, lines


def _right_passing(record: dict[str, Any]) -> bool:
    """Whether a right program was among those the behaviour layer could choose (passing the visible examples)."""
    groups = (record.get("behaviour") or {}).get("groups") or []
    return bool(groups) and any(record["right"]) and record["passing_visible"] > 0


def report() -> dict[str, Any]:
    summary: dict[str, Any] = {}
    lines: list[str] = []
    summary["gsm8k"], part = math_summary(MATH_RUN)
    lines += part
    for dataset in ("mbpp_plus", "humaneval_plus"):
        summary[dataset], part = code_summary(dataset)
        lines += part
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "report.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    code = sub.add_parser("run-code", help="run and score code items (resumable)")
    code.add_argument("--dataset", choices=["humaneval_plus", "mbpp_plus"], nargs="+", required=True)
    code.add_argument("--offset", type=int, default=40)
    code.add_argument("--limit", type=int, default=80)
    code.add_argument("--concurrency", "-c", type=int, default=2)
    code.add_argument("--data-dir", type=Path, default=SHARED)
    sub.add_parser("report", help="summary.json and report.txt from the records")
    args = parser.parse_args()
    if args.command == "run-code":
        asyncio.run(run_code(args))
    print(json.dumps(report()))


if __name__ == "__main__":
    main()
