"""Saved KV caches of recent prompts, so a prompt that shares a long prefix with any of the last few prompts, not
only with the last one, evaluates only what follows that prefix.

Strategies alternate between a few long prompts: the planner's plan, act and refine instructions, CoK's answer and
verification prompts. A llama.cpp context holds the cache of one prompt, so each switch re-evaluated the whole
shared instructions (~27 ms a token on one CPU thread for the default model; a 1,000-token system prompt is half a
minute). vLLM does this by itself (automatic prefix caching) and llama.cpp's server keeps slots; in process, ponder
keeps the state of each recent prompt's sequence in RAM (llama.cpp's per-sequence state API: the KV cells of one
sequence, ~28 KB a token for the default model, copied in milliseconds) and copies the best one back before
evaluating a prompt.

Written here rather than taken from llama-cpp-python: its ``LlamaRAMCache`` saves the whole context through
``Llama.save_state``, which also copies the n_batch x vocabulary scores array (~300 MB for a 152k vocabulary)
per entry, and it can only restore into the ``Llama`` context, not into one sequence of the scheduler's context.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

MIN_TOKENS = 32  # shorter prompts cost less to evaluate than to keep


@dataclass
class _Entry:
    tokens: npt.NDArray[np.int32]
    state: Any  # a ctypes uint8 array from llama_state_seq_get_data

    @property
    def nbytes(self) -> int:
        return ctypes.sizeof(self.state) + self.tokens.nbytes


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    saved_tokens: int = 0  # prompt tokens not evaluated thanks to a restored entry (beyond what the context held)
    restore_failures: int = 0


class PromptCache:
    """Least-recently-used KV states of whole prompts, within ``capacity_bytes`` (0: none kept, and :meth:`reuse`
    only measures what the sequence already holds); keyed by their tokens.

    Not thread-safe: the runtime calls it under the model's lock."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._next_key = 0
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def _best(self, prompt: npt.NDArray[np.int32], limit: int) -> tuple[int, int]:
        """(key, shared prefix length, at most ``limit``) of the entry sharing the longest prefix with ``prompt``;
        (-1, 0) when none shares any."""
        best_key, best_len = -1, 0
        for key, entry in self._entries.items():
            n = shared_prefix(entry.tokens, prompt, limit)
            if n > best_len:
                best_key, best_len = key, n
        return best_key, best_len

    def restore(self, ctx: Any, seq: int, key: int) -> npt.NDArray[np.int32] | None:
        """Copy entry ``key`` into sequence ``seq`` of ``ctx``; its tokens, or None if llama.cpp refused it (the
        sequence is then empty)."""
        import llama_cpp as lc

        entry = self._entries[key]
        if lc.llama_state_seq_set_data(ctx, entry.state, ctypes.sizeof(entry.state), seq) == 0:
            self.stats.restore_failures += 1
            lc.llama_memory_seq_rm(lc.llama_get_memory(ctx), seq, -1, -1)
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.tokens

    def reuse(
        self, ctx: Any, seq: int, held: npt.NDArray[np.int32], prompt: list[int]
    ) -> tuple[npt.NDArray[np.int32], int]:
        """Before evaluating ``prompt`` in sequence ``seq``, which holds the tokens ``held``: when an entry shares a
        longer prefix with ``prompt`` than ``held`` does, copy it in. Returns the tokens the sequence now holds and
        how many leading prompt tokens need no evaluation (at most ``len(prompt) - 1``: the last one is always
        evaluated)."""
        target, limit = np.asarray(prompt, dtype=np.int32), len(prompt) - 1
        common = shared_prefix(held, target, limit)
        key, shared = self._best(target, limit)
        if shared <= common:
            self.stats.misses += 1
            return held, common
        tokens = self.restore(ctx, seq, key)
        if tokens is None:
            self.stats.misses += 1
            return np.zeros(0, dtype=np.int32), 0
        self.stats.hits += 1
        self.stats.saved_tokens += shared - common
        return tokens, shared

    def save(self, ctx: Any, seq: int, tokens: list[int]) -> None:
        """Keep the state of sequence ``seq``, which holds exactly ``tokens``; entries it extends are dropped, and
        nothing is kept when an entry already extends it (or when the capacity is 0: the cache is off)."""
        import llama_cpp as lc

        if len(tokens) < MIN_TOKENS or self.capacity_bytes <= 0:
            return
        size = lc.llama_state_seq_get_size(ctx, seq)
        if size <= 0 or size > self.capacity_bytes:
            return
        new = np.asarray(tokens, dtype=np.int32)
        for key, entry in list(self._entries.items()):
            shared = shared_prefix(entry.tokens, new, len(new))
            if shared == len(new):  # an entry already holds these tokens and maybe more
                self._entries.move_to_end(key)
                return
            if shared == len(entry.tokens):  # the new state covers this entry
                del self._entries[key]
        state = (ctypes.c_uint8 * size)()
        written = lc.llama_state_seq_get_data(ctx, state, size, seq)
        if written == 0:
            return
        if written < size:  # keep only what was written
            compact = (ctypes.c_uint8 * written)()
            ctypes.memmove(compact, state, written)
            state = compact
        self._entries[self._next_key] = _Entry(tokens=new, state=state)
        self._next_key += 1
        while self.nbytes > self.capacity_bytes and len(self._entries) > 1:
            self._entries.popitem(last=False)


def shared_prefix(a: npt.NDArray[np.int32], b: npt.NDArray[np.int32], limit: int) -> int:
    """How many leading tokens ``a`` and ``b`` share, at most ``limit``."""
    n = min(len(a), len(b), limit)
    if n <= 0:
        return 0
    same = a[:n] == b[:n]
    return n if bool(same.all()) else int(np.argmin(same))
