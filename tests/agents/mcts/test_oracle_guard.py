"""The oracle guard: no hidden test and no gold answer reaches a search.

The Task a strategy receives has no field for them; the modules a search runs never import the scorer or the
evaluation package; and in a real search against the sandbox, neither the model's requests nor the code sent to
the sandbox contains any part of the hidden tests, which only the scorer runs, after the search has chosen.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ponder.agents import Context, Task, get_strategy, run_to_result
from ponder.agents.mcts.scoring import SandboxCodeChecker, code_item
from ponder.evals import load_dataset
from ponder.llm import ChatRequest
from ponder.tools import ToolServer
from tests.agents.mcts.conftest import RecordingToolServer
from tests.fakes import FunctionModel

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "benchmarks"


def rows(name: str, limit: int) -> list[dict[str, Any]]:
    with gzip.open(SHARED / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(limit), f, strict=False)]


def hidden_fragments(tests: str) -> list[str]:
    """Lines of the hidden tests that the prompt does not show (long enough to be unique)."""
    return [line.strip() for line in tests.splitlines() if len(line.strip()) > 30]


@pytest.mark.parametrize("dataset", ["humaneval_plus", "mbpp_plus"])
def test_code_tasks_carry_no_hidden_tests_and_no_solution(dataset: str) -> None:
    assert set(Task.model_fields) == {"question", "family", "choices", "context", "conversation", "metadata"}
    for row in rows(dataset, 30):
        task, hidden = code_item(row, dataset)
        seen = task.model_dump_json()
        assert set(task.metadata) == {"dataset", "item_id", "entry_point"}
        assert row["canonical_solution"].strip() not in seen
        fragments = [f for f in hidden_fragments(hidden["tests"]) if f not in row["prompt"]]
        assert fragments and not any(f in seen for f in fragments)


def test_the_evals_loader_keeps_gold_answers_away_from_tasks() -> None:
    for name in ["gsm8k", "humaneval", "mbpp"]:
        for item in load_dataset(name, data_dir=SHARED, limit=20).items:
            seen = item.task.model_dump_json()
            assert set(item.task.metadata) <= {"dataset", "item_id"}
            if isinstance(item.gold, str):
                assert not any(f in seen for f in hidden_fragments(item.gold) if f not in item.task.question)


def test_search_modules_never_import_the_scorer_or_the_eval_package() -> None:
    probe = (
        "import sys\n"
        "import ponder.agents.mcts, ponder.agents.mcts._code, ponder.agents.mcts._math, ponder.agents.mcts._proof\n"
        "from ponder.agents import get_strategy\n"
        "for name in ('mcts-code', 'mcts-math', 'mcts-proof'): get_strategy(name)\n"
        "leaked = [m for m in sys.modules if m == 'ponder.agents.mcts.scoring' or m.startswith('ponder.evals')]\n"
        "print(leaked)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.docker
async def test_a_real_search_sees_no_hidden_test_and_the_scorer_runs_them_after(toolserver: ToolServer) -> None:
    row = rows("humaneval_plus", 3)[2]  # truncate_number: a doctest example in the prompt, 1000+ hidden inputs
    task, hidden = code_item(row, "humaneval_plus")
    wrong = "def truncate_number(number: float) -> float:\n    return number - round(number)\n"
    right = row["prompt"] + row["canonical_solution"]

    def fn(request: ChatRequest) -> Any:
        if request.constraint is not None and request.constraint.kind == "json_schema":  # the model writes tests
            return {"tests": ["assert truncate_number(2.25) == 0.25"]}
        last = request.messages[-1].content
        return f"```python\n{right if 'failed the visible tests' in last else wrong}\n```"

    model = FunctionModel(fn)
    recording = RecordingToolServer(toolserver)
    ctx = Context(model=model, toolserver=recording)
    result = await run_to_result(get_strategy("mcts-code", budget=4, k=1).run(task, ctx))

    assert result.details["verified"] is True
    assert any("truncate_number(2.25) == 0.25" in json.dumps(c) for c in recording.calls)  # model-written test ran
    sent = [m.content for r in model.requests for m in r.messages] + [json.dumps(c) for c in recording.calls]
    fragments = [f for f in hidden_fragments(hidden["tests"]) if f not in row["prompt"]]
    assert fragments
    for text in sent:
        assert "def check(" not in text
        assert not any(f in text for f in fragments)
    # only now, after the search chose, does the scorer see the hidden tests
    checker = SandboxCodeChecker(toolserver)
    assert await checker.check(result.answer, hidden["tests"], {"entry_point": hidden["entry_point"]})
    assert not await checker.check(wrong, hidden["tests"], {"entry_point": hidden["entry_point"]})
