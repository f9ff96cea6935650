"""Aggregate throughput of the embedded backend under concurrent calls: in-flight batching vs one call at a time.

c concurrent calls with c **different** prompts (free text, then the same prompts under a JSON schema) go to
``EmbeddedModel.complete`` with batching on (the scheduler decodes every running sequence in one llama.cpp batch),
and the same c calls go one after another to the serial path (``EmbeddedModel.serial()``, the behaviour before
batching) of the same loaded model. Greedy, the same ``max_tokens`` for all. Every prompt is asked once on both paths
first, so both have it in their prefix caches and the figures measure decoding (the prompts' last tokens are still
evaluated per call). Rounds interleave the two paths. Also: time to first token p50/p95 under 8 concurrent calls.

The limit one stream runs into: every token reads all the weights once (1.1 GB for the default model), so one
stream's tok/s x weight bytes is the memory bandwidth it uses; a batched step reads them once for every sequence.

    python benchmarks/embedded_throughput.py --quick      # 1 round of 32 tokens per call; ~6 min on 2 quiet cores
    python benchmarks/embedded_throughput.py [--rounds 2] [--max-tokens 64] [--threads 1]

Ends with one JSON line; ``aggregate_speedup_8`` is batched / serial tok/s at 8 concurrent calls (free text).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

from pydantic import BaseModel

from ponder.config import LLMSettings
from ponder.llm import ChatRequest, ChatResponse, schema_constraint, user
from ponder.llm.embedded import EmbeddedModel

PROMPTS = [
    "Explain in two sentences why the sky is blue.",
    "Write a Python function that checks whether a number is prime.",
    "List five animals that live in the ocean, with one fact each.",
    "Describe how a bicycle works to a child.",
    "What are the main differences between TCP and UDP?",
    "Write a haiku about autumn, then explain it.",
    "Give three tips for writing clean code, with an example each.",
    "Summarise the plot of Romeo and Juliet in a few sentences.",
]


class Reply(BaseModel):
    title: str
    points: list[str]


def request(prompt: str, max_tokens: int, json_mode: bool) -> ChatRequest:
    return ChatRequest(
        messages=[user(prompt + (" Reply as JSON with a title and a list of points." if json_mode else ""))],
        max_tokens=max_tokens,
        temperature=0.0,
        constraint=schema_constraint(Reply) if json_mode else None,
    )


async def timed(calls: list[Any]) -> tuple[float, list[ChatResponse]]:
    t = time.perf_counter()
    out = await asyncio.gather(*calls)
    return time.perf_counter() - t, list(out)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = LLMSettings(n_threads=args.threads, kv_tokens=args.kv_tokens)
    batched = EmbeddedModel.from_settings(settings)
    serial = batched.serial()
    figures: dict[str, Any] = {
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "threads": args.threads,
        "kv_tokens": args.kv_tokens,
    }
    load = [os.getloadavg()[0]]
    async with batched:
        for json_mode in [case == "json" for case in args.cases]:
            warm = [request(p, 1, json_mode) for p in PROMPTS]
            for r in warm:  # every prompt into both paths' prefix caches
                await serial.complete(r)
            await asyncio.gather(*(batched.complete(r) for r in warm))
            totals = {c: {"batched": [0, 0.0], "serial": [0, 0.0]} for c in args.concurrency}
            ttft: list[float] = []
            for _ in range(args.rounds):
                for c in args.concurrency:
                    reqs = [request(p, args.max_tokens, json_mode) for p in PROMPTS[:c]]
                    seconds, out = await timed([batched.complete(r) for r in reqs])
                    totals[c]["batched"][0] += sum(o.usage.completion_tokens for o in out)
                    totals[c]["batched"][1] += seconds
                    if c == 8:
                        ttft += [o.timings.first_token_s or 0.0 for o in out]
                    t = time.perf_counter()
                    out = [await serial.complete(r) for r in reqs]
                    totals[c]["serial"][1] += time.perf_counter() - t
                    totals[c]["serial"][0] += sum(o.usage.completion_tokens for o in out)
                    load.append(os.getloadavg()[0])
            case = "json" if json_mode else "free"
            figures[case] = {}
            for c in args.concurrency:
                rates = {k: tokens / s for k, (tokens, s) in totals[c].items()}
                figures[case][str(c)] = {
                    "batched_tok_s": round(rates["batched"], 2),
                    "serial_tok_s": round(rates["serial"], 2),
                    "speedup": round(rates["batched"] / rates["serial"], 2),
                }
                print(
                    f"{case:4s} c={c}: batched {rates['batched']:6.2f} tok/s, serial {rates['serial']:6.2f} tok/s"
                    f" -> {rates['batched'] / rates['serial']:.2f}x",
                    flush=True,
                )
            ordered = sorted(ttft)
            if ordered:
                figures[case]["ttft_8_p50_s"] = round(statistics.median(ordered), 2)
                figures[case]["ttft_8_p95_s"] = round(
                    ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 2
                )
        stats = batched._shared.batcher().stats
        figures["scheduler"] = {"steps": stats.steps, "max_running": stats.max_running}
    main = figures.get("free") or figures["json"]
    one = main[str(args.concurrency[0])]["serial_tok_s"]
    weights_gb = 1.117
    both = "free" in figures and "json" in figures
    figures.update(
        aggregate_speedup_8=main["8"]["speedup"] if "8" in main else None,
        aggregate_vs_one_stream_8=round(main["8"]["batched_tok_s"] / one, 2) if "8" in main else None,
        json_vs_free_8=round(figures["json"]["8"]["batched_tok_s"] / figures["free"]["8"]["batched_tok_s"], 2)
        if both
        else None,
        one_stream_weight_read_gb_s=round(one * weights_gb, 2),
        speculative_speedup=None,  # not built: see the README's embedded-throughput section
        target_aggregate_speedup_8=5.0,
        target_json_vs_free=0.9,
        load_average_1m_start=round(load[0], 2),
        load_average_1m_max=round(max(load), 2),
        cpus=os.cpu_count(),
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1 round of 32 tokens per call")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kv-tokens", type=int, default=LLMSettings().kv_tokens)
    parser.add_argument("--concurrency", default="1,2,4,8", help="the concurrent call counts to measure")
    parser.add_argument("--cases", default="free,json", help="free (plain text), json (a JSON schema), or both")
    args = parser.parse_args()
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.quick:
        args.rounds, args.max_tokens = 1, 32
    figures = asyncio.run(run(args))
    print(
        f"8 concurrent calls: {figures['aggregate_speedup_8']}x the serial path's tok/s (target 5x); JSON/free at 8: "
        f"{figures['json_vs_free_8']} (target >= 0.9); one stream reads {figures['one_stream_weight_read_gb_s']} GB/s "
        f"of weights; load average {figures['load_average_1m_start']} -> max {figures['load_average_1m_max']}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
