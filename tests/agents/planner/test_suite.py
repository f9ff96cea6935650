"""The benchmark suite's checkers accept a correct final workspace and refuse a wrong or empty one (so a success
figure means the work was done, not that the transcript looked right)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "planner_tasks.py"
spec = importlib.util.spec_from_file_location("planner_tasks", BENCH)
assert spec is not None and spec.loader is not None
suite = importlib.util.module_from_spec(spec)
sys.modules["planner_tasks"] = suite
spec.loader.exec_module(suite)

FIXED = {
    "sum.py": "total = 0\nfor i in range(1, 11):\n    total += i\nprint(total)\n",
    "greet.py": 'def greet(name):\n    return "hello, " + name\n\nprint(greet("world"))\n',
    "area.py": "import math\n\ndef area(r):\n    return math.pi * r * r\n",
    "count.py": "words = ['a', 'bb', 'ccc']\nprint(len(words))\n",
}
GOOD: dict[str, tuple[Any, dict[str, str]]] = {
    "c1": (None, {"answer.txt": "391\n"}), "c2": (None, {"sum.txt": "5050"}), "c3": (None, {"pow.txt": "1048576"}),
    "c4": (None, {"primes.txt": "25"}), "c5": (None, {"fact.txt": "3628800"}), "c6": (None, {"fib.txt": "6765"}),
    "d1": (None, {"total.txt": "170"}), "d2": (None, {"best.txt": "Rosa\n"}), "d3": (None, {"count.txt": "3"}),
    "d4": (None, {"mean.txt": "4.25"}), "d5": (None, {"upper.txt": "MEET AT NOON\n"}),
    "f1": (None, {"sum.py": FIXED["sum.py"]}), "f2": (None, {"greet.py": FIXED["greet.py"]}),
    "f3": (None, {"area.py": FIXED["area.py"]}), "f4": (None, {"count.py": FIXED["count.py"]}),
    "s1": (None, {"tower.txt": "32400"}), "s2": (None, {"rivers.txt": "357"}), "s3": (358.0, {}),
    "s4": (1688.15, {}), "m1": (None, {"hello.txt": "hello", "world.txt": "world\n"}),
    "m2": (None, {"squares.csv": "n,square\n1,1\n2,4\n3,9\n4,16\n5,25\n"}), "m3": (26.0, {"p15.txt": "32768"}),
    # worked by hand from the data files and the invented facts
    "p1": (None, {"income.txt": "1358"}), "p2": (None, {"sacks.txt": "882"}), "p3": (None, {"shillings.txt": "132"}),
    "p4": (None, {"weight.txt": "13.0"}), "p5": (None, {"apples.txt": "5520"}), "p6": (None, {"tax.txt": "44.46"}),
    "p7": (None, {"buses.txt": "4"}), "p8": (None, {"energy.txt": "1480"}), "p9": (None, {"metres.txt": "625.0"}),
    "p10": (None, {"report.txt": "crates=8\nleft=20\n"}),
}  # fmt: skip


def runner(tmp: Path, files: dict[str, str | None]) -> Any:
    """Runs our own reference scripts (never model output) in a subprocess in a folder holding the files."""

    async def run(code: str) -> str:
        for path, text in files.items():
            if text is not None:
                (tmp / path).write_text(text)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, cwd=tmp, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        out, _ = await proc.communicate()
        return out.decode()

    return run


def test_the_suite_has_32_tasks_of_every_kind() -> None:
    assert len(suite.SUITE) == 32
    assert len({t.id for t in suite.SUITE}) == len(suite.SUITE)
    assert {t.kind for t in suite.SUITE} == {"compute", "data", "fix", "search", "multi", "pipeline"}
    assert sum(t.kind == "pipeline" for t in suite.SUITE) == 10
    assert set(GOOD) == {t.id for t in suite.SUITE}


@pytest.mark.parametrize("item", suite.SUITE, ids=lambda t: t.id)
async def test_checker_accepts_the_right_outcome_and_refuses_others(item: Any, tmp_path: Path) -> None:
    answer, files = GOOD[item.id]
    start = {**item.files, **files}
    good = suite.Outcome(answer=answer, text=str(answer), files=start, run=runner(tmp_path / "good", start))
    (tmp_path / "good").mkdir()
    assert await item.check(good)
    (tmp_path / "bad").mkdir()
    untouched = suite.Outcome(answer=None, text="", files=dict(item.files), run=runner(tmp_path / "bad", item.files))
    assert not await item.check(untouched)
    wrong_files = {p: "999" for p in files}
    wrong = suite.Outcome(answer=1.0, text="1", files={**item.files, **wrong_files},
                          run=runner(tmp_path / "bad", {**item.files, **wrong_files}))  # fmt: skip
    assert not await item.check(wrong)


def test_search_facts_are_in_no_task_text() -> None:
    """The search tasks can only be solved by finding the facts: the numbers are not in the questions."""
    for item in suite.SUITE:
        if item.kind in ("search", "pipeline"):
            assert not any(ch.isdigit() for ch in item.question.replace("2000", "")), item.id
