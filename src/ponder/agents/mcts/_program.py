"""Math by program search (issue 17): programs as nodes, the ``pot`` way. The root's children are programs sampled
for the question; a program that crashes, hangs or prints no number is a node whose children are repairs, shown
its failure; a program that prints a number is a terminal answer, rewarded by how many of the tree's other answers
agree with it (self-consistency as the value: no gold answer and no self-judgement). When every child of the root
has ended, the root is sampled again, up to ``max_children``; the final answer is the reward-weighted vote. The
sandbox does the arithmetic, as in ``pot``; the search spends the budget on repairs and on more samples."""

from __future__ import annotations

import json
from typing import Any

from ponder.agents._base import Task, conversation, render_question
from ponder.agents.mcts._engine import Candidate, Evaluation
from ponder.agents.mcts._math import agreement_with
from ponder.agents.mcts._pool import SessionPool
from ponder.agents.mcts._sandbox import run_command
from ponder.agents.mcts._tree import FinalRule, Node
from ponder.agents.pot import REPAIR, SYSTEM, extract_program, printed_number
from ponder.llm import ChatModel, ChatRequest, Message, assistant, system, user


class ProgramDomain:
    final_rule = FinalRule.vote
    calls_per_candidate = 0

    def __init__(self, task: Task, pool: SessionPool, *, max_tokens: int = 400, timeout_s: float = 10.0) -> None:
        self.task = task
        self.pool = pool
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s

    def root_state(self) -> dict[str, Any]:
        return {}

    def messages(self, node: Node) -> list[Message]:
        asked = [system(SYSTEM), *conversation(self.task), user(render_question(self.task))]
        state: dict[str, Any] = node.state
        if not state.get("reply"):  # the root: a fresh program
            return asked
        output = state.get("output", "").strip()[-800:]
        shown = f"Its output ended with:\n{output}\n" if output else ""
        return [*asked, assistant(state["reply"]), user(REPAIR.format(why=state.get("error", ""), output=shown))]

    async def expand(self, model: ChatModel, node: Node, k: int, *, seed: int, temperature: float) -> list[Candidate]:
        request = ChatRequest(
            messages=self.messages(node), n=k, temperature=temperature, max_tokens=self.max_tokens, seed=seed
        )
        response = await model.complete(request)
        out: list[Candidate] = []
        seen: set[str] = set()
        for choice in response.choices:
            code = extract_program(choice.text)
            key = json.dumps(code)
            if key in seen:
                continue
            seen.add(key)
            first = next((line.strip() for line in (code or "").splitlines() if line.strip()), "(no program)")
            label = ("repair: " if node.parent is not None or node.state.get("reply") else "") + first[:60]
            out.append(Candidate(action=label, state={"reply": choice.text, "code": code}))
        return out

    async def evaluate(self, model: ChatModel, node: Node) -> Evaluation:
        state: dict[str, Any] = dict(node.state)
        code = state.get("code")
        if code is None:
            state["error"] = "the reply holds no Python program"
            node.state = state
            return Evaluation(0.0, reason=state["error"], info={"program": None})
        async with self.pool.session() as session:
            run = await run_command(session, ["python3", "-I", "-c", code], timeout_s=self.timeout_s, max_output=4000)
        answer = printed_number(run.output) if run.ok else None
        state["output"] = run.output
        if answer is None:  # not an answer: a node to repair (its children see this failure)
            if not run.ok:
                state["error"] = run.error or "the program failed"
            else:
                state["error"] = "it printed no number" if not run.output.strip() else "its last line is not a number"
            node.state = state
            return Evaluation(0.0, reason=state["error"], info={"program": code[:400]})
        node.state = state
        agreement = agreement_with(node, answer)
        reward = 0.5 if agreement is None else 0.5 + 0.5 * agreement
        return Evaluation(reward, terminal=True, answer=answer, info={"value": answer, "agreement": agreement})

    async def reflect(self, model: ChatModel, node: Node) -> str:
        return node.reason
