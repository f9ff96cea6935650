"""LangGraph checkpointers from a URL: SQLite by default, Postgres at scale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError


def _sqlite_path(url: str) -> str:
    """SQLAlchemy's convention: ``sqlite:///rel/path``, ``sqlite:////abs/path``, ``sqlite://`` for memory."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    if url.startswith("sqlite://"):
        return url.removeprefix("sqlite://") or ":memory:"
    return url


@asynccontextmanager
async def open_checkpointer(url: str, *, pool_size: int = 0) -> AsyncIterator[Any]:
    """An async LangGraph checkpointer for ``url``: ``postgresql://…`` (tables are created on first use),
    ``sqlite:///path``, a plain file path, or ``:memory:``. With ``pool_size`` a Postgres checkpointer keeps a pool
    of that many connections, for one checkpointer shared by every run of a process (the API's)."""
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        try:
            if pool_size:
                from psycopg.rows import dict_row
                from psycopg_pool import AsyncConnectionPool

                # the connection settings AsyncPostgresSaver.from_conn_string uses for its one connection
                kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
                pool = AsyncConnectionPool(url, min_size=1, max_size=pool_size, kwargs=kwargs, open=False)
                async with pool:
                    await pool.wait(timeout=10)  # an unreachable database fails start-up, not the first run
                    saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
                    await saver.setup()
                    yield saver
                return
            async with AsyncPostgresSaver.from_conn_string(url) as saver:
                await saver.setup()
                yield saver
        except (psycopg.OperationalError, TimeoutError) as exc:
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
    async with AsyncSqliteSaver.from_conn_string(path) as lite:
        yield lite
