"""Fixtures for the eval tests: the shared benchmark folder beside the repository (``<repo>/../shared``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    path = (Path(__file__).parents[2] / ".." / "shared" / "benchmarks").resolve()
    if not (path / "strategyqa.jsonl.gz").is_file():
        pytest.skip(f"the shared benchmark files are not at {path}")
    return path
