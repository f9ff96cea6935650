"""The code domain: a node is a candidate program; the reward is the fraction of *visible* tests it passes.

Visible tests are the examples written in the task's prompt (doctest examples, ``assert`` lines) and, where the
prompt has too few, tests the model writes. They run in ToolServer sessions with time limits. Hidden tests never
reach this module: the scorer (``ponder.agents.mcts.scoring``) runs them after the search has chosen.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import re
from typing import Any

from pydantic import BaseModel, Field

from ponder.agents._base import Task
from ponder.agents.mcts._engine import Candidate, Evaluation
from ponder.agents.mcts._pool import SessionPool
from ponder.agents.mcts._sandbox import run_tests
from ponder.agents.mcts._tree import FinalRule, Node
from ponder.errors import PonderError
from ponder.llm import ChatModel, ChatRequest, Message, structured, system, user

SYSTEM = (
    "You are an expert Python programmer. Write a correct, complete, self-contained Python solution: all imports "
    "and the full function definition with the exact name and signature asked for. Reply with one ```python code "
    "block and nothing else."
)

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


class WrittenTests(BaseModel):
    """Unit tests for the function, written before any solution."""

    tests: list[str] = Field(
        description="3 to 5 single-line Python assert statements calling the function on small inputs whose "
        "correct results follow from the task description",
        max_length=6,
    )


def extract_program(reply: str, task: Task) -> str:
    """The program in a model reply: its longest fenced block, or the whole reply; completed with the prompt
    when the reply is only a function body (HumanEval's completion format)."""
    blocks = [b.strip("\n") for b in _FENCE.findall(reply)]
    code = max(blocks, key=len) if blocks else reply.strip("\n")
    entry = task.metadata.get("entry_point") or infer_entry_point(task.question)
    if entry and not re.search(rf"^\s*def\s+{re.escape(str(entry))}\s*\(", code, re.MULTILINE):
        code = task.question.rstrip() + "\n" + code
    return code + "\n"


def prompt_tests(prompt: str, entry_point: str | None) -> list[str]:
    """Tests stated in the prompt itself: doctest examples (``>>> f(1)`` / ``2``) and ``assert`` lines."""
    tests: list[str] = []
    try:
        examples = doctest.DocTestParser().get_examples(prompt)
    except ValueError:
        examples = []
    for ex in examples:
        source = ex.source.strip()
        # a docstring's closing quotes can follow the expected output without a blank line
        want_lines = []
        for line in ex.want.splitlines():
            if line.strip().startswith(('"""', "'''")):
                break
            want_lines.append(line)
        want = "\n".join(want_lines).strip()
        if not want or "Traceback" in want:
            continue
        if _is_expr(source) and _is_expr(want):
            tests.append(f"assert ({source}) == ({want})")
    for line in prompt.splitlines():
        line = line.strip()
        if line.startswith("assert ") and _parses(line):
            tests.append(line)
    if entry_point and not tests:
        tests = _prose_examples(prompt, entry_point)
    return list(dict.fromkeys(tests))


# "f(1, 2) == 3", "f(1, 2) ==> 3", "f(1, 2) ➞ 3", "f(1, 2) -> 3", "f(1, 2)   # returns 3", "f(x) should return 3"
_ARROW = r"\s*(?:==>|=>|==|➞|->|→|#\s*returns?:?|should return|returns?)\s*"


def _prose_examples(prompt: str, entry_point: str) -> list[str]:
    """Examples written in prose (measured on HumanEval+: 37 of its 122 prompts state examples only so): a call and
    its result after an arrow, a worked result (``f("5 apples", 19) -> 19 - 5 = 14``: the value after the last
    ``=``), ``Input: x`` / ``Output: y`` pairs and ``For x = 1 the output should be 2`` for one-argument functions."""
    tests: list[str] = []
    name = re.escape(entry_point)
    for m in re.finditer(rf"({name}\(.*?\)){_ARROW}([^\n]+)", prompt):
        call, want = m.group(1), _literal(m.group(2))
        if want is None and " = " in m.group(2):
            want = _literal(m.group(2).rsplit(" = ", 1)[1])
        if want is not None and _literal_call(call):
            tests.append(f"assert ({call}) == ({want})")
    params = _parameters(prompt, entry_point)
    if len(params) == 1:
        pairs = re.findall(r"Input:\s*(?:\w+\s*=\s*)?(.+?)\s*\n\s*Output:\s*(.+)", prompt)
        pairs += re.findall(
            rf"For\s+{re.escape(params[0])}\s*=\s*(.+?),?\s+(?:[^\n]*?\s)?the output should be\s+(.+?)\.?\s*$",
            prompt,
            re.MULTILINE,
        )
        for given, wanted in pairs:
            call, want = f"{entry_point}({given.strip().rstrip(',')})", _literal(wanted)
            if want is not None and _literal_call(call):
                tests.append(f"assert ({call}) == ({want})")
    return tests


def _literal(text: str) -> str | None:
    """``text`` as a Python literal (prose writes JSON's true/false/null too), or None when it is not one: an
    expected value in prose that is not a literal is more likely words than a result. Trailing prose punctuation
    (a sentence's period, a quoting backtick, a docstring's closing quotes) is tried without."""
    text = text.strip()
    trimmed = (text.rstrip(".,;: "), text.rstrip(".,;:` ").strip("`"), text.rstrip(".,;:'\"` "))
    for candidate in dict.fromkeys((text, *trimmed)):  # the closing quotes of a docstring, last
        fixed = {"true": "True", "false": "False", "null": "None"}.get(candidate, candidate)
        try:
            ast.literal_eval(fixed)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        return fixed
    return None


def _literal_call(call: str) -> bool:
    """A call whose arguments are all literals (``is_happy(abcd)`` in prose means a string, not a name)."""
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return False
    if not isinstance(node, ast.Call):
        return False
    try:
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            ast.literal_eval(arg)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _parameters(prompt: str, entry_point: str) -> list[str]:
    """The parameter names of ``def entry_point(...)`` in the prompt (none if it has no such def)."""
    m = re.search(rf"^def\s+{re.escape(entry_point)}\s*\((.*?)\)\s*(?:->[^:]*)?:", prompt, re.MULTILINE)
    if m is None:
        return []
    try:
        args = ast.parse(f"def f({m.group(1)}): pass").body[0].args  # type: ignore[attr-defined]
    except SyntaxError:
        return []
    return [a.arg for a in args.args]


def infer_entry_point(prompt: str) -> str | None:
    """The function a prompt asks for: its last ``def`` (HumanEval), else the first non-builtin function its
    ``assert`` lines call (MBPP)."""
    defs = re.findall(r"^def\s+(\w+)\s*\(", prompt, re.MULTILINE)
    if defs:
        return str(defs[-1])
    for line in prompt.splitlines():
        line = line.strip()
        if not (line.startswith("assert ") and _parses(line)):
            continue
        for node in ast.walk(ast.parse(line)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in dir(builtins):
                return node.func.id
    return None


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return True


def _is_expr(source: str) -> bool:
    try:
        ast.parse(source, mode="eval")
    except SyntaxError:
        return False
    return True


class CodeDomain:
    final_rule = FinalRule.verified
    calls_per_candidate = 0

    def __init__(
        self,
        task: Task,
        pool: SessionPool,
        *,
        model_tests: int = 3,
        min_prompt_tests: int = 2,
        per_test_timeout_s: float = 3.0,
        timeout_s: float = 15.0,
        max_output: int = 2_000,
        flood_bytes: int = 1_000_000,
        max_tokens: int = 768,
    ) -> None:
        self.task = task
        self.pool = pool
        self.entry_point: str | None = task.metadata.get("entry_point") or infer_entry_point(task.question)
        self.tests = prompt_tests(task.question, self.entry_point)
        self.model_tests = model_tests if len(self.tests) < min_prompt_tests else 0
        self.written_tests: list[str] = []
        self.per_test_timeout_s = per_test_timeout_s
        self.timeout_s = timeout_s
        self.max_output = max_output
        self.flood_bytes = flood_bytes
        self.max_tokens = max_tokens

    def root_state(self) -> dict[str, Any]:
        return {"program": None}

    async def _write_tests(self, model: ChatModel) -> None:
        messages = [
            system("You write unit tests for Python functions. Reply with a JSON object only."),
            user(f"{self.task.question}\n\nWrite assert statements that test `{self.entry_point or 'the function'}`."),
        ]
        try:
            written = await structured(model, messages, WrittenTests, max_tokens=400)
        except PonderError:
            return
        for test in written.tests[: self.model_tests]:
            test = test.strip()
            if test.startswith("assert ") and _parses(test) and (not self.entry_point or self.entry_point in test):
                self.written_tests.append(test)

    def visible_tests(self) -> list[str]:
        return self.tests + self.written_tests

    def messages(self, node: Node) -> list[Message]:
        msgs = [system(SYSTEM), user(self.task.question)]
        program = node.state.get("program")
        if program is not None:
            feedback = [f"This attempt failed the visible tests:\n```python\n{program.rstrip()}\n```"]
            failures = node.info.get("failures") or []
            for f in failures[:3]:
                feedback.append(f"- `{f['test']}` -> {f['error'] or 'failed'}")
            if not failures and node.reason:
                feedback.append(f"Problem: {node.reason}")
            if node.reflection:
                feedback.append(f"Reflection: {node.reflection}")
            feedback.append("Write a corrected complete solution.")
            msgs.append(user("\n".join(feedback)))
        return msgs

    async def expand(self, model: ChatModel, node: Node, k: int, *, seed: int, temperature: float) -> list[Candidate]:
        if node.parent is None and self.model_tests and not self.written_tests:
            await self._write_tests(model)
        request = ChatRequest(
            messages=self.messages(node), n=k, temperature=temperature, seed=seed, max_tokens=self.max_tokens
        )
        response = await model.complete(request)
        out: list[Candidate] = []
        for choice in response.choices:
            program = extract_program(choice.text, self.task)
            confidence = choice.confidence.model_dump() if choice.confidence is not None else None
            state = {"program": program, "finish": choice.finish_reason, "confidence": confidence}
            out.append(Candidate(action=program, state=state))
        return out

    async def evaluate(self, model: ChatModel, node: Node) -> Evaluation:
        program: str = node.state["program"]
        tests = self.visible_tests()
        if node.state.get("finish") == "length":
            return Evaluation(0.0, answer=program, reason="the reply was cut off at max_tokens")
        if not tests:
            tests = [f"assert callable({self.entry_point})"] if self.entry_point else ["pass"]
        async with self.pool.session() as session:
            run = await run_tests(
                session,
                program,
                tests,
                per_test_timeout_s=self.per_test_timeout_s,
                timeout_s=self.timeout_s,
                max_output=self.max_output,
            )
        failures = [{"test": o.test, "error": o.error} for o in run.outcomes if not o.passed]
        info = {"passed": run.passed, "total": len(run.outcomes), "failures": failures[:5]}
        if run.output_bytes > self.flood_bytes:
            return Evaluation(0.0, answer=program, reason=f"printed {run.output_bytes} bytes", info=info)
        reward = run.fraction
        return Evaluation(
            reward=reward,
            terminal=reward == 1.0,
            verified=reward == 1.0 and bool(self.visible_tests()),
            answer=program,
            reason=run.reason,
            info=info,
        )

    async def reflect(self, model: ChatModel, node: Node) -> str:
        program = node.state.get("program") or ""
        messages = [
            system("You review failed Python code. In two sentences, say what is wrong and how to fix it."),
            user(f"{self.task.question}\n\nAttempt:\n```python\n{program}\n```\nResult: {node.reason}"),
        ]
        response = await model.complete(ChatRequest(messages=messages, max_tokens=120, temperature=0.0))
        return response.text.strip()
