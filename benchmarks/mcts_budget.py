"""Greedy vs best-of-n vs MCTS at equal budgets of LLM calls, on the same items (embedded model by default).

* code (HumanEval+ and MBPP+, alternating items): greedy = one program at temperature 0; best-of-n = n programs
  sampled in one request, the one passing most *visible* tests kept; MCTS = ``mcts-code``. All three run through
  the same code domain (same visible tests, same sandbox), and the chosen program is scored pass@1 on the
  HIDDEN tests (HumanEval+/MBPP+ ``test``) by ``SandboxCodeChecker`` only after the strategy has answered.
* math (GSM8K): greedy = ``cot`` (one call); best-of-n = ``sc`` with k = n (majority vote); MCTS = ``mcts-math``;
  pot = ``pot`` at budget 1, ``pot-sc`` with k = n above (programs run in the sandbox, majority vote).
* proof (lemmas of Coq's standard library, see ``mcts_coq_lemmas.py``): greedy = a temperature-0 tactic chain
  (``mcts-proof`` with k = 1) which, at a dead end, asks again at the same state with the failed tactics listed
  (the strategy's default max_children), up to the same budget; MCTS = ``mcts-proof`` (k = 3, temperature 0.8);
  solved = a proof ``coqc`` accepts, checked again after the search.

A budget of n counts sampled completions (a request for k samples counts k). Items are processed one at a time,
every method and budget on each item before the next, so a stopped run has compared all methods on the same
items. Results go to a JSONL file (one line per item x method x budget; rerunning resumes). Ends with one JSON
line: accuracy with Wilson 95% intervals, mean calls, tokens and seconds per item, per method and budget.

    python benchmarks/mcts_budget.py --domain code --items 60 --budgets 1,4,8,16 --out runs/mcts/code.jsonl
    python benchmarks/mcts_budget.py --domain math --items 60 --budgets 1,4,8,16 --out runs/mcts/math.jsonl
    python benchmarks/mcts_budget.py --domain proof --items 30 --budgets 8,16 --out runs/mcts/proof.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import time
from pathlib import Path
from typing import Any

from ponder.agents import Context, Task, TaskFamily, get_strategy, run_to_result
from ponder.agents.mcts.scoring import SandboxCodeChecker, code_item
from ponder.config import Settings
from ponder.evals._report import wilson
from ponder.llm._factory import build_model
from ponder.tools import build_toolserver

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent / ".." / "shared" / "benchmarks"


def load_items(domain: str, n: int, data_dir: Path) -> list[tuple[str, Task, Any]]:
    """(id, task the strategy sees, hidden part only the scorer sees)."""
    if domain == "code":
        sets = []
        for name in ("humaneval_plus", "mbpp_plus"):
            with gzip.open(data_dir / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
                sets.append([(name, json.loads(line)) for line in f])
        out = []
        for i in range(n):
            name, row = sets[i % 2][i // 2]
            task, hidden = code_item(row, name)
            out.append((f"{name}/{row['task_id']}", task, hidden))
        return out
    if domain == "math":
        from ponder.evals import load_dataset

        data = load_dataset("gsm8k", data_dir=data_dir, limit=n)
        return [(item.id, item.task, item.gold) for item in data.items]
    from mcts_coq_lemmas import load_lemmas  # type: ignore[import-not-found]

    return [(lemma["id"], lemma_task(lemma), lemma) for lemma in load_lemmas(n)]


def lemma_task(lemma: dict[str, Any]) -> Task:
    return Task(question=lemma["statement"], context=lemma["prelude"], family=TaskFamily.open)


def methods(domain: str, budget: int, seed: int) -> dict[str, tuple[str, dict[str, Any]]]:
    if domain == "code":
        common = {"seed": seed, "domain_options": {"model_tests": 0}}
        return {
            "greedy": ("mcts-code", {**common, "budget": 1, "k": 1, "max_depth": 1, "temperature": 0.0}),
            "best_of_n": ("mcts-code", {**common, "budget": budget, "k": budget, "max_depth": 1}),
            "mcts": ("mcts-code", {**common, "budget": budget, "k": min(3, budget), "max_depth": 4}),
        }
    if domain == "math":
        return {
            "greedy": ("cot", {}),
            "best_of_n": ("sc", {"k": budget, "temperature": 0.7}),
            "mcts": ("mcts-math", {"seed": seed, "budget": budget, "k": 2, "max_depth": 6}),
            # program of thought: one greedy program (budget 1), or `budget` sampled programs voting; a failed
            # program's one repair is an extra call, counted in requests_per_item
            "pot": ("pot", {}) if budget == 1 else ("pot-sc", {"k": budget, "temperature": 0.7}),
        }
    return {
        "greedy": ("mcts-proof", {"seed": seed, "budget": budget, "k": 1, "temperature": 0.0, "max_depth": budget}),
        "mcts": ("mcts-proof", {"seed": seed, "budget": budget, "k": 3, "max_depth": 8}),
    }


async def score(domain: str, answer: Any, hidden: Any, checker: SandboxCodeChecker, ts: Any) -> bool:
    if answer is None:
        return False
    if domain == "code":
        return await checker.check(str(answer), hidden["tests"], {"entry_point": hidden["entry_point"]})
    if domain == "math":
        try:
            return math.isclose(float(answer), float(hidden), rel_tol=1e-6, abs_tol=1e-6)
        except (TypeError, ValueError):
            return False
    from ponder.agents.mcts import SessionPool
    from ponder.agents.mcts._proof import CoqChecker

    tactics = str(answer).removeprefix("Proof.\n").removesuffix("\nQed.").splitlines()
    async with SessionPool(ts) as pool:
        return (await CoqChecker(pool).check(hidden["prelude"], hidden["statement"], tactics)).ok


def sampled(details: dict[str, Any], options: dict[str, Any], costs: Any) -> int:
    """Completions sampled: the MCTS count, else the strategy's k (self-consistency), else its requests."""
    if isinstance(details.get("samples"), int):
        return int(details["samples"])
    if isinstance(options.get("k"), int):
        return int(options["k"])
    return int(costs.llm_calls) if costs else 0


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(f"{r['method']}@{r['budget']}", []).append(r)
    out: dict[str, Any] = {}
    for key, rows in sorted(groups.items()):
        k, n = sum(r["correct"] for r in rows), len(rows)
        lo, hi = wilson(k, n)
        out[key] = {
            "n": n,
            "correct": k,
            "accuracy": round(k / n, 4),
            "ci95": [round(lo, 4), round(hi, 4)],
            "calls_per_item": round(sum(r["samples"] for r in rows) / n, 2),
            "requests_per_item": round(sum(r["requests"] for r in rows) / n, 2),
            "tokens_per_item": round(sum(r["tokens"] for r in rows) / n, 1),
            "seconds_per_item": round(sum(r["seconds"] for r in rows) / n, 2),
        }
    return out


