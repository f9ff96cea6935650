"""Choosing among programs by what they do (issue 32): the model writes *inputs only*, every candidate that did best
on the visible tests runs on them in the sandbox, candidates are grouped by identical outputs, and the largest group
wins (MBR-exec, arXiv 2204.11454; CodeT's dual agreement, arXiv 2207.10397, without model-written expected outputs,
which small models get wrong: Reflexion measured 16 % false-positive tests on MBPP).

Two programs that pass the same visible examples can still differ; when they do, the behaviour most samples share
is the better bet than whichever was found first. Ties go to the group holding the most confident program (the
model's mean token log-probability of writing it). The inputs never carry expected values, so nothing the model
believes about the answers enters the choice; the hidden tests never reach this module.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pydantic import BaseModel, Field

from ponder.agents._base import TaskFamily
from ponder.agents._select import Candidate, select
from ponder.agents.mcts._pool import SessionPool
from ponder.agents.mcts._sandbox import run_tests
from ponder.agents.mcts._tree import Node
from ponder.errors import PonderError
from ponder.llm import ChatModel, Confidence, structured, system, user

INPUTS_SYSTEM = (
    "You write test inputs for Python functions. Reply with a JSON object only. Write calls only, never the "
    "results: the calls will be run on several implementations to see where they differ."
)


class WrittenInputs(BaseModel):
    """Calls of the function on inputs that tell a right implementation from a wrong one."""

    calls: list[str] = Field(
        description="calls of the function, one Python expression each, with literal arguments only (numbers, "
        "strings, lists, dicts): typical cases, edge cases (empty, zero, one element, negative, ties) and the "
        "tricky cases the task describes; valid inputs only",
        max_length=12,
    )


@dataclass
class Behaviour:
    """One candidate program and what it returned on each written input (``None``: it could not be run)."""

    node: Node
    confidence: float | None
    outputs: tuple[str, ...] | None


class BehaviourGroup(BaseModel):
    nodes: list[int] = Field(description="the tree's node ids of the programs that behave so")
    outputs: list[str] = Field(description="what they returned (or raised) on each input, in order")


class BehaviourChoice(BaseModel):
    """What the choice by behaviour saw and decided, for the run's details."""

    inputs: list[str]
    candidates: int = Field(description="programs that did best on the visible tests and were run on the inputs")
    groups: list[BehaviourGroup] = Field(default_factory=list, description="by identical outputs, largest first")
    unrunnable: list[int] = Field(default_factory=list, description="node ids of programs that failed to load")
    chosen: int | None = None
    reason: str


async def write_inputs(model: ChatModel, question: str, entry_point: str, n: int) -> list[str]:
    """Up to ``n`` calls of ``entry_point`` with literal arguments, written by the model from the task alone."""
    from ponder.agents.mcts._code import _literal_call  # the same literal check the prompt's examples pass

    messages = [
        system(INPUTS_SYSTEM),
        user(f"{question}\n\nWrite {n} different calls of `{entry_point}` (inputs only, no expected results)."),
    ]
    written = await structured(model, messages, WrittenInputs, max_tokens=400, temperature=0.0)
    calls: list[str] = []
    for call in written.calls:
        call = call.strip().removeprefix("assert ").strip()
        if call.startswith(f"{entry_point}(") and _literal_call(call) and call not in calls:
            calls.append(call)
    return calls[:n]


