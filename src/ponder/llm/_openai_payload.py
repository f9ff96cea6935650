"""Pure request building and response parsing for OpenAI-compatible chat servers, per dialect.

Nothing here touches the network, so every dialect's wire format is tested directly. The dialects differ only in
how an output constraint travels and whether ``n > 1`` is native:

- ``vllm``: JSON schemas as ``response_format: {"type": "json_schema", ...}``; regex, choice and grammar as the
  top-level ``structured_outputs`` object (what the openai client sends as ``extra_body``). The removed
  ``guided_*`` fields are never sent: current vLLM ignores them silently, so the reply would be unconstrained.
- ``openai``: JSON schemas only (``response_format`` json_schema); anything else is refused before sending.
- ``llamacpp`` (llama.cpp's server and llama-cpp-python's): ``response_format: {"type": "json_object", "schema":
  ...}``; regex and choice are translated to a GBNF ``grammar``; ``n`` is not supported, so choices are sampled one
  request at a time. A ``GrammarConstraint`` is passed through unchecked: llama-cpp-python's server (0.3.36) dies
  on a grammar it cannot parse (measured), so send only grammars you have tested.
"""

from __future__ import annotations

from typing import Any

from ponder.config import Backend
from ponder.errors import ConfigError, ModelRequestRejected, ModelServerError, UnsupportedConstraint
from ponder.llm._gbnf import choice_grammar, regex_grammar
from ponder.llm._types import (
    Capabilities,
    ChatRequest,
    Choice,
    ChoiceConstraint,
    Confidence,
    FinishReason,
    GrammarConstraint,
    JsonSchemaConstraint,
    RegexConstraint,
    TokenLogprob,
    Usage,
)

ALL_KINDS = frozenset({"json_schema", "regex", "choice", "grammar"})
MAX_STOP = 4  # OpenAI's and vLLM's limit on stop strings

DIALECT_CAPABILITIES: dict[Backend, Capabilities] = {
    Backend.vllm: Capabilities(constraints=ALL_KINDS, native_n=True),
    Backend.openai: Capabilities(constraints=frozenset({"json_schema"}), native_n=True),
    Backend.llamacpp: Capabilities(constraints=ALL_KINDS, native_n=False),
}


def capabilities_for(dialect: Backend) -> Capabilities:
    try:
        return DIALECT_CAPABILITIES[dialect]
    except KeyError:
        raise ConfigError(
            f"{dialect.value!r} is not an OpenAI-compatible dialect",
            hint="set PONDER_LLM__BACKEND to one of: " + ", ".join(d.value for d in DIALECT_CAPABILITIES),
        ) from None


def _strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts ``schema`` (every object closed and every property required)."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            props = schema.get("properties", {})
            if schema.get("additionalProperties", True) is not False or set(schema.get("required", [])) != set(props):
                return False
        return all(_strict_compatible(v) for v in schema.values())
    if isinstance(schema, list):
        return all(_strict_compatible(v) for v in schema)
    return True


def _constraint_fields(request: ChatRequest, dialect: Backend) -> dict[str, Any]:
    constraint = request.constraint
    if constraint is None:
        return {}
    if constraint.kind not in capabilities_for(dialect).constraints:
        raise UnsupportedConstraint(
            f"the {dialect.value!r} dialect cannot enforce a {constraint.kind!r} constraint",
            hint="use a JSON-schema constraint, or a vllm or llama.cpp server",
        )
    if isinstance(constraint, JsonSchemaConstraint):
        if dialect is Backend.llamacpp:
            return {"response_format": {"type": "json_object", "schema": constraint.json_schema}}
        strict = True if dialect is Backend.vllm else _strict_compatible(constraint.json_schema)
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": constraint.name, "schema": constraint.json_schema, "strict": strict},
            }
        }
    if dialect is Backend.vllm:
        if isinstance(constraint, RegexConstraint):
            return {"structured_outputs": {"regex": constraint.pattern}}
        if isinstance(constraint, ChoiceConstraint):
            return {"structured_outputs": {"choice": list(constraint.choices)}}
        return {"structured_outputs": {"grammar": constraint.grammar}}
    if isinstance(constraint, RegexConstraint):
        return {"grammar": regex_grammar(constraint.pattern)}
    if isinstance(constraint, ChoiceConstraint):
        return {"grammar": choice_grammar(constraint.choices)}
    assert isinstance(constraint, GrammarConstraint)
    return {"grammar": constraint.grammar}