def plot(summary: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    by_method: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for key, row in summary.items():
        method, budget = key.split("@")
        by_method.setdefault(method, []).append((int(budget), row))
    for method, rows in sorted(by_method.items()):
        rows.sort(key=lambda x: x[0])
        xs = [b for b, _ in rows]
        ys = [r["accuracy"] for _, r in rows]
        err = [
            [y - r["ci95"][0] for y, (_, r) in zip(ys, rows, strict=True)],
            [r["ci95"][1] - y for y, (_, r) in zip(ys, rows, strict=True)],
        ]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=method)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("budget (LLM calls per item)")
    ax.set_ylabel("pass@1 / accuracy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    settings.toolserver.instance = "mcts-bench"  # its own label: reruns reap its orphans, never others'
    model = build_model(settings.llm)
    items = load_items(args.domain, args.items, args.data_dir)
    budgets = [int(b) for b in args.budgets.split(",")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done[(r["id"], r["method"], r["budget"])] = r
    if args.report:
        return finish(list(done.values()), args)
    deadline = time.time() + args.minutes * 60 if args.minutes else None
    async with build_toolserver(settings.toolserver) as ts:
        checker = SandboxCodeChecker(ts)
        ctx = Context(model=model, toolserver=ts)
        for item_id, task, hidden in items:
            for budget in budgets:
                for method, (strategy, options) in methods(args.domain, budget, args.seed).items():
                    if method == "greedy" and budget != budgets[0] and args.domain != "proof":
                        continue  # greedy does not depend on the budget: run once
                    if (item_id, method, budget) in done:
                        continue
                    if deadline is not None and time.time() > deadline:
                        print("time limit reached", flush=True)
                        return finish(list(done.values()), args)
                    start = time.perf_counter()
                    try:
                        result = await run_to_result(get_strategy(strategy, **options).run(task, ctx))
                        answer, costs, details = result.answer, result.costs, result.details
                        error = None
                    except Exception as exc:  # noqa: BLE001 - one failing item is recorded, the run goes on
                        answer, costs, details, error = None, None, {}, f"{type(exc).__name__}: {exc}"
                    seconds = time.perf_counter() - start
                    correct = await score(args.domain, answer, hidden, checker, ts)
                    record = {
                        "id": item_id,
                        "method": method,
                        "budget": budget,
                        "correct": correct,
                        "samples": sampled(details, options, costs),
                        "requests": costs.llm_calls if costs else 0,
                        "tokens": costs.tokens if costs else 0,
                        "seconds": round(seconds, 2),
                        "verified": details.get("verified"),
                        "stopped_by": details.get("stopped_by"),
                        "error": error,
                    }
                    done[(item_id, method, budget)] = record
                    with args.out.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                    print(json.dumps(record), flush=True)
    return finish(list(done.values()), args)


def finish(records: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    # greedy ran once; it stands at every budget
    budgets = [int(b) for b in args.budgets.split(",")]
    expanded = []
    for r in records:
        if r["method"] == "greedy" and args.domain != "proof":
            expanded.extend({**r, "budget": b} for b in budgets)
        else:
            expanded.append(r)
    summary = summarise(expanded)
    if records:
        plot(summary, args.out.with_suffix(".png"), f"{args.domain}: accuracy vs budget")
    ids = {r["id"] for r in records}
    return {"domain": args.domain, "items": len(ids), "budgets": budgets, "results": summary}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", choices=["code", "math", "proof"], required=True)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--budgets", default="1,4,8,16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=0.0, help="stop starting new runs after this long")
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--report", action="store_true", help="only summarise the results already in --out")
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures))
