"""The real sandbox for strategy tests that run programs: the in-process ToolServer over the local Docker engine."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from ponder.config import ToolServerSettings
from ponder.tools import ToolServer


@pytest.fixture
async def toolserver() -> AsyncIterator[ToolServer]:
    from ponder.toolserver import build_toolserver

    # a unique instance label: this manager never reaps containers of other test runs
    settings = ToolServerSettings(instance=f"mcts-{uuid.uuid4().hex[:8]}", pool_size=1, call_timeout_s=60.0)
    async with build_toolserver(settings) as ts:
        yield ts
