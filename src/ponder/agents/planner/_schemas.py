"""The planner's contract with the model: plans, tool calls, submissions and plan refinements.

These pydantic models' JSON schemas constrain generation; their field descriptions are what the model reads.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class SubTaskStatus(StrEnum):
    pending = "pending"
    doing = "doing"
    done = "done"
    failed = "failed"


class SubTaskDraft(BaseModel):
    """A subtask as the model proposes it."""

    name: str = Field(max_length=60, description="a short name, a few words")
    goal: str = Field(max_length=240, description="what this subtask must achieve, concretely and checkably")
    criticism: str = Field(default="", max_length=160, description="what could go wrong or be overlooked")
    milestones: list[str] = Field(default_factory=list, max_length=3, description="observable signs of progress")

    @classmethod
    def of(cls, name: str, goal: str, criticism: str = "", milestones: list[str] | None = None) -> SubTaskDraft:
        """A draft the planner writes itself (the whole task, a retry, a failed attempt): its goal may be as long as
        the question, so it is built without the limits, which are for what the model writes."""
        return cls.model_construct(name=name, goal=goal, criticism=criticism, milestones=list(milestones or []))


class SubTask(SubTaskDraft):
    """A node of the plan tree. A subtask with children is done through its children, in order."""

    id: str = Field(description="stable id: '2' for the second top-level subtask, '2.1' for its first child")
    # unbounded here: ReACT's one subtask is the whole question, however long (a draft's limit is the model's)
    goal: str = Field(description="what this subtask must achieve")
    status: SubTaskStatus = SubTaskStatus.pending
    children: list[SubTask] = Field(default_factory=list)


class Plan(BaseModel):
    goal: str
    subtasks: list[SubTask] = Field(default_factory=list)


class PlanDraft(BaseModel):
    """The initial plan: an ordered list of subtasks that together achieve the goal."""

    reasoning: str = Field(max_length=200, description="how the goal breaks down, briefly")
    subtasks: list[SubTaskDraft] = Field(min_length=1, max_length=8, description="the subtasks in the order to do them")


class SubmitType(StrEnum):
    answer = "answer"
    give_up = "give_up"
    budget_exhausted = "budget_exhausted"
    human_suggestion = "human_suggestion"


class SubmitResult(BaseModel):
    """The arguments of the ``submit`` tool: how the current subtask ended."""

    conclusion: str = Field(description="what was found or done in this subtask, with the concrete values")
    milestones_reached: list[str] = Field(default_factory=list, description="the milestones that were reached")
    success: bool = Field(description="true only if the subtask's goal was achieved")
    submit_type: SubmitType = Field(
        default=SubmitType.answer,
        description="answer: the goal is met; give_up: it cannot be met; human_suggestion: a human redirected it",
    )
    suggestions: str = Field(default="", description="advice for the rest of the plan, if any")
    refine: bool = Field(default=False, description="true if the rest of the plan should change")


class AskHumanArgs(BaseModel):
    """The arguments of the ``ask_human`` tool."""

    question: str = Field(min_length=1, description="one clear question for the human")


class SplitOp(BaseModel):
    """Replace a not yet finished subtask by smaller subtasks (they become its children)."""

    op: Literal["split"] = "split"
    target: str = Field(description="id of the subtask to split")
    into: list[SubTaskDraft] = Field(min_length=2, description="the smaller subtasks, in order")


class AddOp(BaseModel):
    """Insert a new subtask right after an existing one, at the same level."""

    op: Literal["add"] = "add"
    after: str = Field(description="id of the subtask the new one follows")
    subtask: SubTaskDraft


class DeleteOp(BaseModel):
    """Remove a pending subtask that is no longer needed."""

    op: Literal["delete"] = "delete"
    target: str = Field(description="id of the pending subtask to remove")


class ModifyOp(BaseModel):
    """Change a pending subtask's name, goal, criticism or milestones (fields left null stay as they are)."""

    op: Literal["modify"] = "modify"
    target: str = Field(description="id of the pending subtask to change")
    name: str | None = None
    goal: str | None = None
    criticism: str | None = None
    milestones: list[str] | None = None


# A plain union (anyOf), not a discriminated one (oneOf): constraint engines such as llguidance refuse oneOf; the
# literal ``op`` of each member still picks exactly one when validating.
PlanOperation = SplitOp | AddOp | DeleteOp | ModifyOp


class PlanRefinement(BaseModel):
    """Changes to the rest of the plan in the light of the last subtask's result and its last tool calls.
    ``decision`` makes keeping the plan an explicit choice, with its reason."""

    reasoning: str = Field(max_length=300, description="what the result and the tool calls show, briefly")
    decision: Literal["change", "keep"] = Field(description="change the plan, or keep it as it is (say why above)")
    operations: list[PlanOperation] = Field(default_factory=list, description="the changes (none to keep)")


class ToolCall(BaseModel):
    """One step of the inner loop, as parsed from the model's reply (``args`` are validated per tool later)."""

    thought: str = ""
    reasoning: str = ""
    plan: str = ""
    criticism: str = ""
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


TOOL_CALL_FIELDS: dict[str, dict[str, Any]] = {
    "thought": {"type": "string", "maxLength": 120, "description": "what you observe and think now, briefly"},
    "reasoning": {"type": "string", "maxLength": 120, "description": "why the next tool call is the right one"},
    "plan": {"type": "string", "maxLength": 120, "description": "the next few steps, briefly"},
    "criticism": {"type": "string", "maxLength": 120, "description": "what might be wrong with this approach"},
}
"""The leading fields of a tool call; they come before ``tool`` and ``args`` so the model reasons first."""
