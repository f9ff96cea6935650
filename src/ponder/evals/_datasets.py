"""Benchmark datasets: the built-in reasoning sets (JSONL, optionally gzipped) and any JSONL file with a field
mapping. Each line becomes an :class:`EvalItem`: a :class:`Task` for the strategy and, kept apart, the gold
answer for the scorer. Bad lines fail loading with an error naming the file, the line and the field."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ponder._jsonl import json_objects
from ponder.agents import AnswerChoice, Task, TaskFamily
from ponder.errors import InputError, NotFoundError


class FieldMap(BaseModel):
    """Which JSON field holds what. ``gold_extra`` fields go to the scorer with the gold (e.g. ``entry_point``)."""

    id: str = "id"
    question: str = "question"
    answer: str = "answer"
    choices: str | None = None
    context: str | None = None
    gold_extra: list[str] = Field(default_factory=list)


class DatasetSpec(BaseModel):
    name: str
    family: TaskFamily
    file: str
    fields: FieldMap = Field(default_factory=FieldMap)
    note: str = ""


def _spec(name: str, family: TaskFamily, note: str, **fields: Any) -> DatasetSpec:
    return DatasetSpec(name=name, family=family, file=f"{name}.jsonl.gz", fields=FieldMap(**fields), note=note)


_CHOICES = {"choices": "choices"}
BUILTIN: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        _spec("commonsenseqa", TaskFamily.choice, "CommonsenseQA dev, 5 choices", **_CHOICES),
        _spec("strategyqa", TaskFamily.yes_no, "StrategyQA, implicit multi-step yes/no"),
        _spec("gsm8k", TaskFamily.number, "GSM8K grade-school math"),
        _spec("boolq", TaskFamily.yes_no, "BoolQ yes/no over a passage", context="passage"),
        _spec("arc_challenge", TaskFamily.choice, "ARC-Challenge science questions", **_CHOICES),
        _spec("openbookqa", TaskFamily.choice, "OpenBookQA science questions", **_CHOICES),
        _spec("aqua", TaskFamily.choice, "AQuA algebra word problems", **_CHOICES),
        _spec("addsub", TaskFamily.number, "AddSub arithmetic"),
        _spec("multiarith", TaskFamily.number, "MultiArith arithmetic"),
        _spec("svamp", TaskFamily.number, "SVAMP arithmetic"),
        _spec("coin_flip", TaskFamily.yes_no, "coin flip state tracking"),
        _spec("last_letters", TaskFamily.string, "last-letter concatenation"),
        _spec(
            "humaneval",
            TaskFamily.code,
            "HumanEval: code, scored by running its tests",
            id="task_id",
            question="prompt",
            answer="test",
            gold_extra=["entry_point"],
        ),
        _spec(
            "mbpp",
            TaskFamily.code,
            "MBPP: code, scored by running its asserts",
            id="task_id",
            question="prompt",
            answer="test",
            gold_extra=["entry_point"],
        ),
    ]
}


class EvalItem(BaseModel):
    """One benchmark item. Only ``task`` is ever handed to a strategy."""

    model_config = ConfigDict(frozen=True)

    id: str
    line: int
    task: Task
    gold: Any
    gold_extra: dict[str, Any] = Field(default_factory=dict)


class Dataset(BaseModel):
    name: str
    path: Path
    family: TaskFamily
    items: list[EvalItem]


def _open_lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        yield from f


def _choices(raw: Any, where: str) -> list[AnswerChoice]:
    if isinstance(raw, dict):
        return [AnswerChoice(label=str(k), text=str(v)) for k, v in raw.items()]
    if isinstance(raw, list):
        out = []
        for i, c in enumerate(raw):
            if isinstance(c, dict) and "label" in c and "text" in c:
                out.append(AnswerChoice(label=str(c["label"]), text=str(c["text"])))
            elif isinstance(c, str):
                out.append(AnswerChoice(label=chr(ord("A") + i), text=c))
            else:
                raise InputError(f"{where}: choice {i} must be a string or {{label, text}}, got {c!r:.80}")
        if out:
            return out
    raise InputError(f"{where}: choices must be a non-empty list or a {{label: text}} object")


def gold_value(family: TaskFamily, raw: Any, where: str) -> Any:
    """The gold answer in the family's type (bool for yes/no, float for numbers, label for choices)."""
    from ponder.evals._scoring import parse_number, parse_yes_no

    value: Any
    if family is TaskFamily.yes_no:
        value = parse_yes_no(raw)
    elif family is TaskFamily.number:
        value = parse_number(raw)
    elif family is TaskFamily.choice:
        value = str(raw).strip().upper() if raw is not None and str(raw).strip() else None
    else:
        value = raw if raw is not None and str(raw) != "" else None
    if value is None:
        raise InputError(f"{where}: gold answer {raw!r:.80} is not a valid {family.value} answer")
    return value


