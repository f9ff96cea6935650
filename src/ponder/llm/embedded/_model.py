"""The embedded backend: a GGUF model run in process by llama.cpp (llama-cpp-python), constrained token by token.

``EmbeddedModel.from_settings(settings.llm)`` is cheap: it finds and checks the model file, nothing more. The model
loads on the first request, in a worker thread, after a child process has checked that this llama.cpp build runs on
this CPU (:mod:`ponder.llm.embedded._runtime_check`). Every call is a job of the in-flight batching
scheduler (:mod:`ponder.llm.embedded._scheduler`), the one decode path: concurrent calls decode together; without
batching (``serial()``, ``PONDER_LLM__BATCHING=false``) or under an outlines engine a call's job runs alone.
``aclose()`` (or ``async with``) frees it.

Constraints (JSON schema, regex, choice, grammar) are enforced by the engine ``settings.constraint_engine`` names;
see :mod:`ponder.llm.embedded._constraints` and ``benchmarks/structured_generation.py`` for how they compare.
A constraint the engine cannot enforce raises :class:`UnsupportedConstraint` before any token is generated.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import anyio.to_thread

from ponder.config import ConstraintEngine, LLMSettings, default_cache_dir
from ponder.errors import ModelRequestRejected, ModelRuntimeError, ModelServerError, PonderError
from ponder.llm._progress import current_progress
from ponder.llm._types import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    Choice,
    Constraint,
    StreamChunk,
    Timings,
    Usage,
)
from ponder.llm.embedded._calibration import Calibration, assumed, load_or_measure
from ponder.llm.embedded._constraints import SUPPORTED, Compiled, Engine, build_engine, check_kind
from ponder.llm.embedded._runtime import (
    Generation,
    LlamaRuntime,
    SampleParams,
    check_model_file,
    default_threads,
)
from ponder.llm.embedded._runtime_check import check_runtime
from ponder.llm.embedded._scheduler import Job, Scheduler, Speculation
from ponder.llm.embedded._weight_layout import model_file

_COMPILED_CACHE = 64
_ALONE_SEQUENCES = 8  # one at a time: the most samples of one call decoded together


def _one_at_a_time(n_ctx: int) -> BatchingOptions:
    """The scheduler's settings when calls run one at a time (``batching`` off): samples of one call still decode
    together, in a cache of twice the per-call context; nothing is calibrated (one call's rows need no choosing)."""
    return BatchingOptions(
        max_sequences=_ALONE_SEQUENCES, kv_tokens=2 * n_ctx, prefill_chunk=512, max_queue=256, calibrate=False
    )


@dataclass(frozen=True)
class BatchingOptions:
    """In-flight batching of the embedded backend (see :mod:`ponder.llm.embedded._scheduler`); the defaults and
    bounds are LLMSettings' ``max_sequences``, ``kv_tokens``, ``prefill_chunk`` and ``max_queue``."""

    max_sequences: int
    kv_tokens: int
    prefill_chunk: int
    max_queue: int
    draft_tokens: int = 0
    calibrate: bool = True  # measure this host's step costs (once per build + model); False assumes them
    calibration: Calibration | None = None  # given costs (a test seam); None: measured or assumed as above


class _Shared:
    """The loaded model and what is built on it, shared by the views :meth:`EmbeddedModel.with_engine` returns."""

    def __init__(
        self,
        path: Path,
        n_ctx: int,
        n_threads: int,
        threads_set: bool,
        prompt_cache_bytes: int,
        runtime_check: Sequence[str] | None,
        stamp_dir: Path,
        batching: BatchingOptions,
    ) -> None:
        self.path = path
        self.batching = batching
        self.scheduler: Scheduler | None = None
        self.runtime_check = runtime_check
        self.stamp_dir = stamp_dir
        self.runtime_error: ModelRuntimeError | None = None  # a failed runtime check, kept: the build won't change
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.threads_set = threads_set  # the user chose n_threads: calibration keeps it
        self.prompt_cache_bytes = prompt_cache_bytes
        self.runtime: LlamaRuntime | None = None
        self.engines: dict[ConstraintEngine, Engine] = {}
        self.compiled: OrderedDict[tuple[ConstraintEngine, str], Compiled] = OrderedDict()
        # The thread lock guards llama.cpp itself; the asyncio locks (one per event loop, so the model may outlive a
        # loop, as a session-wide test fixture does) keep waiting callers off the worker threads.
        self.thread_lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.get(loop)
        if lock is None:
            lock = self._loop_locks[loop] = asyncio.Lock()
        return lock

    def load(self) -> LlamaRuntime:
        if self.runtime is None:
            if self.runtime_error is not None:
                raise self.runtime_error
            check_model_file(self.path)
            try:  # in a child process: a build this CPU cannot run must fail the request, not kill the server
                check_runtime(self.path, self.stamp_dir, command=self.runtime_check)
            except ModelRuntimeError as exc:
                self.runtime_error = exc
                raise
            self.runtime = LlamaRuntime(self.path, n_ctx=self.n_ctx, n_threads=self.n_threads)
        return self.runtime

    def batcher(self) -> Scheduler:
        """The scheduler every call goes through, started on first use (the model is loaded first)."""
        if self.scheduler is None:
            self.scheduler = Scheduler(
                self.load(),
                calibration=self.calibration(),
                max_sequences=self.batching.max_sequences,
                kv_tokens=self.batching.kv_tokens,
                n_threads=self.n_threads,
                prefill_chunk=self.batching.prefill_chunk,
                max_queue=self.batching.max_queue,
                draft_tokens=self.batching.draft_tokens,
                prompt_cache_bytes=self.prompt_cache_bytes,
            )
        return self.scheduler

    def calibration(self) -> Calibration:
        """This host's step costs for the scheduler: given, stamped, measured now (once per build + model), or
        assumed when calibration is off."""
        options = self.batching
        if options.calibration is not None:
            return options.calibration
        if not options.calibrate:
            return assumed(options.max_sequences, options.draft_tokens)
        return load_or_measure(
            self.load(),
            self.path,
            self.stamp_dir,
            max_sequences=options.max_sequences,
            draft_tokens=options.draft_tokens,
            threads=self.n_threads if self.threads_set else None,
            default_threads=self.n_threads,
            kv_tokens=options.kv_tokens,
        )

    def run_alone(
        self, prompt: list[int], params: list[SampleParams], compiled: Compiled | None, speculate: Speculation = "off"
    ) -> list[Generation]:
        """``params``' samples of ``prompt`` as one job that runs alone, waited for in this (worker) thread: how the
        benchmarks time decoders side by side on the one decode path."""
        job = Job(prompt=prompt, params=params, compiled=compiled, speculate=speculate, exclusive=True)
        self.batcher().submit(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def compile(self, engine: ConstraintEngine, constraint: Constraint) -> Compiled:
        key = (engine, constraint.model_dump_json())
        hit = self.compiled.get(key)
        if hit is not None:
            self.compiled.move_to_end(key)
            return hit
        if engine not in self.engines:
            self.engines[engine] = build_engine(self.load().llama, engine)
        compiled = self.engines[engine].compile(constraint)
        self.compiled[key] = compiled
        while len(self.compiled) > _COMPILED_CACHE:
            self.compiled.popitem(last=False)
        return compiled


class EmbeddedModel:
    """A :class:`~ponder.llm.ChatModel` running a GGUF model in process."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        constraint_engine: ConstraintEngine = ConstraintEngine.llguidance,
        prompt_cache_mb: int = 512,
        runtime_check: Sequence[str] | None = None,
        stamp_dir: Path | None = None,
        batching: BatchingOptions | None = None,
    ) -> None:
        """``prompt_cache_mb``: RAM for the KV caches of recent prompts, so a prompt sharing a prefix with any of
        them, once the scheduler's sequence slot that held it went to another call, skips evaluating it; 0 keeps
        only what the slots hold.

        Before the model loads, a child process checks that this llama.cpp build runs on this CPU (once per build;
        the verdict is stamped in ``stamp_dir``, default: the model cache); ``runtime_check`` replaces that
        child's command (a test seam).

        ``batching`` decodes concurrent calls together (:mod:`ponder.llm.embedded._scheduler`); None serves one call
        at a time, as a baseline, through the same scheduler (constraints of the outlines engines, whose guides
        cannot share a step, always run alone)."""
        self._shared = _Shared(
            model_path,
            n_ctx,
            n_threads or default_threads(),
            n_threads is not None,
            prompt_cache_mb << 20,
            runtime_check,
            stamp_dir or default_cache_dir(),
            batching or _one_at_a_time(n_ctx),
        )
        self._engine = constraint_engine
        self._serial = batching is None
        self._speculate: Speculation = "auto"

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> EmbeddedModel:
        """The model ``settings.model_path`` names, else the default model, assembled and verified in the cache."""
        return cls(
            model_file(settings),
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
            constraint_engine=settings.constraint_engine,
            prompt_cache_mb=settings.prompt_cache_mb,
            stamp_dir=settings.cache_dir.expanduser(),
            batching=BatchingOptions(
                max_sequences=settings.max_sequences,
                kv_tokens=settings.kv_tokens,
                prefill_chunk=settings.prefill_chunk,
                max_queue=settings.max_queue,
                draft_tokens=settings.draft_tokens,
                calibrate=settings.calibrate,
            )
            if settings.batching
            else None,
        )

    def with_engine(self, engine: ConstraintEngine) -> EmbeddedModel:
        """The same loaded model, constrained by another engine (for comparisons; shares the lock)."""
        view = object.__new__(EmbeddedModel)
        view._shared = self._shared
        view._engine = engine
        view._serial = self._serial
        view._speculate = self._speculate
        return view

    def serial(self) -> EmbeddedModel:
        """The same loaded model serving one call at a time, not batched and never drafting (the baseline of
        comparisons: each call is a job that runs alone)."""
        view = self.with_engine(self._engine)
        view._serial = True
        return view

    def without_speculation(self) -> EmbeddedModel:
        """The same loaded model, batched, never decoding speculatively (the baseline of the speculative figures)."""
        return self._speculating("off")

    def always_speculating(self) -> EmbeddedModel:
        """The same loaded model, batched, drafting whenever a lookup finds one, whether or not it pays here (for
        checking that speculative text is plain text, and for measuring what the calibrated choice saves)."""
        return self._speculating("always")

    def _speculating(self, policy: Speculation) -> EmbeddedModel:
        view = self.with_engine(self._engine)
        view._speculate = policy
        return view

    @property
    def name(self) -> str:
        return f"embedded:{self._shared.path.name}"

    @property
    def constraint_engine(self) -> ConstraintEngine:
        return self._engine

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(constraints=SUPPORTED[self._engine], native_n=True, logprobs=True, seed=True)

    async def prepare(self, constraint: Constraint) -> None:
        """Compile ``constraint`` now (loading the model if needed), so the first request using it does not wait;
        raises :class:`UnsupportedConstraint` if the engine cannot enforce it."""
        check_kind(self._engine, constraint)
        async with self._shared.loop_lock():
            await anyio.to_thread.run_sync(self._prepare_sync, constraint)

    @property
    def batching(self) -> bool:
        return not self._serial

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if request.constraint is not None:
            check_kind(self._engine, request.constraint)
        jobs = await anyio.to_thread.run_sync(self._jobs, request)
        progress = current_progress()
        for job in jobs:  # one job, or one per sample where the guides cannot share a step
            job.progress = progress
            await self._run_job(job)
        first = jobs[0]
        return self._response(first.prompt, [g for job in jobs for g in job.result or []], first.start)

    async def _run_job(self, job: Job) -> None:
        """Submit ``job`` to the scheduler and wait for it; a cancelled caller cancels its sequences."""
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def settle() -> None:
            if not finished.done():
                finished.set_result(None)

        def done() -> None:  # runs in the scheduler thread
            loop.call_soon_threadsafe(settle)

        job.on_done = done
        scheduler = self._shared.batcher()
        scheduler.submit(job)
        try:
            await asyncio.shield(finished)
        except asyncio.CancelledError:
            job.cancel.set()  # the sequences stop at the next step and free their cells
            scheduler.wake()
            raise
        if job.error is not None:
            raise job.error
        assert job.result is not None

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        """The reply's text as it is generated, then one last chunk with the whole response (``n`` must be 1)."""
        if request.n != 1:
            raise ModelRequestRejected(f"streaming returns one reply; n={request.n}", hint="use complete() for n > 1")
        if request.constraint is not None:
            check_kind(self._engine, request.constraint)
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue[str] = asyncio.Queue()
        cancel = threading.Event()

        def on_text(delta: str) -> None:  # runs in the worker thread
            loop.call_soon_threadsafe(deltas.put_nowait, delta)

        (job,) = await anyio.to_thread.run_sync(self._jobs, request)
        job.on_text, job.cancel, job.progress = on_text, cancel, current_progress()
        task = asyncio.ensure_future(self._run_job(job))
        try:
            while True:
                getter = asyncio.ensure_future(deltas.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                yield StreamChunk(delta=getter.result())
            # the worker's last deltas were queued before its result (call_soon_threadsafe keeps order)
            while not deltas.empty():
                yield StreamChunk(delta=deltas.get_nowait())
            task.result()  # raises the job's error
            yield StreamChunk(response=self._response(job.prompt, job.result or [], job.start))
        finally:
            if not task.done():  # the consumer stopped early: end decoding
                cancel.set()
                self._shared.batcher().wake()
                await asyncio.wait({task})

    async def aclose(self) -> None:
        """Free the model; a later request loads it again."""
        async with self._shared.loop_lock():
            await anyio.to_thread.run_sync(self._close_sync)

    async def __aenter__(self) -> EmbeddedModel:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- worker-thread side ---------------------------------------------------------------------------------------

    def _prepare_sync(self, constraint: Constraint) -> None:
        with self._shared.thread_lock, _translated():
            self._shared.compile(self._engine, constraint)

    def _close_sync(self) -> None:
        with self._shared.thread_lock:
            shared = self._shared
            if shared.scheduler is not None:  # fails what still waits or runs, then frees its context
                shared.scheduler.close()
                shared.scheduler = None
            if shared.runtime is not None:
                shared.engines.clear()
                shared.compiled.clear()
                shared.runtime.close()
                shared.runtime = None

    def _jobs(self, request: ChatRequest) -> list[Job]:
        """The scheduler jobs for ``request`` (model loaded, constraint compiled, prompt tokenized): one, or one per
        sample, each running alone, when the constraint's guides cannot share a step (the outlines engines keep
        one stateful processor per constraint)."""
        with self._shared.thread_lock, _translated():
            runtime = self._shared.load()
            compiled = self._shared.compile(self._engine, request.constraint) if request.constraint else None
            prompt = runtime.prompt_tokens(request.messages)
            runtime.check_prompt(prompt)
            self._shared.batcher()  # started here, off the event loop: it allocates the batching KV cache
        budget = runtime.n_ctx - len(prompt)  # one sequence never holds more than the per-call context
        params = self._params(request, budget)
        speculate: Speculation = "off" if self._serial else self._speculate
        if compiled is not None and not compiled.concurrent:
            return [
                Job(prompt=prompt, params=[p], compiled=compiled, speculate=speculate, exclusive=True) for p in params
            ]
        return [Job(prompt=prompt, params=params, compiled=compiled, speculate=speculate, exclusive=self._serial)]

    @staticmethod
    def _params(request: ChatRequest, budget: int | None = None) -> list[SampleParams]:
        return [
            SampleParams(
                temperature=request.temperature,
                top_p=request.top_p,
                max_tokens=request.max_tokens if budget is None else min(request.max_tokens, budget),
                stop=request.stop,
                seed=None if request.seed is None else request.seed + i,
                logprobs=request.logprobs,
                top_logprobs=request.top_logprobs,
            )
            for i in range(request.n)
        ]

    def _response(self, prompt: list[int], generations: list[Generation], start: float) -> ChatResponse:
        first = generations[0]
        return ChatResponse(
            model=self.name,
            choices=[
                Choice(
                    index=i, text=g.text, finish_reason=g.finish_reason, logprobs=g.logprobs, confidence=g.confidence
                )
                for i, g in enumerate(generations)
            ],
            usage=Usage(
                prompt_tokens=len(prompt),
                completion_tokens=sum(g.completion_tokens for g in generations),
                cached_tokens=first.cached_tokens,
            ),
            timings=Timings(
                total_s=time.perf_counter() - start,
                first_token_s=first.first_token_s,
                prompt_s=first.prompt_s,
            ),
        )


@contextmanager
def _translated() -> Iterator[None]:
    """Turn llama.cpp's and the constraint libraries' untyped failures into :class:`ModelServerError`."""
    try:
        yield
    except PonderError:
        raise
    except Exception as exc:
        raise ModelServerError(
            f"the embedded model failed: {type(exc).__name__}: {exc}",
            hint="this is a bug or a resource problem (memory, context size); see the log",
            retryable=False,
        ) from exc
