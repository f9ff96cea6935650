"""In-flight (continuous) batching for the embedded backend: every concurrent call decodes in one llama.cpp batch.

This is the embedded backend's one decode path: a call that must run alone (``Job.exclusive``: the serial
baseline, ``PONDER_LLM__BATCHING=false``, or a constraint whose guides cannot share a step) is the same job,
admitted only when nothing else runs and holding the model until it ends.

Decoding one sequence on a CPU is memory-bandwidth bound: each token reads all the weights (1.1 GB for the default
model). A llama.cpp batch reads them once for every sequence in it, so a step of 8 tokens costs little more than a
step of one. The scheduler does on a CPU what vLLM does on a GPU:

- **One context, many sequences.** A llama.cpp context with a unified KV cache of ``kv_tokens`` cells and
  ``max_sequences`` sequence slots, owned by one scheduler thread. Calls from any thread submit a :class:`Job`
  (a prompt, its n samples' parameters, a constraint) and wait for it.
- **A step decodes one token of every running sequence**, whatever call it belongs to, in one ``llama_decode``;
  each sequence keeps its own sampler chain, constraint guide, stop strings, seed, logprobs and budget
  (:class:`~ponder.llm.embedded._runtime._Sequence`).
- **New calls join between steps.** Prompts are prefilled in chunks inside the same steps: a whole batch of prompt
  tokens when nothing is decoding, ``prefill_chunk`` tokens while other calls decode (so a long prompt delays the
  running streams by a bounded amount per token instead of stalling them).
- **A prefix cache over all sequences.** A finished call's prompt and reply stay in the KV cache in an idle slot; a
  new prompt starts from the longest prefix any slot holds (copied between sequences without copying data: the KV
  cache is unified), or from a saved state in the RAM prompt cache where an evicted slot went.
- **Finished or cancelled sequences free their cells at once**; a full cache or full slot table queues calls in
  FIFO order (bounded by ``max_queue``); a call that could never fit is refused before it waits.
- **Costs measured on this host** (:mod:`ponder.llm.embedded._calibration`, once per llama.cpp build and model): what a
  step of r rows costs decides how many sequences decode together (the best rows per second for the calls that want to
  run, :meth:`~ponder.llm.embedded._calibration.Calibration.best_rows`: a call past it waits instead of slowing every
  running one; a job with more samples than that runs when it is alone), which threads decode one row and many, and
  whether a draft pays. On an Intel host with AMX a step of nine rows costs about twice a step of one; on an AVX2-only
  AMD host of the same machine kind it costs about nine times as much, so no constant serves both.
- **Speculative decoding by prompt lookup that pays or stops**: a greedy sequence whose last tokens occurred earlier
  in its prompt or reply can propose the tokens that followed them there (:func:`lookup_draft`); they are decoded in
  the same step, and the sequence takes them one by one for as long as each is the token it samples itself from the
  row before, with its own constraint and stop strings, so its text is the one plain decoding gives (up to the
  rounding of a many-row step, as in batching); the rejected rows' cells are freed at once. Each sequence keeps the
  share of its drafts' tokens that matched (:class:`DraftRecord`: from drafts it verified and, at no cost, from
  drafts it only compared with the tokens it then decoded), and drafts only as many tokens as raise the step's
  throughput by the calibrated costs (:meth:`~ponder.llm.embedded._calibration.Calibration.draft_length`): prose, whose
  drafts rarely match, decodes plainly by itself, and a host where a verified row costs a plain step's price drafts
  only near-certain copies. Sampled sequences (temperature > 0) never speculate: an exact speculative sampler would
  draw other samples for a seed than plain decoding does.

Written by hand because llama-cpp-python serves one sequence per ``Llama`` (its server queues calls), and no kept
Python library schedules llama.cpp's batch API.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ponder.errors import ModelRequestRejected, ModelServerError, PonderError, ServiceBusy
from ponder.llm._progress import CallProgress
from ponder.llm.embedded._calibration import Calibration
from ponder.llm.embedded._constraints import Compiled
from ponder.llm.embedded._prompt_cache import PromptCache, shared_prefix

if TYPE_CHECKING:
    from ponder.llm.embedded._runtime import Generation, LlamaRuntime, SampleParams, _Clock, _Sequence

log = logging.getLogger(__name__)

Speculation = Literal["auto", "always", "off"]  # auto: draft when the calibrated costs say it pays
DRAFT_DECAY = 0.8  # each earlier draft counts this much less than the next one: the text's kind changes as it goes
DRAFT_PRIOR = 0.5  # the acceptance assumed before a sequence has any evidence, worth one draft token


@dataclass
class DraftRecord:
    """How well prompt-lookup drafts predict one sample: accepted tokens and rejections (the geometric estimate of
    the per-token acceptance), decayed so recent text counts most. Drafts the sample does not verify are still
    compared with the tokens it decodes next (a *shadow* draft), so a sample that stopped drafting keeps learning
    whether it should start again, at no cost."""

    hits: float = 0.0
    misses: float = 0.0
    shadow: list[int] = field(default_factory=list)
    matched: int = 0  # shadow tokens matched so far

    @property
    def acceptance(self) -> float:
        return (self.hits + DRAFT_PRIOR) / (self.hits + self.misses + 1.0)

    def record(self, accepted: int, rejected: bool) -> None:
        self.hits = DRAFT_DECAY * self.hits + accepted
        self.misses = DRAFT_DECAY * self.misses + (1.0 if rejected else 0.0)

    def observe(self, token: int) -> None:
        """The sample took ``token``: compare it with the open shadow draft, closing it at its end or first miss."""
        if not self.shadow:
            return
        if token == self.shadow[self.matched]:
            self.matched += 1
            if self.matched < len(self.shadow):
                return
            self.record(self.matched, False)
        else:
            self.record(self.matched, True)
        self.shadow, self.matched = [], 0


@dataclass
class Job:
    """One call: ``len(params)`` samples of one prompt. The scheduler fills ``result`` or ``error`` and sets
    ``done``; ``on_done`` (if given) is called from the scheduler thread right after."""

    prompt: list[int]
    params: list[SampleParams]
    compiled: Compiled | None
    on_text: Callable[[str], None] | None = None  # n == 1 only: the reply's text as it grows
    cancel: threading.Event = field(default_factory=threading.Event)
    on_done: Callable[[], None] | None = None
    progress: CallProgress | None = None  # updated after every step, for whoever watches the call
    start: float = field(default_factory=time.perf_counter)
    done: threading.Event = field(default_factory=threading.Event)
    result: list[Generation] | None = None
    error: BaseException | None = None
    # the scheduler's bookkeeping
    slots: list[int] = field(default_factory=list)
    budgets: list[int] = field(default_factory=list)
    reserved: int = 0  # KV cells held back for this job
    fed: int = 0  # prompt tokens in the leader slot's KV cache (reused or evaluated)
    cached: int = 0
    prompt_s: float = 0.0
    admitted_at: float = 0.0
    seqs: list[_Sequence] = field(default_factory=list)
    pending: dict[int, int] = field(default_factory=dict)  # sample index -> token to decode next
    steps: list[int] = field(default_factory=list)  # sample index -> tokens sampled so far
    clock: _Clock | None = None
    speculate: Speculation = "auto"  # greedy samples' prompt-lookup drafts (the scheduler's draft_tokens > 0)
    exclusive: bool = False  # runs alone: admitted when nothing runs, and nothing else is admitted until it ends
    drafts: list[DraftRecord] = field(default_factory=list)  # sample index -> how well its drafts predict it

    @property
    def leader(self) -> int:
        return self.slots[0]


@dataclass
class SchedulerStats:
    steps: int = 0
    decoded_tokens: int = 0  # sampled-token rows decoded (all sequences)
    prompt_tokens: int = 0  # prompt tokens evaluated
    reused_tokens: int = 0  # prompt tokens served by the prefix cache (slots or RAM)
    max_running: int = 0  # the most sequences decoded in one step
    capped: int = 0  # admissions deferred because the running sequences were at the calibrated best rows
    drafted: int = 0  # prompt-lookup draft tokens decoded for verification
    accepted: int = 0  # draft tokens the sequences sampled themselves (the rest were rejected and freed)


class Scheduler:
    """The scheduler thread and its llama.cpp context. ``submit`` is thread-safe; ``close`` ends the thread."""

    def __init__(
        self,
        runtime: LlamaRuntime,
        *,
        max_sequences: int,
        kv_tokens: int,
        n_threads: int,
        prefill_chunk: int,
        max_queue: int,
        prompt_cache_bytes: int,
        calibration: Calibration,
        batch_tokens: int = 512,
        draft_tokens: int = 0,
    ) -> None:
        """``calibration``: this host's step costs (:mod:`ponder.llm.embedded._calibration`); its thread counts, when
        measured, replace ``n_threads``."""
        import llama_cpp as lc

        self._runtime = runtime
        self.max_sequences = max_sequences
        self.prefill_chunk = max(1, prefill_chunk)
        self.max_queue = max_queue
        self.batch_tokens = batch_tokens
        self.draft_tokens = draft_tokens
        self.calibration = calibration
        params = lc.llama_context_default_params()
        params.n_ctx = kv_tokens
        params.n_batch = params.n_ubatch = batch_tokens
        params.n_seq_max = max_sequences
        params.kv_unified = True
        params.n_threads = calibration.threads or n_threads
        params.n_threads_batch = calibration.threads_batch or n_threads
        ctx = lc.llama_init_from_model(runtime.llama.model, params)
        if ctx is None:
            raise ModelServerError(
                f"llama.cpp could not make a batching context of {kv_tokens} KV cells (out of memory?)",
                hint="lower PONDER_LLM__KV_TOKENS",
                retryable=False,
            )
        self.ctx = ctx
        self._memory = lc.llama_get_memory(ctx)
        self._batch = lc.llama_batch_init(batch_tokens, 0, max_sequences)
        self.kv_tokens = lc.llama_n_ctx(ctx)
        self._prompt_cache = PromptCache(prompt_cache_bytes)
        # per slot: the tokens whose KV cells it holds; the idle slots, least recently used first
        self._kv: list[list[int]] = [[] for _ in range(max_sequences)]
        self._idle: OrderedDict[int, None] = OrderedDict((s, None) for s in range(max_sequences))  # LRU first
        self._waiting: deque[Job] = deque()
        self._running: list[Job] = []
        self._reserved = 0
        self._cond = threading.Condition()
        self._closed = False
        self.stats = SchedulerStats()
        self._thread = threading.Thread(target=self._loop, name="ponder-embedded-scheduler", daemon=True)
        self._thread.start()

    # -- callers' side (any thread) ------------------------------------------------------------------------------

    def need(self, prompt: list[int], params: list[SampleParams]) -> int:
        """KV cells a job holds at most: its prompt and every sample's budget."""
        return len(prompt) + sum(p.max_tokens for p in params)

    def submit(self, job: Job) -> None:
        """Queue ``job``; raises at once when it can never run (too many samples or too large for the cache) or the
        queue is full."""
        n = len(job.params)
        if n > self.max_sequences:
            raise ModelRequestRejected(
                f"n={n} samples exceed the embedded backend's {self.max_sequences} sequences",
                hint="lower n, or raise PONDER_LLM__MAX_SEQUENCES",
            )
        need = self.need(job.prompt, job.params)
        if need > self.kv_tokens:
            raise ModelRequestRejected(
                f"the prompt ({len(job.prompt)} tokens) and {n} sample(s) of up to "
                f"{max(p.max_tokens for p in job.params)} tokens need {need} KV cells; the batching cache has "
                f"{self.kv_tokens}",
                hint="lower max_tokens or n, or raise PONDER_LLM__KV_TOKENS",
            )
        with self._cond:
            if self._closed:
                raise ModelServerError("the embedded model was closed", retryable=True)
            if len(self._waiting) >= self.max_queue:
                raise ServiceBusy(
                    f"{len(self._waiting)} calls already wait for the embedded model",
                    hint="retry later, or raise PONDER_LLM__MAX_QUEUE",
                )
            self._waiting.append(job)
            self._cond.notify()

    def wake(self) -> None:
        """Look at cancellations now (a cancelled job that waits is dropped at the next step anyway)."""
        with self._cond:
            self._cond.notify()

    def close(self) -> None:
        import llama_cpp as lc

        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        lc.llama_batch_free(self._batch)
        lc.llama_free(self.ctx)

    # -- the scheduler thread ------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._waiting and not self._running:
                    self._cond.wait()
                if self._closed:
                    waiting, self._waiting = list(self._waiting), deque()
                    break
                self._admit()
            try:
                self._step()
            except Exception as exc:
                log.exception("embedded batch step failed")
                self._fail_running(exc)
        closed = ModelServerError("the embedded model was closed during the call", retryable=True)
        for job in waiting + self._running:
            self._finish_job(job, error=closed)

    def _admit(self) -> None:
        """Move waiting jobs (FIFO) into free slots while the KV cache can hold them; drop cancelled ones."""
        while self._waiting:
            job = self._waiting[0]
            if job.cancel.is_set():
                self._waiting.popleft()
                self._finish_job(job, error=None)
                continue
            if self._running and (job.exclusive or any(j.exclusive for j in self._running)):
                return  # one of them runs alone
            n = len(job.params)
            need = self.need(job.prompt, job.params)
            if len(self._idle) < n:
                return  # waits for running jobs to free slots
            held = self._rows_held()
            if self._running and held + n > self.calibration.best_rows(held + self._rows_waiting()):
                self.stats.capped += 1
                return  # past the knee: more rows would slow every running call more than they gain
            while self._reserved + need + self._idle_cells() > self.kv_tokens and self._evict_one():
                pass
            if self._reserved + need + self._idle_cells() > self.kv_tokens:
                return  # waits for running jobs to free cells
            self._waiting.popleft()
            try:
                self._start(job)
            except Exception as exc:  # noqa: BLE001 - a job that cannot start (a guide that fails) fails alone
                self._release(job)
                self._finish_job(job, error=exc if isinstance(exc, PonderError) else _failure(exc))

    def _rows_held(self) -> int:
        """Rows the running jobs will decode: every sample of a job still reading its prompt, else its unfinished
        samples."""
        return sum(
            len(job.params) if job.clock is None or job.clock.first_token_s is None else len(job.pending)
            for job in self._running
        )

    def _rows_waiting(self) -> int:
        return sum(len(job.params) for job in self._waiting if not job.cancel.is_set())

    def _idle_cells(self) -> int:
        return sum(len(self._kv[s]) for s in self._idle)

    def _evict_one(self) -> bool:
        """Empty the least recently used idle slot that holds cells (its state saved to the RAM prompt cache)."""
        for slot in self._idle:
            if self._kv[slot]:
                self._clear_slot(slot, keep=True)
                return True
        return False

    def _clear_slot(self, slot: int, *, keep: bool) -> None:
        import llama_cpp as lc

        if keep and self._kv[slot]:
            self._prompt_cache.save(self.ctx, slot, self._kv[slot])
        lc.llama_memory_seq_rm(self._memory, slot, -1, -1)
        self._kv[slot] = []

    def _start(self, job: Job) -> None:
        """Give ``job`` its slots, reuse the longest cached prefix of its prompt, make its sequences."""
        import llama_cpp as lc

        from ponder.llm.embedded._runtime import _Clock, _Sequence

        job.admitted_at = time.perf_counter()
        prompt = np.asarray(job.prompt, dtype=np.int32)
        limit = len(job.prompt) - 1  # the last prompt token is always evaluated: its logits start sampling
        best_slot, best = -1, 0
        for slot in range(self.max_sequences):
            if self._kv[slot]:
                common = shared_prefix(np.asarray(self._kv[slot], dtype=np.int32), prompt, limit)
                if common > best:
                    best_slot, best = slot, common
        # the leader: the idle slot holding the best prefix (reused in place), else a free one
        if best_slot in self._idle:
            leader = best_slot
            del self._idle[leader]
        else:
            leader = self._take_slot()
        job.slots = [leader, *(self._take_slot() for _ in range(len(job.params) - 1))]
        if leader == best_slot:
            if best < len(self._kv[leader]) // 2:  # most of what the slot holds goes: keep it in the RAM cache
                self._prompt_cache.save(self.ctx, leader, self._kv[leader])
            lc.llama_memory_seq_rm(self._memory, leader, best, -1)
            self._kv[leader] = self._kv[leader][:best]
        elif best > 0:
            lc.llama_memory_seq_rm(self._memory, leader, -1, -1)
            lc.llama_memory_seq_cp(self._memory, best_slot, leader, 0, best)
            self._kv[leader] = self._kv[best_slot][:best]
        else:
            self._kv[leader] = []
        held = np.asarray(self._kv[leader], dtype=np.int32)
        tokens, common = self._prompt_cache.reuse(self.ctx, leader, held, job.prompt)
        if tokens is not held:  # the RAM cache held a longer prefix: the slot now holds that entry
            lc.llama_memory_seq_rm(self._memory, leader, common, -1)
            tokens = tokens[:common]
        self._kv[leader] = [int(t) for t in tokens[:common]]
        job.fed = job.cached = common
        self.stats.reused_tokens += common
        job.reserved = self.need(job.prompt, job.params)
        self._reserved += job.reserved
        job.budgets = [p.max_tokens for p in job.params]
        job.seqs = [_Sequence(self._runtime, job.prompt, p, job.compiled, job.on_text) for p in job.params]
        job.steps = [0] * len(job.params)
        job.drafts = [DraftRecord() for _ in job.params]
        job.clock = _Clock(job.start)
        if job.progress is not None:
            job.progress.prompt_tokens, job.progress.prompt_done = len(job.prompt), job.fed
            job.progress.peek = job.seqs[0].text_so_far
        self._running.append(job)

    def _take_slot(self) -> int:
        """An idle slot for a new sequence: an empty one, else the least recently used (its cells saved to the
        RAM prompt cache, then freed)."""
        slot = next((s for s in self._idle if not self._kv[s]), None)
        if slot is None:
            slot = next(iter(self._idle))
            self._clear_slot(slot, keep=True)
        del self._idle[slot]
        return slot

    def _step(self) -> None:
        """One ``llama_decode``: a token of every decoding sequence, then prompt chunks of admitted jobs."""
        from ponder.llm.embedded._runtime import decode_batch

        for job in list(self._running):
            if job.cancel.is_set():
                self._end(job)
        items: list[tuple[int, int, int, bool]] = []  # (slot, token, position, wants logits)
        # per sampling point: its job, sample (-1: the prompt's last token), item index, and the draft after it
        rows: list[tuple[Job, int, int, list[int]]] = []
        decoding = sum(len(job.pending) for job in self._running)
        for job in self._running:
            for k, token in job.pending.items():
                slot, pos = job.slots[k], len(self._kv[job.slots[k]])
                # the rows already in this step: every pending token, and the drafts taken so far
                draft = self._draft(job, k, decoding + len(items) - len(rows)) if self.draft_tokens else []
                rows.append((job, k, len(items), draft))
                items.append((slot, token, pos, True))
                items += [(slot, t, pos + 1 + i, True) for i, t in enumerate(draft)]
        drafted = len(items) - decoding
        room = self.batch_tokens - len(items)
        budget = min(room, self.prefill_chunk) if decoding else room
        for job in self._running:
            if budget <= 0:
                break
            if job.fed >= len(job.prompt):
                continue
            # the last prompt token goes in a step without other tokens of its prompt: a
            # prompt asked again (all but that token then come from the cache) gets bit-identical logits. Inside a
            # chunk its row would be computed by other kernels (AVX2 hosts tile 4 rows at a time) and round apart.
            rest = len(job.prompt) - 1 - job.fed
            take = min(budget, rest) if rest > 0 else 1
            for i in range(take):
                pos = job.fed + i
                last = pos == len(job.prompt) - 1
                if last:
                    rows.append((job, -1, len(items), []))
                items.append((job.leader, job.prompt[pos], pos, last))
            job.fed += take
            if job.progress is not None:
                job.progress.prompt_done = job.fed
            budget -= take
            self.stats.prompt_tokens += take
        if not items:
            return
        for slot, token, _, _ in items:
            self._kv[slot].append(token)
        decode_batch(self.ctx, self._batch, items)
        self.stats.steps += 1
        self.stats.decoded_tokens += decoding
        self.stats.drafted += drafted
        self.stats.max_running = max(self.stats.max_running, decoding)
        for job, k, index, draft in rows:
            if job not in self._running:
                continue
            try:
                if k < 0:
                    self._prompt_done(job, index)
                    continue
                self._sampled(job, k, index)
                if draft:
                    self._verify(job, k, index, draft)
            except PonderError as exc:
                self._end(job, error=exc)
            except Exception as exc:  # noqa: BLE001 - a guide or sampler failure fails its own job only
                self._end(job, error=_failure(exc))
        for job in list(self._running):  # every sample has its first token and none has a next one: done
            if job.clock is not None and job.clock.first_token_s is not None and not job.pending:
                self._end(job)

    def _draft(self, job: Job, k: int, rows: int) -> list[int]:
        """Tokens to decode after sample ``k``'s pending token in a step that already holds ``rows`` rows: a greedy
        sample's prompt-lookup draft, no longer than its remaining budget (so its cells stay within the job's
        reservation) and only as long as the calibrated costs say pays at its acceptance so far. A draft not worth
        verifying is kept as a shadow, compared with the tokens the sample decodes next."""
        if job.speculate == "off" or not job.seqs[k].greedy:
            return []
        room = min(self.draft_tokens, job.budgets[k] - job.steps[k] - 1)
        if room <= 0:
            return []
        record = job.drafts[k]
        length = room if job.speculate == "always" else self.calibration.draft_length(record.acceptance, room, rows)
        if length == 0:
            if not record.shadow:
                record.shadow = lookup_draft(job.seqs[k].tokens(), room)
            return []
        record.shadow, record.matched = [], 0
        return lookup_draft(job.seqs[k].tokens(), length)

    def _verify(self, job: Job, k: int, index: int, draft: list[int]) -> None:
        """Take the draft tokens of sample ``k`` while each is the token the sample drew from the row before (its
        cells and logits are then already computed: the row of draft token i is ``index + 1 + i``); free the cells
        of the rest; record how many matched."""
        import llama_cpp as lc

        accepted = 0
        for i, token in enumerate(draft):
            if job.pending.get(k) != token:
                break
            self._sampled(job, k, index + 1 + i)
            accepted += 1
        self.stats.accepted += accepted
        slot = job.slots[k]
        keep = len(self._kv[slot]) - (len(draft) - accepted)
        if keep < len(self._kv[slot]):
            lc.llama_memory_seq_rm(self._memory, slot, keep, -1)
            del self._kv[slot][keep:]
        job.drafts[k].record(accepted, accepted < len(draft))

    def _logits(self, index: int) -> Any:
        import llama_cpp as lc

        return np.ctypeslib.as_array(lc.llama_get_logits_ith(self.ctx, index), shape=(self._runtime.n_vocab,))

    def _prompt_done(self, job: Job, index: int) -> None:
        """The prompt is in the leader's cache: fork it to the other samples and sample every first token."""
        import llama_cpp as lc

        job.prompt_s = time.perf_counter() - job.admitted_at
        for slot in job.slots[1:]:
            lc.llama_memory_seq_cp(self._memory, job.leader, slot, 0, len(job.prompt))
            self._kv[slot] = list(self._kv[job.leader])
        first = self._logits(index)
        shared = first.copy() if len(job.seqs) > 1 else first
        for k, seq in enumerate(job.seqs):
            if k:
                first[:] = shared
            token = seq.sample(self.ctx, index, first)
            self._took(job, k, token)
        assert job.clock is not None
        job.clock.step(0)

    def _sampled(self, job: Job, k: int, index: int) -> None:
        token = job.seqs[k].sample(self.ctx, index, self._logits(index))
        self._took(job, k, token)

    def _took(self, job: Job, k: int, token: int) -> None:
        job.pending.pop(k, None)
        job.steps[k] += 1
        job.drafts[k].observe(token)
        if job.progress is not None:
            job.progress.sampled()
        if not job.seqs[k].accept(token) and job.steps[k] < job.budgets[k]:
            job.pending[k] = token

    def _end(self, job: Job, *, error: BaseException | None = None) -> None:
        """Finish ``job`` (done, cancelled or failed): free its samples' cells at once, keep the leader's prompt
        and reply in its slot for the prefix cache."""
        if job not in self._running:
            return
        self._running.remove(job)
        if error is not None or job.fed < len(job.prompt):  # a half-read prompt is not worth keeping
            self._clear_slot(job.leader, keep=False)
        self._release(job)
        self._finish_job(job, error=error)

    def _release(self, job: Job) -> None:
        """Give back ``job``'s reservation and slots; its samples' cells are freed, the leader's are kept."""
        import llama_cpp as lc

        self._reserved -= job.reserved
        job.reserved = 0
        for slot in job.slots[1:]:
            lc.llama_memory_seq_rm(self._memory, slot, -1, -1)
            self._kv[slot] = []
        for slot in job.slots:
            self._idle[slot] = None  # most recently used last

    def _finish_job(self, job: Job, *, error: BaseException | None) -> None:
        for seq in job.seqs:
            seq.close()
        if error is not None:
            job.error = error
        elif job.clock is not None:
            job.result = [seq.generation(job.clock, job.prompt_s, job.cached) for seq in job.seqs]
        else:  # cancelled before it was admitted
            job.result = []
        job.done.set()
        if job.on_done is not None:
            with contextlib.suppress(Exception):
                job.on_done()

    def _fail_running(self, exc: Exception) -> None:
        import llama_cpp as lc

        error = ModelServerError(f"llama.cpp failed while decoding a batch: {exc}", retryable=False)
        for job in list(self._running):
            self._end(job, error=error)
        lc.llama_memory_clear(self._memory, True)
        self._kv = [[] for _ in range(self.max_sequences)]


def lookup_draft(tokens: list[int], n: int, *, min_ngram: int = 2, max_ngram: int = 4) -> list[int]:
    """Up to ``n`` tokens that followed the most recent earlier occurrence of the sequence's last ``max_ngram`` ..
    ``min_ngram`` tokens (the longest that occurs), or none.

    Hand-written rather than llama-cpp-python's ``LlamaPromptLookupDecoding``: that one falls back to matching a
    single token (a draft nearly every step, mostly rejected: each costs rows of the step) and takes the earliest
    occurrence, where the latest (the code being repaired, the line being continued) predicts better."""
    ids = np.asarray(tokens, dtype=np.int32)
    for size in range(min(max_ngram, len(ids) - 1), min_ngram - 1, -1):
        windows = np.lib.stride_tricks.sliding_window_view(ids[:-1], size)  # occurrences before the suffix itself
        hits = np.flatnonzero((windows == ids[-size:]).all(axis=1))
        if hits.size:
            start = int(hits[-1]) + size
            draft: list[int] = ids[start : start + n].tolist()
            return draft
    return []


def _failure(exc: BaseException) -> ModelServerError:
    return ModelServerError(f"the embedded model failed: {type(exc).__name__}: {exc}", retryable=False)
