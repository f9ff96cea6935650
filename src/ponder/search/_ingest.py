"""Turn files into index documents: text, Markdown, HTML, and JSONL records (optionally gzipped)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ponder._jsonl import json_objects
from ponder.errors import InputError
from ponder.search._protocols import Document

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
_TEXT_KEYS = ("text", "content", "body", "fact", "gloss", "passage", "abstract")
_MD_TITLE = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
MAX_FILE_BYTES = 50_000_000


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def is_supported(path: Path) -> bool:
    return _suffix(path) in TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES


def decode(data: bytes) -> str:
    """Bytes to text: UTF-8 (with or without BOM), else a charset guess, never an exception."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:  # mostly-ASCII Western text (Latin-1 / Windows-1252): charset guessers misread short samples of it
        text = data.decode("cp1252")
        if sum(ord(c) > 127 for c in text) <= max(2, len(text) // 20):
            return text
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    return str(best) if best is not None else data.decode("latin-1")


def html_to_text(html: str) -> tuple[str, str]:
    """(title, main text) of an HTML page; broken markup gives whatever text can be recovered."""
    import trafilatura
    from lxml import html as lxml_html  # type: ignore[import-untyped]

    title, text = "", ""
    try:
        tree = lxml_html.fromstring(html)
        title = " ".join((tree.findtext(".//title") or "").split())
        text = trafilatura.extract(tree, include_comments=False, include_tables=True, favor_recall=True) or ""
        if not text.strip():
            for bad in tree.xpath("//script|//style|//noscript"):
                bad.drop_tree()
            text = "\n".join(line.strip() for line in tree.text_content().splitlines() if line.strip())
    except (ValueError, TypeError, lxml_html.etree.ParserError):  # empty or unparsable document
        text = re.sub(r"<[^>]*>", " ", html)
        text = "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    return title, text


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path} is {size} bytes; files over {MAX_FILE_BYTES} bytes are not indexed")
        raw = path.read_bytes()
        return decode(gzip.decompress(raw) if path.suffix.lower() == ".gz" else raw)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}", hint="check the path and its permissions") from exc


def file_documents(path: Path, doc_id: str) -> Iterator[Document]:
    """The documents of one file: one per text/HTML file, one per JSONL record."""
    kind = _suffix(path)
    if kind in JSONL_SUFFIXES:
        yield from jsonl_documents(_read(path), doc_id)
        return
    text = _read(path)
    title = ""
    if kind in HTML_SUFFIXES:
        title, text = html_to_text(text)
    elif kind in {".md", ".markdown"}:
        m = _MD_TITLE.search(text)
        title = m.group(1) if m else ""
    if text.strip():
        yield Document(doc_id=doc_id, title=title or path.stem, text=text)


def _record_document(record: dict[str, Any], fallback_id: str) -> Document | None:
    text = next((record[k] for k in _TEXT_KEYS if isinstance(record.get(k), str) and record[k].strip()), None)
    if text is None:
        return None
    rid = record.get("doc_id", record.get("id"))
    return Document(
        doc_id=str(rid) if rid not in (None, "") else fallback_id,
        title=str(record.get("title") or ""),
        url=record.get("url") if isinstance(record.get("url"), str) else None,
        text=text,
    )


def jsonl_documents(text: str, id_prefix: str) -> Iterator[Document]:
    """One document per JSON line holding a ``text`` (or content/body/fact/gloss) field; ids from ``id``."""
    for n, record in json_objects(text.splitlines(), id_prefix):
        doc = _record_document(record, f"{id_prefix}#{n}")
        if doc is None:
            raise InputError(
                f"{id_prefix}: line {n} has no text field",
                hint=f"give each record one of the fields {', '.join(_TEXT_KEYS)}",
            )
        yield doc


def path_documents(path: Path) -> Iterator[Document]:
    """Documents of a file or of every supported file under a folder; ids are ``<folder name>/<relative path>``."""
    path = path.expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist", hint="give an existing file or folder")
    if path.is_file():
        if not is_supported(path):
            raise InputError(
                f"{path} is not a supported file type",
                hint="index .txt, .md, .html or .jsonl files (optionally .gz)",
            )
        yield from file_documents(path, path.name)
        return
    for file in sorted(p for p in path.rglob("*") if p.is_file() and is_supported(p)):
        yield from file_documents(file, f"{path.name}/{file.relative_to(path).as_posix()}")
