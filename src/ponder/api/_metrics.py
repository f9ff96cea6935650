"""Prometheus metrics of one app (its own registry, no globals) and wrappers that measure the model and the
ToolServer at their seams."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ponder.llm import ChatModel, ChatResponse, ObservedModel
from ponder.telemetry import tool_span
from ponder.tools import ToolResult, ToolSession, ToolSpec

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.runs = Counter("ponder_runs", "Runs finished, by strategy and status", ["strategy", "status"], registry=r)
        self.runs_started = Counter("ponder_runs_started", "Runs started or resumed", ["strategy"], registry=r)
        self.runs_active = Gauge("ponder_runs_active", "Runs executing now", ["strategy"], registry=r)
        self.run_seconds = Histogram(
            "ponder_run_seconds", "Wall time of a run segment", ["strategy"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.llm_calls = Counter("ponder_llm_calls", "LLM calls", ["strategy", "outcome"], registry=r)
        self.llm_tokens = Counter("ponder_llm_tokens", "LLM tokens", ["strategy", "kind"], registry=r)
        self.llm_seconds = Histogram(
            "ponder_llm_call_seconds", "LLM call latency", ["strategy"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.tool_sessions = Counter("ponder_toolserver_sessions", "ToolServer sessions opened", registry=r)
        self.tool_sessions_active = Gauge("ponder_toolserver_sessions_active", "Open ToolServer sessions", registry=r)
        self.tool_calls = Counter("ponder_tool_calls", "Tool calls", ["tool", "ok"], registry=r)
        self.tool_seconds = Histogram(
            "ponder_tool_call_seconds", "Tool call latency", ["tool"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.events = Counter("ponder_events", "Events streamed by runs", ["type"], registry=r)
        self.limited = Counter(
            "ponder_limited", "Requests refused by a per-key limit (429)", ["limit"], registry=r
        )  # rate, active_runs; runs stopped by their token budget count under ponder_runs{status="failed"}

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MeasuredModel(ObservedModel):
    """A ChatModel that records each call's latency, outcome and tokens under its strategy's label."""

    def __init__(self, inner: ChatModel, metrics: Metrics, strategy: str) -> None:
        super().__init__(inner)
        self._seconds = metrics.llm_seconds.labels(strategy)
        self._ok = metrics.llm_calls.labels(strategy, "ok")
        self._failed = metrics.llm_calls.labels(strategy, "error")
        self._prompt = metrics.llm_tokens.labels(strategy, "prompt")
        self._completion = metrics.llm_tokens.labels(strategy, "completion")

    def observe(self, response: ChatResponse | None, seconds: float, *, failed: bool) -> None:
        self._seconds.observe(seconds)
        if failed:
            self._failed.inc()
        if response is not None:
            self._ok.inc()
            self._prompt.inc(response.usage.prompt_tokens)
            self._completion.inc(response.usage.completion_tokens)


class _MeasuredSession:
    def __init__(self, inner: ToolSession, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    @property
    def id(self) -> str:
        return self.inner.id

    async def call(self, tool: str, args: dict[str, Any], *, timeout_s: float | None = None) -> ToolResult:
        start = time.perf_counter()
        ok = "error"
        try:
            with tool_span(tool) as span:
                result = await self.inner.call(tool, args, timeout_s=timeout_s)
                span.set_attribute("ponder.tool.ok", result.ok)
            ok = "true" if result.ok else "false"
            return result
        finally:
            self.metrics.tool_seconds.labels(tool).observe(time.perf_counter() - start)
            self.metrics.tool_calls.labels(tool, ok).inc()

    def __getattr__(self, name: str) -> Any:  # other session methods pass through unchanged
        return getattr(self.inner, name)


class MeasuredToolServer:
    """A ToolServer that counts sessions and times every call."""

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    @asynccontextmanager
    async def session(self) -> AsyncIterator[_MeasuredSession]:
        async with self.inner.session() as session:
            self.metrics.tool_sessions.inc()
            self.metrics.tool_sessions_active.inc()
            try:
                yield _MeasuredSession(session, self.metrics)
            finally:
                self.metrics.tool_sessions_active.dec()

    @property
    def tools(self) -> Sequence[ToolSpec]:
        return self.inner.tools  # type: ignore[no-any-return]

    def specs(self) -> list[dict[str, Any]]:
        specs: list[dict[str, Any]] = self.inner.specs()
        return specs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
