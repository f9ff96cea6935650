"""The batch runner: bounded concurrency, gold kept from the model, a failing item does not stop the run,
resume after a real kill, and bad strategies refused before anything runs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ponder.agents import Context, TaskFamily
from ponder.errors import ConfigError, InputError, ModelServerError, NotFoundError
from ponder.evals import EvalRunner, RunStore, load_dataset
from ponder.llm import ChatRequest
from tests.fakes import FunctionModel

ROOT = Path(__file__).parents[2]


def make_dataset(path: Path, n: int) -> Path:
    lines = [
        json.dumps({"id": f"i{k}", "question": f"What is the code of item {k}?", "answer": f"code-{k}"})
        for k in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Model:
    """Answers ``code-N`` for item N; item 3 fails with a server error, item 4 answers wrongly."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.questions: list[str] = []
        self.model = FunctionModel(self.answer)

    async def answer(self, request: ChatRequest) -> dict[str, str]:
        text = "\n".join(m.content for m in request.messages)
        self.questions.append(request.messages[-1].content)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        number = text.rsplit("item ", 1)[1].split("?")[0]
        if number == "3":
            raise ModelServerError("the server fell over")
        return {"reasoning": "recall", "answer": "wrong" if number == "4" else f"code-{number}"}


async def test_run_scores_records_costs_and_goes_on_after_a_failed_item(tmp_path: Path) -> None:
    data = load_dataset(str(make_dataset(tmp_path / "codes.jsonl", 8)), family=TaskFamily.string)
    fake = Model()
    runner = EvalRunner(Context(fake.model), concurrency=3, progress=False)
    summary = await runner.run(data, "cot", tmp_path / "run")

    assert (summary.items, summary.ok, summary.failed, summary.correct) == (8, 7, 1, 6)
    assert fake.max_in_flight == 3
    # the gold answer never reached the model: only item 4's wrong answer... is never in a prompt either
    assert not any("code-" in q for q in fake.questions)
    records = RunStore(tmp_path / "run").records()
    failed = records["i3"]
    assert failed.status == "failed" and failed.error is not None
    assert failed.error["type"] == "ModelServerError" and failed.calls == 1
    wrong = records["i4"]
    assert wrong.status == "ok" and not wrong.correct and wrong.answer == "wrong" and wrong.gold == "code-4"
    ok = records["i0"]
    assert ok.correct and ok.calls == 1 and ok.tokens > 0 and ok.seconds > 0
    assert [e["type"] for e in ok.events][-1] == "final"


async def test_resume_skips_finished_items_and_retry_failed_reruns_only_failures(tmp_path: Path) -> None:
    path = make_dataset(tmp_path / "codes.jsonl", 6)
    first = Model()
    await EvalRunner(Context(first.model), progress=False).run(
        load_dataset(str(path), family=TaskFamily.string, limit=4), "cot", tmp_path / "run"
    )
    assert len(first.questions) == 4
    second = Model()
    summary = await EvalRunner(Context(second.model), progress=False).run(
        load_dataset(str(path), family=TaskFamily.string), "cot", tmp_path / "run"
    )
    assert sorted(q.rsplit("item ", 1)[1] for q in second.questions) == ["4?", "5?"]
    assert (summary.items, summary.resumed, summary.ran, summary.failed) == (6, 4, 2, 1)
    third = Model()
    await EvalRunner(Context(third.model), progress=False).run(
        load_dataset(str(path), family=TaskFamily.string), "cot", tmp_path / "run", retry_failed=True
    )
    assert [q.rsplit("item ", 1)[1] for q in third.questions] == ["3?"]


async def test_a_run_folder_of_another_run_and_unknown_strategies_are_refused(tmp_path: Path) -> None:
    data = load_dataset(str(make_dataset(tmp_path / "codes.jsonl", 2)), family=TaskFamily.string)
    fake = Model()
    runner = EvalRunner(Context(fake.model), progress=False)
    with pytest.raises(NotFoundError, match="unknown strategy"):
        await runner.run(data, "telepathy", tmp_path / "run")
    with pytest.raises(InputError, match=r"invalid options for strategy 'cot': colour"):
        await runner.run(data, "cot", tmp_path / "run", options={"colour": "blue"})
    await runner.run(data, "cot", tmp_path / "run")
    with pytest.raises(InputError, match="holds another run"):
        await runner.run(data, "sc", tmp_path / "run")
    assert len(fake.questions) == 2


def worker(data: Path, run_dir: Path, log: Path, delay: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.evals.resume_worker", str(data), str(run_dir), str(log), str(delay)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_run_resumes_without_asking_finished_items_again(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "codes.jsonl", 12)
    run_dir = tmp_path / "run"
    results = run_dir / "results.jsonl"
    proc = worker(data, run_dir, tmp_path / "first.log", delay=0.3)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if results.is_file() and len(results.read_text().splitlines()) >= 4:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)  # reaps it and closes its pipes
    assert proc.returncode == -signal.SIGKILL
    finished = {json.loads(line)["id"] for line in results.read_text().splitlines() if line.endswith("}")}
    assert 4 <= len(finished) < 12

    proc = worker(data, run_dir, tmp_path / "second.log", delay=0.0)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    asked_again = {
        f"i{line.split('item ')[1].split('?')[0]}" for line in (tmp_path / "second.log").read_text().splitlines()
    }
    assert not asked_again & finished
    assert asked_again | finished == {f"i{k}" for k in range(12)}
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["items"], summary["correct"], summary["failed"], summary["resumed"]) == (12, 12, 0, len(finished))
    ids = [json.loads(line)["id"] for line in results.read_text().splitlines()]
    assert sorted(ids) == sorted({*ids}) and len(ids) == 12


async def test_code_datasets_need_a_code_checker_before_anything_runs(tmp_path: Path) -> None:
    path = tmp_path / "code.jsonl"
    path.write_text(json.dumps({"id": "c1", "question": "Write add(a, b).", "answer": "assert add(1, 2) == 3"}) + "\n")
    fake = Model()
    with pytest.raises(ConfigError, match="code checker"):
        await EvalRunner(Context(fake.model), progress=False).run(
            load_dataset(str(path), family=TaskFamily.code), "cot", tmp_path / "run"
        )
    assert fake.questions == []


async def test_a_job_past_its_timeout_fails_as_a_timeout_and_keeps_what_it_spent() -> None:
    """The first call (free reasoning) returns, the second (the typed answer) never does: the job stops at its
    timeout, fails as a TimeoutError, and its record still counts the calls it made and keeps its events."""
    from ponder.agents import Task
    from ponder.evals._runner import Job, make_solver

    async def answer(request: ChatRequest) -> str:
        if request.constraint is not None:
            await asyncio.sleep(60)  # the constrained answer hangs
        return "Two and two make four.\nFinal answer: 4"

    model = FunctionModel(answer)
    solve = make_solver(Context(model), timeout_s=0.5)
    task = Task(question="What is 2 + 2?", family=TaskFamily.number)
    started = time.perf_counter()
    outcome = await solve(Job(item_id="q1", strategy="cot", options={"form": "free"}, task=task))
    assert time.perf_counter() - started < 5
    assert outcome.result is None
    assert outcome.error == {"type": "TimeoutError", "message": "the task ran past 0.5 s"}
    assert outcome.calls == 2 and outcome.completion_tokens > 0  # the call answered and the one cut off
    assert len(model.requests) == 2
    assert outcome.events, "the events before the timeout are kept"
