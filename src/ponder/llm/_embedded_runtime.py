"""The blocking half of the embedded backend: one llama.cpp model in process and its decoding loop.

Everything here runs in a worker thread, one call at a time (``EmbeddedModel`` holds the lock).

The loop is hand-written on llama-cpp-python's public API (``Llama.eval`` and the llama.cpp C sampler functions)
rather than ``Llama.create_completion`` for three reasons: a constraint's mask is written straight into llama.cpp's
logits buffer before the C sampler chain reads it (``create_completion`` hands logits processors a strided copy of
the candidate array, which costs milliseconds a token over a 152k vocabulary); log-probabilities come from that same
buffer (``create_completion`` needs ``logits_all=True``, an n_ctx x vocab float array, ~2.5 GB at n_ctx=4096); and
the first-token and per-token timings are measured where they happen.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ponder.errors import ModelFileError, ModelRequestRejected, ModelServerError
from ponder.llm._embedded_constraints import Compiled, Logits
from ponder.llm._types import FinishReason, Message, TokenLogprob

if TYPE_CHECKING:
    from llama_cpp import Llama

GGUF_MAGIC = b"GGUF"
_RANDOM_SEED = 0xFFFFFFFF  # LLAMA_DEFAULT_SEED: llama.cpp picks a random seed


def default_threads() -> int:
    """1 thread on <= 2 cores: with 2 threads a token waits for the slower core, and decoding collapses to
    < 1 tok/s while the other core is busy. On bigger machines leave one core free."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if cores <= 2 else min(cores - 1, 8)


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
    # decoding after the first token: sampling steps, wall seconds, and CPU seconds of this thread (with one
    # llama.cpp thread, that is all the work; unlike wall time it does not grow when other processes share the CPU)
    decode_steps: int = 0
    decode_s: float = 0.0
    decode_cpu_s: float = 0.0


class LlamaRuntime:
    """A loaded GGUF model with its chat template; ``generate`` decodes one sample."""

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int) -> None:
        check_model_file(path)
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            self.llama: Llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
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
        self.n_ctx = self.llama.n_ctx()

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

    def _prefill(self, prompt: list[int]) -> None:
        """Evaluate ``prompt``, reusing the KV cache of the longest prefix shared with the previous call."""
        llama = self.llama
        limit = min(llama.n_tokens, len(prompt) - 1)
        common = 0
        if limit > 0:
            same = llama.input_ids[:limit] == np.asarray(prompt[:limit])
            common = limit if same.all() else int(np.argmin(same))
        llama.n_tokens = common
        llama.eval(prompt[common:])

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

    def generate(
        self,
        prompt: list[int],
        params: SampleParams,
        compiled: Compiled | None,
        *,
        start: float | None = None,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Generation:
        """Decode one sample; times are measured from ``start`` (a ``perf_counter`` value; default: now).

        ``on_text`` receives the text as it grows, in pieces that join to the final text (text that could still
        turn out to begin a stop sequence is held back); ``cancel`` ends decoding early when set."""
        import llama_cpp as lc

        if len(prompt) >= self.n_ctx:
            raise ModelRequestRejected(
                f"the prompt has {len(prompt)} tokens; the embedded model's context holds {self.n_ctx}",
                hint="shorten the conversation or raise PONDER_LLM__N_CTX",
            )
        budget = min(params.max_tokens, self.n_ctx - len(prompt))
        llama, ctx = self.llama, self.llama.ctx
        vocab = lc.llama_model_get_vocab(llama.model)
        start = time.perf_counter() if start is None else start
        prefill_start = time.perf_counter()
        try:
            self._prefill(prompt)
        except RuntimeError as exc:
            raise ModelServerError(f"llama.cpp failed to evaluate the prompt: {exc}", retryable=False) from exc
        prompt_s = time.perf_counter() - prefill_start
        guide = compiled.new_guide() if compiled is not None and compiled.new_guide is not None else None
        chain = self._sampler(params, compiled.gbnf if compiled is not None else None, vocab)
        tokens = list(prompt)
        out = bytearray()
        logprobs: list[TokenLogprob] | None = [] if params.logprobs else None
        finish: FinishReason = "length"
        first_token_s: float | None = None
        t_first = cpu_first = 0.0
        decode_steps = 0
        n_out = 0
        emitted, holdback = 0, max((len(s) for s in params.stop), default=1) - 1
        try:
            for step in range(budget):
                if cancel is not None and cancel.is_set():
                    break
                logits: Logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, -1), shape=(self.n_vocab,))
                raw = logits.copy() if logprobs is not None else None
                if guide is not None:
                    guide.apply(logits, tokens)
                token = int(lc.llama_sampler_sample(chain, ctx, -1))
                if step == 0:
                    t_first, cpu_first = time.perf_counter(), time.thread_time()
                    first_token_s = t_first - start
                decode_steps = step
                if lc.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                n_out += 1
                tokens.append(token)
                piece = llama.detokenize([token])
                out += piece
                if raw is not None and logprobs is not None:
                    logprobs.append(self._logprob(raw, token, piece, params.top_logprobs))
                if params.stop and (cut := _find_stop(out, params.stop)) is not None:
                    del out[cut:]
                    finish = "stop"
                    break
                if on_text is not None:
                    emitted = _emit(out, emitted, holdback, on_text)
                if guide is not None:
                    guide.advance(token)
                    if guide.is_finished():
                        finish = "stop"
                        break
                if step + 1 < budget:
                    llama.eval([token])
        except RuntimeError as exc:
            raise ModelServerError(f"llama.cpp failed while decoding: {exc}", retryable=False) from exc
        finally:
            lc.llama_sampler_free(chain)
        if on_text is not None:
            _emit(out, emitted, 0, on_text)
        return Generation(
            text=out.decode("utf-8", errors="ignore"),
            finish_reason=finish,
            completion_tokens=n_out,
            first_token_s=first_token_s,
            total_s=time.perf_counter() - start,
            decode_steps=decode_steps,
            decode_s=time.perf_counter() - t_first if decode_steps else 0.0,
            decode_cpu_s=time.thread_time() - cpu_first if decode_steps else 0.0,
            prompt_s=prompt_s,
            logprobs=logprobs,
        )

    def _logprob(self, raw: Logits, token: int, piece: bytes, top: int) -> TokenLogprob:
        """Log-probabilities of the model's own distribution (before constraint masking and temperature)."""
        shifted = raw - raw.max()
        logz = float(np.log(np.exp(shifted, dtype=np.float64).sum()))
        entry = TokenLogprob(token=piece.decode("utf-8", errors="replace"), logprob=float(shifted[token]) - logz)
        if top > 0:
            best = np.argpartition(shifted, -top)[-top:]
            best = best[np.argsort(-shifted[best])]
            entry.top = {self._piece(int(t)): float(shifted[t]) - logz for t in best}
        return entry


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
