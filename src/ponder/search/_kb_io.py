"""Read triples from JSONL or CSV files (``ponder kb add FILE``)."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

from ponder._jsonl import json_objects
from ponder.errors import InputError
from ponder.search._ingest import decode
from ponder.search._protocols import Triple

_SUBJECT = ("subject", "head", "s", "h")
_RELATION = ("relation", "predicate", "rel", "r", "p")
_OBJECT = ("object", "obj", "tail", "o", "t")
_TRUTH = ("truth", "label", "true")
_FALSE = {"0", "false", "no", "f", "n"}


def _field(record: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in record:
            return record[name]
    return None


def _truth(value: Any) -> bool:
    if value is None:
        return True
    return str(value).strip().lower() not in _FALSE


def _triple(record: dict[str, Any], where: str) -> tuple[Triple, bool]:
    values = [_field(record, names) for names in (_SUBJECT, _RELATION, _OBJECT)]
    if any(not isinstance(v, str) or not v.strip() for v in values):
        raise InputError(
            f"{where}: needs non-empty subject, relation and object",
            hint="write fields subject/relation/object (or head/relation/tail), or three CSV columns",
        )
    return Triple(subject=values[0], relation=values[1], object=values[2]), _truth(_field(record, _TRUTH))


def read_triples(path: Path) -> list[tuple[Triple, bool]]:
    """(triple, truth) pairs from a ``.jsonl`` or ``.csv``/``.tsv`` file (optionally ``.gz``).

    A JSONL record names its fields (``subject``/``relation``/``object`` or ``head``/``relation``/``tail``);
    a CSV has those as a header row, or three (four, with a truth label) unnamed columns. A ``label`` or
    ``truth`` of 0/false stores the triple as known to be false.
    """
    path = path.expanduser()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}", hint="check the path") from exc
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        raw = gzip.decompress(raw)
        suffixes = suffixes[:-1]
    text = decode(raw)
    kind = suffixes[-1] if suffixes else ""
    if kind in {".jsonl", ".ndjson", ".json"}:
        return _read_jsonl(text, path.name)
    if kind in {".csv", ".tsv"}:
        return _read_csv(text, path.name, "\t" if kind == ".tsv" else ",")
    raise InputError(f"{path.name}: unknown triple file type", hint="use a .jsonl, .csv or .tsv file")


def _read_jsonl(text: str, name: str) -> list[tuple[Triple, bool]]:
    return [_triple(record, f"{name}: line {n}") for n, record in json_objects(text.splitlines(), name)]


def _read_csv(text: str, name: str, delimiter: str) -> list[tuple[Triple, bool]]:
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in r)]
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    names = _SUBJECT + _RELATION + _OBJECT
    if any(h in names for h in header):
        records = [dict(zip(header, r, strict=False)) for r in rows[1:]]
        return [_triple(rec, f"{name}: row {i}") for i, rec in enumerate(records, start=2)]
    out = []
    for i, r in enumerate(rows, start=1):
        if len(r) < 3:
            raise InputError(f"{name}: row {i} has {len(r)} columns", hint="write subject, relation, object[, truth]")
        out.append(_triple({"subject": r[0], "relation": r[1], "object": r[2], "truth": r[3] if len(r) > 3 else None},
                           f"{name}: row {i}"))  # fmt: skip
    return out
