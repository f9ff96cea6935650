"""A reply's confidence (issue 32): the chosen tokens' log-probabilities and, on the embedded backend, each step's
self-certainty, both from the model's own distribution before a constraint's mask; from a server, what its
returned log-probabilities allow."""

from __future__ import annotations

import pytest

from ponder.llm import ChatRequest, Confidence, JsonSchemaConstraint, user
from ponder.llm._openai_payload import parse_choices
from ponder.llm.embedded import EmbeddedModel


def test_lowest_window_finds_the_least_sure_stretch() -> None:
    sure, unsure = [-0.01] * 40, [-3.0] * 16
    got = Confidence.of(sure + unsure + sure)
    assert got is not None
    assert got.tokens == 96 and got.lowest_window == pytest.approx(-3.0)
    assert got.mean_logprob == pytest.approx((80 * -0.01 + 16 * -3.0) / 96)
    short = Confidence.of([-1.0, -2.0])
    assert short is not None and short.lowest_window == pytest.approx(-1.5)  # fewer tokens than a window
    assert Confidence.of([]) is None


def test_a_servers_logprobs_give_the_mean_but_not_self_certainty() -> None:
    tokens = [{"token": t, "logprob": lp, "top_logprobs": []} for t, lp in [("4", -0.1), ("2", -0.5)]]
    body = {"choices": [{"index": 0, "message": {"content": "42"}, "logprobs": {"content": tokens}}]}
    (choice,), _ = parse_choices(body)
    assert choice.confidence is not None
    assert choice.confidence.mean_logprob == pytest.approx(-0.3) and choice.confidence.self_certainty is None
    (bare,), _ = parse_choices({"choices": [{"index": 0, "message": {"content": "42"}}]})
    assert bare.confidence is None  # no logprobs asked for: nothing to measure


@pytest.mark.embedded
async def test_embedded_confidence_matches_the_returned_logprobs(embedded_model: EmbeddedModel) -> None:
    request = ChatRequest(messages=[user("Count from 1 to 30, comma separated.")], max_tokens=12, logprobs=True)
    (choice,) = (await embedded_model.complete(request)).choices
    confidence, logprobs = choice.confidence, choice.logprobs
    assert confidence is not None and logprobs is not None and choice.finish_reason == "length"
    assert confidence.tokens == len(logprobs) == 12  # cut at the limit: no end-of-reply step
    assert confidence.mean_logprob == pytest.approx(sum(t.logprob for t in logprobs) / 12, abs=1e-4)
    assert confidence.self_certainty is not None and confidence.self_certainty > 0  # KL(uniform || p) >= 0


@pytest.mark.embedded
async def test_a_constrained_reply_is_measured_on_the_models_own_distribution(embedded_model: EmbeddedModel) -> None:
    """Under a schema the forced tokens keep their unmasked probabilities: a question the model is sure of scores
    far above the same schema filled with a guess it would not make."""
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"]}
    constraint = JsonSchemaConstraint(json_schema=schema)
    sure = ChatRequest(messages=[user("The capital of France, as JSON.")], constraint=constraint, max_tokens=24)
    forced = ChatRequest(
        messages=[user("The capital of France, as JSON.")],
        constraint=JsonSchemaConstraint(
            json_schema={**schema, "properties": {"capital": {"type": "string", "enum": ["Zzyzx Qwerty"]}}}
        ),
        max_tokens=24,
    )
    (a,) = (await embedded_model.complete(sure)).choices
    (b,) = (await embedded_model.complete(forced)).choices
    assert '"Paris"' in a.text.replace(" ", "") and "Zzyzx" in b.text
    assert a.confidence is not None and b.confidence is not None
    assert a.confidence.lowest_window > b.confidence.lowest_window + 1.0