def build_payload(request: ChatRequest, model_name: str | None, dialect: Backend) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions`` for ``request`` in ``dialect``.

    Raises :class:`UnsupportedConstraint` when the dialect cannot enforce the request's constraint. For the
    ``llamacpp`` dialect the body asks for one choice; the caller sends it ``n`` times.
    """
    body: dict[str, Any] = {}
    if model_name:
        body["model"] = model_name
    body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
    body["temperature"] = request.temperature
    body["top_p"] = request.top_p
    if dialect is Backend.llamacpp:
        body["max_tokens"] = request.max_tokens
    else:  # OpenAI deprecated max_tokens (its reasoning models reject it); vLLM reads both
        body["max_completion_tokens"] = request.max_tokens
    if dialect is Backend.vllm:
        # what ponder means, whatever the server's generation config says: vLLM's default `--generation-config
        # auto` applies the model's generation_config.json (Qwen2.5: repetition_penalty 1.05, top_k 20) to every
        # request that leaves these out, greedy JSON included. top_k 0 considers every token (SamplingParams).
        body["top_k"] = 0
        body["repetition_penalty"] = 1.0
    if capabilities_for(dialect).native_n:
        body["n"] = request.n
    if request.stop:
        if dialect is not Backend.llamacpp and len(request.stop) > MAX_STOP:
            raise ModelRequestRejected(
                f"{len(request.stop)} stop strings; the {dialect.value} API accepts at most {MAX_STOP}",
                hint="keep the 4 that matter most",
            )
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    if request.logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
    body.update(_constraint_fields(request, dialect))
    return body


def _finish_reason(raw: Any) -> FinishReason:
    if raw == "length":
        return "length"
    if raw in (None, "stop", "eos", "tool_calls", "function_call"):
        return "stop"
    return "error"


def _logprobs(raw: Any) -> list[TokenLogprob] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("content"), list):
        return None
    return [
        TokenLogprob(
            token=str(item["token"]),
            logprob=float(item["logprob"]),
            top={str(t["token"]): float(t["logprob"]) for t in item.get("top_logprobs") or []},
        )
        for item in raw["content"]
    ]


def confidence_of(logprobs: list[TokenLogprob] | None) -> Confidence | None:
    """A server's reply's confidence from the log-probabilities it returned (when asked for them): the chosen
    tokens' are exact; self-certainty needs the whole distribution, which top logprobs do not give, so it is None."""
    return Confidence.of([t.logprob for t in logprobs]) if logprobs else None


def parse_choices(data: Any, *, index_offset: int = 0) -> tuple[list[Choice], Usage]:
    """The choices and token usage of a chat-completion response body.

    Raises :class:`ModelServerError` when the body is not a chat completion.
    """
    try:
        raw_choices = sorted(data["choices"], key=lambda c: int(c.get("index", 0)))
        choices = [
            Choice(
                index=index_offset + i,
                text=(c.get("message") or {}).get("content") or "",
                finish_reason=_finish_reason(c.get("finish_reason")),
                logprobs=(logprobs := _logprobs(c.get("logprobs"))),
                confidence=confidence_of(logprobs),
            )
            for i, c in enumerate(raw_choices)
        ]
        usage = _usage(data.get("usage") or {})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelServerError(
            f"the server's reply is not a chat completion ({type(exc).__name__}: {exc})",
            hint="check that PONDER_LLM__BASE_URL points at an OpenAI-compatible /v1 endpoint",
            retryable=False,
        ) from exc
    if not choices:
        raise ModelServerError("the server's reply has no choices", retryable=False)
    return choices, usage


def _usage(raw: dict[str, Any]) -> Usage:
    """OpenAI's usage object; ``prompt_tokens_details.cached_tokens`` is what a server's prefix cache served (vLLM
    reports it with ``--enable-prompt-tokens-details``)."""
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
    )


def server_message(data: Any, fallback: str) -> str:
    """The human-readable message of an OpenAI-style error body."""
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail")
            if message:
                return str(message)
        if isinstance(error, str):
            return error
        if "detail" in data:
            return str(data["detail"])
    return fallback[:500]


def stream_payload(request: ChatRequest, model_name: str | None, dialect: Backend) -> dict[str, Any]:
    """The body of a streamed request (always one choice; usage asked for in the last event)."""
    body = build_payload(request.model_copy(update={"n": 1}), model_name, dialect)
    body.pop("n", None)
    body["stream"] = True
    if dialect is not Backend.llamacpp:  # llama.cpp's servers ignore stream_options or reject unknown fields
        body["stream_options"] = {"include_usage": True}
    return body


class StreamDelta:
    """What one server-sent event of a streamed chat completion adds to the reply."""

    __slots__ = ("finish_reason", "logprobs", "text", "usage")

    def __init__(self, data: Any) -> None:
        self.text = ""
        self.finish_reason: FinishReason | None = None
        self.logprobs: list[TokenLogprob] = []
        self.usage: Usage | None = None
        try:
            for choice in data.get("choices") or []:
                if int(choice.get("index", 0)) != 0:
                    continue
                self.text += (choice.get("delta") or {}).get("content") or ""
                if choice.get("finish_reason") is not None:
                    self.finish_reason = _finish_reason(choice["finish_reason"])
                self.logprobs += _logprobs(choice.get("logprobs")) or []
            if isinstance(data.get("usage"), dict):
                self.usage = _usage(data["usage"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelServerError(f"a streamed event is not a chat-completion chunk: {exc}", retryable=False) from exc
