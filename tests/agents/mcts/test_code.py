"""The code domain end to end: a function-played model, real test execution in the Docker sandbox."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ponder.agents import Context, StrategyResult, Task, TaskFamily, TreeUpdated, get_strategy, run_to_result
from ponder.agents.mcts._code import extract_program, prompt_tests
from ponder.errors import ConfigError
from ponder.llm import ChatRequest
from ponder.tools import ToolServer
from tests.fakes import FunctionModel

PROMPT = '''def add_one(xs):
    """Add one to every element of the list.
    >>> add_one([1, 2])
    [2, 3]
    >>> add_one([])
    []
    """
'''
TASK = Task(question=PROMPT, family=TaskFamily.code, metadata={"entry_point": "add_one"})

GOOD = "```python\ndef add_one(xs):\n    return [x + 1 for x in xs]\n```"
WRONG = "```python\ndef add_one(xs):\n    return [x + 2 for x in xs]\n```"
BROKEN = "```python\ndef add_one(xs)\n    return xs\n```"


def test_prompt_tests_come_from_doctests_asserts_and_prose() -> None:
    assert prompt_tests(PROMPT, "add_one") == ["assert (add_one([1, 2])) == ([2, 3])", "assert (add_one([])) == ([])"]
    mbpp = '"""\nWrite a function to add.\nassert add(1, 2) == 3\n"""\n'
    assert prompt_tests(mbpp, "add") == ["assert add(1, 2) == 3"]
    prose = "def f(x):\n    '''Double x. For example: f(2) == 4'''\n"
    assert prompt_tests(prose, "f") == ["assert (f(2)) == (4)"]


def test_prose_examples_in_the_forms_humaneval_writes_them() -> None:
    """Each form below is one HumanEval prompt's (37 of 122 state examples only in prose); every test extracted
    from the 122 passes the reference solution except HumanEval/47, whose own doctest is wrong."""
    forms = {
        '    decimal_to_binary(15)   # returns "db1111db"\n': 'assert (decimal_to_binary(15)) == ("db1111db")',
        '    fruit_distribution("5 apples", 19) ->19 - 5 = 14\n': 'assert (fruit_distribution("5 apples", 19)) == (14)',
        "    is_simple_power(8, 2) => true\n": "assert (is_simple_power(8, 2)) == (True)",
        "    grade([4.0, 3]) ==> ['A+', 'B']\n": "assert (grade([4.0, 3])) == (['A+', 'B'])",
    }
    for line, test in forms.items():
        name = test.removeprefix("assert (").split("(")[0]
        assert prompt_tests(f'def {name}(a, b=None):\n    """Doc.\n{line}    """\n', name) == [test]
    one_arg = (
        'def solve(N):\n    """Example\n        For N = 150, the sum of digits will be 6 the output should be "110".\n'
        '    Example 2:\n        Input: 7\n        Output: "111"\n    """\n'
    )
    assert prompt_tests(one_arg, "solve") == ['assert (solve(7)) == ("111")', 'assert (solve(150)) == ("110")']
    # words where a value belongs, or an unquoted string argument, give no test
    assert prompt_tests('def is_happy(s):\n    """is_happy(abcd) => True\n    f(1) -> a list"""\n', "is_happy") == []


def test_extract_program_takes_the_fenced_block_or_completes_a_body() -> None:
    assert extract_program("Here:\n" + GOOD + "\nDone.", TASK).startswith("def add_one(xs):\n    return [x + 1")
    body = "    return [x + 1 for x in xs]\n"
    assert extract_program(body, TASK) == PROMPT.rstrip() + "\n" + body


def task_model(replies_for: Any) -> FunctionModel:
    """``replies_for(request)`` gives a list of candidate replies; the first ``n`` are sampled."""

    def fn(request: ChatRequest) -> Any:
        replies = replies_for(request)
        replies = replies if isinstance(replies, list) else [replies]
        return replies[: request.n] if request.n > 1 else replies[0]

    return FunctionModel(fn)


async def run(
    strategy: str, model: FunctionModel, toolserver: ToolServer, task: Task = TASK, **options: Any
) -> tuple[StrategyResult, list[Any]]:
    events: list[Any] = []
    ctx = Context(model=model, toolserver=toolserver)
    result = await run_to_result(get_strategy(strategy, **options).run(task, ctx), on_event=events.append)
    return result, events


