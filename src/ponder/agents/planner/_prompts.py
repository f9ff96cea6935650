"""The planner's prompts: short, because small local models have small context windows."""

from __future__ import annotations

import json
from typing import Any

from ponder.agents._base import Task, conversation, render_question
from ponder.agents.planner._plan import render
from ponder.agents.planner._schemas import Plan
from ponder.llm import Message, assistant, system, user

PLAN_SYSTEM = (
    "You plan how to solve a task with tools (run Python and shell in a sandbox with a /workspace folder, search, "
    "ask a human). Break the task into subtasks, in order, each with a concrete goal that a few tool calls can "
    "reach. Use as few subtasks as possible: one for a simple task, never more than {width}. The sandbox is ready: "
    "never plan to open, install or close anything. Example: for 'Write 3*4 to x.txt' one subtask, goal 'compute "
    "3*4 with python and write it to x.txt'. Reply with a JSON object only."
)

ACT_SYSTEM = (
    "You solve one subtask of a larger plan by calling tools, one call per reply. Tools:\n{tools}\n"
    "Use the `python` tool to compute exactly and to read or write files in the workspace (the current folder); "
    "print what you need to see. In the shell, Python is `python3`. Files persist between calls. When the "
    "subtask's goal is reached, or cannot be reached, call `submit` at once with the conclusion and the concrete "
    "values found. Code is Python source: one statement per line, lines joined with \\n in the JSON string. To "
    'save a computed result to the file the task names and see it: {{"tool": "python", "args": {{"code": "v = VALUE\\n'
    "open(NAME, 'w').write(str(v))\\nprint(v)\"}}}} with that file name and value. Reply with a JSON object only."
)

REFINE_SYSTEM = (
    "You revise the rest of a plan after a subtask ended. Operations: split (break a pending or failed subtask "
    "into smaller ones), add (a new subtask after an existing one), delete (a pending subtask no longer needed), "
    "modify (change a pending subtask). A failed subtask is split or followed by a subtask that tries another "
    "way; decide 'keep' (no operations) only if the plan is still good, and say why. Reply with a JSON object only."
)

ANSWER_SYSTEM = (
    "You write the final answer to a task from the results of its subtasks. Use the concrete values the subtasks "
    "found. When the task says how to answer (only a number, a word, a file name, 'yes' or 'no'), the answer is "
    "exactly that and nothing around it. Reply with a JSON object only."
)


def _results(results: dict[str, dict[str, Any]]) -> str:
    if not results:
        return "(none yet)"
    lines = []
    for sid, r in results.items():
        state = "ok" if r.get("success") else "FAILED"
        lines.append(f"{sid} [{state}]: {r.get('conclusion', '')}")
    return "\n".join(lines)


def plan_messages(task: Task, width: int, attempt: dict[str, Any] | None = None) -> list[Message]:
    """The planning prompt; with ``attempt`` (a failed first try at the whole task) what it learned goes with it,
    so the plan builds on it instead of starting over."""
    text = render_question(task)
    if attempt is not None:
        text += (
            "\n\nA first attempt at the whole task, without a plan, did not succeed. It concluded: "
            f"{attempt.get('conclusion', '')}"
        )
        if attempt.get("last_steps"):
            text += "\nIts last tool calls:\n" + "\n".join(f"- {s}" for s in attempt["last_steps"])
        text += "\nPlan the remaining work in subtasks; use what the attempt found and avoid what failed."
    return [system(PLAN_SYSTEM.format(width=width)), *conversation(task), user(text)]


def act_messages(
    *,
    task: Task,
    plan: Plan,
    current: str,
    results: dict[str, dict[str, Any]],
    steps: list[dict[str, Any]],
    suggestions: list[str],
    tools_text: str,
    history_steps: int,
    max_chars: int,
    force_submit: bool,
    files: dict[str, str | None] | None = None,
    preview_chars: int = 0,
) -> list[Message]:
    """``files``: the workspace's files ({path: text, or None if binary or too large}); the names are listed, and
    whole text files are shown while they fit in ``preview_chars`` together, smallest first, so that the model need
    not spend a step reading the script it must fix or the data it must use."""
    sub = next(s for s in _walk(plan) if s["id"] == current)
    head = [
        render_question(task),
        "Plan:\n" + render(plan, current),
        "Results so far:\n" + _results(results),
        f"Current subtask {current}: {sub['goal']}",
    ]
    if files:
        head.append("Files in the workspace: " + ", ".join(sorted(files)))
        head += _previews(files, preview_chars)
    if sub.get("milestones"):
        head.append("Milestones: " + "; ".join(sub["milestones"]))
    if suggestions:
        head.append("A human suggests: " + " / ".join(suggestions))
    msgs = [system(ACT_SYSTEM.format(tools=tools_text)), *conversation(task), user("\n\n".join(head))]
    shown = steps[-history_steps:]
    if len(steps) > len(shown):
        msgs.append(user(f"({len(steps) - len(shown)} earlier steps not shown)"))
    for step in shown:
        call = step.get("call")
        if call is not None:
            msgs.append(assistant(json.dumps({"tool": call["tool"], "args": call["args"]})))
        msgs.append(user(_observation(step, max_chars)))
    if force_submit:
        msgs.append(user("This is the last step for this subtask: call `submit` now with what you have."))
    return msgs


def _previews(files: dict[str, str | None], budget: int) -> list[str]:
    shown: list[str] = []
    for path, text in sorted(files.items(), key=lambda item: (len(item[1] or ""), item[0])):
        if text is None or not text.strip() or len(text) > budget:
            continue
        budget -= len(text)
        shown.append(f"{path}:\n```\n{text.rstrip()}\n```")
    return sorted(shown)


def _walk(plan: Plan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def go(nodes: list[dict[str, Any]]) -> None:
        for n in nodes:
            out.append(n)
            go(n.get("children", []))

    go(plan.model_dump(mode="json")["subtasks"])
    return out


def _observation(step: dict[str, Any], max_chars: int) -> str:
    if step.get("error"):
        return f"Error: {step['error']}"
    result = step.get("result") or {}
    text = json.dumps(result.get("output", {}), ensure_ascii=False)
    if len(text) > max_chars:
        text = text[:max_chars] + " …[truncated]"
    status = "ok" if result.get("ok") else f"failed: {result.get('error')}"
    return f"Result ({status}): {text}"


def refine_messages(
    task: Task, plan: Plan, submission: dict[str, Any], sid: str, suggestions: list[str]
) -> list[Message]:
    parts = [
        render_question(task),
        "Plan:\n" + render(plan),
        f"Subtask {sid} ended ({'success' if submission.get('success') else 'failure'}): "
        f"{submission.get('conclusion', '')}",
    ]
    if submission.get("last_steps"):
        parts.append("Its last tool calls:\n" + "\n".join(f"- {s}" for s in submission["last_steps"]))
    if submission.get("suggestions"):
        parts.append("Its advice for the rest of the plan: " + str(submission["suggestions"]))
    if suggestions:
        parts.append("A human suggests: " + " / ".join(suggestions))
    return [system(REFINE_SYSTEM), user("\n\n".join(parts))]


def answer_messages(task: Task, results: dict[str, dict[str, Any]]) -> list[Message]:
    question = render_question(task) + "\n\nSubtask results:\n" + _results(results)
    return [system(ANSWER_SYSTEM), *conversation(task), user(question)]
