"""Reports over several runs (same items, Wilson intervals, McNemar, PNG plots) and the `ponder eval` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ponder.agents import Context, TaskFamily
from ponder.cli import app
from ponder.evals import EvalRunner, load_dataset, load_run, summarize, write_report
from ponder.llm import ChatRequest
from tests.fakes import FunctionModel


def dataset_file(path: Path, n: int) -> Path:
    rows = [{"id": f"i{k}", "question": f"What is the code of item {k}?", "answer": f"code-{k}"} for k in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def knows_up_to(limit: int) -> FunctionModel:
    def answer(request: ChatRequest) -> dict[str, str]:
        number = int(request.messages[-1].content.rsplit("item ", 1)[1].split("?")[0])
        return {"reasoning": "recall", "answer": f"code-{number}" if number < limit else "no idea"}

    return FunctionModel(answer)


async def make_runs(tmp_path: Path) -> list[Path]:
    path = dataset_file(tmp_path / "codes.jsonl", 11)
    ten = load_dataset(str(path), family=TaskFamily.string, limit=10)
    eleven = load_dataset(str(path), family=TaskFamily.string)
    await EvalRunner(Context(knows_up_to(6)), progress=False).run(ten, "cot", tmp_path / "a")
    await EvalRunner(Context(knows_up_to(11)), progress=False).run(eleven, "cot", tmp_path / "b", label="better")
    return [tmp_path / "a", tmp_path / "b"]


async def test_compare_uses_the_same_items_and_tests_against_the_baseline(tmp_path: Path) -> None:
    runs = [load_run(p) for p in await make_runs(tmp_path)]
    rows = summarize(runs)
    base, better = rows
    assert (base.strategy, base.n, base.correct) == ("cot", 10, 6)
    assert (better.strategy, better.n, better.correct) == ("better", 10, 10)  # item i10 is not shared
    assert better.p_vs_baseline == pytest.approx(2 / 16) and better.baseline == "cot"
    assert base.low < 0.6 < base.high and better.high == 1.0
    assert summarize(runs, same_items=False)[1].n == 11

    paths = write_report(runs, tmp_path / "report", title="codes")
    text = paths["markdown"].read_text()
    assert "| codes | better | 10 | 100.0% |" in text and "0.125 (cot)" in text
    for key in ("accuracy", "tokens"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[key].stat().st_size > 5000


async def test_cli_compare_writes_the_report(tmp_path: Path) -> None:
    a, b = await make_runs(tmp_path)
    result = CliRunner().invoke(app, ["eval", "compare", str(a), str(b), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "better" in result.output and (tmp_path / "out" / "report.md").is_file()


def test_cli_refuses_unknown_datasets_strategies_and_bad_options(tmp_path: Path) -> None:
    cli = CliRunner()
    for args in (["eval", "run"], ["eval"]):
        result = cli.invoke(app, [*args, "--dataset", "nosuchset", "--data-dir", str(tmp_path)])
        assert result.exit_code == 1  # ponder's errors exit 1; 2 is typer's, for a command line it cannot parse
        assert "unknown dataset 'nosuchset'" in result.output and "gsm8k" in result.output
    data = dataset_file(tmp_path / "codes.jsonl", 2)
    base = ["eval", "run", "--dataset", str(data), "--family", "string", "--runs-dir", str(tmp_path)]
    result = cli.invoke(app, [*base, "--strategy", "telepathy"])
    assert result.exit_code == 1 and "unknown strategy 'telepathy'" in result.output
    result = cli.invoke(app, [*base, "--option", "k"])
    assert result.exit_code == 2 and "key=value" in result.output
    # Ray workers cannot share an in-process model: refused before anything starts, with what to do instead
    result = cli.invoke(app, [*base, "--ray", "local", "--backend", "embedded"])
    assert result.exit_code == 1 and "shared model endpoint" in result.output
    assert "PONDER_LLM__BASE_URL" in result.output
    assert not (tmp_path / "codes-cot").exists()
    result = cli.invoke(app, ["eval", "compare", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "not a run folder" in result.output


async def test_the_report_names_its_runs_relative_to_itself(tmp_path: Path) -> None:
    runs = [load_run(p) for p in await make_runs(tmp_path)]
    text = write_report(runs, tmp_path / "report")["markdown"].read_text()
    assert "Runs: `../a`, `../b`" in text and str(tmp_path) not in text  # the same on every machine
