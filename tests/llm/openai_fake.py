"""A fake OpenAI-compatible server for ``httpx.MockTransport``: it checks each request body exactly as vLLM's
(or OpenAI's) validation would, then answers the way the server would, deriving the reply from the request.

- Bodies with unknown fields, any ``guided_*`` field, a malformed ``response_format`` or ``structured_outputs``
  are answered with HTTP 400 (and recorded in ``rejected``), so a wrong payload fails the test loudly.
- A JSON-schema constraint is answered with the smallest document valid against the schema (objects with their
  required properties, the first enum value, ``minItems`` elements); a regex with the shortest string the regex
  parser's syntax tree yields; a choice with the ``i``-th choice. Unconstrained replies echo the last user message.
- ``max_completion_tokens`` counts whitespace-separated words (``max_tokens`` too, listed in ``deprecated``);
  ``stop`` cuts before the first stop string; more than 4 stop strings are refused, as vLLM and OpenAI do; vLLM's
  refusal of ``n > 1`` at temperature 0 too.
- ``fail(status, times)`` makes the next ``times`` requests answer with ``status``.
"""

from __future__ import annotations

import importlib
import json
from collections import deque
from typing import Any

import httpx

_sre: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

COMMON_FIELDS = {"model", "messages", "temperature", "top_p", "max_completion_tokens", "n", "stop", "seed", "logprobs"}
COMMON_FIELDS |= {"top_logprobs", "response_format", "stream", "stream_options"}
DIALECT_FIELDS = {
    "vllm": COMMON_FIELDS | {"structured_outputs", "top_k", "repetition_penalty"},
    "openai": COMMON_FIELDS,
}
DEPRECATED = {"max_tokens": "use max_completion_tokens"}  # accepted by both servers, flagged in ``deprecated``