@pytest.mark.docker
async def test_failing_programs_are_refined_on_their_test_failures(toolserver: ToolServer) -> None:
    def replies(request: ChatRequest) -> Any:
        last = request.messages[-1].content
        if "failed the visible tests" in last:
            return [GOOD] * request.n
        return [WRONG, BROKEN][: request.n]

    model = task_model(replies)
    result, events = await run("mcts-code", model, toolserver, budget=6, k=2, greedy_first=False)
    assert result.details["verified"] is True
    assert "x + 1" in result.answer
    assert result.details["samples"] == 4  # 2 at the root, then 2 refining the best failing child
    refine = model.requests[1].messages[-1].content
    assert "x + 2" in refine  # the parent's program
    assert "assert (add_one([1, 2])) == ([2, 3])" in refine  # its failing test and the error
    tree = [e for e in events if isinstance(e, TreeUpdated)][-1].tree
    rewards = {n["action"].split("return ")[-1].strip(): n["reward"] for n in tree["nodes"][1:3]}
    assert rewards == {"[x + 2 for x in xs]": 0.5, "xs": 0.0}  # wrong passes the [] example only
    broken = tree["nodes"][2]
    assert "SyntaxError" in broken["reason"]


@pytest.mark.docker
async def test_bad_candidates_score_zero_with_a_reason_and_the_search_goes_on(toolserver: ToolServer) -> None:
    bad = {
        "hang": "def add_one(xs):\n    while True:\n        pass\n",
        "crash": "import ctypes\nctypes.string_at(0)\n",
        "flood": "print('x' * 3_000_000)\ndef add_one(xs):\n    return [x + 1 for x in xs]\n",
        "escape": "import os\nos.setuid(0)\nopen('/var/run/docker.sock')\n",
    }

    def replies(request: ChatRequest) -> Any:
        if "failed the visible tests" in request.messages[-1].content:
            return [GOOD] * request.n
        return [f"```python\n{code}```" for code in bad.values()]

    result, events = await run(
        "mcts-code",
        task_model(replies),
        toolserver,
        budget=5,
        k=4,
        greedy_first=False,
        domain_options={"per_test_timeout_s": 1.0, "timeout_s": 4.0},
    )
    tree = [e for e in events if isinstance(e, TreeUpdated)][-1].tree
    first = tree["nodes"][1:5]
    assert [n["reward"] for n in first] == [0.0, 0.0, 0.0, 0.0]
    reasons = [n["reason"] for n in first]
    assert "time limit" in reasons[0] or "timed out" in reasons[0]
    assert "killed by a signal" in reasons[1]
    printed = re.search(r"printed (\d+) bytes", reasons[2])
    assert printed is not None and int(printed.group(1)) > 3_000_000
    assert "PermissionError" in reasons[3] or "Operation not permitted" in reasons[3]
    assert result.details["verified"] is True and "x + 1" in result.answer  # the search went on and solved it


@pytest.mark.docker
async def test_by_default_greedys_program_is_one_of_the_first_candidates_and_kept_when_it_passes(
    toolserver: ToolServer,
) -> None:
    also_passes = "```python\ndef add_one(xs):\n    return list(map(lambda x: 1 + x, xs))\n```"

    def replies(request: ChatRequest) -> Any:
        if request.constraint is not None:  # the inputs the two passing programs are compared on
            return {"calls": ["add_one([5, -5])", "add_one([0])"]}
        return GOOD if request.temperature == 0.0 else [also_passes, WRONG, BROKEN][: request.n]

    model = task_model(replies)
    result, _ = await run("mcts-code", model, toolserver, budget=8, k=3)
    assert [(r.n, r.temperature) for r in model.requests] == [(1, 0.0), (2, 0.8)]  # no inputs asked: choose_by=tests
    assert result.details["samples"] == 3 and result.details["stopped_by"] == "verified"
    assert "x + 1 for x in xs" in result.answer  # greedy's, though a sample passed the same tests
    assert "behaviour" not in result.details

    compared = task_model(replies)
    result, _ = await run("mcts-code", compared, toolserver, budget=8, k=3, choose_by="behaviour")
    assert "x + 1 for x in xs" in result.answer
    groups = result.details["behaviour"]["groups"]  # the two behave alike: the tie goes to the first found
    assert len(groups) == 1 and groups[0]["outputs"] == ["[6, -4]", "[1]"] and len(groups[0]["nodes"]) == 2

    sampled_only = task_model(replies)
    result, _ = await run("mcts-code", sampled_only, toolserver, budget=8, k=3, greedy_first=False)
    assert [(r.n, r.temperature) for r in sampled_only.requests] == [(3, 0.8)]
    assert "map(lambda" in result.answer


