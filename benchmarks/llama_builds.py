"""Prefill and decode speed of llama.cpp builds made with different instruction sets, side by side on this host.

Each build is a llama-cpp-python wheel (made by ``pip wheel`` with its CMAKE_ARGS, e.g. by ``scripts/setup.sh`` into
``.cache/wheels/llama-<hash>``). Every wheel is unpacked into a temporary folder and measured in a child process that
imports llama_cpp from there: load the default model, evaluate a fixed prompt (prefill tok/s), then decode greedy
tokens one at a time (decode tok/s). Rounds are interleaved (A, B, A, B, ...) so a busy host slows every build alike;
the first wheel is the baseline of the ratios. A child that dies with a signal marks its build unusable on this CPU.

    python benchmarks/llama_builds.py NAME=WHEEL [NAME=WHEEL ...] [--rounds 3] [--prompt-tokens 256] [--decode 64]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CHILD = r"""
import json, sys, time
import llama_cpp
model_path, n_prompt, n_decode, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llama = llama_cpp.Llama(model_path=model_path, n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                        n_gpu_layers=0, verbose=False)
text = "def fibonacci(n):\n    '''Return the n-th Fibonacci number.'''\n" * 200
prompt = llama.tokenize(text.encode())[:n_prompt]
t = time.perf_counter(); llama.eval(prompt); prefill = time.perf_counter() - t
token = prompt[-1]  # the token fed back does not change the cost of a decode step
t = time.perf_counter()
for _ in range(n_decode):
    llama.eval([token])
decode = time.perf_counter() - t
print(json.dumps({"prefill_tok_s": n_prompt / prefill, "decode_tok_s": n_decode / decode,
                  "features": llama_cpp.llama_print_system_info().decode()}))
"""


def run_child(site: Path, model: Path, args: argparse.Namespace) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_WAIT_POLICY": "passive"}
    argv = [sys.executable, "-c", CHILD, str(model), str(args.prompt_tokens), str(args.decode), str(args.threads)]
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=900, check=False)
    if proc.returncode < 0:
        return {"crashed": signal.Signals(-proc.returncode).name}
    if proc.returncode != 0:
        return {"failed": proc.stderr.decode(errors="replace")[-500:]}
    result: dict[str, object] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("builds", nargs="+", help="NAME=path/to/llama_cpp_python-*.whl; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--decode", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from ponder.config import LLMSettings
    from ponder.llm.embedded._model_files import ensure_default_model

    model = ensure_default_model(LLMSettings().cache_dir)
    builds = dict(b.split("=", 1) for b in args.builds)
    samples: dict[str, list[dict[str, object]]] = {name: [] for name in builds}
    with tempfile.TemporaryDirectory() as tmp:
        sites = {}
        for name, wheel in builds.items():
            sites[name] = Path(tmp) / name
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(sites[name])
            for lib in (sites[name] / "llama_cpp" / "lib").glob("*"):
                lib.chmod(0o755)
        load0 = os.getloadavg()[0]
        for r in range(args.rounds):
            for name in builds:
                samples[name].append(run_child(sites[name], model, args))
                print(f"round {r + 1} {name}: {samples[name][-1]}", flush=True)

    def median(name: str, key: str) -> float | None:
        values = [float(s[key]) for s in samples[name] if key in s]  # type: ignore[arg-type]
        return statistics.median(values) if values else None

    base = next(iter(builds))
    figures: dict[str, object] = {}
    for name in builds:
        crashed = [s["crashed"] for s in samples[name] if "crashed" in s]
        prefill, decode = median(name, "prefill_tok_s"), median(name, "decode_tok_s")
        bp, bd = median(base, "prefill_tok_s"), median(base, "decode_tok_s")
        figures[name] = {
            "prefill_tok_s": round(prefill, 2) if prefill else None,
            "decode_tok_s": round(decode, 2) if decode else None,
            "prefill_vs_" + base: round(prefill / bp, 3) if prefill and bp else None,
            "decode_vs_" + base: round(decode / bd, 3) if decode and bd else None,
            "crashed": crashed[0] if crashed else None,
            "features": next((s["features"] for s in samples[name] if "features" in s), None),
        }
        f = figures[name]
        assert isinstance(f, dict)
        print(
            f"{name:10s} prefill {f['prefill_tok_s']} tok/s ({f['prefill_vs_' + base]}x)  "
            f"decode {f['decode_tok_s']} tok/s ({f['decode_vs_' + base]}x)"
            + (f"  CRASHED {f['crashed']}" if crashed else "")
        )
    figures.update(
        threads=args.threads,
        prompt_tokens=args.prompt_tokens,
        decode_tokens=args.decode,
        rounds=args.rounds,
        load_average_1m_start=round(load0, 2),
        load_average_1m_end=round(os.getloadavg()[0], 2),
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
