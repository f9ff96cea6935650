"""Aggregate throughput of the embedded backend under concurrent calls: in-flight batching vs one call at a time.

c concurrent calls with c **different** prompts (free text, then the same prompts under a JSON schema) go to
``EmbeddedModel.complete`` with batching on (the scheduler decodes every running sequence in one llama.cpp batch), and
the same c calls go one after another to the serial view (``EmbeddedModel.serial()``: each call a scheduler job that
runs alone, never drafting; the behaviour before batching) of the same loaded model. Greedy, the same ``max_tokens`` for
all. Every prompt is asked once on both paths first, so both have it in their prefix caches and the figures measure
decoding (the prompts' last tokens are still evaluated per call). Rounds interleave the two paths. Also: time to first
token p50/p95 under 8 concurrent calls, and one stream with and without speculative decoding by prompt lookup
(``SPECULATIVE``: a code repair and open prose; tok/s after the first token, the share of drafted tokens accepted, and
whether the texts are the same).

The limit one stream runs into: every token reads all the weights once (1.1 GB for the default model), so one
stream's tok/s x weight bytes is the memory bandwidth it uses; a batched step reads them once for every sequence.

    python benchmarks/embedded_throughput.py --quick      # 1 round of 32 tokens per call; ~6 min on 2 quiet cores
    python benchmarks/embedded_throughput.py [--rounds 2] [--max-tokens 64] [--threads 1]

Ends with one JSON line; ``aggregate_speedup_8`` is batched / serial tok/s at 8 concurrent calls (free text);
``single_call_vs_serial`` the same at one call (what a lone user waits); ``speculative_speedup`` is speculative /
plain tok/s of one stream on the code prompt as the engine decides to draft (``speculative_speedup_prose`` on the
prose one; ``*_forced`` drafting whenever a lookup finds a draft, as before calibration). The host (CPU, vector
instruction sets, memory bandwidth by a numpy copy) and the engine's calibration for it (``ponder calibrate``) are
printed first and kept in the JSON line, so figures from different hosts are never compared unnamed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from ponder.config import LLMSettings
from ponder.llm import ChatRequest, ChatResponse, schema_constraint, user
from ponder.llm.embedded import EmbeddedModel
from ponder.llm.embedded._calibration import host
from ponder.llm.embedded._runtime import SampleParams, default_threads

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


# One stream with and without speculative decoding (prompt lookup): a code repair (the reply restates most of the
# prompt's code) and open prose (little to look up).
SPECULATIVE = {
    "code": "This function should return the running maximum of a list but has a bug. Reply with the whole corrected "
    "function only.\n\n"
    "def running_max(values):\n"
    "    result = []\n"
    "    best = None\n"
    "    for value in values:\n"
    "        if best is None or value < best:\n"
    "            best = value\n"
    "        result.append(best)\n"
    "    return result\n",
    "prose": "Describe how a bicycle works to a child.",
}


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


def memory_bandwidth_gb_s(mb: int = 256, reps: int = 5) -> float:
    """Copy bandwidth of this host (read + write of ``mb`` MB, best of ``reps``): the ceiling one stream runs into."""
    src = np.ones(mb << 18, dtype=np.float32)
    dst = np.empty_like(src)
    best = min(_timed_copy(dst, src) for _ in range(reps))
    return round(2 * src.nbytes / best / 1e9, 1)


def _timed_copy(dst: np.ndarray, src: np.ndarray) -> float:
    t = time.perf_counter()
    np.copyto(dst, src)
    return time.perf_counter() - t


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = LLMSettings(n_threads=args.threads, kv_tokens=args.kv_tokens)
    batched = EmbeddedModel.from_settings(settings)
    serial = batched.serial()
    figures: dict[str, Any] = {
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "threads": args.threads or default_threads(),
        "kv_tokens": args.kv_tokens,
        "host": {**host().model_dump(), "copy_bandwidth_gb_s": memory_bandwidth_gb_s()},
    }
    print(f"host: {figures['host']}", flush=True)
    load = [os.getloadavg()[0]]
    async with batched:
        scheduler = await asyncio.to_thread(batched._shared.batcher)  # measures the calibration if none is stamped
        figures["calibration"] = scheduler.calibration.summary()
        print(f"calibration: {json.dumps(figures['calibration'])}", flush=True)
        for json_mode in [case == "json" for case in args.cases]:
            warm = [request(p, 1, json_mode) for p in PROMPTS]
            for r in warm:  # every prompt into both paths' prefix caches
                await serial.complete(r)
            await asyncio.gather(*(batched.complete(r) for r in warm))
            totals = {c: {"batched": [0, 0.0], "serial": [0, 0.0]} for c in args.concurrency}
            ttft: list[float] = []
            for _ in range(args.rounds):
                for c in args.concurrency:
                    # one call is what a lone user waits for, and the noisiest figure: measured on several prompts
                    groups = [PROMPTS[i : i + 1] for i in range(args.single_calls)] if c == 1 else [PROMPTS[:c]]
                    for prompts in groups:
                        reqs = [request(p, args.max_tokens, json_mode) for p in prompts]
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
        if args.speculative_tokens:
            figures["speculative"] = await speculative(batched, args, load)
        if args.draft_model:
            figures["draft_model"] = await asyncio.to_thread(draft_model_estimate, batched, args)
        stats = batched._shared.batcher().stats
        figures["scheduler"] = {"steps": stats.steps, "max_running": stats.max_running, "capped": stats.capped}
    main = figures.get("free") or figures.get("json") or {}
    one = main[str(args.concurrency[0])]["serial_tok_s"] if main else None
    weights_gb = 1.117
    both = "free" in figures and "json" in figures
    best_2_4 = max((main[c]["batched_tok_s"] for c in ("2", "4") if c in main), default=None)
    spec = figures.get("speculative", {})
    figures.update(
        aggregate_speedup_8=main["8"]["speedup"] if "8" in main else None,
        aggregate_vs_one_stream_8=round(main["8"]["batched_tok_s"] / one, 2) if "8" in main and one else None,
        aggregate_8_vs_best_of_2_4=round(main["8"]["batched_tok_s"] / best_2_4, 2)
        if "8" in main and best_2_4
        else None,
        single_call_vs_serial=main["1"]["speedup"] if "1" in main else None,
        single_call_vs_serial_json=figures["json"]["1"]["speedup"] if "1" in figures.get("json", {}) else None,
        speculative_speedup_forced=spec["code"]["forced_speedup"] if spec else None,
        speculative_speedup_prose_forced=spec["prose"]["forced_speedup"] if spec else None,
        json_vs_free_8=round(figures["json"]["8"]["batched_tok_s"] / figures["free"]["8"]["batched_tok_s"], 2)
        if both and "8" in figures["json"] and "8" in figures["free"]
        else None,
        one_stream_weight_read_gb_s=round(one * weights_gb, 2) if one else None,
        speculative_speedup=figures["speculative"]["code"]["speedup"] if "speculative" in figures else None,
        speculative_speedup_prose=figures["speculative"]["prose"]["speedup"] if "speculative" in figures else None,
        target_speculative_speedup=1.5,
        target_speculative_speedup_prose=1.0,
        target_single_call_vs_serial=0.98,
        target_aggregate_vs_one_stream_8=3.0,
        target_json_vs_free=0.9,
        load_average_1m_start=round(load[0], 2),
        load_average_1m_max=round(max(load), 2),
        cpus=os.cpu_count(),
    )
    return figures


async def speculative(model: EmbeddedModel, args: argparse.Namespace, load: list[float]) -> dict[str, Any]:
    """One stream at a time, the same greedy request without drafts, with drafts as the engine decides (from this
    host's calibration and the call's acceptance so far) and with drafts whenever a lookup finds one (forced, the
    behaviour before calibration), rounds interleaved; tok/s after the first token (the prompt is prefix-cached on
    all three) and the share of draft tokens accepted."""
    views = {"plain": model.without_speculation(), "speculative": model, "forced": model.always_speculating()}
    stats = model._shared.batcher().stats
    out: dict[str, Any] = {}
    for case, prompt in SPECULATIVE.items():
        req = ChatRequest(messages=[user(prompt)], max_tokens=args.speculative_tokens, temperature=0.0)
        await views["plain"].complete(req.model_copy(update={"max_tokens": 1}))
        rate: dict[str, list[float]] = {k: [0, 0.0] for k in views}
        drafted = {k: 0 for k in views}
        accepted = {k: 0 for k in views}
        texts: dict[str, str] = {}
        same = True
        for _ in range(args.rounds):
            for key, view in views.items():
                d0, a0 = stats.drafted, stats.accepted
                r = await view.complete(req)
                drafted[key] += stats.drafted - d0
                accepted[key] += stats.accepted - a0
                texts[key] = r.choices[0].text
                rate[key][0] += r.usage.completion_tokens - 1
                rate[key][1] += r.timings.total_s - (r.timings.first_token_s or 0.0)
            same = same and texts["speculative"] == texts["plain"] == texts["forced"]
            load.append(os.getloadavg()[0])
        tok_s = {k: n / s for k, (n, s) in rate.items()}
        out[case] = {
            "plain_tok_s": round(tok_s["plain"], 2),
            "speculative_tok_s": round(tok_s["speculative"], 2),
            "forced_tok_s": round(tok_s["forced"], 2),
            "speedup": round(tok_s["speculative"] / tok_s["plain"], 2),
            "forced_speedup": round(tok_s["forced"] / tok_s["plain"], 2),
            "drafted": drafted["speculative"],
            "acceptance": round(accepted["speculative"] / drafted["speculative"], 2)
            if drafted["speculative"]
            else None,
            "forced_drafted": drafted["forced"],
            "forced_acceptance": round(accepted["forced"] / drafted["forced"], 2) if drafted["forced"] else None,
            "same_text": same,
        }
        print(f"speculative {case}: {out[case]}", flush=True)
    return out


def _step_seconds(model: Any, threads: int, rows: list[int], prompt_len: int = 300, reps: int = 5) -> dict[int, float]:
    """Median seconds of one ``llama_decode`` of r rows of one sequence after a ``prompt_len``-token prompt."""
    import llama_cpp as lc

    from ponder.llm.embedded._runtime import decode_batch

    params = lc.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch, params.n_seq_max = 2048, 512, 512, 1
    params.n_threads = params.n_threads_batch = threads
    ctx = lc.llama_init_from_model(model, params)
    memory, batch = lc.llama_get_memory(ctx), lc.llama_batch_init(512, 0, 1)
    try:
        decode_batch(ctx, batch, [(0, 1000 + i, i, False) for i in range(prompt_len)])
        out: dict[int, list[float]] = {r: [] for r in rows}
        for _ in range(reps):
            for r in rows:
                t = time.perf_counter()
                decode_batch(ctx, batch, [(0, 2000 + i, prompt_len + i, True) for i in range(r)])
                out[r].append(time.perf_counter() - t)
                lc.llama_memory_seq_rm(memory, 0, prompt_len, -1)
        return {r: statistics.median(v) for r, v in out.items()}
    finally:
        lc.llama_batch_free(batch)
        lc.llama_free(ctx)


def draft_model_estimate(model: EmbeddedModel, args: argparse.Namespace) -> dict[str, Any]:
    """Whether a draft model would pay on this host, from measured parts (not built: see the README): the target's
    cost of verifying r rows in one step, the draft's cost of one token, and how often the draft's greedy token is the
    target's on the code prompt's greedy reply (teacher-forced). Expected speed-up of drafting g tokens, acceptance a
    per token (independent): (1 - a^(g+1)) / (1 - a) tokens per (g x draft step + verify(g + 1)), over verify(1)."""
    import llama_cpp as lc

    from ponder.llm.embedded._runtime import decode_batch

    runtime = model._shared.load()
    threads = model._shared.n_threads
    rows = [1, 2, 3, 5, 9]
    verify = _step_seconds(runtime.llama.model, threads, rows)
    mparams = lc.llama_model_default_params()
    draft = lc.llama_model_load_from_file(str(args.draft_model).encode(), mparams)
    if draft is None:
        raise SystemExit(f"could not load the draft model {args.draft_model}")
    try:
        draft_step = _step_seconds(draft, threads, [1])[1]
        messages = [user(SPECULATIVE["code"])]
        prompt = runtime.prompt_tokens(messages)
        (reply,) = model._shared.run_alone(prompt, [SampleParams(max_tokens=args.speculative_tokens or 128)], None)
        target = list(runtime.llama.tokenize(reply.text.encode(), add_bos=False, special=False))
        params = lc.llama_context_default_params()
        params.n_ctx = params.n_batch = params.n_ubatch = 1024
        params.n_threads = params.n_threads_batch = threads
        ctx = lc.llama_init_from_model(draft, params)
        batch = lc.llama_batch_init(1024, 0, 1)
        tokens = prompt + target
        decode_batch(ctx, batch, [(0, t, i, i >= len(prompt) - 1) for i, t in enumerate(tokens[:-1])])
        n_vocab = lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(draft))
        hits = sum(
            int(np.argmax(np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, len(prompt) - 1 + j), shape=(n_vocab,))))
            == token
            for j, token in enumerate(target)
        )
        lc.llama_batch_free(batch)
        lc.llama_free(ctx)
    finally:
        lc.llama_model_free(draft)
    a = hits / len(target)
    best = {}
    for g in (1, 2, 4, 8):
        cost = g * draft_step + verify[min((r for r in rows if r >= g + 1), default=rows[-1])]
        expected = (1 - a ** (g + 1)) / (1 - a) if a < 1 else g + 1
        best[g] = round(expected * verify[1] / cost, 2)
    return {
        "verify_s": {str(r): round(v, 4) for r, v in verify.items()},
        "draft_step_s": round(draft_step, 4),
        "acceptance": round(a, 2),
        "expected_speedup_by_draft_len": {str(g): v for g, v in best.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1 round of 32 tokens per call")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: the product default)")
    parser.add_argument("--kv-tokens", type=int, default=LLMSettings().kv_tokens)
    parser.add_argument("--concurrency", default="1,2,4,8", help="the concurrent call counts to measure")
    parser.add_argument("--single-calls", type=int, default=8, help="prompts measured one by one for 1 call")
    parser.add_argument("--cases", default="free,json", help="free (plain text), json (a JSON schema), or both")
    parser.add_argument("--draft-model", type=Path, help="a draft GGUF (same tokenizer): estimate its speed-up")
    parser.add_argument(
        "--speculative-tokens", type=int, default=128, help="tokens per speculative one-stream call (0: skip)"
    )
    args = parser.parse_args()
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.quick:
        args.rounds, args.max_tokens = 1, 32
    figures = asyncio.run(run(args))
    print(
        f"1 call: batched {figures['single_call_vs_serial']}x serial (target >= 0.98); 8 concurrent calls: "
        f"{figures['aggregate_speedup_8']}x the serial path's tok/s, {figures['aggregate_vs_one_stream_8']}x one "
        f"serial stream (target 3x), {figures['aggregate_8_vs_best_of_2_4']}x the best of 2 or 4 (target >= 1); "
        f"JSON/free at 8: {figures['json_vs_free_8']} (target >= 0.9); one stream reads "
        f"{figures['one_stream_weight_read_gb_s']} GB/s of weights (copy bandwidth "
        f"{figures['host']['copy_bandwidth_gb_s']} GB/s); one stream speculative/plain: "
        f"{figures['speculative_speedup']} (code, target 1.5; forced drafts "
        f"{figures['speculative_speedup_forced']}), {figures['speculative_speedup_prose']} (prose, target 1.0; forced "
        f"{figures['speculative_speedup_prose_forced']}); load average {figures['load_average_1m_start']} -> max "
        f"{figures['load_average_1m_max']}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
