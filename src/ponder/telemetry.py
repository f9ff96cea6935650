"""OpenTelemetry traces: one trace per run (``invoke_agent <strategy>``), a span per model call following the GenAI
semantic conventions (``chat <model>``: model, parameters, token usage, finish reasons; the prompt and the completion
as span events only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``, off by default for privacy),
and a span per tool call (``execute_tool <tool>``, MCP calls included). The W3C trace context goes out with every
request to a model server (vLLM joins its own spans to the trace) and to a remote ToolServer.

Nothing is exported unless the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set; the
exporter then reads the other ``OTEL_*`` variables itself. Without it every span is a no-op.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from ponder.llm import ChatRequest, ChatResponse, ModelWrapper, StreamChunk, stream_or_complete

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_installed = False


def tracer() -> Tracer:
    """ponder's tracer (the global provider's: a no-op until one is installed)."""
    return trace.get_tracer("ponder")


def setup_tracing() -> bool:
    """Install an OTLP/HTTP exporter when the environment asks for one; returns whether it did."""
    global _installed
    if _installed:
        return True
    wanted = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not wanted or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "ponder")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _installed = True
    return True


def capture_content() -> bool:
    return os.environ.get(CAPTURE_ENV, "").lower() == "true"


@contextmanager
def run_span(strategy: str, run_id: str) -> Iterator[Span]:
    with tracer().start_as_current_span(
        f"invoke_agent {strategy}",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": strategy, "ponder.run_id": run_id},
    ) as span:
        yield span


class StepSpans:
    """The strategy's steps as spans under the run's: ``start`` opens ``step <name>`` and makes it current, so the
    model and tool calls that follow are its children until the next step or the end of the run. A strategy's code
    runs in the task that drives it (an async generator resumes in its caller's context), so the span the driver
    makes current between two events is the one the strategy's calls see. Each step is also an event on the run's
    span. Use as ``with StepSpans(run) as steps: ... steps.start(name, detail)``, in the driving task."""

    def __init__(self, run: Span) -> None:
        self.run = run
        self._span: Span | None = None
        self._token: object | None = None

    def start(self, name: str, detail: str = "") -> None:
        self._end()
        self.run.add_event("step", {"name": name, "detail": detail[:500]})
        self._span = tracer().start_span(
            f"step {name}",
            context=trace.set_span_in_context(self.run),
            attributes={"ponder.step.name": name, "ponder.step.detail": detail[:500]},
        )
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    def _end(self) -> None:
        if self._span is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._span.end()
            self._span = self._token = None

    def __enter__(self) -> StepSpans:
        return self

    def __exit__(self, *exc: object) -> None:
        self._end()


@contextmanager
def tool_span(tool: str, kind: str = "sandbox", *, span_kind: SpanKind = SpanKind.CLIENT) -> Iterator[Span]:
    """A tool call: CLIENT where ponder asks a ToolServer or MCP server, INTERNAL where the ToolServer runs it."""
    with tracer().start_as_current_span(
        f"execute_tool {tool}",
        kind=span_kind,
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool, "ponder.tool.kind": kind},
    ) as span:
        yield span


class TracedModel(ModelWrapper):
    """A span per model call with the GenAI attributes; the inner stream is forwarded as it comes."""

    def _start(self, request: ChatRequest) -> Any:
        return tracer().start_as_current_span(
            f"chat {self.name}", kind=SpanKind.CLIENT, attributes=self._attributes(request)
        )

    def _start_span(self, request: ChatRequest) -> Span:
        return tracer().start_span(f"chat {self.name}", kind=SpanKind.CLIENT, attributes=self._attributes(request))

    def _attributes(self, request: ChatRequest) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": self.name,
            "gen_ai.request.temperature": request.temperature,
            "gen_ai.request.top_p": request.top_p,
            "gen_ai.request.max_tokens": request.max_tokens,
            "gen_ai.request.choice.count": request.n,
            "ponder.constraint": request.constraint.kind if request.constraint is not None else "none",
        }
        if request.seed is not None:
            attributes["gen_ai.request.seed"] = request.seed
        if request.stop:
            attributes["gen_ai.request.stop_sequences"] = list(request.stop)
        return attributes

    @staticmethod
    def _prompt(span: Span, request: ChatRequest) -> None:
        if capture_content():
            messages = [{"role": m.role, "content": m.content} for m in request.messages]
            span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": json.dumps(messages, ensure_ascii=False)})

    @staticmethod
    def _finish(span: Span, response: ChatResponse) -> None:
        span.set_attribute("gen_ai.response.model", response.model)
        span.set_attribute("gen_ai.usage.input_tokens", response.usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", response.usage.completion_tokens)
        span.set_attribute("gen_ai.response.finish_reasons", [c.finish_reason for c in response.choices])
        if capture_content():
            texts = [c.text for c in response.choices]
            span.add_event("gen_ai.content.completion", {"gen_ai.completion": json.dumps(texts, ensure_ascii=False)})

    async def complete(self, request: ChatRequest) -> ChatResponse:
        with self._start(request) as span:
            self._prompt(span, request)
            try:
                response = await self.inner.complete(request)
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                span.set_attribute("error.type", type(exc).__name__)
                raise
            self._finish(span, response)
            return response

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        # the span is current only while the stream opens (the request that carries the trace context goes out
        # then): a context left attached across a yield would leak into the consumer
        span = self._start_span(request)
        self._prompt(span, request)
        chunks = stream_or_complete(self.inner, request)
        try:
            with trace.use_span(span, end_on_exit=False):
                pending: StreamChunk | None = await anext(chunks, None)
            while pending is not None:
                if pending.response is not None:
                    self._finish(span, pending.response)
                yield pending
                pending = await anext(chunks, None)
        except Exception as exc:
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            span.set_attribute("error.type", type(exc).__name__)
            raise
        finally:
            span.end()
