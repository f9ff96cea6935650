"""How far a model call has got, for the people waiting on it.

A caller that wants to show liveness (the API's runs, the CLI) opens :func:`watching` around a call; a backend that
can tell how far it is (the embedded one: prompt tokens evaluated, tokens sampled, the text so far) reads
:func:`current_progress` when the call starts and updates that object as it works. Backends that cannot tell leave it
alone, and the watcher still knows how long the call has run. A context variable, not a request field: progress is
not part of what is asked (requests are hashed for record/replay), and it crosses every wrapper untouched.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class CallProgress:
    """Written by the backend (possibly from its worker thread: plain int and str stores), read by the watcher."""

    prompt_tokens: int = 0  # the whole prompt, once tokenized (0: not known)
    prompt_done: int = 0  # prompt tokens evaluated or served by the prefix cache
    generated: int = 0  # tokens sampled so far, all samples together
    text: str = ""  # the first sample's text so far, when the caller streamed it
    peek: Callable[[], str] | None = None  # the first sample's text so far, asked of the backend
    started: float = field(default_factory=time.perf_counter)
    call: int = 0  # the watcher's number for the call
    first_token_at: float | None = None

    def sampled(self, tokens: int = 1) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.generated += tokens

    def text_so_far(self) -> str:
        if self.peek is not None:
            try:
                return self.peek()
            except Exception:  # noqa: BLE001 - a peek racing the backend's cleanup shows nothing this time
                return ""
        return self.text


_current: ContextVar[CallProgress | None] = ContextVar("ponder_call_progress", default=None)


def current_progress() -> CallProgress | None:
    """The progress record of the call being made in this context, if anyone watches it."""
    return _current.get()


@contextlib.contextmanager
def watching(progress: CallProgress) -> Iterator[CallProgress]:
    """Make ``progress`` the record that backends update for calls made inside this block."""
    token = _current.set(progress)
    try:
        yield progress
    finally:
        _current.reset(token)
