"""The default knowledge built from the whole of WordNet 3.0 (about 30 s of CPU): index, knowledge base, CLI."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

from ponder.config import SearchSettings
from ponder.search import build_default, build_index, build_kb


@pytest.mark.slow
async def test_default_build_answers_from_wordnet(tmp_path: Path, wordnet_dir: Path) -> None:
    settings = SearchSettings(index_dir=tmp_path / "index", kb_path=tmp_path / "kb.sqlite", wordnet_dir=wordnet_dir)
    index = build_index(settings)
    kb = build_kb(settings, passages=index)
    report = await build_default(wordnet_dir, index, kb)
    assert report.documents == 117_659 and report.triples > 370_000 and not report.skipped
    assert (await build_default(wordnet_dir, index, kb)).skipped  # a second run does nothing

    hits = await index.search("capital of France", k=3)
    assert hits[0].doc_id == "wordnet:n08932568" and "largest city of **France**" in hits[0].snippet
    assert (await kb.support("Paris", "capital of", "France")).supported
    assert (await kb.support("whales", "is a", "mammal")).supported
    assert not (await kb.support("whale", "is a", "fish")).supported
    await kb.close()
    await index.close()

    env = {**os.environ, "PONDER_SEARCH__INDEX_DIR": str(settings.index_dir), "COLUMNS": "200"}
    cli = await anyio.run_process(
        [sys.executable, "-m", "ponder.cli", "search", "capital of France", "-k", "1"], env=env, check=False
    )
    assert cli.returncode == 0, cli.stderr.decode()
    assert "Paris, City of Light" in cli.stdout.decode()
