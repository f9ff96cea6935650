"""Constrained generation of validated pydantic objects on top of any :class:`ChatModel`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ponder.errors import ModelServerError, OutputTruncated, OutputValidationError, UnsupportedConstraint
from ponder.llm._types import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    Choice,
    Confidence,
    JsonSchemaConstraint,
    Message,
    assistant,
    stream_or_complete,
    user,
)

T = TypeVar("T", bound=BaseModel)
OnText = Callable[[str], Awaitable[None] | None]


def schema_constraint(output_type: type[BaseModel]) -> JsonSchemaConstraint:
    return JsonSchemaConstraint(json_schema=output_type.model_json_schema(), name=output_type.__name__)


def check_supported(model: ChatModel, kind: str) -> None:
    if kind not in model.capabilities.constraints:
        raise UnsupportedConstraint(
            f"backend {model.name!r} cannot enforce a {kind!r} constraint "
            f"(it supports: {', '.join(sorted(model.capabilities.constraints))})"
        )


def _feedback(choice: Choice, error: str) -> list[Message]:
    return [
        assistant(choice.text),
        user(
            "Your reply could not be used: "
            + error
            + "\nReply again with only a JSON object that matches the schema exactly."
        ),
    ]


def _parse(output_type: type[T], choice: Choice) -> T | str:
    """The validated object, or the reason it is unusable."""
    if choice.finish_reason == "length":
        return "the reply was cut off at max_tokens (finish_reason=length); it must be shorter and complete"
    try:
        return output_type.model_validate_json(choice.text)
    except ValidationError as exc:
        return str(exc)


async def structured_n(
    model: ChatModel,
    messages: Sequence[Message],
    output_type: type[T],
    *,
    n: int = 1,
    retries: int = 2,
    on_text: OnText | None = None,
    confidences: list[Confidence | None] | None = None,
    **options: Any,
) -> list[T]:
    """Sample ``n`` replies constrained to ``output_type``'s JSON schema and validate each; ``confidences``, when
    given, receives each returned reply's :class:`Confidence` (of the sample itself, not of a repair), in order.

    Invalid or truncated replies are retried (one at a time) with the validation error fed back to the model, at
    most ``retries`` times per reply; then :class:`OutputTruncated` or :class:`OutputValidationError` is raised.
    With ``on_text`` and ``n == 1`` the first attempt streams: ``on_text`` gets each piece of raw JSON as it comes.
    """
    check_supported(model, "json_schema")
    constraint = schema_constraint(output_type)
    base = list(messages)
    request = ChatRequest(messages=base, constraint=constraint, n=n, **options)
    response = _check_n(model, await _first(model, request, on_text), n)
    results: list[T] = []
    for choice in response.choices:
        parsed = _parse(output_type, choice)
        attempt_messages = base
        current = choice
        for _ in range(retries):
            if not isinstance(parsed, str):
                break
            attempt_messages = [*attempt_messages, *_feedback(current, parsed)]
            retry = await model.complete(ChatRequest(messages=attempt_messages, constraint=constraint, n=1, **options))
            current = retry.choices[0]
            parsed = _parse(output_type, current)
        if confidences is not None:
            confidences.append(choice.confidence)
        if isinstance(parsed, str):
            if current.finish_reason == "length":
                raise OutputTruncated(
                    f"{output_type.__name__}: every reply was cut off at max_tokens", raw=current.text
                )
            raise OutputValidationError(
                f"{output_type.__name__}: reply failed validation after {retries} retries: {parsed}",
                raw=current.text,
            )
        results.append(parsed)
    return results


async def structured(
    model: ChatModel,
    messages: Sequence[Message],
    output_type: type[T],
    *,
    retries: int = 2,
    on_text: OnText | None = None,
    **options: Any,
) -> T:
    """One reply constrained to ``output_type``'s JSON schema, validated (see :func:`structured_n`)."""
    return (await structured_n(model, messages, output_type, n=1, retries=retries, on_text=on_text, **options))[0]