async def behaviours(
    pool: SessionPool,
    nodes: list[Node],
    calls: list[str],
    *,
    per_call_timeout_s: float,
    timeout_s: float,
) -> list[Behaviour]:
    """Each node's program run on ``calls``: a returned value's canonical repr, or the exception it raised (a crash
    or a hang is a behaviour too: a right program does not do it on valid inputs)."""

    async def run(program: str) -> tuple[str, ...] | None:
        async with pool.session() as session:
            ran = await run_tests(
                session,
                program,
                calls,
                per_test_timeout_s=per_call_timeout_s,
                timeout_s=timeout_s,
                max_output=2_000,
                values=True,
            )
        if ran.load_error:
            return None
        return tuple(
            o.value if o.passed and o.value is not None else f"raised {o.error.split(':', 1)[0]}" for o in ran.outcomes
        )

    programs = list(dict.fromkeys(str(n.state["program"]) for n in nodes))  # a program sampled twice runs once
    outputs = dict(zip(programs, await asyncio.gather(*(run(p) for p in programs)), strict=True))
    found: list[Behaviour] = []
    for node in nodes:
        raw = node.state.get("confidence")
        confidence = Confidence.model_validate(raw).mean_logprob if raw else None
        found.append(Behaviour(node, confidence, outputs[str(node.state["program"])]))
    return found


def choose_by_behaviour(found: list[Behaviour], calls: list[str]) -> BehaviourChoice:
    """The largest group of identical behaviour; ties go to the group with the most confident program, then to the
    program found first. Programs that could not be loaded are left out."""
    runnable = [b for b in found if b.outputs is not None]
    unrunnable = [b.node.id for b in found if b.outputs is None]
    if not runnable:
        reason = "no candidate could be run"
        return BehaviourChoice(inputs=calls, candidates=len(found), unrunnable=unrunnable, reason=reason)
    # most confident first, so the selection layer's tie rule (the first candidate) breaks ties by confidence; the
    # outputs compare exactly (a tuple, not a string: the layer compares strings without case)
    ranked = sorted(runnable, key=lambda b: (-(b.confidence if b.confidence is not None else -1e9), b.node.id))
    selection = select(TaskFamily.code, [Candidate(answer=b.outputs, mode="program") for b in ranked])
    groups: dict[tuple[str, ...], list[int]] = {}
    for b in ranked:
        groups.setdefault(b.outputs or (), []).append(b.node.id)
    winners = groups[selection.answer]
    chosen = next(b for b in ranked if b.node.id in winners)
    if len(groups) > 1:
        reason = f"{len(winners)} of {len(runnable)} programs behave alike on {len(calls)} written inputs"
    else:
        reason = f"all {len(runnable)} programs behave alike on {len(calls)} written inputs"
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] != selection.answer, -len(kv[1])))
    return BehaviourChoice(
        inputs=calls,
        candidates=len(found),
        groups=[BehaviourGroup(nodes=ids, outputs=list(outputs)) for outputs, ids in ordered],
        unrunnable=unrunnable,
        chosen=chosen.node.id,
        reason=reason,
    )


async def reselect(
    model: ChatModel,
    pool: SessionPool,
    nodes: list[Node],
    question: str,
    entry_point: str | None,
    *,
    inputs: int,
    per_call_timeout_s: float,
    timeout_s: float,
) -> BehaviourChoice | None:
    """Choose among ``nodes`` (the programs that did best on the visible tests) by behaviour, or None when there is
    nothing to choose (fewer than two distinct programs) or nothing to call (no entry point, no usable input)."""
    if len({str(n.state.get("program")) for n in nodes}) < 2 or not entry_point:
        return None
    try:
        calls = await write_inputs(model, question, entry_point, inputs)
    except PonderError as exc:
        return BehaviourChoice(inputs=[], candidates=len(nodes), reason=f"writing inputs failed: {exc.message}")
    if not calls:
        return BehaviourChoice(inputs=[], candidates=len(nodes), reason="the model wrote no usable input")
    found = await behaviours(pool, nodes, calls, per_call_timeout_s=per_call_timeout_s, timeout_s=timeout_s)
    return choose_by_behaviour(found, calls)


def best_nodes(nodes: list[Node]) -> list[Node]:
    """The programs to choose among: the verified ones, else those with the highest reward above 0."""
    programs = [n for n in nodes if n.answer is not None and n.parent is not None]
    verified = [n for n in programs if n.verified]
    if verified:
        return verified
    top = max((n.reward for n in programs), default=0.0)
    return [n for n in programs if n.reward == top and top > 0]
