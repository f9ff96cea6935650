"""The embedded backend's prompt cache on the real default model: a prompt that shares a long prefix with an earlier
prompt whose sequence slot was since taken evaluates only what follows it, and decodes exactly as if the context
itself had held that prefix; entries stay within their budget, least recently used first out. The models here have
as many sequence slots as a call has samples, so each call takes the slots of the one before it."""

from __future__ import annotations

import pytest

from ponder.config import LLMSettings
from ponder.llm import ChatRequest, ChatResponse, Message, system, user
from ponder.llm.embedded import BatchingOptions, EmbeddedModel
from ponder.llm.embedded._model_files import ensure_default_model

pytestmark = pytest.mark.embedded

# Two long instructions that differ from their first word, as a planner's "act" and "refine" prompts do.
PLANNER = system("You are a careful planner. " + " ".join(f"Rule {i}: keep step {i} short." for i in range(24)))
CHECKER = system("You are a terse checker. " + " ".join(f"Check {i}: claim {i} must hold." for i in range(24)))


def ask(instructions: Message, question: str, n: int = 1) -> ChatRequest:
    return ChatRequest(
        messages=[instructions, user(question)], n=n, max_tokens=3, logprobs=True, top_logprobs=3, seed=5,
        temperature=0.0 if n == 1 else 0.8,
    )  # fmt: skip


async def replies(model: EmbeddedModel, *requests: ChatRequest) -> list[ChatResponse]:
    return [await model.complete(r) for r in requests]


def fresh(prompt_cache_mb: int, slots: int = 1) -> EmbeddedModel:
    """A model of its own with ``slots`` sequence slots, so that every KV cache starts empty, both runs compute the
    same batches, and a call's slots are the previous call's (its leader's cells saved to the prompt cache)."""
    slotted = BatchingOptions(max_sequences=slots, kv_tokens=4096, prefill_chunk=512, max_queue=8, calibrate=False)
    path = ensure_default_model(LLMSettings().cache_dir)
    return EmbeddedModel(path, prompt_cache_mb=prompt_cache_mb, batching=slotted)


@pytest.mark.parametrize("n", [1, 3], ids=["single", "batched"])
async def test_a_prompt_reuses_the_cache_of_an_earlier_prompt_and_decodes_the_same(n: int) -> None:
    async with fresh(512, n) as cached, fresh(0, n) as uncached:
        first, _, third = await replies(
            cached, ask(PLANNER, "What is 2+2?", n), ask(CHECKER, "Is 3 odd?", n), ask(PLANNER, "What is 5+5?", n)
        )
        instructions = first.usage.prompt_tokens - 20  # the question and the chat template's tail are < 20 tokens
        assert first.usage.prompt_tokens > 250
        assert third.usage.cached_tokens >= instructions  # the planner's instructions came back from the cache
        # what a context that had held the planner's prompt itself computes (no cache involved): the same logits
        _, direct = await replies(uncached, ask(PLANNER, "What is 2+2?", n), ask(PLANNER, "What is 5+5?", n))
        assert direct.usage.cached_tokens == third.usage.cached_tokens
        assert [c.logprobs for c in third.choices] == [c.logprobs for c in direct.choices]
        # without the cache only the last prompt's KV survives: the planner's instructions are evaluated again
        _, again = await replies(uncached, ask(CHECKER, "Is 3 odd?", n), ask(PLANNER, "What is 7+7?", n))
        assert again.usage.cached_tokens < 20


async def test_entries_stay_within_the_budget_least_recently_used_first_out() -> None:
    async with fresh(12) as model:
        # each of these prompts' KV caches is about 9 MB: the budget holds one
        first, _, third = await replies(
            model, ask(PLANNER, "What is 2+2?"), ask(CHECKER, "Is 3 odd?"), ask(PLANNER, "What is 5+5?")
        )
        assert third.usage.cached_tokens < 20  # the planner's entry was evicted to make room for the checker's
        scheduler = model._shared.scheduler
        assert scheduler is not None
        cache = scheduler._prompt_cache
        assert len(cache) == 1 and 0 < cache.nbytes <= 12 << 20
        # a prompt the cache already holds is not stored twice; one that extends an entry replaces it
        await replies(model, ask(PLANNER, "What is 5+5?"))
        assert len(cache) == 1
        assert cache.stats.hits == 0 and cache.stats.misses == 4  # held by the context itself, not restored
        assert first.usage.cached_tokens == 0
