"""What a llama.cpp step costs on this host, measured once per build + model, and the scheduler's choices drawn from it.

The batching scheduler and speculative decoding were first tuned on one host (Intel with AMX: a step of nine rows
cost about twice a step of one). On another host of the same machine kind (AMD EPYC, AVX2 only) a many-row step is
compute bound and costs nearly a row's price per row: there, eight calls in one step gain less than four, and a
verified draft of eight tokens costs as much as eight plain steps, so the same defaults made a single call 19 %
slower than the serial path (issue 36). Costs differ by an order of magnitude between hosts, so they are measured:

- **step_s[r]**: one ``llama_decode`` of one token of r different sequences (batched decoding);
- **verify_s[r]**: one ``llama_decode`` of r rows of one sequence (its pending token and r - 1 draft tokens);
- the thread count for one-row steps and for many-row steps (llama.cpp takes ``n_threads`` for a batch of one
  token and ``n_threads_batch`` otherwise), each the cheapest of a few candidates.

From those costs, with no constant tuned on one host:

- :meth:`Calibration.best_rows`: how many sequences to decode in one step when ``demand`` want to. Step costs are
  not smooth (on the AVX2 host above a step of 8 rows costs more than one of 12, and 3 rows give more rows per
  second than 8), so the scheduler takes the largest size, up to the demand, within ``KNEE`` of the best rows per
  second any size up to the demand gives; the other calls wait instead of slowing every running one.
- :meth:`Calibration.draft_length`: how many prompt-lookup tokens a greedy sequence should draft, given the share of
  its drafts accepted so far (a) and the rows already in the step (R): drafting k tokens yields
  ``(1 - a^(k+1)) / (1 - a)`` tokens for one sequence, so the step's throughput becomes
  ``(R - 1 + E(k)) / cost(R + k)`` against ``R / cost(R)``; the k that maximises it, or 0 when no k gains.

The measurement runs in a llama.cpp context made like the scheduler's (unified KV cache, the same sequence count, flash
attention as llama.cpp picks it), takes 10-30 s on 2 cores, and is stamped in the model cache beside the runtime self-
check (:mod:`ponder.llm.embedded._runtime_check`) under the same build key plus the settings it depends on, so a rebuilt
llama.cpp, another model file or another thread setting is measured again. ``ponder config`` shows it.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from ponder.llm.embedded._runtime import usable_cores
from ponder.llm.embedded._runtime_check import build_key

if TYPE_CHECKING:
    from ponder.config import LLMSettings
    from ponder.llm.embedded._runtime import LlamaRuntime

log = logging.getLogger(__name__)

VERSION = 1
ROWS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)  # batch sizes measured (up to the scheduler's sequences)
KNEE = 0.95  # max_rows: the fewest rows reaching this share of the best measured throughput
GAIN_MARGIN = 0.03  # a draft must raise the step's throughput by more than this (the costs are medians of noise)
_PROMPT_TOKENS = 256  # the measured steps attend to a prompt of this many tokens, as a typical call's do
_REPS = 5


class Host(BaseModel):
    cpu: str = Field(description="the CPU's model name")
    isa: list[str] = Field(description="the vector instruction sets llama.cpp can use here (from /proc/cpuinfo)")
    cores: int = Field(description="cores this process may run on")


class Calibration(BaseModel):
    """Measured step costs of one llama.cpp build + model on one host, and the choices drawn from them."""

    version: int = VERSION
    key: str = Field(description="the build + model key the costs belong to")
    host: Host
    threads: int = Field(description="llama.cpp threads for one-row steps")
    threads_batch: int = Field(description="llama.cpp threads for many-row steps")
    thread_trials: dict[int, dict[int, float]] = Field(
        default_factory=dict, description="threads -> {rows: seconds of one step}, for each candidate tried"
    )
    step_s: dict[int, float] = Field(description="rows of different sequences -> seconds of one step")
    verify_s: dict[int, float] = Field(description="rows of one sequence (1 + draft tokens) -> seconds of one step")
    measured_s: float = 0.0
    load_average_1m: float | None = None
    measured_at: str = ""

    # -- the choices -----------------------------------------------------------------------------------------------

    def cost(self, rows: int, *, one_sequence: bool = False) -> float:
        """Seconds of a step of ``rows`` rows, interpolated linearly between measured sizes (and extrapolated past
        the largest from its last two)."""
        if one_sequence and rows > 1 and self.verify_s:
            return _interpolate({1: self.step_s[1], **self.verify_s}, rows)
        return _interpolate(self.step_s, rows)

    def throughput(self, rows: int) -> float:
        return rows / self.cost(rows)

    def best_rows(self, demand: int) -> int:
        """Sequences to decode per step while ``demand`` want to: the largest size up to ``demand`` (a measured one,
        or ``demand`` itself) whose rows per second reach ``KNEE`` of the best such size."""
        if demand <= 1:
            return 1
        sizes = sorted({r for r in self.step_s if r <= demand} | {demand})
        best = max(self.throughput(r) for r in sizes)
        return max(r for r in sizes if self.throughput(r) >= KNEE * best)

    def draft_length(self, acceptance: float, room: int, rows: int = 1) -> int:
        """Draft tokens worth verifying for a sequence whose drafts are accepted at ``acceptance`` per token, in a
        step that already holds ``rows`` rows (its own pending token among them); 0: decode without a draft."""
        if room <= 0 or rows < 1:
            return 0
        a = min(max(acceptance, 0.0), 0.999)
        alone = rows == 1
        base = rows / self.cost(rows, one_sequence=alone)
        best_k, best = 0, base * (1.0 + GAIN_MARGIN)
        for k in range(1, room + 1):
            expected = (1.0 - a ** (k + 1)) / (1.0 - a)  # the pending token, then each draft token while accepted
            rate = (rows - 1 + expected) / self.cost(rows + k, one_sequence=alone)
            if rate > best:
                best_k, best = k, rate
        return best_k

    def summary(self) -> dict[str, Any]:
        """What ``ponder config`` and the benchmark print."""
        breakeven = {f"{a:.1f}": self.draft_length(a, max(self.verify_s, default=1) - 1) for a in (0.3, 0.5, 0.7, 0.9)}
        return {
            "host": self.host.model_dump(),
            "threads": self.threads,
            "threads_batch": self.threads_batch,
            "step_s": {str(r): round(s, 4) for r, s in sorted(self.step_s.items())},
            "rows_per_s": {str(r): round(self.throughput(r), 1) for r in sorted(self.step_s)},
            "verify_s": {str(r): round(s, 4) for r, s in sorted(self.verify_s.items())},
            "rows_per_step_by_demand": {str(d): self.best_rows(d) for d in (2, 4, 8, max(self.step_s))},
            "draft_tokens_by_acceptance": breakeven,
            "measured_s": round(self.measured_s, 1),
            "load_average_1m": self.load_average_1m,
            "measured_at": self.measured_at,
        }


def assumed(max_sequences: int, draft_tokens: int) -> Calibration:
    """The costs the scheduler assumes when calibration is off: a step of r rows costs ``1 + (r - 1) / 8`` of a
    step of one (the first host's figures), so every row is worth taking and drafts pay from ~15 % acceptance."""
    rows = sorted({r for r in ROWS if r <= max_sequences} | {1})
    verify = sorted({1 + k for k in range(1, draft_tokens + 1)})
    return Calibration(
        key="assumed",
        host=host(),
        threads=0,
        threads_batch=0,
        step_s={r: 1.0 + (r - 1) / 8 for r in rows},
        verify_s={r: 1.0 + (r - 1) / 8 for r in verify},
    )


def host() -> Host:
    flags: set[str] = set()
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    known = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "asimd")
    return Host(cpu=cpu, isa=[f for f in known if f in flags], cores=usable_cores())


