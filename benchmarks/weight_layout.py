"""The default model's shipped layout (Q4_K_M: Q4_K and Q6_K tensors) against the same weights with the Q6_K tensors
re-encoded as Q8_0 (``ponder.llm.embedded._weight_layout``), side by side on this host (issue 36, item 4).

Speed: each layout's step costs measured as the engine's calibration measures them (one step of r rows of r
sequences; a verify step of 1 + k rows of one sequence), then one stream (greedy, 64 tokens, 2 prompts) and 8
concurrent calls (32 tokens each) through the batching scheduler. Quality: greedy answers of both layouts on the same
items, scored as ``benchmarks/execution.py`` scores them: GSM8K chain of thought (``cot``) from item
``--gsm8k-offset`` (default 400: past the 100 that chose prompts, the 20 that chose the mixed vote and the 200 that
issue 32 reserves), and greedy programs (``mcts-code`` budget 1), checked on the hidden tests in the sandbox, on
HumanEval+ items 0.. (the dev file has 122 items and issue 32 reserves 40-119, so the first ones, already used
to choose greedy-first, are the ones left; a layout is not tuned on them) and MBPP+ items from 120 (fresh: past the
40 that chose greedy-first and the 80 issue 32 reserves). Records go to
``docs/results/weight-layout/runs.jsonl.gz`` (resumable); the summary (accuracy, exact McNemar between layouts, how
often the two answers agree) to ``summary.json``; the last line is JSON.

    python benchmarks/weight_layout.py [--gsm8k 40] [--humaneval 30] [--mbpp 30] [--skip-speed] [--report]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from execution import SHARED, methods, run_one

from ponder.agents import Context
from ponder.agents.mcts.scoring import SandboxCodeChecker, code_item
from ponder.config import LLMSettings, Settings, WeightLayout
from ponder.evals._report import mcnemar_exact, wilson
from ponder.llm import ChatRequest, user
from ponder.llm.embedded import EmbeddedModel
from ponder.llm.embedded._calibration import host, measure
from ponder.llm.embedded._model_files import ensure_default_model
from ponder.llm.embedded._runtime import LlamaRuntime, default_threads
from ponder.llm.embedded._weight_layout import ensure_layout
from ponder.wiring import build_toolserver

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "docs" / "results" / "weight-layout"
LAYOUTS = [WeightLayout.as_shipped, WeightLayout.q8_0_for_q6_k]
PROMPTS = ["Describe how a bicycle works to a child.", "Write a Python function that checks whether n is prime."]


def speed(path: Path) -> dict[str, Any]:
    threads = default_threads()
    runtime = LlamaRuntime(path, n_ctx=256, n_threads=threads)
    try:
        defaults = LLMSettings()
        cal = measure(
            runtime,
            key=path.name,
            max_sequences=defaults.max_sequences,
            draft_tokens=defaults.draft_tokens,
            candidates=[threads],
            kv_tokens=defaults.kv_tokens,
        )
    finally:
        runtime.close()
    model = EmbeddedModel.from_settings(LLMSettings(model_path=path, calibrate=False))

    async def streams() -> dict[str, float]:
        async with model:
            await model.complete(ChatRequest(messages=[user(PROMPTS[0])], max_tokens=1))
            one = []
            for prompt in PROMPTS:
                r = await model.complete(ChatRequest(messages=[user(prompt)], max_tokens=64, temperature=0.0))
                one.append((r.usage.completion_tokens - 1) / (r.timings.total_s - (r.timings.first_token_s or 0)))
            reqs = [ChatRequest(messages=[user(f"{p} ({i})")], max_tokens=32) for i in range(4) for p in PROMPTS]
            t = time.perf_counter()
            out = await asyncio.gather(*(model.complete(r) for r in reqs))
            eight = sum(o.usage.completion_tokens for o in out) / (time.perf_counter() - t)
        return {"one_stream_tok_s": round(statistics.mean(one), 2), "concurrent_8_tok_s": round(eight, 2)}

    figures = asyncio.run(streams())
    return {
        "file_mb": round(path.stat().st_size / 1e6),
        "step_s": {str(r): round(s, 4) for r, s in cal.step_s.items()},
        "rows_per_s": {str(r): round(cal.throughput(r), 1) for r in cal.step_s},
        "verify_s": {str(r): round(s, 4) for r, s in cal.verify_s.items()},
        **figures,
    }


async def quality(paths: dict[WeightLayout, Path], args: argparse.Namespace, out: Path) -> None:
    from ponder.evals import load_dataset

    data = load_dataset("gsm8k", data_dir=args.data_dir, limit=args.gsm8k, offset=args.gsm8k_offset)
    math_items = [("math", (item.id, item.task, item.gold)) for item in data.items]
    code = code_items("humaneval_plus", 0, args.humaneval, args.data_dir)
    code += code_items("mbpp_plus", args.mbpp_offset, args.mbpp, args.data_dir)
    items = math_items + [("code", it) for it in code]
    plan = {"math": methods("math", 0)[0], "code": methods("code", 0)[0]}  # cot; greedy program
    done = {(r["layout"], r["id"]) for r in read(out)}
    settings = Settings()
    settings.toolserver.instance = "layout-bench"
    # both layouts loaded side by side, each item asked of both in turn: a run stopped early has compared the two on
    # the same items (accuracy, not speed, is measured here, so sharing the cores does no harm)
    async with build_toolserver(settings.toolserver) as ts, contextlib.AsyncExitStack() as stack:
        checker = SandboxCodeChecker(ts)
        ctxs = {}
        for layout in LAYOUTS:
            model = await stack.enter_async_context(EmbeddedModel.from_settings(LLMSettings(model_path=paths[layout])))
            ctxs[layout] = Context(model=model, toolserver=ts)
        gate = asyncio.Semaphore(args.concurrency)

        async def one(domain: str, item: tuple[Any, ...], layout: WeightLayout) -> None:
            async with gate:
                record = await run_one(domain, item, plan[domain], ctxs[layout], checker)
            row = {"layout": layout.value, **{k: record[k] for k in ("id", "correct", "answer", "seconds")}}
            row["load_1m"] = round(os.getloadavg()[0], 2)
            with gzip.open(out, "at", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)

        todo = [(d, it, lay) for d, it in items for lay in LAYOUTS if (lay.value, it[0]) not in done]
        await asyncio.gather(*(one(d, it, lay) for d, it, lay in todo))


def code_items(name: str, offset: int, n: int, data_dir: Path) -> list[tuple[str, Any, Any]]:
    with gzip.open(data_dir / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][offset : offset + n]
    return [(f"{name}/{row['task_id']}", *code_item(row, name)) for row in rows]


def read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def report(runs: Path) -> dict[str, Any]:
    rows = read(runs)
    by = {(r["layout"], r["id"]): r for r in rows}
    out: dict[str, Any] = {}
    for dataset in ("gsm8k", "humaneval_plus", "mbpp_plus"):
        ids = sorted(
            {r["id"] for r in rows if r["id"].split("/")[0] == dataset or (dataset == "gsm8k" and "/" not in r["id"])}
        )
        ids = [i for i in ids if all((lay.value, i) in by for lay in LAYOUTS)]  # answered by both
        if not ids:
            continue
        a, b = ([bool(by[(lay.value, i)]["correct"]) for i in ids] for lay in LAYOUTS)
        only_a = sum(x and not y for x, y in zip(a, b, strict=True))
        only_b = sum(y and not x for x, y in zip(a, b, strict=True))
        same = sum(by[(LAYOUTS[0].value, i)]["answer"] == by[(LAYOUTS[1].value, i)]["answer"] for i in ids)
        entry: dict[str, Any] = {"n": len(ids)}
        for lay, col in zip(LAYOUTS, (a, b), strict=True):
            lo, hi = wilson(sum(col), len(col))
            entry[lay.value] = {"accuracy": round(sum(col) / len(col), 3), "ci95": [round(lo, 3), round(hi, 3)]}
        entry.update(only_shipped_right=only_a, only_q8_right=only_b, p=round(mcnemar_exact(only_a, only_b), 3))
        entry["same_answer"] = round(same / len(ids), 3)
        out[dataset] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gsm8k", type=int, default=40)
    parser.add_argument("--gsm8k-offset", type=int, default=400)
    parser.add_argument("--humaneval", type=int, default=30)
    parser.add_argument("--mbpp", type=int, default=30)
    parser.add_argument("--mbpp-offset", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--report", action="store_true", help="only summarise the records")
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs, summary_path = RESULTS / "runs.jsonl.gz", RESULTS / "summary.json"
    summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if not args.report:
        shipped = ensure_default_model(Settings().llm.cache_dir)
        paths = {lay: ensure_layout(shipped, lay) for lay in LAYOUTS}
        if not args.skip_speed:
            summary["host"] = {**host().model_dump(), "load_average_1m": round(os.getloadavg()[0], 2)}
            summary["speed"] = {lay.value: speed(paths[lay]) for lay in LAYOUTS}
            print(json.dumps(summary["speed"]), flush=True)
            summary_path.write_text(json.dumps(summary, indent=1) + "\n")
        asyncio.run(quality(paths, args, runs))
    summary["quality"] = report(runs)
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
