"""LangGraph checkpointers from a URL: SQLite by default, Postgres at scale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError


def default_checkpoint_url(checkpoint_url: str | None, data_dir: Path) -> str:
    """The configured URL, or a SQLite file under the data directory."""
    return checkpoint_url or f"sqlite:///{data_dir / 'checkpoints.sqlite'}"


def _sqlite_path(url: str) -> str:
    """SQLAlchemy's convention: ``sqlite:///rel/path``, ``sqlite:////abs/path``, ``sqlite://`` for memory."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    if url.startswith("sqlite://"):
        return url.removeprefix("sqlite://") or ":memory:"
    return url


@asynccontextmanager
async def open_checkpointer(url: str) -> AsyncIterator[Any]:
    """An async LangGraph checkpointer for ``url``: ``postgresql://…`` (tables are created on first use),
    ``sqlite:///path``, a plain file path, or ``:memory:``."""
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        try:
            async with AsyncPostgresSaver.from_conn_string(url) as saver:
                await saver.setup()
                yield saver
        except psycopg.OperationalError as exc:
            raise ConfigError(
                f"cannot reach the checkpoint database: {exc}".strip(),
                hint="check PONDER_CHECKPOINT_URL and that the Postgres server is running",
            ) from exc
        return
    if "://" in url and not url.startswith("sqlite:"):
        raise ConfigError(
            f"unsupported checkpoint URL {url.split('://')[0]}://…",
            hint="use sqlite:///path/to/file.sqlite or postgresql://user:pass@host/db",
        )
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = _sqlite_path(url)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(path) as saver:
        yield saver