async def test_without_a_toolserver_the_strategy_says_how_to_get_one() -> None:
    with pytest.raises(ConfigError, match="needs a ToolServer"):
        await run("mcts-code", task_model(lambda r: GOOD), None)  # type: ignore[arg-type]


def fenced(body: str) -> str:
    return f"```python\ndef add_one(xs):\n{body}\n```"


PASSES_EXAMPLES_ONLY = fenced("    return [x + 1 if x < 3 else x for x in xs]")
ALSO_GOOD = fenced("    out = []\n    for x in xs:\n        out.append(x + 1)\n    return out")
CRASHES = fenced("    if 7 in xs:\n        raise ValueError(7)\n    return [x + 1 for x in xs]")
HANGS = fenced("    while 7 in xs:\n        pass\n    return [x + 1 for x in xs]")
INPUTS = {"calls": ["add_one([7, 10])", "add_one([-1])", "add_one(xs)", "print(1)", "add_one([-1])", "add_one([])"]}


def best_of(candidates: list[str]) -> FunctionModel:
    def replies(request: ChatRequest) -> Any:
        if request.constraint is not None and request.constraint.kind == "json_schema":
            return INPUTS
        return candidates[: request.n]

    return task_model(replies)


@pytest.mark.docker
async def test_the_largest_group_of_identical_behaviour_wins_not_the_first_program_to_pass(
    toolserver: ToolServer,
) -> None:
    # all four pass the prompt's examples; on the model's inputs two behave alike and two differ from them
    model = best_of([PASSES_EXAMPLES_ONLY, GOOD, CRASHES, ALSO_GOOD])
    options = {"budget": 4, "k": 4, "max_depth": 1, "greedy_first": False, "choose_by": "behaviour"}
    result, _ = await run("mcts-code", model, toolserver, **options)
    behaviour = result.details["behaviour"]
    assert behaviour["inputs"] == ["add_one([7, 10])", "add_one([-1])", "add_one([])"]  # literal calls, once each
    assert [len(g["nodes"]) for g in behaviour["groups"]] == [2, 1, 1]
    assert behaviour["groups"][0]["outputs"] == ["[8, 11]", "[0]", "[]"]
    assert ["raised ValueError", "[0]", "[]"] in [g["outputs"] for g in behaviour["groups"]]
    assert "x + 1 for x in xs" in result.answer and result.details["verified"] is True
    assert "2 of 4 programs behave alike" in behaviour["reason"]
    inputs_request = next(r for r in model.requests if r.constraint is not None)
    assert "no expected results" in inputs_request.messages[-1].content
    assert set(inputs_request.constraint.json_schema["properties"]) == {"calls"}  # type: ignore[union-attr]

    options["choose_by"] = "tests"
    first_found, _ = await run("mcts-code", best_of([PASSES_EXAMPLES_ONLY, GOOD]), toolserver, **options)
    assert "x < 3" in first_found.answer and "behaviour" not in first_found.details


@pytest.mark.docker
async def test_a_program_that_hangs_on_an_input_is_a_behaviour_not_a_failed_run(toolserver: ToolServer) -> None:
    model = best_of([HANGS, ALSO_GOOD, GOOD])
    options = {"budget": 3, "k": 3, "max_depth": 1, "greedy_first": False, "choose_by": "behaviour"}
    result, _ = await run("mcts-code", model, toolserver, **options, domain_options={"per_test_timeout_s": 1.0})
    behaviour = result.details["behaviour"]
    hang = next(g for g in behaviour["groups"] if g["outputs"][0] != "[8, 11]")
    assert hang["outputs"][0] == "raised _Timeout" and hang["outputs"][1:] == ["[0]", "[]"]
    assert "while" not in result.answer and [len(g["nodes"]) for g in behaviour["groups"]] == [2, 1]
