"""Chain of thought: the model reasons, then answers, in one constrained JSON object
``{"reasoning": ..., "answer": <typed per task family>}``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from ponder.agents._base import Context, StrategyResult, Task, answer_model, format_answer, render_question
from ponder.agents._events import Event, FinalAnswer, LLMCall, StepStarted, TextDelta
from ponder.agents._stream import stream_structured
from ponder.llm import Message, system, user

SYSTEM = (
    "You are a careful reasoner. Think step by step in `reasoning` (short, concrete steps; compute exactly), "
    "then give the final answer in `answer`. Reply with a JSON object only."
)


class ChainOfThought:
    """Zero-shot chain of thought, or few-shot when ``exemplars`` (question, reasoning, answer) are given."""

    name: ClassVar[str] = "cot"
    description: ClassVar[str] = "chain of thought: reasoning then a typed answer, one constrained call"

    def __init__(
        self,
        *,
        exemplars: list[dict[str, Any]] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 512,
    ) -> None:
        self.exemplars = exemplars or []
        self.temperature = temperature
        self.max_tokens = max_tokens

    def messages(self, task: Task) -> list[Message]:
        msgs = [system(SYSTEM)]
        for ex in self.exemplars:
            msgs.append(user(str(ex["question"])))
            msgs.append(
                Message(
                    role="assistant",
                    content=f'{{"reasoning": {_json_str(ex["reasoning"])}, "answer": {_json_val(ex["answer"])}}}',
                )
            )
        msgs.append(user(render_question(task)))
        return msgs

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        model, start = ctx.metered()
        output_type = answer_model(
            "ChainOfThought",
            task,
            {"reasoning": (str, Field(description="step-by-step reasoning, short and concrete"))},
        )
        yield StepStarted(name="reason", detail="chain of thought")
        t0 = time.perf_counter()
        out: BaseModel | None = None
        async for item in stream_structured(
            model,
            self.messages(task),
            output_type,
            field="reasoning",
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        ):
            if isinstance(item, TextDelta):
                yield item
            else:
                out = item
        assert out is not None
        data = out.model_dump()
        yield LLMCall(
            purpose="reason",
            prompt_tokens=model.costs.prompt_tokens,
            completion_tokens=model.costs.completion_tokens,
            seconds=time.perf_counter() - t0,
            output=data,
        )
        answer = data["answer"]
        result = StrategyResult(
            answer=answer,
            text=format_answer(task, answer),
            costs=model.costs,
            seconds=time.perf_counter() - start,
            details={"reasoning": data["reasoning"]},
        )
        yield FinalAnswer(answer=answer, text=result.text, result=result.model_dump(mode="json"))


def _json_str(value: Any) -> str:
    import json

    return json.dumps(str(value))


def _json_val(value: Any) -> str:
    import json

    return json.dumps(value)
