"""The execution sweep's report (benchmarks/execution.py, issue 17): written from the run records alone, over the
items every method answered, with exact McNemar against the baseline; the committed summary.json is what the
committed records regenerate."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("execution_bench", ROOT / "benchmarks" / "execution.py")
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
sys.modules["execution_bench"] = bench
spec.loader.exec_module(bench)


def record(item: str, method: str, correct: bool, **extra: Any) -> dict[str, Any]:
    dataset = item.split("/")[0] if "/" in item else "gsm8k"
    options = {"sc_5": {"k": 5}, "pot_sc_5": {"k": 5}}.get(method, {})
    return {
        "id": item,
        "dataset": dataset,
        "method": method,
        "strategy": method,
        "options": options,
        "correct": correct,
        "answer": None,
        "samples": 0,
        "requests": 2,
        "tokens": 100,
        "completion_tokens": 80,
        "seconds": 10.0,
        "details": extra.pop("details", {}),
        "error": extra.pop("error", None),
        "load_1m": extra.pop("load", 1.5),
    }


def write(folder: Path, domain: str, records: list[dict[str, Any]]) -> None:
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    for r in records:  # one gzip member per record, as the sweep appends them
        with gzip.open(folder / "runs" / f"{domain}.jsonl.gz", "at", encoding="utf-8") as f:
            f.write(json.dumps(r) + "\n")


def test_report_counts_only_items_every_method_answered_and_tests_against_the_baseline(tmp_path: Path) -> None:
    methods = ["cot", "sc_5", "pot", "pot_sc_5", "mcts_math_8", "mcts_pot_8"]
    records = []
    # 12 items: pot_sc_5 right on all, cot right on the first 2 only -> 10 wins, 0 losses
    for i in range(12):
        item = f"gsm8k-{i:02d}"
        for m in methods:
            right = m == "pot_sc_5" or (m == "cot" and i < 2) or (m in ("pot", "sc_5") and i % 2 == 0)
            details = {"samples": 8, "stopped_by": "budget"} if m.startswith("mcts") else {}
            if m == "mcts_math_8":  # two failed steps, the same failure on other expressions
                ends = [{"terminal": True, "answer": None, "reason": f"the calculation '{x}' failed: E"} for x in "ab"]
                details["tree"] = {"nodes": [*ends, {"terminal": True, "answer": 3, "depth": 1, "reason": ""}]}
            if m == "sc_5":  # split votes on the even items (which it gets right), unanimous on the odd ones
                details = {"votes": {"12": 3, "7": 2} if i % 2 == 0 else {"7": 5}}
            if m == "pot":  # one program: nothing was voted on
                details = {"votes": {"12": 1}}
            records.append(record(item, m, right, details=details))
    # a 13th item that only some methods reached: it must not count
    records += [record("gsm8k-99", "cot", True), record("gsm8k-99", "pot", True)]
    records[-1]["load_1m"] = 3.25
    write(tmp_path, "math", records)

    summary = bench.report(tmp_path)

    gsm = summary["gsm8k"]
    assert gsm["n"] == 12
    assert gsm["cot"] == pytest.approx(2 / 12, abs=1e-4)
    assert gsm["pot_sc_5"] == 1.0
    assert gsm["pot"] == 0.5
    assert gsm["p_pot_sc_5_vs_cot"] == pytest.approx(2 * 0.5**10, abs=1e-4)  # 10 discordant pairs, all one way
    assert "p_cot_vs_cot" not in gsm
    assert summary["load_average_1m"]["max"] == 3.25
    text = (tmp_path / "report.md").read_text()
    assert "## gsm8k: 12 items" in text
    assert "stopped by budget 12" in text
    assert "36 terminal nodes in 12 trees, 24 of them failed steps; answers reached at depth 1: 12" in text
    assert "failed steps: 'the calculation _ failed: E' 24" in text
    assert "**sc_5**: votes unanimous on 6 items (0 right), split on 6 (6 right)" in text
    assert "**pot**" not in text
    assert "pot_sc_5 ≥ cot + 15 points with p < 0.05: **met** (100.0% vs 16.7%, +83.3 points" in text
    assert (tmp_path / "gsm8k.png").stat().st_size > 1000
    # calls per item count samples (k for sc/pot-sc, the search's count for MCTS, 1 otherwise), not requests
    table = bench.summarise("math", [r for r in records if r["id"] != "gsm8k-99"])[1]
    calls = {row["method"]: row["calls_per_item"] for row in table}
    assert calls == {"cot": 1, "sc_5": 5, "pot": 1, "pot_sc_5": 5, "mcts_math_8": 8, "mcts_pot_8": 8}


def test_code_datasets_are_reported_apart_and_proof_compares_at_equal_budget(tmp_path: Path) -> None:
    code = [label for label, _, _ in bench.methods("code", 0)]  # only items every method answered count
    proof = ["greedy_8", "greedy_16", "mcts_8", "mcts_16"]
    records = [
        record(f"{ds}/T{i}", m, m.startswith("mcts") or i == 0, error="StrategyError: x" if m == "best_of_8" else None)
        for ds in ("humaneval_plus", "mbpp_plus")
        for i in range(3)
        for m in code
    ]
    write(tmp_path, "code", records)
    proofs = [{**record(f"coq-{i}", m, m == "mcts_16"), "dataset": "coq"} for i in range(4) for m in proof]
    write(tmp_path, "proof", proofs)

    votes = [
        {**record(f"gsm8k-1{i}", m, m != "cot"), "options": options, "dataset": "gsm8k_votes"}
        for i in range(3)
        for m, options in [("cot", {}), ("sc_10", {"k": 10}), ("pot_sc_10", {"k": 10}),
                           ("pot_sc_5_chains_5", {"k": 5, "chains": 5})]
    ]  # fmt: skip
    write(tmp_path, "votes", votes)

    summary = bench.report(tmp_path)

    assert summary["gsm8k_votes"]["n"] == 3 and summary["gsm8k_votes"]["pot_sc_5_chains_5"] == 1.0
    assert summary["gsm8k_votes"]["p_pot_sc_5_chains_5_vs_cot"] == 0.25  # 3 wins, 0 losses
    table = bench.summarise("votes", votes)[1]
    assert {row["method"]: row["calls_per_item"] for row in table}["pot_sc_5_chains_5"] == 10  # chains count
    assert set(summary) >= {"humaneval_plus", "mbpp_plus", "coq"}
    assert summary["humaneval_plus"]["n"] == 3
    assert summary["humaneval_plus"]["mcts_8"] == 1.0
    assert summary["humaneval_plus"]["greedy"] == pytest.approx(1 / 3, abs=1e-4)
    assert "p_mcts_8_vs_greedy" in summary["mbpp_plus"]
    assert "p_mcts_16_vs_greedy_16" in summary["coq"] and "p_mcts_8_vs_greedy_8" in summary["coq"]
    assert "p_mcts_16_vs_greedy_8" not in summary["coq"]
    text = (tmp_path / "report.md").read_text()
    assert "errors: StrategyError 3" in text
    # +66.7 points, but 2 discordant pairs cannot reach p < 0.05; MBPP+ and Coq have no target
    assert "mcts_8 ≥ greedy + 10 points with p < 0.05: **missed** (100.0% vs 33.3%, +66.7 points" in text
    assert "mcts_greedy_first_8 ≥ greedy + 10 points with p < 0.05: **missed**" in text
    assert text.count("**Target**") == 2


def test_the_committed_summary_is_what_the_committed_records_give(tmp_path: Path) -> None:
    results = ROOT / "docs" / "results" / "execution"
    if not (results / "summary.json").exists():
        pytest.skip("no execution results committed yet")
    (tmp_path / "runs").mkdir()
    for path in (results / "runs").glob("*.jsonl.gz"):
        (tmp_path / "runs" / path.name).write_bytes(path.read_bytes())
    assert bench.report(tmp_path) == json.loads((results / "summary.json").read_text())
