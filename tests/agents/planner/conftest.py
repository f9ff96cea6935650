from __future__ import annotations

from pathlib import Path

import pytest

from tests.agents.planner._fake_toolserver import FakeToolServer


@pytest.fixture
def toolserver(tmp_path: Path) -> FakeToolServer:
    return FakeToolServer(tmp_path / "workspace", tmp_path / "journal.jsonl")


@pytest.fixture
def checkpoint_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'checkpoints.sqlite'}"
