"""``ponder serve``: the API, the chat UI and (by default, in process) the ToolServer, on the configured model.

Parts that are not available here (no Docker engine, no search index) are left out with a warning instead of
stopping the server: strategies that need them fail their step with a typed error saying how to enable them.
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from ponder.api._app import create_app
from ponder.api._auth import KeyRing, check_binding
from ponder.config import Settings
from ponder.errors import PonderError

log = logging.getLogger("ponder.serve")


def build_parts(settings: Settings, *, tools: bool = True, search: bool = True) -> dict[str, Any]:
    """The optional parts of a run's context that can be built from settings: toolserver, search and kb."""
    parts: dict[str, Any] = {}
    if tools:
        from ponder.tools import build_toolserver

        try:
            parts["toolserver"] = build_toolserver(settings.toolserver)
        except PonderError as exc:
            log.warning("tools are unavailable: %s", exc)
    if search:
        try:
            from ponder.search._factory import build_kb, build_search

            parts["search"] = build_search(settings.search)
            parts["kb"] = build_kb(settings.search)
        except (PonderError, ImportError, OSError) as exc:
            log.warning("search is unavailable: %s", exc)
    return parts


def serve(
    settings: Settings,
    *,
    tools: bool = True,
    search: bool = True,
    ray_address: str | None = None,
    log_level: str = "info",
) -> None:
    """Build everything and serve until interrupted (blocking: this is the process's main loop). With
    ``ray_address`` ("auto", "ray://head:10001", or "local" for a fresh local instance) eval jobs run on Ray."""
    check_binding(settings.api.host, KeyRing(settings.api.api_keys))  # before loading a model
    executor = None
    if ray_address:
        from ponder.evals._ray import RayExecutor

        executor = RayExecutor(settings, address=None if ray_address == "local" else ray_address)
    app = create_app(settings, eval_executor=executor, **build_parts(settings, tools=tools, search=search))
    config = uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        log_level=log_level,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=30,
    )
    uvicorn.Server(config).run()
