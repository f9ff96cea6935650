from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents.planner._fake_toolserver import FakeToolServer
from tests.agents.planner._postgres import postgres_bin, postgres_server


@pytest.fixture
def toolserver(tmp_path: Path) -> FakeToolServer:
    return FakeToolServer(tmp_path / "workspace", tmp_path / "journal.jsonl")


@pytest.fixture
def checkpoint_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'checkpoints.sqlite'}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real Postgres server for the session (Debian's ``postgresql`` package must be installed)."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("Postgres is not installed (apt-get install postgresql)")
    with postgres_server(bindir) as url:
        yield url
