"""Chain of thought: the model reasons, then answers with a typed answer (per task family).

Three forms (issue 24 measures the first two against each other): ``json`` reasons inside one constrained JSON object
``{"reasoning": ..., "answer": ...}``; ``free`` reasons in plain text and then answers in a constrained
``{"answer": ...}`` (:func:`ponder.llm.think_then_answer_n`), so only what code consumes is constrained; ``text``
(open questions: an answer a person reads, not one code consumes) is one unconstrained reply whose answer is what
follows its ``Final answer:`` line, or, when the model wrote none, its last line, labelled as such."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from ponder.agents._base import (
    BaseStrategy,
    Context,
    Options,
    StrategyResult,
    Task,
    TaskFamily,
    answer_model,
    conversation,
    format_answer,
    render_question,
)
from ponder.agents._events import Event, FinalAnswer, LLMCall, StepStarted, TextDelta
from ponder.agents._stream import stream_structured, stream_text, stream_think_then_answer
from ponder.errors import InputError, OutputTruncated, OutputValidationError
from ponder.llm import ANSWER_MARKER, THINK_INSTRUCTIONS, ChatResponse, Message, system, user

SYSTEM = (
    "You are a careful reasoner. Think step by step in `reasoning` (short, concrete steps; compute exactly), "
    "then give the final answer in `answer`. Reply with a JSON object only."
)
SYSTEM_FREE = f"You are a careful reasoner. {THINK_INSTRUCTIONS}"
Form = Literal["json", "free", "text", "auto"]
ConcreteForm = Literal["json", "free", "text"]
# What ``auto`` picks per task family, from the measurement of issue 24 on the embedded model
# (docs/results/reasoning/think-then-answer, greedy, same items): free-text reasoning then a constrained answer won
# on GSM8K (69% vs 41%, n = 100, p < 0.001) and StrategyQA (60% vs 50%, n = 60, p = 0.21), and tied on
# CommonsenseQA (50.0% vs 51.7%, p = 1.0) with fewer generated tokens (156 vs 179). Open questions are answered in
# plain text (nothing consumes their answer; constrained, the 1.5B model wrote answers like 'strconv(17)' after
# right reasoning, issue 23). String and code answers keep JSON.
FAMILY_FORM: dict[TaskFamily, ConcreteForm] = {
    TaskFamily.number: "free",
    TaskFamily.yes_no: "free",
    TaskFamily.choice: "free",
    TaskFamily.open: "text",
}
LAST_LINE = "the reasoning's last line (the model wrote no 'Final answer:' line)"


class CoTOptions(Options):
    exemplars: list[dict[str, Any]] | None = Field(
        default=None, description="worked examples, each {question, reasoning, answer}: few-shot instead of zero-shot"
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="sampling temperature (0: greedy)")
    max_tokens: int = Field(default=512, ge=1, le=16384, description="longest reasoning, in tokens")
    form: Form = Field(
        default="auto",
        description="json: reason inside the constrained JSON object; free: plain-text reasoning, then a constrained "
        "answer; text: all plain text (open answers only); auto: per answer type (measured, issue 24)",
    )


class ChainOfThought(BaseStrategy[CoTOptions]):
    """Zero-shot chain of thought, or few-shot when ``exemplars`` (question, reasoning, answer) are given."""

    name: ClassVar[str] = "cot"
    description: ClassVar[str] = "chain of thought: step-by-step reasoning, then a typed answer"
    Options: ClassVar[type[CoTOptions]] = CoTOptions

    def form_for(self, task: Task) -> ConcreteForm:
        form: ConcreteForm = FAMILY_FORM.get(task.family, "json") if self.options.form == "auto" else self.options.form
        if form == "text" and task.family is not TaskFamily.open:
            raise InputError(
                f"form 'text' answers open questions only, not {task.family.value}",
                hint="use form 'free' (plain reasoning, then a typed answer) or 'auto'",
            )
        return form

    def messages(self, task: Task) -> list[Message]:
        form = self.form_for(task)
        msgs = [system(SYSTEM if form == "json" else SYSTEM_FREE)]
        for ex in self.options.exemplars or []:
            msgs.append(user(str(ex["question"])))
            if form == "json":
                content = f'{{"reasoning": {_json_str(ex["reasoning"])}, "answer": {_json_val(ex["answer"])}}}'
            else:
                content = f"{ex['reasoning']}\n{ANSWER_MARKER} {ex['answer']}"
            msgs.append(Message(role="assistant", content=content))
        msgs.extend(conversation(task))
        msgs.append(user(render_question(task)))
        return msgs

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        model, start = ctx.metered()
        output_type = answer_model(
            "ChainOfThought",
            task,
            {"reasoning": (str, Field(description="step-by-step reasoning, short and concrete"))},
        )
        form = self.form_for(task)
        yield StepStarted(name="reason", detail="chain of thought" if form == "json" else "think, then answer")
        t0 = time.perf_counter()
        data: dict[str, Any] | None = None
        stream: AsyncIterator[TextDelta | BaseModel | tuple[str, BaseModel] | ChatResponse]
        if form == "text":
            stream = stream_text(
                model,
                self.messages(task),
                field="reasoning",
                until=ANSWER_MARKER,
                temperature=self.options.temperature,
                max_tokens=self.options.max_tokens,
            )
        elif form == "json":
            stream = stream_structured(
                model,
                self.messages(task),
                output_type,
                field="reasoning",
                temperature=self.options.temperature,
                max_tokens=self.options.max_tokens,
            )
        else:
            stream = stream_think_then_answer(
                model,
                self.messages(task),
                answer_model("Answer", task, {}),
                temperature=self.options.temperature,
                max_tokens=self.options.max_tokens,
            )
        async for item in stream:
            if isinstance(item, TextDelta):
                yield item
            elif isinstance(item, tuple):  # free form: (reasoning, answer)
                data = {"reasoning": item[0], **item[1].model_dump()}
            elif isinstance(item, ChatResponse):  # text form: the whole reply
                data = split_answer(item)
            else:
                data = item.model_dump()
        assert data is not None
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
            reasoning=str(data["reasoning"]),
            costs=model.costs,
            seconds=time.perf_counter() - start,
            details={
                "reasoning": data["reasoning"],
                **({"answer_from": data["answer_from"]} if "answer_from" in data else {}),
            },
        )
        yield FinalAnswer(answer=answer, text=result.text, result=result.model_dump(mode="json"))


def split_answer(response: ChatResponse) -> dict[str, Any]:
    """Reasoning and answer of a plain-text reply: the answer follows its last ``Final answer:``; without one it is
    the last line, and ``answer_from`` says so. A reply cut off at max_tokens is an error, not an answer."""
    choice = response.choices[0]
    if choice.finish_reason == "length":
        raise OutputTruncated("the reply was cut off at max_tokens before it reached its answer", raw=choice.text)
    reasoning, marker, tail = choice.text.rpartition(ANSWER_MARKER)
    if marker and tail.strip():
        return {"reasoning": reasoning.strip(), "answer": tail.strip(), "answer_from": "the 'Final answer:' line"}
    lines = [line.strip() for line in choice.text.splitlines() if line.strip()]
    if not lines:
        raise OutputValidationError("the model's reply was empty", raw=choice.text)
    return {"reasoning": choice.text.strip(), "answer": lines[-1], "answer_from": LAST_LINE}


def _json_str(value: Any) -> str:
    import json

    return json.dumps(str(value))


def _json_val(value: Any) -> str:
    import json

    return json.dumps(value)
