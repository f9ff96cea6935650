"""AgentBench-OS as a ponder eval: the dev split read from the installed inspect-evals package and adapted, each
task's environment built as an image (its init as root at build time) and run in a real sandbox, the strategy
(ReACT, played by a scripted model at ponder's model seam) working through the real tools, and the task's own
check run in the same session."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ponder.agents import Context
from ponder.config import ToolServerSettings
from ponder.evals import _agentbench as ab
from ponder.evals._runner import EvalRunner
from ponder.evals._store import RunStore
from tests.agents.planner._script import answer, call, submit
from tests.fakes import ScriptedModel


def test_the_dev_split_is_read_from_the_package_and_adapted() -> None:
    tasks = ab.load_tasks()
    assert len(tasks) == 26
    assert not any("/root" in t.description or "/usr" in t.description for t in tasks)
    by_id = {t.id: t for t in tasks}
    # the one task whose setup needs a file of the AgentBench repository is reported, not dropped
    assert {t.id: t.unrunnable is not None for t in tasks if t.unrunnable} == {"25": True}
    assert "repository" in str(by_id["25"].unrunnable)
    assert by_id["0"].kind == "match" and by_id["0"].start and "/workspace/log" in by_id["0"].start
    assert by_id["3"].kind == "check" and by_id["3"].script == "check/0.sh"
    assert by_id["6"].kind == "compare" and by_id["6"].example and by_id["6"].match == "6"
    assert by_id["24"].init and "cd /workspace" in by_id["24"].init
    assert any("sandbox user" in note for note in by_id["24"].adaptations)
    data = ab.load_agentbench(offset=20, limit=3)
    assert [i.id for i in data.items] == ["20", "21", "22"]
    assert all("submit only the answer" in i.task.question for i in data.items)
    # typed by the check each task declares: integer-match compares integers
    assert [i.task.family.value for i in data.items] == ["number", "number", "string"]
    assert all(not i.task.metadata.get("agentbench") for i in data.items)  # the answers stay with the solver


def test_answers_are_compared_after_stripping_quotes() -> None:
    assert ab.clean_answer("  `log` ") == "log"
    assert ab.clean_answer('"3"\n') == "3"
    assert ab.clean_answer("it is 3") == "it is 3"
    assert ab.clean_answer(None) == ""
    assert ab.clean_answer(6.0) == "6" and ab.clean_answer(2.5) == "2.5"


def settings() -> ToolServerSettings:
    return ToolServerSettings(instance=f"pytest-ab-{uuid.uuid4().hex[:8]}", pool_size=0, call_timeout_s=20.0)


async def run_task(task_id: str, model: ScriptedModel, tmp_path: Path) -> dict:
    data = ab.load_agentbench()
    data = data.model_copy(update={"items": [i for i in data.items if i.id == task_id]})
    ctx = Context(model)
    solver = ab.make_agentbench_solver(ctx, settings(), data, task_timeout_s=300)
    runner = EvalRunner(ctx, progress=False)
    folder = tmp_path / f"run-{task_id}"
    await runner.run(data, "react", folder, options={"ask_human": False}, solver=solver, scorer=ab.score_agentbench)
    model.assert_complete()
    return RunStore(folder).records()[task_id].model_dump()


@pytest.mark.docker
async def test_a_background_task_runs_while_the_agent_works_and_is_checked(tmp_path: Path) -> None:
    # task 1: a program writes into one of several files in the home every second; which one?
    look = "sleep 1.5; stat -c '%s %n' log a.log b.log loga log.jsonl; sleep 1.5; stat -c '%s %n' log a.log"
    model = ScriptedModel([call("shell", command=look), submit("log grows"), answer("log")])
    record = await run_task("1", model, tmp_path)
    assert record["correct"] and record["status"] == "ok"
    verdict = record["details"]["agentbench"]
    assert verdict["answer"] == "log" and verdict["kind"] == "match"
    seen = next(e for e in record["events"] if e["type"] == "tool_result")["output"]["stdout"].split("\n")
    sizes = {line.split()[1]: int(line.split()[0]) for line in seen if line}
    assert sizes["log"] > 0 and sizes["a.log"] == 0  # the writer runs beside the agent's calls

    wrong = ScriptedModel([call("shell", command="ls -a"), submit("guess"), answer("a.log")])
    record = await run_task("1", wrong, tmp_path / "wrong")
    assert record["status"] == "ok" and not record["correct"]


@pytest.mark.docker
async def test_setup_runs_as_root_at_build_time_and_the_answer_comes_from_the_example(tmp_path: Path) -> None:
    # task 6: hidden files in /home, written by the init as root (the agent's sandbox could not write /home)
    model = ScriptedModel([call("shell", command="ls -1Ap /home"), submit("6 hidden"), answer("6")])
    record = await run_task("6", model, tmp_path)
    verdict = record["details"]["agentbench"]
    listing = next(e for e in record["events"] if e["type"] == "tool_result")["output"]["stdout"].split()
    assert sorted(listing) == [".f", ".k", ".tm12p", ".tmp", ".tmp2", ".u"]
    assert verdict["expected"] == "6" and verdict["dev_match"] == "6" and verdict["kind"] == "compare"
    assert record["correct"]


@pytest.mark.docker
async def test_a_task_for_another_user_is_the_agents_and_a_check_script_runs_in_the_session(tmp_path: Path) -> None:
    # task 24: ~/test belongs to the task's user with mode 000; here it is the agent's
    model = ScriptedModel(
        [call("shell", command="chmod 777 ~/test && ~/test"), submit("it printed it"), answer("Awesome-AgentBench")]
    )
    record = await run_task("24", model, tmp_path)
    shell = next(e for e in record["events"] if e["type"] == "tool_result")["output"]
    assert shell["stdout"].strip() == "Awesome-AgentBench"
    assert record["correct"]

    # task 3: a `calc` command in the home; the task's check script runs it in the agent's session
    script = "#!/bin/bash\npython3 -c \"print('%.6f' % ($*))\"\n"
    model = ScriptedModel(
        [
            call("files", op="write", path="calc", content=script),
            call("shell", command="chmod +x calc && ./calc '2 * (3 + 4)'"),
            submit("made calc"),
            answer("done"),
        ]
    )
    record = await run_task("3", model, tmp_path / "calc")
    shell = [e for e in record["events"] if e["type"] == "tool_result"][-1]["output"]
    assert shell["stdout"].strip() == "14.000000"
    assert record["correct"]

    lazy = ScriptedModel([call("shell", command="true"), submit("nothing"), answer("done")])
    record = await run_task("3", lazy, tmp_path / "lazy")
    assert not record["correct"]


async def test_an_unrunnable_task_is_reported_as_such(tmp_path: Path) -> None:
    record = await run_task("25", ScriptedModel([]), tmp_path)
    assert record["status"] == "failed" and record["error"]["type"] == "Unrunnable"
    assert "repository" in record["error"]["message"]


def test_the_cli_lists_agentbench_and_refuses_ray_and_unknown_options(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ponder.cli import app

    cli = CliRunner()
    listed = cli.invoke(app, ["eval", "datasets", "--data-dir", str(tmp_path)], env={"COLUMNS": "220"})
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.startswith("│ agentbench-os"))
    assert "│ yes " in row and "ponder eval run -d agentbench-os -s react" in row
    ray = cli.invoke(
        app, ["eval", "run", "-d", "agentbench-os", "-s", "react", "--ray", "local", "--runs-dir", str(tmp_path)]
    )
    assert ray.exit_code == 2 and "runs in this process" in ray.output
    bad = cli.invoke(
        app, ["eval", "run", "-d", "agentbench-os", "-s", "react", "-o", "nope=1", "--runs-dir", str(tmp_path)]
    )
    assert bad.exit_code != 0 and "nope" in bad.output
    assert not list(tmp_path.iterdir())  # nothing ran
