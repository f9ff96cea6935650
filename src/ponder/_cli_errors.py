"""How every ``ponder`` sub-command shows an error to a person: the message, then the hint saying what to do; and
the one exit code for it (1: the command failed; 2 stays typer's own, for a command line it cannot parse)."""

from __future__ import annotations

import typer
from rich.console import Console

from ponder.errors import PonderError


def print_error(console: Console, exc: BaseException) -> None:
    if isinstance(exc, PonderError):
        console.print(f"[bold red]error:[/] {exc.message}")
        if exc.hint:
            console.print(f"[yellow]hint:[/] {exc.hint}")
    else:
        console.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}")


def fail(console: Console, exc: BaseException) -> typer.Exit:
    """Print ``exc`` for a person and return the exit to raise: ``raise fail(err_console, exc) from exc``."""
    print_error(console, exc)
    return typer.Exit(code=1)
