"""The planner as a LangGraph ``StateGraph``::

START → plan → select ─┬→ think ─┬→ act ─┬→ think …           (inner loop: one tool call per step)
             ▲         │         │       └→ refine → select   (after ``submit``: outer loop)
             │         │         ├→ think (a failed step)
             │         │         ├→ pause → think             (a person paused the run)
             │         │         └→ finish (budget used up)
             │         └→ finish → END                        (no subtask left)
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END, START, StateGraph

from ponder.agents.planner._inner import act, pause, think
from ponder.agents.planner._outer import finish, make_plan, refine, select
from ponder.agents.planner._state import Deps, PlannerState


def _after_select(state: PlannerState) -> Literal["think", "finish"]:
    return "think" if state.get("current") and not state.get("stopped") else "finish"


def _after_think(state: PlannerState) -> Literal["act", "think", "pause", "finish"]:
    if state.get("stopped"):
        return "finish"
    if state.get("paused"):
        return "pause"
    return "act" if state.get("pending") else "think"


def _after_act(state: PlannerState) -> Literal["think", "refine"]:
    return "refine" if state.get("current") is None else "think"


def _after_refine(state: PlannerState) -> Literal["select", "finish"]:
    return "finish" if state.get("stopped") else "select"


def build_graph() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(PlannerState, context_schema=Deps)
    graph.add_node("plan", make_plan)
    graph.add_node("select", select)
    graph.add_node("think", think)
    graph.add_node("pause", pause)
    graph.add_node("act", act)
    graph.add_node("refine", refine)
    graph.add_node("finish", finish)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "select")
    graph.add_conditional_edges("select", _after_select)
    graph.add_conditional_edges("think", _after_think)
    graph.add_edge("pause", "think")
    graph.add_conditional_edges("act", _after_act)
    graph.add_conditional_edges("refine", _after_refine)
    graph.add_edge("finish", END)
    return graph
