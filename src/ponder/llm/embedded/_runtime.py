"""The blocking half of the embedded backend: one llama.cpp model in process, its chat template, and the decoder of
one sequence (:class:`_Sequence`) that the scheduler (:mod:`ponder.llm.embedded._scheduler`, the one decode path)
steps for every call.

The decoder is hand-written on llama.cpp's C API (the batch API and the C sampler functions) rather than
``Llama.create_completion`` for three reasons (besides that ``Llama`` decodes one sequence per context): a constraint's
mask is written straight into llama.cpp's logits buffer before the C sampler chain reads it (``create_completion`` hands
logits processors a strided copy of the candidate array, which costs milliseconds a token over a 152k vocabulary); log-
probabilities come from that same buffer (``create_completion`` needs ``logits_all=True``, an n_ctx x vocab float array,
~2.5 GB at n_ctx=4096); and the first-token and per-token timings are measured where they happen.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ponder.errors import ModelFileError, ModelRequestRejected
from ponder.llm._types import Confidence, FinishReason, Message, TokenLogprob
from ponder.llm.embedded._constraints import Compiled, Logits

if TYPE_CHECKING:
    from llama_cpp import Llama

GGUF_MAGIC = b"GGUF"
_RANDOM_SEED = 0xFFFFFFFF  # LLAMA_DEFAULT_SEED: llama.cpp picks a random seed
_OWN_CTX = 256


def default_threads() -> int:
    """Every core on <= 2 cores, else all but one (at most 8). Measured on 2 cores with llama-cpp-python 0.3.36
    (``benchmarks/embedded_throughput.py --threads``, README): 2 threads decode one stream at 13.6 tok/s vs 7.5 with
    one, and 8 batched calls at 45 vs 26 tok/s; with the other core busy, 2 threads lose ~5% against one (7.2 vs
    7.6 tok/s), the collapse older builds showed (< 1 tok/s) no longer happens."""
    cores = usable_cores()
    return cores if cores <= 2 else min(cores - 1, 8)


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_model_file(path: Path) -> None:
    """Cheap checks before llama.cpp sees the file; llama.cpp itself catches truncation at load time."""
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    with path.open("rb") as f:
        head = f.read(4)
    if head != GGUF_MAGIC:
        raise ModelFileError(f"model file {path} is not a GGUF file (it starts with {head!r}, not b'GGUF')")


@dataclass
class SampleParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0


@dataclass
class Generation:
    text: str
    finish_reason: FinishReason
    completion_tokens: int
    first_token_s: float | None
    total_s: float
    prompt_s: float
    logprobs: list[TokenLogprob] | None = None
    confidence: Confidence | None = None  # from the model's own distributions at every sampled step
    cached_tokens: int = 0  # leading prompt tokens whose KV cache was reused rather than evaluated
    # decoding after the first token: sampling steps, wall seconds, and CPU seconds of this thread (with one
    # llama.cpp thread, that is all the work; unlike wall time it does not grow when other processes share the CPU)
    decode_steps: int = 0
    decode_s: float = 0.0
    decode_cpu_s: float = 0.0


class LlamaRuntime:
    """A loaded GGUF model with its chat template and tokenizer; ``n_ctx`` is the most tokens one sequence holds
    (its prompt and reply). The scheduler decodes in a context of its own made on ``llama.model``."""

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int) -> None:
        check_model_file(path)
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            self.llama: Llama = Llama(
                model_path=str(path),
                n_ctx=_OWN_CTX,  # nothing decodes in Llama's own context: its KV cache is kept small
                n_threads=n_threads,
                n_threads_batch=n_threads,
                n_gpu_layers=0,
                logits_all=False,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFileError(
                f"llama.cpp could not load {path}: {exc} (the file may be truncated or corrupted)"
            ) from exc
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelFileError(f"model file {path} has no chat template (tokenizer.chat_template) in its metadata")
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._piece(self.llama.token_eos()),
            bos_token=self._piece(self.llama.token_bos()),
        )
        self.n_vocab = self.llama.n_vocab()
        self.n_ctx = n_ctx

    def close(self) -> None:
        self.llama.close()

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        piece: bytes = self.llama.detokenize([token], special=True)
        return piece.decode("utf-8", errors="replace")

    def prompt_tokens(self, messages: list[Message]) -> list[int]:
        """The chat template of the GGUF (Qwen2.5's ChatML for the default model), then tokens."""
        payload: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
        prompt: str = self._formatter(messages=payload).prompt
        return list(self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def _sampler(self, params: SampleParams, gbnf: str | None, vocab: Any) -> Any:
        import llama_cpp as lc

        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        if gbnf is not None:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root"))
        if params.temperature <= 0.0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
        else:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(params.temperature))
            if params.top_p < 1.0:
                lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(params.top_p, 1))
            seed = _RANDOM_SEED if params.seed is None else params.seed & 0xFFFFFFFF
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed))
        return chain

    def check_prompt(self, prompt: list[int]) -> None:
        if len(prompt) >= self.n_ctx:
            raise ModelRequestRejected(
                f"the prompt has {len(prompt)} tokens; the embedded model's context holds {self.n_ctx}",
                hint="shorten the conversation or raise PONDER_LLM__N_CTX",
            )

    def _logprob(self, raw: Logits, token: int, piece: bytes, top: int, log_z: float) -> TokenLogprob:
        """Log-probabilities of the model's own distribution (before constraint masking and temperature); ``log_z``
        is the row's log partition function, which the sequence computed when it sampled."""
        entry = TokenLogprob(token=piece.decode("utf-8", errors="replace"), logprob=float(raw[token]) - log_z)
        if top > 0:
            best = np.argpartition(raw, -top)[-top:]
            best = best[np.argsort(-raw[best])]
            entry.top = {self._piece(int(t)): float(raw[t]) - log_z for t in best}
        return entry


