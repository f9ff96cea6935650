"""A strategy written the way a contributor adds one: this file, an ``Options`` model, a ``BaseStrategy`` subclass
with a ``run``; ``self.options`` holds the parsed options."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

from pydantic import Field

from ponder.agents import BaseStrategy, Context, Event, FinalAnswer, Options, StrategyResult, Task


class EchoOptions(Options):
    times: int = Field(default=2, ge=1, le=5, description="how many times to repeat the question")
    shout: bool = Field(default=False, description="in capitals")


class Echo(BaseStrategy[EchoOptions]):
    name: ClassVar[str] = "echo"
    description: ClassVar[str] = "repeats the question"
    Options: ClassVar[type[EchoOptions]] = EchoOptions

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        text = " ".join([task.question] * self.options.times)
        text = text.upper() if self.options.shout else text
        result = StrategyResult(answer=text, text=text, reasoning=f"repeated {self.options.times} times")
        yield FinalAnswer(answer=text, text=text, result=result.model_dump(mode="json"))
