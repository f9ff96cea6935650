"""Operations on the plan tree: build it, walk it, and apply refinements (split, add, delete, modify) within the
depth and width limits. Pure functions on :class:`Plan`; the graph stores plans as plain dicts."""

from __future__ import annotations

from collections.abc import Iterator

from ponder.agents.planner._schemas import (
    AddOp,
    DeleteOp,
    ModifyOp,
    Plan,
    PlanOperation,
    SplitOp,
    SubTask,
    SubTaskDraft,
    SubTaskStatus,
)

OPEN = (SubTaskStatus.pending, SubTaskStatus.doing)


def new_plan(goal: str, drafts: list[SubTaskDraft], max_width: int) -> tuple[Plan, list[str]]:
    """A plan from the model's drafts; drafts beyond ``max_width`` are dropped and reported in the notes."""
    notes = []
    if len(drafts) > max_width:
        notes.append(f"the initial plan had {len(drafts)} subtasks; kept the first {max_width} (width limit)")
    subtasks = [SubTask(id=str(i + 1), **d.model_dump()) for i, d in enumerate(drafts[:max_width])]
    return Plan(goal=goal, subtasks=subtasks), notes


def walk(nodes: list[SubTask]) -> Iterator[SubTask]:
    """Every subtask, depth first, in execution order (a parent before its children)."""
    for node in nodes:
        yield node
        yield from walk(node.children)


def find(plan: Plan, sid: str) -> SubTask | None:
    return next((n for n in walk(plan.subtasks) if n.id == sid), None)


def _siblings(plan: Plan, sid: str) -> tuple[list[SubTask], SubTask | None]:
    """The list holding subtask ``sid`` and that list's parent (None at the top level)."""

    def search(nodes: list[SubTask], parent: SubTask | None) -> tuple[list[SubTask], SubTask | None] | None:
        for node in nodes:
            if node.id == sid:
                return nodes, parent
            hit = search(node.children, node)
            if hit is not None:
                return hit
        return None

    hit = search(plan.subtasks, None)
    if hit is None:
        raise KeyError(sid)
    return hit


def depth(sid: str) -> int:
    return sid.count(".") + 1


def next_leaf(plan: Plan) -> SubTask | None:
    """The first open leaf in execution order, or None when the plan is finished."""
    return next((n for n in walk(plan.subtasks) if not n.children and n.status in OPEN), None)


def leaves(plan: Plan) -> list[SubTask]:
    return [n for n in walk(plan.subtasks) if not n.children]


def settle_parents(plan: Plan) -> None:
    """A parent is done when all its children are done, failed when one failed and none is open."""

    def settle(node: SubTask) -> None:
        for child in node.children:
            settle(child)
        if node.children:
            states = {c.status for c in node.children}
            if states & set(OPEN):
                node.status = SubTaskStatus.doing if states - set(OPEN) else SubTaskStatus.pending
            elif SubTaskStatus.failed in states:
                node.status = SubTaskStatus.failed
            else:
                node.status = SubTaskStatus.done

    for node in plan.subtasks:
        settle(node)


def _free_id(siblings: list[SubTask], parent: SubTask | None) -> str:
    prefix = f"{parent.id}." if parent else ""
    used = {int(s.id.rsplit(".", 1)[-1]) for s in siblings}
    return f"{prefix}{max(used, default=0) + 1}"


class RefinementRejected(ValueError):
    """A refinement operation that cannot be applied; the message says why (it is shown to the model)."""


def apply_operation(plan: Plan, op: PlanOperation, *, max_depth: int, max_width: int) -> str:
    """Apply one operation in place and describe it; raise :class:`RefinementRejected` if it cannot apply."""
    if isinstance(op, AddOp):
        anchor = find(plan, op.after)
        if anchor is None:
            raise RefinementRejected(f"add: no subtask {op.after!r}")
        siblings, parent = _siblings(plan, op.after)
        if len(siblings) >= max_width:
            raise RefinementRejected(f"add: {len(siblings)} subtasks at that level already (width limit {max_width})")
        new = SubTask(id=_free_id(siblings, parent), **op.subtask.model_dump())
        siblings.insert(siblings.index(anchor) + 1, new)
        return f"added {new.id} {new.name!r} after {op.after}"
    target = find(plan, op.target)
    if target is None:
        raise RefinementRejected(f"{op.op}: no subtask {op.target!r}")
    if isinstance(op, SplitOp):
        if target.status is SubTaskStatus.done or target.children:
            raise RefinementRejected(f"split: subtask {op.target} is done or already split")
        if depth(target.id) + 1 > max_depth:
            raise RefinementRejected(f"split: subtask {op.target} is at the depth limit {max_depth}")
        into = op.into[:max_width]
        target.children = [SubTask(id=f"{target.id}.{i + 1}", **d.model_dump()) for i, d in enumerate(into)]
        target.status = SubTaskStatus.pending
        clipped = f" (kept {max_width} of {len(op.into)}: width limit)" if len(op.into) > max_width else ""
        return f"split {target.id} into {', '.join(c.id for c in target.children)}{clipped}"
    if target.status is not SubTaskStatus.pending or (
        target.children and any(c.status is not SubTaskStatus.pending for c in walk(target.children))
    ):
        raise RefinementRejected(f"{op.op}: subtask {op.target} is {target.status.value}; only pending ones change")
    if isinstance(op, DeleteOp):
        siblings, _ = _siblings(plan, op.target)
        siblings.remove(target)
        return f"deleted {op.target} {target.name!r}"
    assert isinstance(op, ModifyOp)
    changed = {k: v for k, v in op.model_dump(exclude={"op", "target"}).items() if v is not None}
    if not changed:
        raise RefinementRejected(f"modify: nothing to change in {op.target}")
    for key, value in changed.items():
        setattr(target, key, value)
    return f"modified {op.target}: {', '.join(sorted(changed))}"


def render(plan: Plan, current: str | None = None) -> str:
    """The plan as an indented list for prompts."""
    lines = [f"Goal: {plan.goal}"]
    for node in walk(plan.subtasks):
        mark = " <- current" if node.id == current else ""
        indent = "  " * depth(node.id)
        lines.append(f"{indent}{node.id}. [{node.status.value}] {node.name}: {node.goal}{mark}")
    return "\n".join(lines)
