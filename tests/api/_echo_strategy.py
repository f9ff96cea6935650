"""A strategy written the way a contributor adds one: this file, an ``Options`` model and a ``run``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import Field

from ponder.agents import Context, Event, FinalAnswer, Options, StrategyResult, Task, parse_options


class EchoOptions(Options):
    times: int = Field(default=2, ge=1, le=5, description="how many times to repeat the question")
    shout: bool = Field(default=False, description="in capitals")


class Echo:
    name: ClassVar[str] = "echo"
    description: ClassVar[str] = "repeats the question"
    Options: ClassVar[type[EchoOptions]] = EchoOptions
    resumable: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = parse_options(type(self), options)

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        text = " ".join([task.question] * self.options.times)
        text = text.upper() if self.options.shout else text
        result = StrategyResult(answer=text, text=text, reasoning=f"repeated {self.options.times} times")
        yield FinalAnswer(answer=text, text=text, result=result.model_dump(mode="json"))
