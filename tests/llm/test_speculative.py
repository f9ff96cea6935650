"""Speculative decoding by prompt lookup in the embedded scheduler (issue 16): drafts come from the sequence's own
prompt and reply, and a greedy call's text is the one plain decoding gives, token for token."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pydantic import BaseModel

from ponder.llm import ChatRequest, JsonSchemaConstraint, user
from ponder.llm.embedded._scheduler import lookup_draft

if TYPE_CHECKING:
    from ponder.llm.embedded import EmbeddedModel

CODE = """def moving_average(values, window):
    if window <= 0:
        raise ValueError("window must be positive")
    out = []
    total = 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        if i >= window - 1:
            out.append(total / window)
    return out
"""


class Quote(BaseModel):
    function_name: str
    source: str


def test_the_draft_follows_the_latest_occurrence_of_the_longest_suffix() -> None:
    #          0  1  2  3  4  5  6  7  8  9 10 11
    tokens = [5, 6, 7, 8, 9, 1, 6, 7, 3, 4, 6, 7]
    assert lookup_draft(tokens, 3) == [3, 4, 6]  # "6 7" last occurred at 6..7, followed by 3 4 6
    assert lookup_draft([*tokens[:-1], 9, 1, 6, 7], 2) == [3, 4]  # the longer "1 6 7" wins over a later "6 7"
    assert lookup_draft(tokens, 1) == [3]


def test_no_draft_without_a_repeated_ngram() -> None:
    assert lookup_draft([1, 2, 3, 4, 5, 3], 4) == []  # a single repeated token is not enough
    assert lookup_draft([7], 4) == []
    assert lookup_draft([1, 2, 1, 2], 8) == [1, 2]  # bounded by what follows the match


def _copy(max_tokens: int = 160, stop: list[str] | None = None) -> ChatRequest:
    return ChatRequest(
        messages=[user("Repeat this Python function exactly, with no comment:\n\n" + CODE)],
        max_tokens=max_tokens,
        temperature=0.0,
        stop=stop or [],
    )


def _quote() -> ChatRequest:
    return ChatRequest(
        messages=[user("Quote the function below as JSON with its name and its full source.\n\n" + CODE)],
        max_tokens=220,
        temperature=0.0,
        constraint=JsonSchemaConstraint(json_schema=Quote.model_json_schema()),
    )


@pytest.mark.embedded
async def test_speculative_greedy_text_is_plain_greedy_text(embedded_model: EmbeddedModel) -> None:
    stats = embedded_model._shared.batcher().stats
    plain = embedded_model.without_speculation()
    speculative = embedded_model.always_speculating()  # whether drafts pay on this host is calibration's business
    for request in (_copy(), _copy(max_tokens=37), _copy(stop=["total / window"]), _quote()):
        expected = await plain.complete(request)
        drafted, accepted = stats.drafted, stats.accepted
        got = await speculative.complete(request)
        assert stats.accepted - accepted > 0, "no draft token was accepted: speculation did not run"
        assert stats.drafted - drafted >= stats.accepted - accepted
        assert got.choices[0].text == expected.choices[0].text
        assert got.choices[0].finish_reason == expected.choices[0].finish_reason
        assert got.usage.completion_tokens == expected.usage.completion_tokens
    quoted = Quote.model_validate_json(got.choices[0].text)  # the constraint held through accepted drafts
    assert quoted.function_name == "moving_average"
    assert "total -= values[i - window]" in quoted.source


@pytest.mark.embedded
async def test_sampled_calls_and_plain_views_never_speculate(embedded_model: EmbeddedModel) -> None:
    stats = embedded_model._shared.batcher().stats
    before = stats.drafted
    sampled = _copy(max_tokens=24).model_copy(update={"temperature": 0.8, "seed": 3})
    await embedded_model.complete(sampled)
    await embedded_model.without_speculation().complete(_copy(max_tokens=24))
    assert stats.drafted == before
