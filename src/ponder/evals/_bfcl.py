"""The Berkeley Function Calling Leaderboard's single-turn, non-live categories as ponder evals
(``ponder eval run --dataset bfcl-simple_python``), read from the installed ``bfcl-eval`` package and scored by
its own AST checker.

Each item's functions are offered as tools through :mod:`ponder.llm.tool_calling`, the path ``/v1``'s
``ponder-direct`` takes for an OpenAI client's ``tools`` (``tool_choice`` auto decided by the name probe, parallel
calls allowed, ungrounded calls replaced by words, greedy), so the score is what such a client gets. An item's
tools and messages travel in its task's ``metadata``; the possible answers stay with the runner, as gold answers
do.

``bfcl-eval`` pins heavy dependencies (numpy 1.26.4, faiss, sentence-transformers, a dozen provider SDKs), none of
which its AST checker uses: ``scripts/setup.sh`` installs it with ``--no-deps``, so ponder's environment keeps its
own versions. The checker reads one thing from the package's model registry (``constants/model_config``, whose
import pulls in every provider SDK): whether a model writes ``.`` in function names as ``_``. This module puts a
registry holding only ponder's entry in its place before importing the checker, or adds that entry when the real
registry is already loaded.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ponder.agents import Context, StrategyResult, Task, TaskFamily
from ponder.errors import ConfigError, InputError, NotFoundError
from ponder.evals._datasets import Dataset, EvalItem
from ponder.evals._runner import Job, Outcome, error_dict, outcome_of
from ponder.evals._scoring import Score
from ponder.llm import ChatRequest, Message, MeteredModel
from ponder.llm.tool_calling import (
    ChoiceMethod,
    FunctionSpec,
    ToolSpec,
    complete_with_tools,
    parse_reply,
    tool_request_parts,
)

PREFIX = "bfcl-"
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
AST_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")
DIRECT = "direct"  # the label of runs through the tool-calling path (no strategy)
MODEL_NAME = "ponder-direct"  # ponder's entry in the checker's model registry: names keep their dots
MAX_TOKENS = 1024  # a parallel_multiple reply of four calls with long arguments fits with room
WORDS_TOKENS = 48
VERSION = "2026.3.23"  # the bfcl-eval release these categories and this checker call were read from
INSTALL_HINT = (
    f"pip install --no-deps bfcl-eval=={VERSION} (scripts/setup.sh does; its pinned dependencies are not needed)"
)


def is_bfcl(name: str) -> bool:
    return name.startswith(PREFIX)


def available() -> bool:
    return importlib.util.find_spec("bfcl_eval") is not None


def _data_dir() -> Path:
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the BFCL datasets need the bfcl-eval package, which is not installed", hint=INSTALL_HINT)
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _file(category: str, answers: bool = False) -> Path:
    folder = _data_dir() / "possible_answer" if answers else _data_dir()
    # exactly BFCL_v<N>_<category>.json: a glob would also match the live_* categories (kept for checking)
    name = re.compile(rf"BFCL_v\d+_{re.escape(category)}\.json")
    matches = sorted(p for p in folder.iterdir() if name.fullmatch(p.name))
    if not matches:
        raise NotFoundError(f"bfcl-eval has no file for category {category!r} in {folder}")
    return matches[-1]


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_bfcl(name: str, *, limit: int | None = None, offset: int = 0) -> Dataset:
    """Items ``offset .. offset+limit`` of one category, in file order."""
    category = name.removeprefix(PREFIX)
    if category not in CATEGORIES:
        raise InputError(
            f"unknown BFCL category {category!r}",
            hint="one of: " + ", ".join(PREFIX + c for c in CATEGORIES) + " (the live ones are not offered)",
        )
    path = _file(category)
    rows = _rows(path)[offset:]
    rows = rows if limit is None else rows[:limit]
    answers = {} if category == "irrelevance" else {r["id"]: r["ground_truth"] for r in _rows(_file(category, True))}
    items = []
    for number, row in enumerate(rows, start=offset + 1):
        turns = row["question"][0]  # single-turn categories: one turn of messages
        question = next((m["content"] for m in reversed(turns) if m["role"] == "user"), "")
        task = Task(
            question=question or "(no user message)",
            family=TaskFamily.open,
            metadata={"dataset": name, "item_id": row["id"], "messages": turns, "functions": row["function"]},
        )
        gold = answers.get(row["id"], []) if category != "irrelevance" else []
        items.append(EvalItem(id=row["id"], line=number, task=task, gold=gold))
    return Dataset(name=name, path=path, family=TaskFamily.open, items=items)


def _tools(functions: list[dict[str, Any]]) -> list[ToolSpec]:
    return [ToolSpec(function=FunctionSpec.model_validate(f)) for f in functions]


def make_tool_call_solver(ctx: Context, method: ChoiceMethod = "probe") -> Callable[[Job], Awaitable[Outcome]]:
    """Answer an item as ``ponder-direct`` answers a client that offers tools (``method`` deciding tool_choice
    auto, as ``PONDER_LLM__TOOL_CHOICE`` does there), greedy. A reply cut at the token limit is a malformed call
    (recorded as such), any other error fails the item only."""

    async def solve(job: Job) -> Outcome:
        metered = MeteredModel(ctx.model)
        meta = job.task.metadata
        start = time.perf_counter()
        result: StrategyResult | None = None
        error: dict[str, Any] | None = None
        try:
            messages = [Message(role=m["role"], content=m["content"]) for m in meta["messages"]]
            plan = await tool_request_parts(
                metered, messages, _tools(meta["functions"]), "auto", None, parallel=True, method=method
            )
            # a reply in words is not scored (no call is what counts), so it is cut short
            limit = MAX_TOKENS if plan.constraint is not None else WORDS_TOKENS
            request = ChatRequest(messages=plan.messages, constraint=plan.constraint, temperature=0.0, max_tokens=limit)
            response, union, dropped = await complete_with_tools(
                metered, request, plan if plan.constraint is not None else None, words_max_tokens=WORDS_TOKENS
            )
            text = response.text
            if not union:
                details: dict[str, Any] = {"calls": [], "content": text}
                if dropped is not None:  # the calls took nothing from the request: answered in words instead
                    details["ungrounded_calls"] = parse_reply(dropped).model_dump()["calls"]
                result = StrategyResult(answer=[], text=text, details=details)
            elif response.choices[0].finish_reason == "length":
                error = {"type": "OutputTruncated", "message": f"the reply ran past {MAX_TOKENS} tokens: malformed"}
            else:
                reply = parse_reply(text)
                calls = [{c.name: c.arguments} for c in reply.calls]
                result = StrategyResult(answer=calls, text=text, details={"calls": calls, "content": reply.content})
        except Exception as exc:  # noqa: BLE001 - one failing item must not stop the run; the error is recorded
            error = error_dict(exc)
        return outcome_of(job, metered, start, result, error)

    return solve


def _ast_checker() -> Callable[..., dict[str, Any]]:
    registry = "bfcl_eval.constants.model_config"
    entry = types.SimpleNamespace(underscore_to_dot=False)
    if registry in sys.modules:
        sys.modules[registry].MODEL_CONFIG_MAPPING.setdefault(MODEL_NAME.replace("_", "/"), entry)
    else:
        stand_in = types.ModuleType(registry)
        stand_in.MODEL_CONFIG_MAPPING = {MODEL_NAME.replace("_", "/"): entry}  # type: ignore[attr-defined]
        sys.modules[registry] = stand_in
    try:
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ConfigError(f"bfcl-eval's AST checker cannot be imported: {exc}", hint=INSTALL_HINT) from exc
    return ast_checker  # type: ignore[no-any-return]


def score_bfcl(category: str, item: EvalItem, calls: Any) -> Score:
    """BFCL's verdict on the calls: for ``irrelevance``, right when no function was called; otherwise bfcl_eval's
    AST checker against the item's possible answers."""
    if not isinstance(calls, list):
        return Score(correct=False, predicted=calls, gold=item.gold, reason="no calls list")
    if category == "irrelevance":
        ok = not calls
        return Score(correct=ok, predicted=calls, gold=[], reason="" if ok else "called a function where none fits")
    if not calls:
        return Score(correct=False, predicted=calls, gold=item.gold, reason="answered in words: no call")
    from bfcl_eval.constants.enums import Language  # type: ignore[import-untyped]

    verdict = _ast_checker()(item.task.metadata["functions"], calls, item.gold, Language.PYTHON, category, MODEL_NAME)
    if verdict.get("valid"):
        return Score(correct=True, predicted=calls, gold=item.gold)
    reason = f"{verdict.get('error_type', '')}: {'; '.join(map(str, verdict.get('error', [])))}"
    return Score(correct=False, predicted=calls, gold=item.gold, reason=reason[:500])
