"""BFCL as a ponder eval (issue 34): the installed bfcl-eval package's non-live categories load (never a live_* file),
bfcl_eval's own AST checker scores the calls, and the runner answers items through the tool path /v1's
ponder-direct uses, played by a scripted backend, with resumable records."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ponder.agents import Context
from ponder.evals import EvalRunner
from ponder.evals import _bfcl as bfcl
from ponder.llm import ChatRequest
from tests.fakes import FunctionModel

SIZES = {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200, "irrelevance": 240}


@pytest.mark.parametrize("category", list(SIZES))
def test_each_category_loads_from_the_package_and_never_a_live_file(category: str) -> None:
    data = bfcl.load_bfcl(bfcl.PREFIX + category)
    assert len(data.items) == SIZES[category]
    assert data.path.name == f"BFCL_v4_{category}.json"
    assert all(item.id.startswith(category + "_") for item in data.items)  # no live_* item slipped in
    first = data.items[0]
    assert first.task.metadata["functions"] and first.task.metadata["messages"][-1]["role"] == "user"
    assert "gold" not in json.dumps(first.task.model_dump())  # the possible answers stay with the runner
    assert (first.gold == []) == (category == "irrelevance")


def test_live_and_unknown_categories_are_refused() -> None:
    from ponder.errors import InputError

    for name in ("bfcl-live_simple", "bfcl-nonsense"):
        with pytest.raises(InputError, match="unknown BFCL category"):
            bfcl.load_bfcl(name)


def test_the_ast_checker_judges_calls() -> None:
    """simple_python_0 wants calculate_triangle_area(base=10, height=5), unit optional."""
    item = bfcl.load_bfcl("bfcl-simple_python", limit=1).items[0]
    right = bfcl.score_bfcl("simple_python", item, [{"calculate_triangle_area": {"base": 10, "height": 5}}])
    assert right.correct and right.reason == ""
    wrong = bfcl.score_bfcl("simple_python", item, [{"calculate_triangle_area": {"base": 10, "height": 6}}])
    assert not wrong.correct and wrong.reason.startswith("value_error")
    typed = bfcl.score_bfcl("simple_python", item, [{"calculate_triangle_area": {"base": 10.5, "height": 5}}])
    assert not typed.correct and typed.reason.startswith("type_error")
    assert not bfcl.score_bfcl("simple_python", item, []).correct
    irrelevant = bfcl.load_bfcl("bfcl-irrelevance", limit=1).items[0]
    assert bfcl.score_bfcl("irrelevance", irrelevant, []).correct
    assert not bfcl.score_bfcl("irrelevance", irrelevant, [{"anything": {}}]).correct


def backend(request: ChatRequest) -> Any:
    """Reaches for the first offered function and calls it with the numbers of the question in order; words when
    the question mentions no number."""
    system = request.messages[0].content
    question = request.messages[-1].content
    numbers = [int(n) for n in re.findall(r"\d+", question)]
    name = re.findall(r'"name": "([^"]+)"', system)[0]
    if request.constraint is None and "<tool_call>" in system:  # the name probe
        return f'<tool_call>\n{{"name": "{name}", ' if numbers else "I cannot help with that."
    if request.constraint is None:
        return "I cannot help with that."
    params = list(json.loads(system.split("<tools>\n")[1].split("\n")[0])["function"]["parameters"]["properties"])
    return {"type": "tool_calls", "calls": [{"name": name, "arguments": dict(zip(params, numbers, strict=False))}]}


async def test_the_runner_scores_items_through_the_tool_path(tmp_path: Path) -> None:
    model = FunctionModel(backend)
    ctx = Context(model=model)
    runner = EvalRunner(ctx, concurrency=2, progress=False, keep_events=False)
    data = bfcl.load_bfcl("bfcl-simple_python", limit=3)
    summary = await runner.run(
        data,
        bfcl.DIRECT,
        tmp_path / "run",
        solver=bfcl.make_tool_call_solver(ctx),
        scorer=lambda item, result: bfcl.score_bfcl("simple_python", item, result.answer),
    )
    # simple_python_0 (triangle: base 10, height 5) and _1 (factorial of 5) are called right by order of numbers;
    # _2 (hypotenuse of 4 and 5) is too
    assert (summary.items, summary.failed) == (3, 0)
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r for r in records}
    assert by_id["simple_python_0"]["answer"] == [{"calculate_triangle_area": {"base": 10, "height": 5}}]
    assert by_id["simple_python_0"]["correct"] and summary.correct == sum(r["correct"] for r in records)
    assert all(r["calls"] == 2 for r in records)  # the probe, then the constrained call
    again = await runner.run(
        data, bfcl.DIRECT, tmp_path / "run", solver=bfcl.make_tool_call_solver(ctx), scorer=lambda i, c: None
    )
    assert again.ran == 0 and again.resumed == 3  # finished items are never asked again


def test_the_cli_lists_bfcl_as_available_and_refuses_a_strategy(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ponder.cli import app

    cli = CliRunner()
    listed = cli.invoke(app, ["eval", "datasets", "--data-dir", str(tmp_path)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    for category in SIZES:
        row = next(line for line in listed.output.splitlines() if line.startswith(f"│ bfcl-{category}"))
        assert "│ yes " in row and f"ponder eval run -d bfcl-{category} --limit 20" in row
    refused = cli.invoke(app, ["eval", "run", "-d", "bfcl-simple_python", "-s", "pot", "--runs-dir", str(tmp_path)])
    assert refused.exit_code == 2 and "takes no strategy" in refused.output
    live = cli.invoke(app, ["eval", "run", "-d", "bfcl-live_simple", "--runs-dir", str(tmp_path)])
    assert live.exit_code == 1 and "unknown BFCL category" in live.output
    assert not list(tmp_path.iterdir())  # nothing ran


async def test_an_invented_call_is_recorded_and_scored_as_no_call(tmp_path: Path) -> None:
    """The probe reaches for the offered function, but the call's values are nowhere in the request: the item is
    answered in words (no call: right for irrelevance), and the dropped call is kept in the record's details."""

    def inventive(request: ChatRequest) -> Any:
        system = request.messages[0].content
        name = re.findall(r'"name": "([^"]+)"', system)[0] if "<tools>" in system else ""
        if request.constraint is None and "<tool_call>" in system:
            return f'<tool_call>\n{{"name": "{name}", '
        if request.constraint is None:
            return "None of these functions does that."
        return {"type": "tool_calls", "calls": [{"name": name, "arguments": {"x": 987654321}}]}

    model = FunctionModel(inventive)
    ctx = Context(model=model)
    runner = EvalRunner(ctx, progress=False, keep_events=False)
    data = bfcl.load_bfcl("bfcl-irrelevance", limit=1)
    summary = await runner.run(
        data,
        bfcl.DIRECT,
        tmp_path / "run",
        solver=bfcl.make_tool_call_solver(ctx),
        scorer=lambda item, result: bfcl.score_bfcl("irrelevance", item, result.answer),
    )
    (record,) = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert summary.correct == 1 and record["answer"] == [] and record["calls"] == 3  # probe, call, words
    assert record["details"]["ungrounded_calls"][0]["arguments"] == {"x": 987654321}
    assert model.requests[-1].max_tokens == bfcl.WORDS_TOKENS and model.requests[-1].constraint is None