# "Think, then answer" (issue 24): the reasoning is free text, which code only shows; only the answer, which code
# consumes, is constrained. Two requests sharing a prefix: the reasoning, stopped at ANSWER_MARKER (or at the end of
# the turn), then the answer constrained to its schema after the same conversation with the reasoning as the
# assistant's turn. A backend with a prefix cache (the embedded scheduler, vLLM's automatic prefix caching) evaluates
# only the few tokens the second request adds. Portable to every backend and dialect: the first request is a plain
# completion with a stop string, the second a json_schema constraint.
ANSWER_MARKER = "Final answer:"
THINK_INSTRUCTIONS = (
    "Think step by step in plain text: short, concrete steps; compute exactly. When you are done, write a last line "
    f"that starts with `{ANSWER_MARKER}` followed by the answer."
)
ANSWER_REQUEST = "Now give the final answer as a JSON object that matches the schema."


async def think_then_answer_n(
    model: ChatModel,
    messages: Sequence[Message],
    output_type: type[T],
    *,
    n: int = 1,
    retries: int = 2,
    on_text: OnText | None = None,
    answer_max_tokens: int = 128,
    skip_truncated: bool = False,
    confidences: list[Confidence | None] | None = None,
    answer_request: str = ANSWER_REQUEST,
    mark_answer: bool = True,
    **options: Any,
) -> list[tuple[str, T]]:
    """``n`` free-text reasonings, each followed by an answer constrained to ``output_type``: (reasoning, answer)
    pairs. ``messages`` should ask for the reasoning to end with :data:`ANSWER_MARKER` (see
    :data:`THINK_INSTRUCTIONS`). With ``on_text`` and ``n == 1`` the reasoning streams as it is generated.

    A reasoning cut off at ``max_tokens`` raises :class:`OutputTruncated` (the answer is never guessed from it); with
    ``skip_truncated`` (a vote over samples) such samples are left out instead, and only all of them cut off raises.
    ``confidences``, when given, receives each kept reasoning's :class:`Confidence`, in order. ``answer_request``
    and ``mark_answer`` (whether the reasoning's turn ends with the marker) suit reasonings that are not whole
    answers (one step of a search).
    The answer is validated and retried exactly as :func:`structured_n` does. The answers are sampled greedily (the
    reasoning carries the sample's diversity)."""
    check_supported(model, "json_schema")
    base = list(messages)
    first = ChatRequest(messages=base, n=n, stop=[ANSWER_MARKER], **options)
    response = _check_n(model, await _first(model, first, on_text), n)
    reasonings = []
    for choice in response.choices:
        if choice.finish_reason == "length" and skip_truncated:
            continue
        if choice.finish_reason == "length":
            raise OutputTruncated(
                f"{output_type.__name__}: the reasoning was cut off at max_tokens before it reached the answer",
                raw=choice.text,
            )
        reasonings.append(choice.text.strip())
        if confidences is not None:
            confidences.append(choice.confidence)
    if not reasonings:
        raise OutputTruncated(
            f"{output_type.__name__}: every one of the {n} reasonings was cut off at max_tokens before its answer",
            raw=response.choices[0].text,
        )
    answer_options = {k: v for k, v in options.items() if k not in ("temperature", "max_tokens", "seed", "top_p")}

    async def answer(reasoning: str) -> T:
        said = f"{reasoning}\n{ANSWER_MARKER}" if mark_answer else reasoning
        follow_up = [*base, assistant(said), user(answer_request)]
        return await structured(
            model,
            follow_up,
            output_type,
            retries=retries,
            temperature=0.0,
            max_tokens=answer_max_tokens,
            **answer_options,
        )

    answers = await asyncio.gather(*(answer(r) for r in reasonings))  # batched together by a batching backend
    return list(zip(reasonings, answers, strict=True))


def _check_n(model: ChatModel, response: ChatResponse, n: int) -> ChatResponse:
    if len(response.choices) != n:  # a backend that ignores n would silently shrink the sample
        raise ModelServerError(
            f"backend {model.name!r} returned {len(response.choices)} choices for n={n}",
            hint="the backend breaks the ChatModel contract (n > 1 must always work); report it",
            retryable=False,
        )
    return response


async def _first(model: ChatModel, request: ChatRequest, on_text: OnText | None) -> ChatResponse:
    if on_text is None or request.n != 1:
        return await model.complete(request)
    response: ChatResponse | None = None
    async for chunk in stream_or_complete(model, request):
        if chunk.delta:
            pending = on_text(chunk.delta)
            if pending is not None:
                await pending
        if chunk.response is not None:
            response = chunk.response
    assert response is not None, "a stream must end with the whole response"
    return response
