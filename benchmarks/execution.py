"""Reasoning grounded in execution, measured (issue 17): greedy vs sampling vs search at equal LLM-call budgets, on
the same items, with every answer checked by execution (embedded model by default).

* code (HumanEval+ and MBPP+): ``greedy`` = one program at temperature 0; ``best_of_n`` = n programs sampled in one
  request, the one passing most *visible* tests kept; ``mcts_n`` = ``mcts-code`` with budget n;
  ``mcts_greedy_first_n`` = the same search whose first expansion includes greedy's program (added after the
  first 40 + 40 items showed the search losing items greedy had right). All run through the
  same code domain (same visible tests, same sandbox); the chosen program is scored pass@1 on the HIDDEN tests
  (HumanEval+/MBPP+ ``test``) by ``SandboxCodeChecker`` only after the strategy has answered.
* math (GSM8K): ``cot`` (think-then-answer, one greedy chain), ``sc_5`` (five chains at temperature 0.7, majority
  vote), ``pot`` (one greedy program run in the sandbox, one repair), ``pot_sc_5`` (five sampled programs, vote over
  what they printed), ``mcts_math_8`` (``mcts-math``, budget 8, arithmetic steps) and ``mcts_pot_8`` (the same
  search over whole programs, added after the first 30 items showed arithmetic steps ending after one step).
* votes (the next GSM8K items, 101 on, which played no part in choosing what is compared): at an equal budget of
  10 samples, ``sc_10`` (ten chains), ``pot_sc_10`` (ten programs) and ``pot_sc_5_chains_5`` (five programs and five
  chains of thought in one vote, the combination ``execution_votes.py`` pointed to on the first 100), against ``cot``.
* proof (lemmas of Coq's standard library, see ``mcts_coq_lemmas.py``): ``greedy_n`` = a temperature-0 tactic chain
  (``mcts-proof`` with k = 1) which, at a dead end, asks again at the same state with the failed tactics listed, up
  to budget n; ``mcts_n`` = ``mcts-proof`` (k = 3, temperature 0.8); solved = a proof ``coqc`` accepts, checked
  again after the search.

A budget of n counts sampled completions (a request for k samples counts k). Items go in chunks (``--chunk``): every
method on every item of a chunk, the chunk's runs concurrently (``--concurrency``) so the embedded backend decodes
them together; a stopped run has compared all methods on the same items. Records (one per item x method, with the
seed, temperature, answer, costs, the search's own account in ``details`` and the load average) are appended to
``docs/results/execution/runs/<domain>.jsonl.gz``; rerunning resumes. ``--report`` (also run after every chunk)
writes ``report.md``, ``summary.json`` and the accuracy-vs-budget plots from the committed records alone:

    python benchmarks/execution.py --domain math --items 100
    python benchmarks/execution.py --domain code --items 80      # 40 HumanEval+ and 40 MBPP+, alternating
    python benchmarks/execution.py --domain proof --items 20
    python benchmarks/execution.py --domain votes --items 100    # the mixed vote, on fresh items
    python benchmarks/execution.py --report
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ponder.agents import Context, Task, TaskFamily, get_strategy, run_to_result
from ponder.agents.mcts.scoring import SandboxCodeChecker, code_item
from ponder.config import Settings
from ponder.evals._report import mcnemar_exact, wilson
from ponder.llm._factory import build_model
from ponder.wiring import build_toolserver

HERE = Path(__file__).resolve().parent
VOTES_OFFSET = 100  # --domain votes starts after the items --domain math measured
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
    if domain in ("math", "votes"):
        from ponder.evals import load_dataset

        # votes: the next GSM8K items, which played no part in choosing the mixed vote (see execution_votes.py)
        data = load_dataset("gsm8k", data_dir=data_dir, limit=n, offset=VOTES_OFFSET if domain == "votes" else 0)
        return [(item.id, item.task, item.gold) for item in data.items]
    from mcts_coq_lemmas import load_lemmas  # type: ignore[import-not-found]

    return [(lemma["id"], lemma_task(lemma), lemma) for lemma in load_lemmas(n)]


def lemma_task(lemma: dict[str, Any]) -> Task:
    return Task(question=lemma["statement"], context=lemma["prelude"], family=TaskFamily.open)


# (label, strategy, options): the same for every item; seeds and temperatures are part of the options and recorded
def methods(domain: str, seed: int) -> list[tuple[str, str, dict[str, Any]]]:
    if domain == "code":
        common = {"seed": seed, "domain_options": {"model_tests": 0}}
        greedy = {**common, "budget": 1, "k": 1, "max_depth": 1, "temperature": 0.0}
        search = {**common, "k": 3, "max_depth": 4}  # mcts-code: 3 programs per expansion, 4 refinements deep
        return [
            ("greedy", "mcts-code", greedy),
            *(
                (f"best_of_{n}", "mcts-code", {**common, "budget": n, "k": n, "max_depth": 1, "greedy_first": False})
                for n in (4, 8)
            ),
            *((f"mcts_{n}", "mcts-code", {**search, "budget": n, "greedy_first": False}) for n in (4, 8)),
            # added after the first 40 + 40 items (see the report): the root's first expansion includes greedy's
            # program, so the search keeps it whenever it passes the visible tests
            *((f"mcts_greedy_first_{n}", "mcts-code", {**search, "budget": n, "greedy_first": True}) for n in (4, 8)),
        ]
    if domain == "math":
        return [
            ("cot", "cot", {}),
            ("sc_5", "sc", {"k": 5, "temperature": 0.7, "seed": seed}),
            ("pot", "pot", {}),  # a failed program's one repair is an extra call, counted in requests
            ("pot_sc_5", "pot-sc", {"k": 5, "temperature": 0.7}),
            ("mcts_math_8", "mcts-math", {"seed": seed, "budget": 8, "k": 2, "max_depth": 6}),
            # the same search over whole programs (pot's nodes): failures repaired, answers valued by agreement
            ("mcts_pot_8", "mcts-math", {"seed": seed, "budget": 8, "k": 2, "max_depth": 3, "nodes": "programs"}),
        ]
    if domain == "votes":  # equal budgets of 10: prose, programs, and five of each in one vote
        return [
            ("cot", "cot", {}),
            ("sc_10", "sc", {"k": 10, "temperature": 0.7, "seed": seed}),
            ("pot_sc_10", "pot-sc", {"k": 10, "temperature": 0.7}),
            ("pot_sc_5_chains_5", "pot-sc", {"k": 5, "chains": 5, "temperature": 0.7}),
        ]
    return [
        *(
            (f"greedy_{n}", "mcts-proof", {"seed": seed, "budget": n, "k": 1, "temperature": 0.0, "max_depth": n})
            for n in (8, 16)
        ),
        *((f"mcts_{n}", "mcts-proof", {"seed": seed, "budget": n, "k": 3, "max_depth": 8}) for n in (8, 16)),
    ]


def same_number(answer: Any, gold: Any) -> bool:
    """A GSM8K answer is right when it is the gold number (to rounding); anything that is not a number is wrong."""
    try:
        return math.isclose(float(answer), float(gold), rel_tol=1e-6, abs_tol=1e-6)
    except (TypeError, ValueError):
        return False


async def score(domain: str, answer: Any, hidden: Any, checker: SandboxCodeChecker, ts: Any) -> bool:
    if answer is None:
        return False
    if domain == "code":
        return await checker.check(str(answer), hidden["tests"], {"entry_point": hidden["entry_point"]})
    if domain in ("math", "votes"):
        return same_number(answer, hidden)
    from ponder.agents.mcts import SessionPool
    from ponder.agents.mcts._proof import CoqChecker

    tactics = str(answer).removeprefix("Proof.\n").removesuffix("\nQed.").splitlines()
    async with SessionPool(ts) as pool:
        return (await CoqChecker(pool).check(hidden["prelude"], hidden["statement"], tactics)).ok


def sampled(details: dict[str, Any], options: dict[str, Any]) -> int:
    """The budget a run spent: completions sampled by the search (MCTS counts them), else the strategy's k (k
    samples of SC or pot-sc), else 1. Requests beyond that (a CoT's constrained answer after its free reasoning, a
    program's one repair) are counted apart, in ``requests``."""
    if isinstance(details.get("samples"), int):
        return int(details["samples"])
    return int(options.get("k", 1)) + int(options.get("chains", 0))


RESULTS = HERE.parent / "docs" / "results" / "execution"
BASELINE = {"code": "greedy", "math": "cot", "votes": "cot"}  # proof: greedy at the same budget
# issue 17's targets (goals, reported as met or missed): dataset -> (method, baseline, points it must gain, with p<0.05)
# (the second HumanEval+ line holds mcts-code's default search, greedy first, to the same target)
TARGETS = {
    "humaneval_plus": [("mcts_8", "greedy", 10), ("mcts_greedy_first_8", "greedy", 10)],
    "gsm8k": [("pot_sc_5", "cot", 15)],
}


def dataset_of(domain: str, item_id: str) -> str:
    return {"code": item_id.split("/")[0], "math": "gsm8k", "votes": "gsm8k_votes", "proof": "coq"}[domain]


def compact(value: Any, limit: int = 400) -> Any:
    """A record's copy of a strategy's details: long strings cut (the records stay small; gzipped)."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + f"... [{len(value) - limit} more chars]"
    if isinstance(value, dict):
        return {str(k): compact(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [compact(v, limit) for v in value]
    return value


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with gzip.open(path, "rt", encoding="utf-8") as f:  # appended gzip members read as one stream
        return [json.loads(line) for line in f if line.strip()]


async def run_one(
    domain: str, item: tuple[str, Task, Any], method: tuple[str, str, dict[str, Any]], ctx: Context, checker: Any
) -> dict[str, Any]:
    item_id, task, hidden = item
    label, strategy, options = method
    start = time.perf_counter()
    try:
        result = await run_to_result(get_strategy(strategy, **options).run(task, ctx))
        answer, costs, details = result.answer, result.costs, result.details
        error = None
    except Exception as exc:  # noqa: BLE001 - one failing item is recorded, the run goes on
        answer, costs, details, error = None, None, {}, f"{type(exc).__name__}: {exc}"[:600]
    seconds = time.perf_counter() - start
    correct = await score(domain, answer, hidden, checker, ctx.toolserver)
    return {
        "id": item_id,
        "dataset": dataset_of(domain, item_id),
        "method": label,
        "strategy": strategy,
        "options": options,
        "correct": correct,
        "answer": compact(answer if answer is None or isinstance(answer, int | float) else str(answer)),
        "samples": sampled(details, options),
        "requests": costs.llm_calls if costs else 0,
        "tokens": costs.tokens if costs else 0,
        "completion_tokens": costs.completion_tokens if costs else 0,
        "seconds": round(seconds, 2),
        "details": compact(details, 200),  # MCTS's tree included: the report reads where the search went
        "error": error,
        "load_1m": round(os.getloadavg()[0], 2),
    }


async def measure(args: argparse.Namespace) -> None:
    settings = Settings()
    settings.toolserver.instance = "execution-bench"  # its own label: reruns reap its orphans, never others'
    model = build_model(settings.llm)
    items = load_items(args.domain, args.items, args.data_dir)
    plan = methods(args.domain, args.seed)
    path = args.results / "runs" / f"{args.domain}.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["id"], r["method"]) for r in read_records(path)}
    deadline = time.time() + args.minutes * 60 if args.minutes else None
    print(f"model: {model.name}; {len(items)} items x {len(plan)} methods; {len(done)} records already", flush=True)
    async with build_toolserver(settings.toolserver) as ts:
        ctx = Context(model=model, toolserver=ts)
        checker = SandboxCodeChecker(ts)
        gate = asyncio.Semaphore(args.concurrency)

        async def job(item: tuple[str, Task, Any], method: tuple[str, str, dict[str, Any]]) -> None:
            async with gate:
                record = await run_one(args.domain, item, method, ctx, checker)
            with gzip.open(path, "at", encoding="utf-8") as f:  # one gzip member per record: a crash loses none
                f.write(json.dumps(record) + "\n")
            print(json.dumps({k: record[k] for k in ("id", "method", "correct", "samples", "seconds")}), flush=True)

        pending = [item for item in items if any((item[0], m[0]) not in done for m in plan)]
        while pending:
            if deadline is not None and time.time() > deadline:
                print("time limit reached", flush=True)
                break
            # whole items (every method they still miss) until the chunk's runs fill the concurrency twice over, so
            # a resumed sweep that misses one method per item still decodes a full batch
            todo: list[tuple[tuple[str, Task, Any], tuple[str, str, dict[str, Any]]]] = []
            taken = 0
            while taken < len(pending) and (taken < args.chunk or len(todo) < 2 * args.concurrency):
                item = pending[taken]
                todo += [(item, m) for m in plan if (item[0], m[0]) not in done]
                taken += 1
            pending = pending[taken:]
            await asyncio.gather(*(job(item, m) for item, m in todo))
            done |= {(item[0], m[0]) for item, m in todo}
            report(args.results)


def paired(rows: list[dict[str, Any]], labels: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """id -> label -> record, for the items every label has answered (the same items for every method)."""
    by_id: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_id.setdefault(r["id"], {})[r["method"]] = r
    return {i: m for i, m in sorted(by_id.items()) if all(label in m for label in labels)}


def baseline_of(domain: str, label: str) -> str:
    return BASELINE.get(domain) or "greedy_" + label.rsplit("_", 1)[-1]


def summarise(domain: str, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the summary.json entry of one dataset, the table rows of the report), over the items every method answered."""
    labels = [label for label, _, _ in methods(domain, 0)]
    items = paired(rows, labels)
    n = len(items)
    entry: dict[str, Any] = {"n": n}
    table = []
    for label in labels:
        recs = [m[label] for m in items.values()]
        k = sum(r["correct"] for r in recs)
        lo, hi = wilson(k, n) if n else (0.0, 0.0)
        base = baseline_of(domain, label)
        row: dict[str, Any] = {
            "method": label,
            "n": n,
            "correct": k,
            "accuracy": round(k / n, 4) if n else None,
            "ci95": [round(lo, 4), round(hi, 4)],
            "calls_per_item": round(sum(sampled(r["details"], r["options"]) for r in recs) / n, 2) if n else None,
            "requests_per_item": round(sum(r["requests"] for r in recs) / n, 2) if n else None,
            "tokens_per_item": round(sum(r["tokens"] for r in recs) / n, 1) if n else None,
            "seconds_per_item": round(sum(r["seconds"] for r in recs) / n, 1) if n else None,
            "failed": sum(r["error"] is not None for r in recs),
        }
        entry[label] = row["accuracy"]
        if label != base and n:
            wins = sum(m[label]["correct"] and not m[base]["correct"] for m in items.values())
            losses = sum(m[base]["correct"] and not m[label]["correct"] for m in items.values())
            row.update(vs=base, wins=wins, losses=losses, p=round(mcnemar_exact(wins, losses), 4))
            entry[f"p_{label}_vs_{base}"] = row["p"]
        table.append(row)
    return entry, table


def target(dataset: str, table: list[dict[str, Any]]) -> list[str]:
    """The issue's targets for this dataset, stated with what was measured (empty where it sets none)."""
    rows = {row["method"]: row for row in table}
    lines: list[str] = []
    for label, base, points in TARGETS.get(dataset, []):
        if label not in rows or base not in rows:
            continue
        gain = round((rows[label]["accuracy"] - rows[base]["accuracy"]) * 100, 1)
        p = rows[label]["p"]
        met = gain >= points and p < 0.05
        lines += [
            f"**Target** {label} ≥ {base} + {points} points with p < 0.05: **{'met' if met else 'missed'}** "
            f"({rows[label]['accuracy']:.1%} vs {rows[base]['accuracy']:.1%}, {gain:+} points, exact McNemar p = {p}).",
            "",
        ]
    return lines


def plot(dataset: str, table: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    families: dict[str, list[dict[str, Any]]] = {}
    for row in table:
        families.setdefault(row["method"].rstrip("0123456789").rstrip("_"), []).append(row)
    for name, rows in families.items():
        rows.sort(key=lambda r: r["calls_per_item"])
        xs = [r["calls_per_item"] for r in rows]
        ys = [r["accuracy"] for r in rows]
        low = [y - r["ci95"][0] for y, r in zip(ys, rows, strict=True)]
        high = [r["ci95"][1] - y for y, r in zip(ys, rows, strict=True)]
        ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("LLM calls per item (k samples count k)")
    ax.set_ylabel("pass@1 on the hidden tests" if dataset.endswith("_plus") else "accuracy")
    ax.set_title(f"{dataset}: accuracy vs budget (n = {table[0]['n']})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})  # no version stamp: regenerating gives the same bytes
    plt.close(fig)


def failure(reason: str) -> str:
    """A failed step's reason with the names it quotes taken out, so the same failure on other names counts once."""
    reason = re.sub(r"\b(reference|variable|constant)\s+\S+", r"\1 _", str(reason))
    reason = re.sub(r"^\S+ is already used", "_ is already used", reason)
    reason = re.sub(r"'[^'\n]*'", "_", reason)  # a quoted expression or tactic
    reason = re.sub(r"\s*(…|\.\.\.) ?\[(truncated: )?\d+ more char\w*\]", "…", reason)  # where it was cut
    return reason.split("\n")[0][:60]


def votes_of(details: dict[str, Any]) -> Counter[str]:
    """The answers a vote counted (SC's and pot-sc's ``votes``); empty where one answer was all there was to count."""
    votes = details.get("votes")
    if not isinstance(votes, dict) or sum(int(v) for v in votes.values()) < 2:
        return Counter()
    return Counter({str(k): int(v) for k, v in votes.items()})


def why(rows: list[dict[str, Any]]) -> list[str]:
    """Where the budget went, from the records' details: how the searches stopped, what the programs did."""
    out = []
    for label in dict.fromkeys(r["method"] for r in rows):
        recs = [r for r in rows if r["method"] == label]
        parts = []
        stopped = Counter(str(r["details"]["stopped_by"]) for r in recs if "stopped_by" in r["details"])
        if stopped:
            parts.append("stopped by " + ", ".join(f"{k} {v}" for k, v in stopped.most_common()))
        verified = [r for r in recs if r["details"].get("verified") is not None and r["dataset"] != "gsm8k"]
        if verified:  # math has no visible checks to pass
            ok = [r for r in verified if r["details"]["verified"]]
            right = sum(r["correct"] for r in ok)
            parts.append(
                f"chosen answer passed every visible check in {len(ok)}/{len(verified)} ({right} of them right)"
            )
        if any("failed" in r["details"] for r in recs):
            programs = sum(len(r["details"].get("programs", [])) for r in recs)
            repaired = sum(r["details"].get("repaired", 0) for r in recs)
            failed = sum(r["details"].get("failed", 0) for r in recs)
            ties = sum(bool(r["details"].get("tie")) for r in recs)
            parts.append(f"{programs} programs, {repaired} repaired, {failed} failed after repair, {ties} tied votes")
        voted = [(r, v) for r in recs if (v := votes_of(r["details"]))]
        if voted:  # a split vote is where a better selector could still gain; a unanimous wrong one is not
            whole = [r for r, v in voted if len(v) == 1]
            split = [r for r, v in voted if len(v) > 1]
            parts.append(
                f"votes unanimous on {len(whole)} items ({sum(r['correct'] for r in whole)} right), split on"
                f" {len(split)} ({sum(r['correct'] for r in split)} right)"
            )
        trees = [r["details"]["tree"] for r in recs if isinstance(r["details"].get("tree"), dict)]
        if trees:
            ends = [n for t in trees for n in t.get("nodes", []) if n.get("terminal")]
            answered = [n for n in ends if n.get("answer") is not None]
            depths = Counter(n.get("depth") for n in answered)
            shown = ", ".join(f"depth {d}: {c}" for d, c in sorted(depths.items(), key=lambda x: str(x[0])))
            parts.append(
                f"{len(ends)} terminal nodes in {len(trees)} trees, {len(ends) - len(answered)} of them failed steps;"
                f" answers reached at {shown or 'no depth'}"
            )
            reasons = Counter(failure(n["reason"]) for n in ends if n.get("answer") is None and n.get("reason"))
            if reasons:
                parts.append("failed steps: " + ", ".join(f"{k!r} {v}" for k, v in reasons.most_common(3)))
        cut = sum(r["details"].get("cut_off", 0) for r in recs)
        if cut:
            parts.append(f"{cut} samples cut off at max_tokens")
        errors = Counter((r["error"] or "").split(":")[0] for r in recs if r["error"])
        if errors:
            parts.append("errors: " + ", ".join(f"{k} {v}" for k, v in errors.most_common()))
        if parts:
            out.append(f"- **{label}**: " + "; ".join(parts))
    return out


def report(results: Path) -> dict[str, Any]:
    """report.md, summary.json and one plot per dataset, from the records under ``results/runs`` alone."""
    summary: dict[str, Any] = {}
    lines = [
        "# Reasoning grounded in execution (issue 17)",
        "",
        "Written by `python benchmarks/execution.py --report` from the records in `runs/` (embedded Qwen2.5-Coder-1.5B"
        " Q4_K_M); only items every method has answered count, so every row is over the same items.",
        "",
    ]
    loads: list[float] = []
    for domain in ("code", "math", "votes", "proof"):
        records = read_records(results / "runs" / f"{domain}.jsonl.gz")
        loads += [r["load_1m"] for r in records]
        for dataset in dict.fromkeys(r["dataset"] for r in records):
            rows = [r for r in records if r["dataset"] == dataset]
            entry, table = summarise(domain, rows)
            summary[dataset] = entry
            if not entry["n"]:
                continue
            plot(dataset, table, results / f"{dataset}.png")
            both = paired(rows, [t["method"] for t in table])
            lines += [f"## {dataset}: {entry['n']} items", "", f"![{dataset}]({dataset}.png)", ""]
            lines += [
                "| method | accuracy (95 % CI) | vs | wins / losses | exact McNemar p | calls / item | requests / item"
                " | tokens / item | s / item | failed |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
            for row in table:
                vs = f"{row['vs']} | {row['wins']} / {row['losses']} | {row['p']}" if "vs" in row else "| |"
                lines.append(
                    f"| {row['method']} | {row['accuracy']:.1%} ({row['ci95'][0]:.0%}–{row['ci95'][1]:.0%}) | {vs} | "
                    f"{row['calls_per_item']} | {row['requests_per_item']} | {row['tokens_per_item']:.0f} | "
                    f"{row['seconds_per_item']} | {row['failed']} |"
                )
            lines += [
                "",
                *target(dataset, table),
                "Where the budget went:",
                "",
                *why([r for r in rows if r["id"] in both]),
                "",
            ]
    if loads:
        mean = round(sum(loads) / len(loads), 2)
        summary["load_average_1m"] = {"min": min(loads), "mean": mean, "max": max(loads)}
        lines.append(f"Load average (1 min) as records were written: min {min(loads)}, mean {mean}, max {max(loads)}.")
    results.mkdir(parents=True, exist_ok=True)
    (results / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (results / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", choices=["code", "math", "votes", "proof"])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=4, help="items (at least) whose runs go concurrently")
    parser.add_argument("--concurrency", type=int, default=8, help="strategy runs at once")
    parser.add_argument("--minutes", type=float, default=0.0, help="start no new chunk after this long")
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report", action="store_true", help="only write the report from the records")
    cli = parser.parse_args()
    if not cli.report:
        if cli.domain is None:
            parser.error("--domain is required unless --report")
        asyncio.run(measure(cli))
    print(json.dumps(report(cli.results)))
