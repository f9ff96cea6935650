"""The planner's task suite: 22 tasks written for ponder, each with an automatic checker that inspects the run's
final workspace (files, and what a fixed script prints when run in a fresh sandbox) or its typed answer, never the
transcript.

Kinds: ``compute`` (compute a value, write it to a file), ``data`` (read workspace files, compute, write),
``fix`` (repair a failing script), ``search`` (find an invented fact in a local index and compute with it; the
facts are fictional so no model knows them), ``multi`` (several outputs).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ponder.agents import Task, TaskFamily
from ponder.search import Document

RunPython = Callable[[str], Awaitable[str]]
"""Runs code in a fresh sandbox holding the run's final workspace; returns what it printed."""


@dataclass
class Outcome:
    answer: Any
    text: str
    files: dict[str, str | None]
    run: RunPython


Check = Callable[[Outcome], Awaitable[bool]]


@dataclass(frozen=True)
class SuiteTask:
    id: str
    kind: str
    question: str
    check: Check
    files: dict[str, str] = field(default_factory=dict)
    family: TaskFamily = TaskFamily.open

    def task(self) -> Task:
        return Task(question=self.question, family=self.family, metadata={"files": dict(self.files), "suite": self.id})


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip().replace(",", ""))
    except ValueError:
        return None


def file_number(path: str, expected: float, tol: float = 1e-6) -> Check:
    async def check(o: Outcome) -> bool:
        value = _number(o.files.get(path))
        return value is not None and abs(value - expected) <= tol

    return check


def file_text(path: str, expected: str) -> Check:
    async def check(o: Outcome) -> bool:
        return (o.files.get(path) or "").strip() == expected

    return check


def prints(code: str, expected: str) -> Check:
    async def check(o: Outcome) -> bool:
        return (await o.run(code)).strip() == expected

    return check


def answer_number(expected: float, tol: float = 1e-6) -> Check:
    async def check(o: Outcome) -> bool:
        try:
            return o.answer is not None and abs(float(o.answer) - expected) <= tol
        except (TypeError, ValueError):
            return False

    return check


def all_of(*checks: Check) -> Check:
    async def check(o: Outcome) -> bool:
        return all([await c(o) for c in checks])

    return check


async def _squares_csv(o: Outcome) -> bool:
    text = o.files.get("squares.csv")
    if not text:
        return False
    rows = list(csv.reader(io.StringIO(text.strip())))
    return rows == [["n", "square"], *[[str(n), str(n * n)] for n in range(1, 6)]]


FACTS = [
    Document(doc_id="zorblax", title="Zorblax Tower", text="The Zorblax Tower in Vennick is 324 meters tall. "
             "It was finished in 1931 and is built of grey granite."),
    Document(doc_id="quillan", title="River Quillan", text="The river Quillan is 812 kilometres long and flows "
             "north into the Pale Sea."),
    Document(doc_id="morrow", title="River Morrow", text="The river Morrow is 455 kilometres long; it joins the "
             "Quillan near Harth."),
    Document(doc_id="brindlemoor", title="Brindlemoor", text="Brindlemoor is a market town founded in 1642 by "
             "wool traders. Its population is 8,312."),
    Document(doc_id="velk", title="Velk alloy", text="Velk alloy melts at 1415 degrees Celsius and is used for "
             "turbine blades."),
    Document(doc_id="orrin", title="Orrin Lake", text="Orrin Lake has an area of 64 square kilometres and a "
             "greatest depth of 112 metres."),
]  # fmt: skip
"""The invented facts the ``search`` tasks need, indexed into a local index by the benchmark."""

_BUGGY_SUM = "total = 0\nfor i in range(1, 10):\n    total += i\nprint(total)\n"
_BUGGY_GREET = 'def greet(name)\n    return "hello, " + name\n\nprint(greet("world"))\n'
_BUGGY_AREA = "import math\n\ndef area(r):\n    return 2 * math.pi * r\n"
_BUGGY_COUNT = "words = ['a', 'bb', 'ccc']\nprint(len(word))\n"

