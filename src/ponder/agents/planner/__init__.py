"""The dual-loop planner (after XAgent) on LangGraph: a plan of subtasks, each solved by a chain of tool calls,
the plan refined after each subtask, a human asked when needed, every step checkpointed so runs resume.

Use it as the ``planner`` strategy, or directly::

    planner = Planner(max_llm_calls=40)
    async for event in planner.run(task, ctx):       # ends with FinalAnswer, or NeedsHuman (the run waits)
        ...
    async for event in planner.resume(run_id, "the human's answer", ctx):
        ...
"""

from ponder.agents.planner._checkpoint import open_checkpointer
from ponder.agents.planner._interactive import run_interactive
from ponder.agents.planner._schemas import (
    AddOp,
    DeleteOp,
    ModifyOp,
    Plan,
    PlanDraft,
    PlanRefinement,
    SplitOp,
    SubmitResult,
    SubmitType,
    SubTask,
    SubTaskDraft,
    SubTaskStatus,
    ToolCall,
)
from ponder.agents.planner._state import PlannerLimits
from ponder.agents.planner._strategy import Planner, ReAct
from ponder.agents.planner._tools import AgentTool, kb_tools, search_tools
from ponder.tools._spec import spec_from_function

__all__ = [
    "AddOp",
    "AgentTool",
    "DeleteOp",
    "ModifyOp",
    "Plan",
    "PlanDraft",
    "PlanRefinement",
    "Planner",
    "PlannerLimits",
    "ReAct",
    "SplitOp",
    "SubTask",
    "SubTaskDraft",
    "SubTaskStatus",
    "SubmitResult",
    "SubmitType",
    "ToolCall",
    "kb_tools",
    "open_checkpointer",
    "run_interactive",
    "search_tools",
    "spec_from_function",
]
