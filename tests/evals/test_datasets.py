"""Dataset loading: the shared benchmark files, JSONL with a field mapping, and bad input named by line and field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ponder.agents import TaskFamily
from ponder.errors import InputError, NotFoundError
from ponder.evals import BUILTIN, FieldMap, load_dataset


def test_builtin_sets_load_with_typed_gold_kept_out_of_the_task(benchmarks_dir: Path) -> None:
    csqa = load_dataset("commonsenseqa", data_dir=benchmarks_dir, limit=5)
    assert csqa.family is TaskFamily.choice and len(csqa.items) == 5
    item = csqa.items[0]
    assert [c.label for c in item.task.choices] == list("ABCDE")
    assert item.gold in "ABCDE"

    sqa = load_dataset("strategyqa", data_dir=benchmarks_dir, limit=20, offset=3)
    assert {type(i.gold) for i in sqa.items} == {bool}
    with gzip.open(benchmarks_dir / "strategyqa.jsonl.gz", "rt") as f:
        raw = [json.loads(line) for line in f][3:23]
    assert [i.id for i in sqa.items] == [r["id"] for r in raw]
    for item, row in zip(sqa.items, raw, strict=True):
        # the task carries the question only: not the answer, not the explanation that starts with "Yes."/"No."
        dumped = item.task.model_dump_json()
        assert row["explanation"] not in dumped and "answer" not in item.task.metadata
        assert item.gold is (row["answer"] == "yes")

    gsm = load_dataset("gsm8k", data_dir=benchmarks_dir, limit=3)
    assert all(isinstance(i.gold, float) for i in gsm.items) and gsm.items[0].gold == 3.0

    boolq = load_dataset("boolq", data_dir=benchmarks_dir, limit=1)
    assert boolq.items[0].task.context and len(boolq.items[0].task.context) > 100


def test_every_builtin_reasoning_set_parses_whole(benchmarks_dir: Path) -> None:
    for name, spec in BUILTIN.items():
        if spec.family is TaskFamily.code:
            continue
        data = load_dataset(name, data_dir=benchmarks_dir)
        assert len(data.items) > 100, name


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_any_jsonl_with_a_field_mapping(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mine.jsonl",
        [
            json.dumps({"qid": 1, "prompt": "2+2?", "label": "4"}),
            "",
            json.dumps({"qid": 2, "prompt": "3+3?", "label": "6"}),
        ],
    )
    data = load_dataset(
        str(path), family=TaskFamily.number, fields=FieldMap(id="qid", question="prompt", answer="label")
    )
    assert [(i.id, i.task.question, i.gold) for i in data.items] == [("1", "2+2?", 4.0), ("2", "3+3?", 6.0)]
    assert data.items[1].line == 3


def test_a_line_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", [json.dumps({"id": "a", "question": "q", "answer": "yes"}), "{oops"])
    with pytest.raises(InputError) as info:
        load_dataset(str(path), family=TaskFamily.yes_no)
    assert info.value.message.startswith(f"{path}: line 2 is not valid JSON")


def test_a_missing_field_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.jsonl",
        [json.dumps({"id": "a", "question": "q", "answer": "yes"}), json.dumps({"id": "b", "answer": "no"})],
    )
    with pytest.raises(InputError) as info:
        load_dataset(str(path), family=TaskFamily.yes_no)
    assert "line 2" in info.value.message and "'question'" in info.value.message
    assert "--field" in info.value.hint


def test_bad_gold_duplicate_ids_and_unknown_datasets(tmp_path: Path, benchmarks_dir: Path) -> None:
    bad_gold = write(tmp_path / "g.jsonl", [json.dumps({"id": "a", "question": "q", "answer": "perhaps"})])
    with pytest.raises(InputError, match="not a valid yes_no answer"):
        load_dataset(str(bad_gold), family=TaskFamily.yes_no)
    dup = write(tmp_path / "d.jsonl", [json.dumps({"id": "a", "question": "q", "answer": "1"})] * 2)
    with pytest.raises(InputError, match="repeats line 1"):
        load_dataset(str(dup), family=TaskFamily.number)
    with pytest.raises(InputError, match="answer family"):
        load_dataset(str(dup))
    with pytest.raises(NotFoundError) as info:
        load_dataset("nosuchset", data_dir=benchmarks_dir)
    assert "gsm8k" in info.value.hint
    with pytest.raises(NotFoundError, match="not in"):
        load_dataset("gsm8k", data_dir=tmp_path)