def parse_row(row: dict[str, Any], number: int, path: Path, spec: DatasetSpec) -> EvalItem:
    where = f"{path}:{number}"
    f = spec.fields
    required = [f.id, f.question, f.answer] + ([f.choices] if f.choices else []) + f.gold_extra
    for name in required:
        if name not in row or row[name] is None:
            raise InputError(
                f"{where}: line {number} has no field {name!r}",
                hint="fix the line, or map the field with --field (e.g. --field question=prompt)",
            )
    question = str(row[f.question]).strip()
    if not question:
        raise InputError(f"{where}: line {number} has an empty field {f.question!r}")
    task = Task(
        question=question,
        family=spec.family,
        choices=_choices(row[f.choices], f"{where} field {f.choices!r}") if f.choices else [],
        context=str(row[f.context]) if f.context and row.get(f.context) else None,
        metadata={"dataset": spec.name, "item_id": str(row[f.id])},
    )
    gold = gold_value(spec.family, row[f.answer], f"{where} field {f.answer!r}")
    return EvalItem(id=str(row[f.id]), line=number, task=task, gold=gold, gold_extra={k: row[k] for k in f.gold_extra})


def resolve(
    source: str, data_dir: Path | None, family: TaskFamily | None, fields: FieldMap | None
) -> tuple[DatasetSpec, Path]:
    """A built-in dataset name (looked up in ``data_dir``) or a path to a JSONL file (``family`` required)."""
    if source in BUILTIN:
        spec = BUILTIN[source]
        if fields is not None:
            spec = spec.model_copy(update={"fields": fields})
        if data_dir is None:
            raise InputError(f"dataset {source!r} needs a data directory", hint="pass --data-dir")
        path = data_dir / spec.file
        if not path.is_file():
            raise NotFoundError(
                f"dataset {source!r} is not in {data_dir} (looked for {spec.file})",
                hint="point --data-dir (or PONDER_DATA_DIR/benchmarks) at the folder holding the benchmark files",
            )
        return spec, path
    path = Path(source).expanduser()
    if path.is_file():
        if family is None:
            raise InputError(f"{path}: a JSONL dataset needs its answer family", hint="pass --family number|choice|...")
        name = path.name.split(".")[0]
        return DatasetSpec(name=name, family=family, file=path.name, fields=fields or FieldMap()), path
    raise NotFoundError(
        f"unknown dataset {source!r}: neither a built-in name nor a file",
        hint=f"use one of: {', '.join(sorted(BUILTIN))}, or the path of a .jsonl / .jsonl.gz file",
    )


def load_dataset(
    source: str,
    *,
    data_dir: Path | None = None,
    family: TaskFamily | None = None,
    fields: FieldMap | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> Dataset:
    """Items ``offset .. offset+limit`` in file order (blank lines skipped); every one is validated up front."""
    spec, path = resolve(source, data_dir, family, fields)
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    index = -1
    for number, row in json_objects(_open_lines(path), str(path)):
        index += 1
        if index < offset:
            continue
        if limit is not None and len(items) >= limit:
            break
        item = parse_row(row, number, path, spec)
        if item.id in seen:
            raise InputError(
                f"{path}:{number}: item id {item.id!r} repeats line {seen[item.id]}", hint="ids must be unique"
            )
        seen[item.id] = number
        items.append(item)
    return Dataset(name=spec.name, path=path, family=spec.family, items=items)
