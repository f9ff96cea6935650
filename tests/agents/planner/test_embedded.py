"""The planner's constrained tool call on the real embedded model: the schema (every tool with its own arguments,
``submit`` forced on the last step) is enforceable and the model's reply validates against the named tool."""

from __future__ import annotations

from typing import Any

from ponder.agents.planner._inner import ask_tool_call
from ponder.agents.planner._state import Deps, PlannerLimits
from ponder.agents.planner._tools import ASK_HUMAN, SUBMIT, AgentTool
from ponder.llm import system, user
from ponder.tools import BUILTIN_TOOLS


def tools() -> list[AgentTool]:
    sandbox = [AgentTool(s, "sandbox") for s in BUILTIN_TOOLS if s.name in ("python", "shell", "files")]
    return [*sandbox, AgentTool(ASK_HUMAN, "control"), AgentTool(SUBMIT, "control")]


async def test_the_real_model_makes_a_valid_python_call(embedded_model: Any) -> None:
    deps = Deps(model=embedded_model, tools=tools(), limits=PlannerLimits(tool_retries=0), max_tokens=200)
    messages = [
        system("You call tools, one call per reply, as JSON. Tools: python(code), shell(command), files(op, path, "
               "content), ask_human(question), submit(conclusion, success)."),
        user("Subtask: compute 17 * 23 with the python tool."),
    ]  # fmt: skip
    call, errors = await ask_tool_call(embedded_model, messages, deps.tools, deps)
    assert call is not None, errors
    assert call.tool in {"python", "shell", "files", "ask_human", "submit"}
    if call.tool == "python":
        assert set(call.args) == {"code"} and call.args["code"].strip()


async def test_the_real_model_can_only_submit_on_the_last_step(embedded_model: Any) -> None:
    deps = Deps(model=embedded_model, tools=tools(), limits=PlannerLimits(tool_retries=0), max_tokens=200)
    messages = [system("You call tools as JSON."), user("17 * 23 = 391 was computed. Report it and finish.")]
    call, errors = await ask_tool_call(embedded_model, messages, [deps.tools[-1]], deps)
    assert call is not None, errors
    assert call.tool == "submit" and isinstance(call.args["success"], bool) and call.args["conclusion"]
