"""A run on disk: ``run.json`` (what was run) and ``results.jsonl`` (one record per finished item, keyed by id).

Each record is appended and fsynced as soon as its item finishes, so a killed run loses at most the items in
flight; on restart the finished ids are skipped. A line cut off by the kill is dropped when the run reopens.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from ponder.errors import InputError, describe_validation

RESULTS = "results.jsonl"
META = "run.json"


class RunMeta(BaseModel):
    dataset: str
    dataset_path: str
    family: str
    strategy: str
    options: dict[str, Any] = Field(default_factory=dict)
    label: str = ""
    model: str = ""
    limit: int | None = None
    offset: int = 0
    created: float = Field(default_factory=time.time)

    @property
    def title(self) -> str:
        return self.label or self.strategy


class ItemRecord(BaseModel):
    id: str
    status: Literal["ok", "failed"]
    answer: Any = None
    text: str = ""
    gold: Any = None
    correct: bool = False
    reason: str = ""
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    error: dict[str, Any] | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    events: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class RunStore:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.results = directory / RESULTS

    @classmethod
    def open(cls, directory: Path, meta: RunMeta) -> RunStore:
        """Create the run, or reopen it when ``meta`` describes the same run (same dataset, strategy, options)."""
        store = cls(directory)
        meta_path = directory / META
        if meta_path.is_file():
            old = store.meta()
            same = (old.dataset, old.strategy, old.options) == (meta.dataset, meta.strategy, meta.options)
            if not same:
                raise InputError(
                    f"{directory} holds another run ({old.dataset} / {old.strategy} {old.options})",
                    hint="pass another --run-dir, or the same dataset, strategy and options to resume it",
                )
        else:
            directory.mkdir(parents=True, exist_ok=True)
            meta_path.write_text(meta.model_dump_json(indent=2), encoding="utf-8")
        store._drop_torn_tail()
        return store

    def meta(self) -> RunMeta:
        path = self.dir / META
        if not path.is_file():
            raise InputError(f"{self.dir} is not a run folder (no {META})", hint="pass a folder `ponder eval run` made")
        try:
            return RunMeta.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise InputError(f"{path} is not a valid run description: {describe_validation(exc.errors())}") from exc

    def _drop_torn_tail(self) -> None:
        """Cut a last line that a kill left without its newline."""
        if not self.results.is_file():
            return
        data = self.results.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.results.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def records(self) -> dict[str, ItemRecord]:
        """Finished items by id (a later record of an id replaces an earlier one: a retried failure)."""
        out: dict[str, ItemRecord] = {}
        packed = self.results.with_name(RESULTS + ".gz")  # a finished run committed compressed (docs/results)
        if not self.results.is_file() and not packed.is_file():
            return out
        source = self.results if self.results.is_file() else packed
        text = source.read_text(encoding="utf-8") if source is self.results else gzip.decompress(
            source.read_bytes()).decode("utf-8")  # fmt: skip
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = ItemRecord.model_validate_json(line)
            except ValidationError as exc:
                problems = describe_validation(exc.errors())
                raise InputError(f"{source}:{number}: not a result record: {problems}") from exc
            out[record.id] = record
        return out

    def append(self, record: ItemRecord) -> None:
        line = json.dumps(record.model_dump(mode="json"), ensure_ascii=False, default=str)
        with self.results.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