SUITE: list[SuiteTask] = [
    # compute a value and write it to a file
    SuiteTask("c1", "compute", "Compute 17 * 23 and write the result to answer.txt.", file_number("answer.txt", 391)),
    SuiteTask("c2", "compute", "Write the sum of the integers from 1 to 100 to sum.txt.", file_number("sum.txt", 5050)),
    SuiteTask("c3", "compute", "Compute 2 to the power 20 and write it to pow.txt.", file_number("pow.txt", 1048576)),
    SuiteTask("c4", "compute", "Count the prime numbers below 100 and write the count to primes.txt.",
              file_number("primes.txt", 25)),
    SuiteTask("c5", "compute", "Write 10 factorial to fact.txt.", file_number("fact.txt", 3628800)),
    SuiteTask("c6", "compute", "With F(1) = F(2) = 1, write the 20th Fibonacci number F(20) to fib.txt.",
              file_number("fib.txt", 6765)),
    # read workspace files, compute, write
    SuiteTask("d1", "data", "numbers.txt holds one number per line. Write their sum to total.txt.",
              file_number("total.txt", 170), files={"numbers.txt": "12\n7\n45\n90\n16\n"}),
    SuiteTask("d2", "data", "scores.csv lists name,score. Write the name of the person with the highest score "
              "to best.txt.", file_text("best.txt", "Rosa"),
              files={"scores.csv": "name,score\nAli,71\nRosa,93\nKen,88\n"}),
    SuiteTask("d3", "data", "words.txt has one word per line. Write how many of the words contain the letter 'a' "
              "to count.txt.", file_number("count.txt", 3),
              files={"words.txt": "cat\ndog\nbanana\nplum\nkiwi\npear\n"}),
    SuiteTask("d4", "data", "prices.json is a JSON list of prices. Write their mean, rounded to 2 decimals, to "
              "mean.txt.", file_number("mean.txt", 4.25, 0.005), files={"prices.json": "[2.5, 3.0, 4.5, 7.0]"}),
    SuiteTask("d5", "data", "Write the text of note.txt in upper case to upper.txt.",
              file_text("upper.txt", "MEET AT NOON"), files={"note.txt": "meet at noon\n"}),
    # repair a failing script
    SuiteTask("f1", "fix", "sum.py should print the sum of 1 to 10 (55) but prints 45. Fix sum.py.",
              prints("exec(open('sum.py').read())", "55"), files={"sum.py": _BUGGY_SUM}),
    SuiteTask("f2", "fix", "greet.py fails with a SyntaxError. Fix it so that it prints: hello, world",
              prints("exec(open('greet.py').read())", "hello, world"), files={"greet.py": _BUGGY_GREET}),
    SuiteTask("f3", "fix", "area.py's area(r) must return the area of a circle of radius r but uses the wrong "
              "formula. Fix area.py.", prints("import area; print(round(area.area(3), 2))", "28.27"),
              files={"area.py": _BUGGY_AREA}),
    SuiteTask("f4", "fix", "count.py should print how many words the list holds but raises a NameError. Fix it.",
              prints("exec(open('count.py').read())", "3"), files={"count.py": _BUGGY_COUNT}),
    # find an invented fact in the local index and compute with it
    SuiteTask("s1", "search", "Search the index for the height of the Zorblax Tower and write its height in "
              "centimetres to tower.txt.", file_number("tower.txt", 32400)),
    SuiteTask("s2", "search", "Search the index for the lengths of the rivers Quillan and Morrow and write how many "
              "kilometres longer the Quillan is to rivers.txt.", file_number("rivers.txt", 357)),
    SuiteTask("s3", "search", "Search the index for the year Brindlemoor was founded. How many years after its "
              "founding was the year 2000?", answer_number(358), family=TaskFamily.number),
    SuiteTask("s4", "search", "Search the index for the melting point of Velk alloy in Celsius. What is it in "
              "Kelvin?", answer_number(1688.15, 0.01), family=TaskFamily.number),
    # several outputs
    SuiteTask("m1", "multi", "Write hello.txt containing exactly hello and world.txt containing exactly world.",
              all_of(file_text("hello.txt", "hello"), file_text("world.txt", "world"))),
    SuiteTask("m2", "multi", "Create squares.csv with the header n,square and one row for each n from 1 to 5.",
              _squares_csv),
    SuiteTask("m3", "multi", "What is the sum of the digits of 2 to the power 15? Also write 2 to the power 15 to "
              "p15.txt.", all_of(answer_number(26), file_number("p15.txt", 32768)), family=TaskFamily.number),
]  # fmt: skip


def by_id(ids: str | None) -> list[SuiteTask]:
    if not ids:
        return list(SUITE)
    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    known = {t.id: t for t in SUITE}
    missing = [i for i in wanted if i not in known]
    if missing:
        raise SystemExit(f"unknown task ids {missing}; known: {', '.join(known)}")
    return [known[i] for i in wanted]


def dumps(task: SuiteTask) -> str:
    return json.dumps({"id": task.id, "kind": task.kind, "question": task.question, "files": task.files})