def thread_candidates(default: int) -> list[int]:
    """The thread counts tried: the default, every core, and half of them."""
    cores = usable_cores()
    return sorted({c for c in (default, cores, max(1, cores // 2)) if 1 <= c <= max(cores, default)})


def stamp_path(
    stamp_dir: Path, model_path: Path, *, max_sequences: int, draft_tokens: int, threads: int | None, kv_tokens: int
) -> Path:
    key = build_key(model_path)
    tail = f"s{max_sequences}-d{draft_tokens}-t{threads or 'auto'}-kv{kv_tokens}"
    return stamp_dir / f"llama-calibration-{key}-{tail}.json"


def load(path: Path) -> Calibration | None:
    """The stamped calibration at ``path``, or None when there is none (or it is of an older version)."""
    try:
        cal = Calibration.model_validate_json(path.read_text())
    except (OSError, ValidationError):
        return None
    return cal if cal.version == VERSION else None


def load_or_measure(
    runtime: LlamaRuntime,
    model_path: Path,
    stamp_dir: Path,
    *,
    max_sequences: int,
    draft_tokens: int,
    threads: int | None,
    default_threads: int,
    kv_tokens: int,
) -> Calibration:
    """The stamped calibration for this build, model and settings, measured now (and stamped) if there is none.
    ``threads`` set by the user is kept; None tries :func:`thread_candidates` of ``default_threads``."""
    path = stamp_path(
        stamp_dir,
        model_path,
        max_sequences=max_sequences,
        draft_tokens=draft_tokens,
        threads=threads,
        kv_tokens=kv_tokens,
    )
    cal = load(path)
    if cal is not None:
        return cal
    log.info("calibrating the embedded engine for this host (once per llama.cpp build and model)")
    cal = measure(
        runtime,
        key=build_key(model_path),
        max_sequences=max_sequences,
        draft_tokens=draft_tokens,
        candidates=[threads] if threads else thread_candidates(default_threads),
        kv_tokens=kv_tokens,
    )
    try:
        stamp_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(cal.model_dump_json(indent=1))
        tmp.replace(path)
    except OSError as exc:  # a read-only cache measures again next start; nothing else changes
        log.warning("could not stamp the calibration in %s: %s", stamp_dir, exc)
    return cal


def measure(
    runtime: LlamaRuntime,
    *,
    key: str,
    max_sequences: int,
    draft_tokens: int,
    candidates: list[int],
    kv_tokens: int,
) -> Calibration:
    """Time steps of 1..``max_sequences`` rows and verify steps of 1 + 1..``draft_tokens`` rows in a context made
    like the scheduler's, with its ``kv_tokens`` cells (a larger cache makes every step dearer: 64 vs 52 ms a row
    at 16,384 vs 512 cells on the AVX2 host); medians of ``_REPS`` runs after a warm-up."""
    import llama_cpp as lc

    from ponder.llm.embedded._runtime import decode_batch

    started = time.perf_counter()
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = [r for r in ROWS if r <= max_sequences]
    verify = sorted({r for r in (2, 3, 4, 5, 7, 9, 13, 17, 33) if r <= draft_tokens + 1} | {min(draft_tokens, 32) + 1})
    verify = [r for r in verify if r > 1]
    params = lc.llama_context_default_params()
    params.n_ctx = max(kv_tokens, _PROMPT_TOKENS + max(max(rows), max(verify, default=1)) + 64)
    params.n_batch = params.n_ubatch = 512
    params.n_seq_max = max_sequences
    params.kv_unified = True
    params.n_threads = params.n_threads_batch = candidates[0]
    ctx = lc.llama_init_from_model(runtime.llama.model, params)
    if ctx is None:
        raise RuntimeError("llama.cpp could not make a context to calibrate in (out of memory?)")
    memory = lc.llama_get_memory(ctx)
    batch = lc.llama_batch_init(512, 0, max_sequences)
    n_vocab = runtime.n_vocab
    prompt = [(7 * i + 11) % min(n_vocab, 50_000) for i in range(_PROMPT_TOKENS)]
    p = _PROMPT_TOKENS

    def step(r: int, *, one_sequence: bool) -> float:
        items = (
            [(0, 100 + i, p + i, True) for i in range(r)] if one_sequence else [(s, 100 + s, p, True) for s in range(r)]
        )
        t = time.perf_counter()
        decode_batch(ctx, batch, items)
        took = time.perf_counter() - t
        for s in range(1 if one_sequence else r):
            lc.llama_memory_seq_rm(memory, s, p, -1)
        return took

    def median(r: int, *, one_sequence: bool = False) -> float:
        return statistics.median(step(r, one_sequence=one_sequence) for _ in range(_REPS))

    try:
        decode_batch(ctx, batch, [(0, t, i, False) for i, t in enumerate(prompt)])
        for s in range(1, max_sequences):
            lc.llama_memory_seq_cp(memory, 0, s, 0, p)
        probe = min(8, max(rows))
        trials: dict[int, dict[int, float]] = {}
        for n in candidates:
            lc.llama_set_n_threads(ctx, n, n)
            step(1, one_sequence=False)  # warm-up (thread pool, caches)
            trials[n] = {1: median(1), probe: median(probe)}
        threads = min(trials, key=lambda n: trials[n][1])
        threads_batch = min(trials, key=lambda n: trials[n][probe])
        lc.llama_set_n_threads(ctx, threads, threads_batch)
        step_s = {r: median(r) for r in rows}
        verify_s = {r: median(r, one_sequence=True) for r in verify}
    finally:
        lc.llama_batch_free(batch)
        lc.llama_free(ctx)
    return Calibration(
        key=key,
        host=host(),
        threads=threads,
        threads_batch=threads_batch,
        thread_trials=trials,
        step_s=_monotone(step_s),
        verify_s=_monotone(verify_s),
        measured_s=time.perf_counter() - started,
        load_average_1m=round(load_avg, 2) if load_avg is not None else None,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _monotone(table: dict[int, float]) -> dict[int, float]:
    """A step of more rows never costs less than one of fewer (a cheaper larger step is noise): running maximum."""
    out: dict[int, float] = {}
    top = 0.0
    for r in sorted(table):
        top = max(top, table[r])
        out[r] = top
    return out


def _interpolate(table: dict[int, float], x: int) -> float:
    keys = sorted(table)
    if x in table:
        return table[x]
    if x <= keys[0]:
        return table[keys[0]]
    if len(keys) == 1:
        return table[keys[0]] * x / keys[0]
    if x >= keys[-1]:
        lo, hi = keys[-2], keys[-1]
    else:
        hi = next(k for k in keys if k > x)
        lo = max(k for k in keys if k < x)
    slope = (table[hi] - table[lo]) / (hi - lo)
    return table[lo] + slope * (x - lo)


def settings_stamp(settings: LLMSettings, model: Path | None = None) -> Path:
    """Where the calibration for ``settings`` (embedded backend) is stamped; ``model``: the file it loads, if known."""
    from ponder.llm.embedded._weight_layout import model_file

    return stamp_path(
        settings.cache_dir.expanduser(),
        model or model_file(settings),
        max_sequences=settings.max_sequences,
        draft_tokens=settings.draft_tokens,
        threads=settings.n_threads,
        kv_tokens=settings.kv_tokens,
    )


def calibrate(settings: LLMSettings, *, force: bool = False) -> Calibration:
    """The calibration for ``settings``, measured now when there is none stamped (or ``force``): what ``ponder
    calibrate`` and ``scripts/setup.sh`` run, so the server's first request does not wait for it."""
    from ponder.llm.embedded._runtime import LlamaRuntime, default_threads
    from ponder.llm.embedded._weight_layout import model_file

    path = model_file(settings)
    stamp = settings_stamp(settings, path)
    if force:
        stamp.unlink(missing_ok=True)
    elif (cal := load(stamp)) is not None:
        return cal
    threads = settings.n_threads or default_threads()
    runtime = LlamaRuntime(path, n_ctx=256, n_threads=threads)
    try:
        return load_or_measure(
            runtime,
            path,
            settings.cache_dir.expanduser(),
            max_sequences=settings.max_sequences,
            draft_tokens=settings.draft_tokens,
            threads=settings.n_threads,
            default_threads=threads,
            kv_tokens=settings.kv_tokens,
        )
    finally:
        runtime.close()
