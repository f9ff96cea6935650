"""The official openai client against /v1: models, chat completions streamed and not, errors."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from tests.api.conftest import Server
from tests.fakes import FunctionModel


async def test_models_and_completions_with_the_openai_client(
    make_server: Callable[..., Server], model: FunctionModel
) -> None:
    server = make_server(keys=["sk-test"])
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)
    async with client:
        models = [m.id for m in (await client.models.list()).data]
        assert {"ponder-cot", "ponder-steps", "ponder-ask"} <= set(models)

        completion = await client.chat.completions.create(
            model="ponder-cot",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "I count apples."},
                {"role": "assistant", "content": "Happy to help."},
                {"role": "user", "content": "What is 2+2?"},
            ],
        )
        assert completion.choices[0].message.content == "4"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None
        assert completion.usage.completion_tokens > 0
        run_id = completion.model_extra["ponder"]["run_id"]  # type: ignore[index]

        stream = await client.chat.completions.create(
            model="ponder-steps",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        content, reasoning, finish, usage = "", "", None, None
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                content += choice.delta.content or ""
                reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
                finish = choice.finish_reason or finish
        assert content == "hello"
        assert "step 3" in reasoning
        assert finish == "stop"
        assert usage is not None

        with pytest.raises(openai.NotFoundError, match="ponder-cot"):
            await client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])

    # the completion is a run like any other, owned by the key, with its reasoning kept
    async with server.client("sk-test") as http:
        run = (await http.get(f"/runs/{run_id}")).json()
        assert run["input"]["question"] == "What is 2+2?"
        assert run["input"]["context"] == "be brief"  # instructions
        assert run["input"]["conversation"] == [  # the earlier turns, kept as turns
            {"role": "user", "content": "I count apples."},
            {"role": "assistant", "content": "Happy to help."},
        ]
        assert run["kind"] == "chat"
    asked = next(r for r in model.requests if "What is 2+2?" in r.messages[-1].content).messages
    assert [(m.role, m.content) for m in asked[1:3]] == [("user", "I count apples."), ("assistant", "Happy to help.")]

    other = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    async with other:
        with pytest.raises(openai.AuthenticationError):
            await other.models.list()


async def test_a_needs_human_question_comes_back_as_the_reply(server: Server) -> None:
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    async with client:
        completion = await client.chat.completions.create(
            model="ponder-ask", messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].message.content == "Who is asking 'hi'?"
        assert completion.model_extra["ponder"]["status"] == "waiting"  # type: ignore[index]


def test_streamed_reasoning_is_sent_once() -> None:
    from ponder.agents import event_adapter
    from ponder.api.openai.chunks import ReasoningText as _ReasoningText

    text = _ReasoningText()
    streamed_step = [
        {"type": "step_started", "name": "reason"},
        {"type": "text_delta", "field": "reasoning", "text": "3 * 4 "},
        {"type": "text_delta", "field": "reasoning", "text": "= 12"},
        {"type": "llm_call", "purpose": "reason", "output": {"reasoning": "3 * 4 = 12", "answer": 12}},
    ]
    quiet_step = [{"type": "llm_call", "purpose": "check", "output": {"reasoning": "checked", "answer": 12}}]
    sent = "".join(text(event_adapter.validate_python(e)) for e in streamed_step + quiet_step)
    assert sent.count("3 * 4") == 1
    assert "checked" in sent


async def test_a_cancelled_chat_run_is_a_409_in_openai_shape(make_server: Callable[..., Server]) -> None:
    import asyncio

    from tests.fakes import FunctionModel

    async def slow(request: object) -> str:
        await asyncio.sleep(30)
        return "never"

    server = make_server(model=FunctionModel(slow))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    async with client, server.client() as http:
        asking = asyncio.create_task(
            client.chat.completions.create(model="ponder-steps", messages=[{"role": "user", "content": "q"}])
        )
        for _ in range(100):
            runs = (await http.get("/runs")).json()
            running = [r for r in runs.get("runs", runs) if r["status"] == "running"]
            if running:
                break
            await asyncio.sleep(0.05)
        assert (await http.post(f"/runs/{running[0]['id']}/cancel")).status_code == 200
        with pytest.raises(openai.ConflictError, match="cancelled"):
            await asking
