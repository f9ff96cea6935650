"""Fixtures shared by the whole test suite.

``embedded_model`` is ONE real :class:`~ponder.llm.embedded.EmbeddedModel` (the default GGUF) for the whole session:
the model loads once, on the first test that calls it. Every test using it is marked ``embedded`` automatically,
so ``pytest -m "not embedded"`` skips the real-model tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ponder.config import LLMSettings

if TYPE_CHECKING:
    from ponder.llm.embedded import EmbeddedModel


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "embedded_model" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("embedded"):
            item.add_marker(pytest.mark.embedded)


@pytest.fixture(scope="session")
def embedded_model() -> Iterator[EmbeddedModel]:
    """The default embedded model (settings' defaults: llguidance engine, 1 thread on <= 2 cores)."""
    pytest.importorskip("llama_cpp", reason="the embedded backend needs `pip install 'ponder[embedded]'`")
    from ponder.llm.embedded import EmbeddedModel

    model = EmbeddedModel.from_settings(LLMSettings())
    yield model
    asyncio.run(model.aclose())


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """ONE real Postgres server for the session (Debian's ``postgresql`` package), shared by the API and planner
    tests: each uses its own run ids."""
    from tests.agents.planner._postgres import postgres_bin, postgres_server

    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("Postgres is not installed (apt-get install postgresql)")
    with postgres_server(bindir) as url:
        yield url
