"""Every body ponder sends to vLLM, validated by vLLM's own request model (issue 20). Skipped unless ``vllm`` is
importable; ``scripts/vllm_request_check.sh`` runs it in a throwaway venv (vllm==0.33.0 installs on a CPU-only
machine; ~9.5 GB)."""

from __future__ import annotations

from typing import Any

import pytest

from ponder.config import Backend
from ponder.llm import ChatRequest, ChoiceConstraint, GrammarConstraint, JsonSchemaConstraint, RegexConstraint, user
from ponder.llm._openai_payload import build_payload

protocol = pytest.importorskip("vllm.entrypoints.openai.chat_completion.protocol")

SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
REQUESTS = {
    "plain": ChatRequest(messages=[user("hi")], max_tokens=7, temperature=0.3, top_p=0.9, seed=1, stop=["\n", "."]),
    # n > 1 is sent sampled only: greedy n is one decode copied (vLLM refuses n > 1 at temperature 0)
    "n and logprobs": ChatRequest(messages=[user("hi")], n=4, temperature=0.8, logprobs=True, top_logprobs=3),
    "json schema": ChatRequest(messages=[user("hi")], constraint=JsonSchemaConstraint(json_schema=SCHEMA, name="A")),
    "regex": ChatRequest(messages=[user("hi")], constraint=RegexConstraint(pattern=r"\d+")),
    "choice": ChatRequest(messages=[user("hi")], constraint=ChoiceConstraint(choices=["yes", "no"])),
    "grammar": ChatRequest(messages=[user("hi")], constraint=GrammarConstraint(grammar='root ::= "a"')),
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_vllm_accepts_the_body_and_reads_each_field_where_ponder_means_it(name: str) -> None:
    request = REQUESTS[name]
    body: dict[str, Any] = build_payload(request, "m", Backend.vllm)
    parsed = protocol.ChatCompletionRequest.model_validate(body)
    assert not (parsed.model_extra or {}), f"fields vLLM does not know: {parsed.model_extra}"
    assert parsed.max_completion_tokens == request.max_tokens and "max_tokens" not in parsed.model_fields_set
    assert parsed.top_k == 0 and parsed.repetition_penalty == 1.0  # the server's generation config cannot change them
    params = parsed.to_sampling_params(max_tokens=request.max_tokens, default_sampling_params={})
    assert params.n == request.n and params.temperature == request.temperature
    constraint = request.constraint
    if constraint is None:
        assert parsed.response_format is None and parsed.structured_outputs is None
    elif isinstance(constraint, JsonSchemaConstraint):
        assert parsed.response_format.json_schema.json_schema == SCHEMA
    else:
        slot = {"regex": "regex", "choice": "choice", "grammar": "grammar"}[constraint.kind]
        assert getattr(parsed.structured_outputs, slot)
