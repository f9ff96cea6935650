"""``ponder index``, ``ponder kb`` and ``ponder search`` as real subprocesses on a temporary data folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def ponder(tmp_path: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **extra_env,
        "PONDER_SEARCH__INDEX_DIR": str(tmp_path / "index"),
        "PONDER_SEARCH__KB_PATH": str(tmp_path / "kb.sqlite"),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "ponder.cli", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_add_search_delete_and_kb(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "moon.md").write_text("# The Moon\n\nThe Moon orbits Earth every 27.3 days.\n", encoding="utf-8")
    (notes / "mars.txt").write_text("Mars has two moons, Phobos and Deimos.\n", encoding="utf-8")

    added = ponder(tmp_path, "index", "add", str(notes))
    assert added.returncode == 0, added.stderr
    assert "2 documents indexed" in added.stdout

    found = ponder(tmp_path, "search", "Phobos Deimos", "-k", "1")
    assert found.returncode == 0, found.stderr
    assert "notes/mars.txt" in found.stdout and "Phobos and Deimos" in found.stdout and "**" not in found.stdout
    in_colour = ponder(tmp_path, "search", "Phobos", "-k", "1", FORCE_COLOR="1", TERM="xterm")
    assert "\x1b[1;33mPhobos\x1b[0m" in in_colour.stdout  # the match in bold, as a terminal shows it

    gone = ponder(tmp_path, "index", "delete", "notes/mars.txt")
    assert gone.returncode == 0 and "deleted 1" in gone.stdout
    assert "no hits" in ponder(tmp_path, "search", "Phobos").stdout
    missing = ponder(tmp_path, "index", "delete", "notes/mars.txt")
    assert missing.returncode == 1 and "no document matches" in missing.stderr

    triples = tmp_path / "t.csv"
    triples.write_text("subject,relation,object\nPhobos,orbits,Mars\n", encoding="utf-8")
    assert "1 new" in ponder(tmp_path, "kb", "add", str(triples)).stdout
    check = ponder(tmp_path, "kb", "check", "phobos", "orbits", "mars")
    assert check.returncode == 0, check.stderr
    assert "supported" in check.stdout and "(Phobos, orbits, Mars)" in check.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("search", ""), "the search query is empty"),
        (("search", "anything"), "is empty"),  # nothing indexed yet: says how to build the index
        (("index", "add", "/no/such/folder"), "does not exist"),
        (("kb", "add", "/no/such/file.jsonl"), "cannot read"),
    ],
)
def test_bad_input_exits_1_with_a_hint(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = ponder(tmp_path, *args)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
