"""How every ``ponder`` sub-command shows an error to a person: the message, then the hint saying what to do."""

from __future__ import annotations

from rich.console import Console

from ponder.errors import PonderError


def print_error(console: Console, exc: BaseException) -> None:
    if isinstance(exc, PonderError):
        console.print(f"[bold red]error:[/] {exc.message}")
        if exc.hint:
            console.print(f"[yellow]hint:[/] {exc.hint}")
    else:
        console.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}")
