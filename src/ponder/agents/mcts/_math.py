"""The math domain: step-level search on word problems (GSM8K style).

Each node is one reasoning step in a constrained schema (a short thought, one arithmetic expression, a flag for the
final step); with ``form="free"`` (issue 39) the step's thought is plain text and only its arithmetic and flag are
constrained, after it, as ``think_then_answer`` does for whole answers. The expression is executed in the sandbox
and its value, not the model's claim, is what later steps see; a step whose arithmetic does not run scores 0. A
step's value comes from the model's constrained self-evaluation and, for final steps, from agreement with the
answers other rollouts reached (rStar-style consistency); the final answer is chosen by a reward-weighted vote over
the terminal answers.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from ponder.agents._base import Task, render_question
from ponder.agents.mcts._engine import Candidate, Evaluation
from ponder.agents.mcts._pool import SessionPool
from ponder.agents.mcts._sandbox import run_command
from ponder.agents.mcts._tree import FinalRule, Node
from ponder.errors import PonderError
from ponder.llm import ChatModel, Message, structured, structured_n, system, think_then_answer_n, user

ARITHMETIC = r"^[0-9+\-*/(). %]*$"

SYSTEM = (
    "You solve math word problems one step at a time. Each reply is ONE step as a JSON object: a short "
    "`thought`, the `calculation` for it as a plain arithmetic expression with numbers only (it is computed for "
    "you), and `final`: true only when this step's calculation is the answer to the question."
)

FREE_SYSTEM = (
    "You solve math word problems one step at a time. Write ONE step only: one or two short sentences in plain text "
    "saying what this step works out and with which numbers, then stop. Its arithmetic is computed for you "
    "afterwards; do not write later steps."
)
FREE_REQUEST = (
    "Now give this step's arithmetic as a JSON object: the `calculation` as one expression with numbers only, and "
    "`final`: true only if it gives the answer to the question."
)

SELF_EVAL_SYSTEM = "You check one step of a solution to a math problem. Reply with a JSON object only."

# Evaluates one expression in a fresh interpreter in the sandbox, with no builtins: only arithmetic runs.
_EVAL = (
    "import sys, json\n"
    "expr = sys.stdin.read()\n"
    "v = eval(compile(expr, '<calculation>', 'eval'), {'__builtins__': {}}, {})\n"
    "print(json.dumps(float(v)))\n"
)


class MathStep(BaseModel):
    """One step of a solution."""

    thought: str = Field(description="what this step works out, in one short sentence", max_length=300)
    calculation: str = Field(
        description="the arithmetic of this step as one expression with numbers only, e.g. (48 / 2) + 3",
        pattern=ARITHMETIC,
        max_length=160,
    )
    final: bool = Field(description="true only if this step's calculation gives the final answer to the question")


class StepArithmetic(BaseModel):
    """The typed part of a free-text step, constrained after its thought."""

    calculation: str = Field(
        description="the arithmetic of this step as one expression with numbers only, e.g. (48 / 2) + 3",
        pattern=ARITHMETIC,
        max_length=160,
    )
    final: bool = Field(description="true only if this step's calculation gives the final answer to the question")


class StepCheck(BaseModel):
    """A judgement of the latest step."""

    verdict: Literal["correct", "unsure", "wrong"] = Field(
        description="is the latest step correct and does it move towards the answer?"
    )


_VERDICT = {"correct": 1.0, "unsure": 0.5, "wrong": 0.0}


def format_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


class MathDomain:
    final_rule = FinalRule.vote

    def __init__(
        self,
        task: Task,
        pool: SessionPool,
        *,
        self_eval: Literal["all", "terminal", "none"] = "terminal",
        max_steps: int = 6,
        max_tokens: int = 200,
        timeout_s: float = 5.0,
        form: Literal["json", "free"] = "json",
    ) -> None:
        self.task = task
        self.form = form
        self.pool = pool
        self.self_eval = self_eval
        self.max_steps = max_steps
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.calls_per_candidate = 1 if self_eval == "all" else 0

    def root_state(self) -> list[dict[str, Any]]:
        return []

    def _steps_text(self, steps: list[dict[str, Any]]) -> str:
        lines = [
            f"Step {i}: {s['thought']} {s['calculation']} = {format_value(s['value'])}"
            for i, s in enumerate(steps, start=1)
        ]
        return "\n".join(lines)

    def messages(self, node: Node) -> list[Message]:
        steps: list[dict[str, Any]] = node.state
        text = render_question(self.task)
        if steps:
            text += "\n\nSteps so far (values computed exactly):\n" + self._steps_text(steps)
        text += f"\n\nGive step {len(steps) + 1}."
        if len(steps) + 1 >= self.max_steps:
            text += " It must be the final step."
        return [system(FREE_SYSTEM if self.form == "free" else SYSTEM), user(text)]

    async def _free_steps(
        self, model: ChatModel, node: Node, k: int, *, seed: int, temperature: float
    ) -> list[MathStep]:
        """``k`` steps, each a plain-text thought followed by its constrained arithmetic (samples cut off at
        ``max_tokens`` are left out)."""
        pairs = await think_then_answer_n(
            model,
            self.messages(node),
            StepArithmetic,
            n=k,
            temperature=temperature,
            seed=seed,
            max_tokens=self.max_tokens,
            skip_truncated=True,
            answer_request=FREE_REQUEST,
            mark_answer=False,
        )
        return [
            MathStep(thought=" ".join(thought.split())[:300], calculation=typed.calculation, final=typed.final)
            for thought, typed in pairs
        ]

    async def expand(self, model: ChatModel, node: Node, k: int, *, seed: int, temperature: float) -> list[Candidate]:
        if self.form == "free":
            steps = await self._free_steps(model, node, k, seed=seed, temperature=temperature)
        else:
            steps = await structured_n(
                model, self.messages(node), MathStep, n=k, temperature=temperature, seed=seed,
                max_tokens=self.max_tokens,
            )  # fmt: skip
        out: list[Candidate] = []
        seen: set[str] = set()
        for step in steps:
            key = json.dumps(step.model_dump(), sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            out.append(Candidate(action=f"{step.thought} [{step.calculation}]", state=[*node.state, step.model_dump()]))
        return out

    async def _compute(self, expression: str) -> tuple[float | None, str]:
        if not expression.strip():
            return None, "the step has no calculation"
        async with self.pool.session() as session:
            run = await run_command(
                session, ["python3", "-I", "-c", _EVAL], stdin=expression, timeout_s=self.timeout_s, max_output=200
            )
        if not run.ok:
            last = run.output.strip().splitlines()[-1:] or [run.error]
            return None, f"the calculation {expression!r} failed: {last[0][:200]}"
        try:
            value = float(json.loads(run.output.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return None, f"the calculation {expression!r} gave no number"
        if not math.isfinite(value):
            return None, f"the calculation {expression!r} is not finite"
        return value, ""

    async def _judge(self, model: ChatModel, steps: list[dict[str, Any]]) -> float:
        text = f"{render_question(self.task)}\n\nSolution so far:\n{self._steps_text(steps)}\n\nJudge the last step."
        try:
            check = await structured(
                model, [system(SELF_EVAL_SYSTEM), user(text)], StepCheck, temperature=0.0, max_tokens=20
            )
        except PonderError:
            return 0.5
        return _VERDICT[check.verdict]

    async def evaluate(self, model: ChatModel, node: Node) -> Evaluation:
        steps: list[dict[str, Any]] = [dict(s) for s in node.state]
        step = steps[-1]
        value, error = await self._compute(step["calculation"])
        if value is None:
            return Evaluation(0.0, terminal=True, reason=error, info={"step": step})
        step["value"] = value
        node.state = steps
        final = bool(step["final"]) or len(steps) >= self.max_steps
        judged = self.self_eval == "all" or (final and self.self_eval == "terminal")
        score = await self._judge(model, steps) if judged else 0.5
        info: dict[str, Any] = {"value": value, "self_eval": score if judged else None}
        if not final:
            return Evaluation(score, info=info)
        agreement = agreement_with(node, value)
        info["agreement"] = agreement
        reward = score if agreement is None else 0.5 * score + 0.5 * agreement
        return Evaluation(reward, terminal=True, answer=value, info=info)

    async def reflect(self, model: ChatModel, node: Node) -> str:
        return node.reason


def _walk(node: Node) -> list[Node]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(n.children)
    return out


def agreement_with(node: Node, answer: float) -> float | None:
    """Share of the terminal answers already in ``node``'s tree that equal ``answer`` (None if there are none): the
    rStar-style consistency a final step is rewarded by."""
    answers = [n.answer for n in _walk(node.path()[0]) if n.answer is not None]
    if not answers:
        return None
    return sum(1 for a in answers if math.isclose(a, answer, rel_tol=1e-6, abs_tol=1e-9)) / len(answers)