def minimal_instance(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """The smallest JSON value valid against ``schema`` (the subset pydantic emits)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return minimal_instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return minimal_instance(schema[key][0], defs)
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: minimal_instance(props[name], defs) for name in schema.get("required", [])}
    if kind == "array":
        return [minimal_instance(schema.get("items", {}), defs) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * schema.get("minLength", 1)
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    return None


def shortest_match(pattern: str) -> str:
    """A short string that fully matches ``pattern`` (walks Python's own regex syntax tree)."""

    def walk(items: Any) -> str:
        out = []
        for op, av in items:
            if op is _c.LITERAL:
                out.append(chr(av))
            elif op is _c.ANY:
                out.append("a")
            elif op is _c.IN:
                first_op, first = next((o, a) for o, a in av if o is not _c.NEGATE)
                if first_op is _c.LITERAL:
                    out.append(chr(first))
                elif first_op is _c.RANGE:
                    out.append(chr(first[0]))
                else:
                    out.append({_c.CATEGORY_DIGIT: "7", _c.CATEGORY_WORD: "w", _c.CATEGORY_SPACE: " "}[first])
            elif op is _c.BRANCH:
                out.append(walk(av[1][0]))
            elif op is _c.SUBPATTERN:
                out.append(walk(av[3]))
            elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
                out.append(walk(av[2]) * av[0])
        return "".join(out)

    return walk(_sre.parse(pattern))


class FakeOpenAIServer:
    """Plays vLLM (``dialect="vllm"``) or OpenAI (``"openai"``) behind ``httpx.MockTransport``."""

    def __init__(self, dialect: str = "vllm", model: str = "fake-model") -> None:
        self.dialect = dialect
        self.model = model
        self.bodies: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self.deprecated: list[str] = []
        self._failures: deque[int] = deque()

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url="http://fake-server.test/v1", transport=httpx.MockTransport(self.handle))

    def fail(self, status: int, times: int = 1) -> None:
        self._failures.extend([status] * times)

    def _reject(self, message: str) -> httpx.Response:
        self.rejected.append(message)
        return httpx.Response(400, json={"object": "error", "message": message, "type": "BadRequestError", "code": 400})

    def check(self, body: dict[str, Any]) -> str | None:
        """Why a server would refuse ``body``, or None."""
        self.deprecated += [f"{key}: {why}" for key, why in DEPRECATED.items() if key in body]
        unknown = set(body) - DIALECT_FIELDS[self.dialect] - set(DEPRECATED)
        if unknown:
            return f"unknown fields: {sorted(unknown)}"
        if any(key.startswith("guided_") for key in body):
            return "guided_* fields are removed"
        if not body.get("messages") or not all(set(m) == {"role", "content"} for m in body["messages"]):
            return "messages must be a non-empty list of {role, content}"
        fmt = body.get("response_format")
        if fmt is not None:
            if fmt.get("type") != "json_schema" or set(fmt) != {"type", "json_schema"}:
                return f"response_format must be json_schema here, got {fmt}"
            spec = fmt["json_schema"]
            if set(spec) != {"name", "schema", "strict"} or not isinstance(spec["schema"], dict):
                return f"json_schema needs exactly name, schema, strict; got {sorted(spec)}"
        so = body.get("structured_outputs")
        if so is not None:
            if fmt is not None:
                return "both response_format and structured_outputs"
            if len(so) != 1 or next(iter(so)) not in {"json", "regex", "choice", "grammar"}:
                return f"structured_outputs must hold one of json/regex/choice/grammar, got {so}"
        if body.get("logprobs") is not True and "top_logprobs" in body:
            return "top_logprobs needs logprobs"
        if "stream_options" in body and body.get("stream") is not True:
            return "stream_options needs stream"
        if len(body.get("stop") or []) > 4:
            return "stop: at most 4 sequences"
        if self.dialect == "vllm" and body.get("n", 1) > 1 and body.get("temperature", 1.0) == 0:
            return f"n must be 1 when using greedy sampling, got {body['n']}."  # vLLM 0.33's SamplingParams
        return None

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST" and request.url.path == "/v1/chat/completions", request.url
        body = json.loads(request.content)
        self.bodies.append(body)
        if self._failures:
            status = self._failures.popleft()
            return httpx.Response(status, json={"object": "error", "message": f"injected {status}", "code": status})
        reason = self.check(body)
        if reason:
            return self._reject(reason)
        n = int(body.get("n", 1))
        choices = [self._choice(body, i) for i in range(n)]
        prompt_words = sum(len(m["content"].split()) for m in body["messages"])
        completion_words = sum(len(c["message"]["content"].split()) for c in choices)
        usage = {
            "prompt_tokens": prompt_words,
            "completion_tokens": completion_words,
            "total_tokens": prompt_words + completion_words,
        }
        model = body.get("model", self.model)
        if body.get("stream"):
            return self._stream(choices[0], usage if body.get("stream_options", {}).get("include_usage") else None)
        completion = {"id": "chatcmpl-fake", "object": "chat.completion", "model": model}
        return httpx.Response(200, json={**completion, "choices": choices, "usage": usage})

    def _stream(self, choice: dict[str, Any], usage: dict[str, Any] | None) -> httpx.Response:
        """The choice as vLLM streams it: a role event, one event per word, the finish event, usage, [DONE]."""
        words = choice["message"]["content"].split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        events: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
        events += [{"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces if p]
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]})
        if usage is not None:
            events.append({"choices": [], "usage": usage})
        lines = [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
        return httpx.Response(200, content="".join(lines).encode(), headers={"content-type": "text/event-stream"})

    def _text(self, body: dict[str, Any], i: int) -> str:
        fmt = body.get("response_format")
        so = body.get("structured_outputs") or {}
        if fmt is not None:
            return json.dumps(minimal_instance(fmt["json_schema"]["schema"]))
        if "json" in so:
            return json.dumps(minimal_instance(so["json"]))
        if "regex" in so:
            return shortest_match(so["regex"])
        if "choice" in so:
            return str(so["choice"][i % len(so["choice"])])
        if "grammar" in so:
            raise AssertionError("the fake cannot generate from grammars")
        return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")

    def _choice(self, body: dict[str, Any], i: int) -> dict[str, Any]:
        text = self._text(body, i)
        finish = "stop"
        for stop in body.get("stop", []):
            if stop in text:
                text = text[: text.index(stop)]
        words = text.split(" ")
        limit = body.get("max_completion_tokens", body.get("max_tokens", 16))
        if len(words) > limit:
            text, finish = " ".join(words[:limit]), "length"
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish,
        }
        if body.get("logprobs"):
            choice["logprobs"] = {
                "content": [
                    {
                        "token": w,
                        "logprob": -0.5,
                        "top_logprobs": [{"token": w, "logprob": -0.5}][: body.get("top_logprobs", 0)],
                    }
                    for w in text.split(" ")
                ]
            }
        return choice
