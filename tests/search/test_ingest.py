"""Ingesting folders of text, Markdown, HTML and JSONL files, including broken and oddly encoded ones."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ponder.errors import InputError
from ponder.search import open_index, path_documents


def _corpus(root: Path) -> Path:
    folder = root / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "plain.txt").write_text("Basalt is a volcanic rock.\n", encoding="utf-8")
    (folder / "notes.md").write_text("# Granite notes\n\nGranite is an intrusive igneous rock.\n", encoding="utf-8")
    (folder / "sub" / "page.html").write_text(
        "<html><head><title>Marble page</title><script>var x = 'scriptword';</script></head>"
        "<body><article><p>Marble is a metamorphic rock formed from limestone.</p><p>It is used by sculptors.</p>"
        "</article></body></html>",
        encoding="utf-8",
    )
    (folder / "broken.html").write_text("<html><body><p>Slate splits <b>into sheets<p>unclosed <div>", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("Gneiss from the Rhône valley is banded rock.".encode("latin-1"))
    (folder / "records.jsonl").write_text(
        '{"id": "r1", "title": "Quartz", "text": "Quartz is hard."}\n\n{"id": "r2", "fact": "Talc is soft."}\n',
        encoding="utf-8",
    )
    with gzip.open(folder / "more.jsonl.gz", "wt") as fh:
        fh.write('{"id": "r3", "content": "Obsidian is volcanic glass."}\n')
    (folder / "image.png").write_bytes(b"\x89PNG not indexed")
    return folder


def test_folder_documents(tmp_path: Path) -> None:
    docs = {d.doc_id: d for d in path_documents(_corpus(tmp_path))}
    assert set(docs) == {
        "corpus/plain.txt", "corpus/notes.md", "corpus/sub/page.html", "corpus/broken.html", "corpus/latin1.txt",
        "r1", "r2", "r3",
    }  # fmt: skip
    assert docs["corpus/notes.md"].title == "Granite notes"
    page = docs["corpus/sub/page.html"]
    assert page.title == "Marble page"
    assert "metamorphic" in page.text and "scriptword" not in page.text
    assert "Slate splits" in docs["corpus/broken.html"].text
    assert "Rhône" in docs["corpus/latin1.txt"].text
    assert docs["r2"].text == "Talc is soft."


async def test_ingested_folder_is_searchable(tmp_path: Path) -> None:
    ix = open_index(tmp_path / "ix", "tantivy")
    await ix.add(path_documents(_corpus(tmp_path)))
    assert (await ix.search("sculptors limestone", k=1))[0].doc_id == "corpus/sub/page.html"
    assert (await ix.search("volcanic glass", k=1))[0].doc_id == "r3"
    await ix.close()


def test_unsupported_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="not a supported file type"):
        list(path_documents(tmp_path / "x.png"))
    with pytest.raises(InputError, match="does not exist"):
        list(path_documents(tmp_path / "nope"))


def test_bad_jsonl_says_which_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "text": "ok"}\n{not json}\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        list(path_documents(tmp_path / "bad.jsonl"))
    (tmp_path / "notext.jsonl").write_text('{"id": "a", "name": "no text"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 1 has no text field"):
        list(path_documents(tmp_path / "notext.jsonl"))
