"""``ponder serve``: the API, the chat UI and (by default, in process) the ToolServer, on the configured model.

Parts that are not available here (no Docker engine, no search index) are left out with a warning instead of
stopping the server: strategies that need them fail their step with a typed error saying how to enable them.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

import uvicorn

from ponder.api._app import create_app
from ponder.api._auth import KeyRing, check_binding
from ponder.config import Settings
from ponder.errors import ConfigError, PonderError

log = logging.getLogger("ponder.serve")


def build_parts(settings: Settings, *, tools: bool = True, search: bool = True) -> dict[str, Any]:
    """The optional parts of a run's context that can be built from settings: toolserver, search and kb."""
    parts: dict[str, Any] = {}
    if tools:
        from ponder.toolserver import build_toolserver

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


def check_port(host: str, port: int) -> None:
    """Fail before loading anything when the address is taken, with the fix (uvicorn would only log errno 98)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is in use (another ponder, or another server)",
                    hint=f"stop it, or pick another port: ponder serve --port {port + 1} (or PONDER_API__PORT)",
                ) from exc
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(
                    f"{host} is not an address of this machine", hint="bind 127.0.0.1, 0.0.0.0 or one of its own"
                ) from exc
            raise


def banner(settings: Settings) -> list[str]:
    """What a person starting the server needs first: where the UI and docs are, and which model answers."""
    shown = "localhost" if settings.api.host in ("127.0.0.1", "::1") else settings.api.host
    url = f"http://{shown}:{settings.api.port}"
    llm = settings.llm
    model = llm.model or (str(llm.model_path) if llm.model_path else "the default embedded model")
    where = f" at {llm.base_url}" if llm.base_url else ""
    return [
        f"ponder is serving on {url}",
        f"  chat UI         {url}/",
        f"  API docs        {url}/docs  (ReDoc: {url}/redoc)",
        f"  OpenAI API      {url}/v1  (models: ponder-direct, ponder-<strategy>)",
        f"  model           {llm.backend.value}{where}: {model}",
        "  keys            " + ("required (Authorization: Bearer ...)" if settings.api.api_keys else "none (loopback)"),
    ]


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
    check_port(settings.api.host, settings.api.port)
    from ponder.telemetry import setup_tracing

    if setup_tracing():
        log.info("traces go to the OTLP endpoint in OTEL_EXPORTER_OTLP_ENDPOINT")
    executor = None
    if ray_address:
        from ponder.evals._ray import RayExecutor

        executor = RayExecutor(settings, address=None if ray_address == "local" else ray_address)
        executor.start()  # in the main thread, before the server's loop: see RayExecutor.start
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
    server = uvicorn.Server(config)
    for line in banner(settings):
        log.info("%s", line)
    try:
        server.run()
    finally:
        if executor is not None:
            executor.close()
