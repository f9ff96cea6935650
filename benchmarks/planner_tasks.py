"""The planner's task suite: 32 tasks written for ponder, each with an automatic checker that inspects the run's
final workspace (files, and what a fixed script prints when run in a fresh sandbox) or its typed answer, never the
transcript.

Kinds: ``compute`` (compute a value, write it to a file), ``data`` (read workspace files, compute, write),
``fix`` (repair a failing script), ``search`` (find an invented fact in a local index and compute with it; the
facts are fictional so no model knows them), ``multi`` (several outputs), ``pipeline`` (find an invented fact, use it
in a computation over a data file, write a report file: the multi-step kind where a plan should help).
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
    # the pipeline tasks' facts (p1-p10)
    Document(doc_id="tarnwick", title="Tarnwick ferry", text="The Tarnwick ferry crosses the Sound twice an hour. "
             "Its fare is 7 crowns per passenger."),
    Document(doc_id="osk", title="Osk mill", text="The Osk mill, a water mill on the Brenn, grinds 42 sacks of "
             "grain on each day it runs."),
    Document(doc_id="vellian", title="Vellian mark", text="The Vellian mark is the coin of Vell. One Vellian mark "
             "is worth 3 Darn shillings."),
    Document(doc_id="hask", title="Hask loaf", text="The Hask loaf is a rye bread baked in Hask. A Hask loaf "
             "weighs 650 grams."),
    Document(doc_id="drennan", title="Drennan orchards", text="In the Drennan orchards each apple tree yields "
             "120 apples a season."),
    Document(doc_id="kesh", title="Kesh market", text="Stalls at the Kesh market pay a market tax of 8 percent "
             "of their sales."),
    Document(doc_id="marlow", title="Marlow line", text="The Marlow line runs buses between the villages; each "
             "Marlow bus seats 36 passengers."),
    Document(doc_id="ulm", title="Ulm lamp", text="The Ulm lamp, made in Ulmstadt, draws 40 watts."),
    Document(doc_id="fenwick", title="Fenwick (unit)", text="The fenwick is an old surveyors' unit of length: one "
             "fenwick equals 2.5 metres."),
    Document(doc_id="corvin", title="Corvin crate", text="A Corvin crate holds 24 bottles."),
]  # fmt: skip
"""The invented facts the ``search`` tasks need, indexed into a local index by the benchmark."""

_BUGGY_SUM = "total = 0\nfor i in range(1, 10):\n    total += i\nprint(total)\n"
_BUGGY_GREET = 'def greet(name)\n    return "hello, " + name\n\nprint(greet("world"))\n'
_BUGGY_AREA = "import math\n\ndef area(r):\n    return 2 * math.pi * r\n"
_BUGGY_COUNT = "words = ['a', 'bb', 'ccc']\nprint(len(word))\n"

_PASSENGERS = [31, 44, 28, 52, 39]
_MILL_DAYS = [5, 6, 4, 6]
_PRICES_MARKS = [12.5, 4.0, 7.5, 20.0]
_LOAVES = {"Ada": 4, "Bo": 10, "Cyr": 6}
_TREES = [14, 9, 12, 11]
_SALES = {"fish": 320.0, "cloth": 145.5, "bread": 90.25}
_GROUPS = [12, 30, 25, 18, 40, 7]
_LAMPS = [("hall", 3, 5), ("kitchen", 2, 8), ("study", 1, 6)]
_DISTANCES = [120, 86, 44]
_BOTTLES = {"north": 100, "south": 77, "east": 35}


def _csv(header: str, rows: list[tuple[Any, ...]]) -> str:
    return header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def file_fields(path: str, expected: dict[str, float]) -> Check:
    """``path`` holds ``key=value`` (or ``key: value``) lines with these numbers."""

    async def check(o: Outcome) -> bool:
        found: dict[str, float | None] = {}
        for line in (o.files.get(path) or "").splitlines():
            key, sep, value = line.replace(":", "=", 1).partition("=")
            if sep:
                found[key.strip().lower()] = _number(value)
        return all(found.get(k) is not None and abs(found[k] - v) <= 1e-6 for k, v in expected.items())  # type: ignore[operator]

    return check


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
    # pipelines: find an invented fact in the index, use it in a computation over a data file, write a report
    SuiteTask("p1", "pipeline", "Find the Tarnwick ferry's fare in the index. passengers.csv lists the passengers "
              "of each day. Write the total fare income of those days, in crowns, to income.txt.",
              file_number("income.txt", 7 * sum(_PASSENGERS)),
              files={"passengers.csv": _csv("day,passengers", list(enumerate(_PASSENGERS, 1)))}),
    SuiteTask("p2", "pipeline", "Find in the index how many sacks the Osk mill grinds on a day it runs. "
              "mill_days.txt lists, one per line, on how many days it ran each week. Write the total number of sacks "
              "ground to sacks.txt.", file_number("sacks.txt", 42 * sum(_MILL_DAYS)),
              files={"mill_days.txt": "".join(f"{d}\n" for d in _MILL_DAYS)}),
    SuiteTask("p3", "pipeline", "prices.json holds prices in Vellian marks. Find the exchange rate to Darn "
              "shillings in the index and write the total of the prices in Darn shillings to shillings.txt.",
              file_number("shillings.txt", 3 * sum(_PRICES_MARKS)), files={"prices.json": json.dumps(_PRICES_MARKS)}),
    SuiteTask("p4", "pipeline", "orders.csv lists customers and how many Hask loaves each ordered. Find the "
              "weight of a Hask loaf in the index and write the total weight of all the loaves, in kilograms, to "
              "weight.txt.", file_number("weight.txt", 0.65 * sum(_LOAVES.values()), 1e-6),
              files={"orders.csv": _csv("customer,loaves", list(_LOAVES.items()))}),
    SuiteTask("p5", "pipeline", "rows.txt gives the number of apple trees in each row of a Drennan orchard. Find "
              "in the index how many apples a tree yields a season and write the orchard's season total to "
              "apples.txt.", file_number("apples.txt", 120 * sum(_TREES)),
              files={"rows.txt": "".join(f"{n}\n" for n in _TREES)}),
    SuiteTask("p6", "pipeline", "sales.csv lists each stall's sales at the Kesh market. Find the market tax rate "
              "in the index and write the total tax the stalls owe, rounded to two decimals, to tax.txt.",
              file_number("tax.txt", round(0.08 * sum(_SALES.values()), 2), 0.005),
              files={"sales.csv": _csv("stall,sales", list(_SALES.items()))}),
    SuiteTask("p7", "pipeline", "groups.txt lists the sizes of the groups travelling on the Marlow line today. "
              "Find how many passengers a Marlow bus seats and write to buses.txt the fewest buses that seat all "
              "of the travellers together.", file_number("buses.txt", -(-sum(_GROUPS) // 36)),
              files={"groups.txt": "".join(f"{n}\n" for n in _GROUPS)}),
    SuiteTask("p8", "pipeline", "lamps.csv lists rooms, how many Ulm lamps each has and how many hours they burn. "
              "Find an Ulm lamp's power in the index and write the total energy used, in watt-hours, to energy.txt.",
              file_number("energy.txt", sum(40 * n * h for _, n, h in _LAMPS)),
              files={"lamps.csv": _csv("room,lamps,hours", _LAMPS)}),
    SuiteTask("p9", "pipeline", "distances.txt holds survey distances in fenwicks, one per line. Find the length "
              "of a fenwick in the index and write the sum of the distances in metres to metres.txt.",
              file_number("metres.txt", 2.5 * sum(_DISTANCES)),
              files={"distances.txt": "".join(f"{d}\n" for d in _DISTANCES)}),
    SuiteTask("p10", "pipeline", "bottles.csv lists how many bottles each shop has. Find how many bottles a Corvin "
              "crate holds and write report.txt with two lines, crates=<full crates that all the bottles together "
              "fill> and left=<bottles left over>.",
              file_fields("report.txt", {"crates": sum(_BOTTLES.values()) // 24, "left": sum(_BOTTLES.values()) % 24}),
              files={"bottles.csv": _csv("shop,bottles", list(_BOTTLES.items()))}),
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