class _Clock:
    """Timings of a decoding loop: the first token (from ``start``) and the steps after it."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.first_token_s: float | None = None
        self.t_first = self.cpu_first = 0.0

    def step(self, step: int) -> None:
        if step == 0:
            self.t_first, self.cpu_first = time.perf_counter(), time.thread_time()
            self.first_token_s = self.t_first - self.start


class _Sequence:
    """One sample being decoded: its sampler chain, constraint guide, text, stop handling and log-probabilities.

    ``sample`` picks the next token from a row of llama.cpp's logits buffer (the guide's mask is written into
    it first); ``accept`` takes the token and says whether the sample is finished."""

    def __init__(
        self,
        runtime: LlamaRuntime,
        prompt: list[int],
        params: SampleParams,
        compiled: Compiled | None,
        on_text: Callable[[str], None] | None,
    ) -> None:
        import llama_cpp as lc

        self._runtime = runtime
        self._params = params
        self._vocab = lc.llama_model_get_vocab(runtime.llama.model)
        self._guide = compiled.new_guide() if compiled is not None and compiled.new_guide is not None else None
        self._chain = runtime._sampler(params, compiled.gbnf if compiled is not None else None, self._vocab)
        self._on_text = on_text
        self._tokens = list(prompt)
        self._out = bytearray()
        self._raw: Logits | None = None
        self._log_z = 0.0  # the last sampled row's log partition function (before the mask)
        self.logprobs: list[TokenLogprob] | None = [] if params.logprobs else None
        self._chosen: list[float] = []  # each sampled token's log-probability under the model's own distribution
        self._certainty = 0.0  # the sum of each step's KL divergence from uniform
        self._log_vocab = math.log(runtime.n_vocab)
        self.finish: FinishReason = "length"
        self.sampled = 0
        self.n_out = 0
        self._emitted, self._holdback = 0, max((len(s) for s in params.stop), default=1) - 1

    @property
    def greedy(self) -> bool:
        return self._params.temperature <= 0.0

    def tokens(self) -> list[int]:
        """The prompt and the tokens taken so far."""
        return self._tokens

    def text_so_far(self) -> str:
        """The text decoded so far (read from other threads for progress reports: a copy, never the buffer)."""
        return bytes(self._out).decode("utf-8", errors="ignore")

    def sample(self, ctx: Any, row: int, logits: Logits) -> int:
        import llama_cpp as lc

        self._raw = logits.copy() if self.logprobs is not None else None
        # the step's confidence, from the whole distribution before the constraint's mask (~0.3 ms for a 152k
        # vocabulary: three passes over the row): log Z, and KL(uniform || p) = log Z - mean(logits) - log V
        top = float(logits.max())
        log_z = self._log_z = top + math.log(float(np.exp(logits - top, dtype=np.float64).sum()))
        self._certainty += log_z - float(logits.mean(dtype=np.float64)) - self._log_vocab
        if self._guide is not None:
            self._guide.apply(logits, self._tokens)
        self.sampled += 1
        token = int(lc.llama_sampler_sample(self._chain, ctx, row))
        self._chosen.append(float(logits[token]) - log_z)  # a mask adds 0 to the tokens it allows
        return token

    def accept(self, token: int) -> bool:
        import llama_cpp as lc

        if lc.llama_vocab_is_eog(self._vocab, token):
            self.finish = "stop"
            return True
        self.n_out += 1
        self._tokens.append(token)
        piece = self._runtime.llama.detokenize([token])
        self._out += piece
        if self._raw is not None and self.logprobs is not None:
            top = self._params.top_logprobs
            self.logprobs.append(self._runtime._logprob(self._raw, token, piece, top, self._log_z))
        if self._params.stop and (cut := _find_stop(self._out, self._params.stop)) is not None:
            del self._out[cut:]
            self.finish = "stop"
            return True
        if self._on_text is not None:
            self._emitted = _emit(self._out, self._emitted, self._holdback, self._on_text)
        if self._guide is not None:
            self._guide.advance(token)
            if self._guide.is_finished():
                self.finish = "stop"
                return True
        return False

    def close(self) -> None:
        import llama_cpp as lc

        if self._chain is not None:
            lc.llama_sampler_free(self._chain)
            self._chain = None

    def generation(self, clock: _Clock, prompt_s: float, cached_tokens: int) -> Generation:
        if self._on_text is not None:
            _emit(self._out, self._emitted, 0, self._on_text)
        steps = max(self.sampled - 1, 0)
        return Generation(
            text=self._out.decode("utf-8", errors="ignore"),
            finish_reason=self.finish,
            completion_tokens=self.n_out,
            first_token_s=clock.first_token_s,
            total_s=time.perf_counter() - clock.start,
            decode_steps=steps,
            decode_s=time.perf_counter() - clock.t_first if steps else 0.0,
            decode_cpu_s=time.thread_time() - clock.cpu_first if steps else 0.0,
            prompt_s=prompt_s,
            logprobs=self.logprobs,
            confidence=Confidence.of(self._chosen, self._certainty),
            cached_tokens=cached_tokens,
        )


def decode_batch(ctx: Any, batch: Any, items: list[tuple[int, int, int, bool]]) -> None:
    """One ``llama_decode`` of (sequence, token, position, wants logits) items through ``batch`` (a
    ``llama_batch`` made for at least ``len(items)`` tokens); the logits of the k-th item asking for them are row k
    of the batch's items (``llama_get_logits_ith(ctx, index of the item)``)."""
    import llama_cpp as lc

    for i, (seq, token, pos, logits) in enumerate(items):
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
        batch.logits[i] = logits
    batch.n_tokens = len(items)
    if (rc := lc.llama_decode(ctx, batch)) != 0:
        raise RuntimeError(f"llama_decode returned {rc} for a batch of {len(items)} tokens")


def _find_stop(out: bytearray, stops: list[str]) -> int | None:
    text = bytes(out)
    hits = [i for s in stops if (i := text.find(s.encode("utf-8"))) >= 0]
    return min(hits) if hits else None


def _emit(out: bytearray, emitted: int, holdback: int, on_text: Callable[[str], None]) -> int:
    """Send the text past ``emitted`` characters, keeping ``holdback`` characters back; the new count."""
    text = out.decode("utf-8", errors="ignore")  # a character split across tokens waits for its last byte
    ready = len(text) - holdback
    if ready > emitted:
        on_text(text[emitted:ready])
        return ready
    return emitted
