"""``ponder toolserver ...``: build the node image, serve the manager. Cheap to import: heavy modules load lazily."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

toolserver_app = typer.Typer(help="The sandbox ToolServer: build its image, run its manager.", no_args_is_help=True)
console = Console(stderr=True)


def _fail(exc: Exception) -> typer.Exit:
    from ponder._cli_errors import fail

    return fail(console, exc)


@toolserver_app.command("build-image")
def build_image_cmd(
    force: Annotated[bool, typer.Option("--force", help="rebuild the image and its base even if present")] = False,
    suite: Annotated[str | None, typer.Option(help="Debian release; default: the host's")] = None,
    sources: Annotated[Path | None, typer.Option(help="apt sources file; default: the host's")] = None,
) -> None:
    """Build the sandbox image offline from Debian packages (python3, numpy, sympy, coq)."""
    from ponder.config import Settings
    from ponder.errors import PonderError
    from ponder.toolserver._image import build_image

    settings = Settings().toolserver
    try:
        report = build_image(
            settings.image,
            docker_host=settings.docker_host,
            force=force,
            suite=suite,
            sources=sources,
            say=lambda line: console.print(f"[dim]{line}[/]"),
        )
    except PonderError as exc:
        raise _fail(exc) from exc
    verb = "built" if report.built else "present"
    console.print(f"{report.image}: {verb}, {report.size_mb:.0f} MB, {report.seconds:.1f} s")


@toolserver_app.command("serve")
def serve_cmd(
    host: Annotated[str | None, typer.Option(help="listen address; default PONDER_TOOLSERVER__HOST")] = None,
    port: Annotated[int | None, typer.Option(help="listen port; default PONDER_TOOLSERVER__PORT")] = None,
) -> None:
    """Run the manager's HTTP API. Without PONDER_TOOLSERVER__TOKEN a random token is made and printed."""
    import uvicorn

    from ponder.config import Settings
    from ponder.errors import PonderError
    from ponder.toolserver._app import create_app
    from ponder.toolserver._docker import DockerEngine
    from ponder.toolserver._manager import Manager

    settings = Settings().toolserver
    preflight = DockerEngine(settings)  # fail here with a clear message, not inside uvicorn's start-up
    try:
        preflight.connect()
    except PonderError as exc:
        raise _fail(exc) from exc
    finally:
        preflight.close()
    token = settings.token.get_secret_value() if settings.token else None
    if token is None:
        token = secrets.token_urlsafe(24)
        console.print(f"no PONDER_TOOLSERVER__TOKEN set; this run's token is: [bold]{token}[/]")
    from ponder.telemetry import setup_tracing

    if setup_tracing():
        console.print("traces go to the OTLP endpoint in OTEL_EXPORTER_OTLP_ENDPOINT")
    app = create_app(Manager(settings), token)
    bind_host, bind_port = host or settings.host, port or settings.port
    console.print(f"ToolServer manager on http://{bind_host}:{bind_port} (image {settings.image})")
    try:
        uvicorn.run(app, host=bind_host, port=bind_port, log_level="warning")
    except Exception as exc:
        raise _fail(exc) from exc


@toolserver_app.command("check")
def check_cmd() -> None:
    """Open a session, run one python call, print the result: proves Docker, the image and the runner work."""
    import asyncio

    from ponder.config import Settings
    from ponder.errors import PonderError
    from ponder.toolserver._connect import build_toolserver

    async def run() -> str:
        async with build_toolserver(Settings().toolserver) as ts, ts.session() as session:
            result = await session.call("python", {"code": "import sys, numpy, sympy; sys.version.split()[0]"})
            return f"ok={result.ok} python={result.output.get('result')} in {result.seconds * 1000:.1f} ms"

    try:
        console.print(asyncio.run(run()))
    except PonderError as exc:
        raise _fail(exc) from exc
