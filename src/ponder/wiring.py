"""Wiring: settings (with command-line overrides) and a run's context (model, ToolServer, search, knowledge base)
built from them, the same way for the CLI, evals, the API and the MCP server. Terminal rendering lives with the CLI
(``ponder._terminal``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from ponder.agents import Context
from ponder.config import Backend, Settings, ToolServerSettings
from ponder.errors import PonderError
from ponder.llm import ChatModel, ChatRequest, user
from ponder.llm._factory import build_model
from ponder.tools import BUILTIN_TOOLS, ToolServer, ToolSession, ToolSpec
from ponder.toolserver._connect import build_toolserver

log = logging.getLogger("ponder")


def load_settings(backend: Backend | None = None, base_url: str | None = None, model: str | None = None) -> Settings:
    """Settings from the environment, with command-line overrides applied."""
    settings = Settings()
    if base_url and backend is None:
        backend = Backend.openai
    if backend is not None:
        settings.llm.backend = backend
    if base_url:
        settings.llm.base_url = base_url
    if model:
        if settings.llm.backend is Backend.embedded:
            settings.llm.model_path = Path(model)
        else:
            settings.llm.model = model
    return settings


def build_context(settings: Settings, model: ChatModel | None = None) -> Context:
    """A context with the model only; :func:`open_context` adds tools, search and the knowledge base."""
    return Context(
        model=model or build_model(settings.llm),
        checkpoint_url=settings.checkpoint_url or f"sqlite:///{settings.data_dir / 'checkpoints.sqlite'}",
        mcp_servers=list(settings.mcp_servers),
    )


class LazyToolServer:
    """Starts the configured ToolServer on the first session, so runs that use no tools pay nothing for it."""

    def __init__(self, settings: ToolServerSettings) -> None:
        self._settings = settings
        self._stack = contextlib.AsyncExitStack()
        self._server: ToolServer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> ToolServer:
        async with self._lock:
            if self._server is not None:
                return self._server
            server: ToolServer = await self._stack.enter_async_context(build_toolserver(self._settings))
            self._server = server
            return server

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[ToolSession]:
        server = await self._ensure()
        async with server.session() as session:
            yield session

    @property
    def tools(self) -> Sequence[ToolSpec]:
        return BUILTIN_TOOLS

    def specs(self) -> list[dict[str, Any]]:

        return [t.function_spec() for t in BUILTIN_TOOLS]

    async def __aenter__(self) -> LazyToolServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
        self._server = None


def build_search_parts(settings: Settings) -> tuple[Any, Any]:
    """The search engine and knowledge base, or (None, None) with a warning when they are not built yet."""
    try:
        from ponder.search import build_kb, build_search

        return build_search(settings.search), build_kb(settings.search)
    except (PonderError, ImportError, OSError) as exc:
        log.warning("search and knowledge base unavailable (%s); build them with `ponder index build-default`", exc)
        return None, None


@contextlib.asynccontextmanager
async def open_context(
    settings: Settings, model: ChatModel | None = None, *, tools: bool = True, search: bool = True
) -> AsyncIterator[Context]:
    """A full run context: the model, a lazily started ToolServer, search and the knowledge base."""
    ctx = build_context(settings, model)
    async with contextlib.AsyncExitStack() as stack:
        if tools:
            ctx.toolserver = await stack.enter_async_context(LazyToolServer(settings.toolserver))
        if search:
            ctx.search, ctx.kb = build_search_parts(settings)
        yield ctx


async def describe_model(settings: Settings, *, check: bool = True) -> dict[str, Any]:
    info: dict[str, Any] = {"backend": settings.llm.backend.value}
    if settings.llm.base_url:
        info["base_url"] = settings.llm.base_url
    model = build_model(settings.llm)
    info["model"] = model.name
    info["constraints"] = ", ".join(sorted(model.capabilities.constraints))
    if check:
        start = time.perf_counter()
        try:
            response = await model.complete(ChatRequest(messages=[user("Say OK.")], max_tokens=4))
            info["answers"] = True
            info["reply"] = response.text.strip()
            info["latency_s"] = round(time.perf_counter() - start, 2)
        except Exception as exc:  # noqa: BLE001 - any failure means "does not answer"; shown to the user
            info["answers"] = False
            info["error"] = str(exc)
    return info
