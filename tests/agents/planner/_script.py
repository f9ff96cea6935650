"""Replies a scripted model gives the planner, written the way the model would write them."""

from __future__ import annotations

from typing import Any


def plan(*goals: str) -> dict[str, Any]:
    return {
        "reasoning": "break it down",
        "subtasks": [{"name": g.split()[0], "goal": g, "criticism": "", "milestones": [g]} for g in goals],
    }


def call(tool: str, **args: Any) -> dict[str, Any]:
    return {"thought": f"use {tool}", "reasoning": "it helps", "plan": "", "criticism": "", "tool": tool, "args": args}


def submit(conclusion: str, *, success: bool = True, refine: bool = False, suggestions: str = "") -> dict[str, Any]:
    return call(
        "submit",
        conclusion=conclusion,
        milestones_reached=[],
        success=success,
        submit_type="answer" if success else "give_up",
        suggestions=suggestions,
        refine=refine,
    )


def refinement(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"reasoning": "adjust", "decision": "change" if operations else "keep", "operations": list(operations)}


def draft(name: str) -> dict[str, Any]:
    return {"name": name, "goal": f"do {name}", "criticism": "", "milestones": []}


def answer(value: Any) -> dict[str, Any]:
    return {"reasoning": "from the results", "answer": value}
