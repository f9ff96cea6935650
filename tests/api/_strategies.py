"""Strategies made for the API tests: they exercise the run machinery (many events, human questions,
cancellation) through the real model seam, with a fake model behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import Field

from ponder.agents import (
    BaseStrategy,
    Context,
    Event,
    EvidenceChecked,
    FinalAnswer,
    LLMCall,
    NeedsHuman,
    PlanUpdated,
    StepStarted,
    StrategyResult,
    Task,
    TextDelta,
    ToolCalled,
    ToolReturned,
    TreeUpdated,
)
from ponder.agents import Options as StrategyOptions
from ponder.llm import ChatRequest, user


class StepsOptions(StrategyOptions):
    steps: int = Field(default=3, ge=1, le=50, description="model calls")
    pause_s: float = Field(default=0.0, ge=0, le=5, description="pause after each call")


class Steps(BaseStrategy[StepsOptions]):
    """``steps`` LLM calls, one event pair per call, then the last reply as the answer."""

    name: ClassVar[str] = "steps"
    description: ClassVar[str] = "test: several model calls in a row"
    Options: ClassVar[type[StepsOptions]] = StepsOptions

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        text = ""
        steps, pause_s = self.options.steps, self.options.pause_s
        for i in range(steps):
            yield StepStarted(name=f"step {i + 1}")
            response = await ctx.model.complete(ChatRequest(messages=[user(f"{task.question} #{i + 1}")]))
            text = response.text
            yield LLMCall(purpose=f"step {i + 1}", completion_tokens=response.usage.completion_tokens, output=text)
            if pause_s:
                await asyncio.sleep(pause_s)
        result = StrategyResult(answer=text, text=text, details={"steps": steps})
        yield FinalAnswer(answer=text, text=text, result=result.model_dump(mode="json"))


class AskHuman(BaseStrategy[StrategyOptions]):
    """Asks the human for a name (then stops, as a checkpointing strategy does) and greets them on resume."""

    name: ClassVar[str] = "ask"
    description: ClassVar[str] = "test: asks a human, resumable"
    resumable: ClassVar[bool] = True
    asks_humans: ClassVar[bool] = True

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        yield StepStarted(name="think")
        yield NeedsHuman(question=f"Who is asking '{task.question}'?", interrupt_id=f"{ctx.run_id}-1")

    async def resume(self, run_id: str, answer: str | None, ctx: Context) -> AsyncIterator[Event]:
        response = await ctx.model.complete(ChatRequest(messages=[user(f"greet {answer}")]))
        text = f"{response.text}, {answer}"
        yield FinalAnswer(answer=text, text=text, result=StrategyResult(answer=text, text=text).model_dump())


class AskOnce(BaseStrategy[StrategyOptions]):
    """Asks a human but cannot resume: answering it must be refused with a clear 409."""

    name: ClassVar[str] = "ask-once"
    description: ClassVar[str] = "test: asks a human, not resumable"
    asks_humans: ClassVar[bool] = True

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        yield NeedsHuman(question="anyone there?", interrupt_id="x")


class Showcase(BaseStrategy[StrategyOptions]):
    """One of every reasoning view the UI draws: plan, tool call and result, evidence, a tree, streamed text."""

    name: ClassVar[str] = "showcase"
    resumable: ClassVar[bool] = True
    description: ClassVar[str] = "test: every event type, then asks a human"

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        plan = {  # the planner's Plan, as it streams it
            "goal": task.question,
            "subtasks": [
                {"id": "1", "name": "look up", "goal": "find the facts", "status": "done", "children": []},
                {
                    "id": "2",
                    "name": "compute",
                    "goal": "compute the answer",
                    "status": "doing",
                    "children": [{"id": "2.1", "name": "multiply", "goal": "6*7", "status": "pending", "children": []}],
                },
            ],
        }
        yield PlanUpdated(plan=plan, change="initial plan")
        # tool calls of two subtasks, the first one failing, then the plan with what each subtask found
        yield ToolCalled(call_id="c0", tool="shell", args={"command": "cat facts.txt"}, group="1")
        yield ToolReturned(call_id="c0", tool="shell", ok=False, error="exit 1", output={"stderr": "no such file"},
                           group="1")  # fmt: skip
        code = "x = 6 * 7\nprint(x)  # the answer"
        yield ToolCalled(call_id="c1", tool="python", args={"code": code}, group="2.1")
        yield ToolReturned(call_id="c1", tool="python", ok=True, output={"stdout": "42\n"}, seconds=0.01, group="2.1")
        failed = {"id": "3", "name": "check units", "goal": "units", "status": "failed", "children": []}
        later = {**plan, "subtasks": [*plan["subtasks"], failed]}  # type: ignore[misc]
        outcomes = {"1": "the facts are in the question", "3": "no unit was given"}
        yield PlanUpdated(plan=later, change="3 failed: no unit was given", outcomes=outcomes)
        triples = [  # Chain-of-Knowledge's checked triples
            {"subject": "Paris", "relation": "capital of", "object": "France", "supported": True, "score": 0.97,
             "source": "kb", "evidence": [], "correction": None},
            {"subject": "Paris", "relation": "capital of", "object": "Spain", "supported": False, "score": 0.02,
             "source": "kb", "evidence": [], "correction": "Madrid is the capital of Spain"},
        ]  # fmt: skip
        yield EvidenceChecked(round=1, triples=triples, factuality=0.5, faithfulness=1.0)
        node = {"terminal": False, "verified": None, "reward": 0.0, "prior": 0.0, "answer": None, "reason": "",
                "reflection": None, "info": {}}  # fmt: skip
        tree = {  # MCTS's flat node list
            "root": 0,
            "chosen": 2,
            "nodes": [
                {**node, "id": 0, "parent": None, "depth": 0, "action": "", "visits": 4, "value": 0.5},
                {**node, "id": 1, "parent": 0, "depth": 1, "action": "try x=5", "visits": 1, "value": 0.1},
                {**node, "id": 2, "parent": 0, "depth": 1, "action": "try x=6", "visits": 3, "value": 0.8,
                 "terminal": True, "verified": True},
            ],
        }  # fmt: skip
        yield TreeUpdated(tree=tree)
        yield NeedsHuman(question="Which unit should the answer use?", interrupt_id="unit")

    async def resume(self, run_id: str, answer: str | None, ctx: Context) -> AsyncIterator[Event]:
        response = await ctx.model.complete(ChatRequest(messages=[user("answer")]))
        for word in response.text.split():
            yield TextDelta(field="reasoning", text=word + " ")
        text = f"{response.text} ({answer})"
        result = StrategyResult(answer=text, text=text, details={"workspace": {"fib.txt": "0 1 1 2 3 5"}})
        yield FinalAnswer(answer=text, text=text, result=result.model_dump())


class UsesTool(BaseStrategy[StrategyOptions]):
    """Opens a ToolServer session and runs one python call, reporting it as events."""

    name: ClassVar[str] = "uses-tool"
    description: ClassVar[str] = "test: one sandbox call"
    requires_toolserver: ClassVar[bool] = True

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        async with self.toolserver(ctx, "runs python").session() as session:
            yield ToolCalled(call_id="t1", tool="python", args={"code": task.question})
            result = await session.call("python", {"code": task.question})
            yield ToolReturned(call_id="t1", tool="python", ok=result.ok, output=result.output, seconds=result.seconds)
        text = str(result.output.get("value"))
        yield FinalAnswer(
            answer=text, text=text, result=StrategyResult(answer=text, text=text, tool_calls=1).model_dump()
        )


TEST_STRATEGIES: dict[str, type[BaseStrategy[Any]]] = {
    "uses-tool": UsesTool,
    "steps": Steps,
    "ask": AskHuman,
    "ask-once": AskOnce,
    "showcase": Showcase,
}
