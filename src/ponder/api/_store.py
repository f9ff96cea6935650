"""Where runs and their events live: SQLAlchemy Core over SQLite (default) or Postgres.

One :class:`RunStore` for both databases: the SQL is the same and only the URL (driver) differs. Events carry a
per-run sequence number that starts at 1 and only grows, so an SSE client that reconnects with ``Last-Event-ID``
gets exactly what it missed, also after a server restart.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ponder.api._record import Conversation, RunRecord, RunStatus
from ponder.api._tables import (
    UNFINISHED,
    add_missing_columns,
    adopt_runs_without_conversation,
    column_value,
    conversations_table,
    events_table,
    metadata,
    row_to_record,
    runs_table,
)
from ponder.errors import ConfigError


@dataclass(frozen=True)
class StoredEvent:
    run_id: str
    seq: int
    type: str
    data: str  # the event as JSON, exactly as streamed


def async_url(url: str) -> str:
    """Map a plain database URL onto the async driver SQLAlchemy needs."""
    if url.startswith("sqlite:///") or url == "sqlite://":
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+psycopg://", "postgresql+asyncpg://")):
        return url
    raise ConfigError(
        f"unsupported database URL {url.split('://')[0]}://...",
        hint="set PONDER_API__DATABASE_URL to sqlite:///path/to/ponder.sqlite or postgresql://user:pw@host/db",
    )


class RunStore:
    """Runs and events in one database. ``await store.open()`` creates the tables if needed."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 10, pool_timeout_s: float = 10.0) -> None:
        self.url = async_url(url)
        self._pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout_s}
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise ConfigError("the run store is not open", hint="call `await store.open()` first")
        return self._engine

    async def open(self) -> None:
        if self.url.startswith("sqlite"):
            path = self.url.split(":///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            pool = self._pool if path and path != ":memory:" else {}  # an in-memory database has one connection
            engine = create_async_engine(self.url, connect_args={"timeout": 30}, **pool)

            @sa.event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

        else:
            engine = create_async_engine(self.url, pool_pre_ping=True, **self._pool)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
                await conn.run_sync(add_missing_columns)
                await conn.run_sync(adopt_runs_without_conversation)
        except Exception as exc:
            await engine.dispose()
            raise ConfigError(f"cannot open the run database: {exc}", hint="check PONDER_API__DATABASE_URL") from exc
        self._engine = engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def create_run(self, record: RunRecord) -> None:
        await self.write_batch([], [], runs=[record])

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(runs_table.select().where(runs_table.c.id == run_id))).first()
        return row_to_record(row) if row is not None else None

    async def list_runs(
        self,
        owner: str | None,
        *,
        limit: int = 50,
        status: RunStatus | None = None,
        kinds: Sequence[str] | None = None,
        conversation_id: str | None = None,
        oldest_first: bool = False,
    ) -> list[RunRecord]:
        order = runs_table.c.created_at.asc() if oldest_first else runs_table.c.created_at.desc()
        query = runs_table.select().order_by(order).limit(limit)
        if conversation_id is not None:
            query = query.where(runs_table.c.conversation_id == conversation_id)
        if owner is not None:
            query = query.where(runs_table.c.owner == owner)
        if status is not None:
            query = query.where(runs_table.c.status == status.value)
        if kinds is not None:
            query = query.where(runs_table.c.kind.in_(list(kinds)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [row_to_record(r) for r in rows]

    # ---- conversations ----

    async def create_conversation(self, conversation: Conversation) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                conversations_table.insert().values(
                    id=conversation.id,
                    owner=conversation.owner,
                    title=conversation.title,
                    created_at=conversation.created_at,
                    updated_at=conversation.updated_at,
                )
            )

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        found = await self._conversations(conversations_table.c.id == conversation_id, limit=1)
        return found[0] if found else None

    async def list_conversations(self, owner: str, *, search: str = "", limit: int = 50) -> list[Conversation]:
        """``owner``'s conversations, most recently active first; ``search`` matches the title or any question
        asked in it (case-insensitive)."""
        where = conversations_table.c.owner == owner
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            asked = sa.exists().where(
                runs_table.c.conversation_id == conversations_table.c.id,
                sa.cast(runs_table.c.task, sa.Text).ilike(pattern, escape="\\"),
            )
            where = sa.and_(where, sa.or_(conversations_table.c.title.ilike(pattern, escape="\\"), asked))
        return await self._conversations(where, limit=limit)

    async def _conversations(self, where: Any, *, limit: int) -> list[Conversation]:
        turns = (
            sa.select(sa.func.count()).where(runs_table.c.conversation_id == conversations_table.c.id).scalar_subquery()
        )
        last = (
            sa.select(runs_table.c.status)
            .where(runs_table.c.conversation_id == conversations_table.c.id)
            .order_by(runs_table.c.created_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = (
            sa.select(conversations_table, turns.label("turns"), last.label("last_status"))
            .where(where)
            .order_by(conversations_table.c.updated_at.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Conversation(
                id=r.id,
                owner=r.owner,
                title=r.title,
                created_at=r.created_at,
                updated_at=r.updated_at,
                turns=int(r.turns or 0),
                last_status=RunStatus(r.last_status) if r.last_status else None,
            )
            for r in rows
        ]

    async def update_conversation(self, conversation_id: str, **values: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                conversations_table.update().where(conversations_table.c.id == conversation_id).values(**values)
            )

    async def delete_conversation(self, conversation_id: str) -> None:
        """The conversation, its runs and their events, in one transaction."""
        runs = sa.select(runs_table.c.id).where(runs_table.c.conversation_id == conversation_id)
        async with self.engine.begin() as conn:
            await conn.execute(events_table.delete().where(events_table.c.run_id.in_(runs)))
            await conn.execute(runs_table.delete().where(runs_table.c.conversation_id == conversation_id))
            await conn.execute(conversations_table.delete().where(conversations_table.c.id == conversation_id))

    async def typical_seconds(self, recent: int = 1000) -> dict[str, tuple[float, int]]:
        """Per strategy, the median seconds from start to answer of its recent succeeded runs, and how many."""
        query = (
            sa.select(runs_table.c.strategy, runs_table.c.created_at, runs_table.c.updated_at)
            .where(runs_table.c.status == RunStatus.succeeded.value, runs_table.c.kind.in_(["run", "chat"]))
            .order_by(runs_table.c.created_at.desc())
            .limit(recent)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        spans: dict[str, list[float]] = {}
        for r in rows:
            spans.setdefault(r.strategy, []).append(max(r.updated_at - r.created_at, 0.0))
        return {name: (round(statistics.median(s), 1), len(s)) for name, s in spans.items()}

    async def count_active(self, owner: str) -> int:
        """Runs of ``owner`` queued or running (a run waiting for a human holds nothing)."""
        active = [RunStatus.queued.value, RunStatus.running.value]
        query = sa.select(sa.func.count()).select_from(runs_table)
        query = query.where(runs_table.c.owner == owner, runs_table.c.status.in_(active))
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def unfinished_runs(self, *, unleased_at: float | None = None) -> list[RunRecord]:
        """Runs not finished; with ``unleased_at``, only those whose lease had expired (or never existed) then."""
        query = runs_table.select().where(runs_table.c.status.in_(UNFINISHED))
        if unleased_at is not None:
            query = query.where(sa.or_(runs_table.c.lease_until.is_(None), runs_table.c.lease_until < unleased_at))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(runs_table.c.created_at))).all()
        return [row_to_record(r) for r in rows]

    async def claim(
        self, run_id: str, replica: str, now: float, lease_s: float, *, statuses: Sequence[str], mine_ok: bool = False
    ) -> bool:
        """Take the run's lease if nobody holds it (or ``mine_ok`` and ``replica`` does). One conditional UPDATE,
        so of several replicas claiming the same run at once exactly one gets it (SQLite serialises writers;
        Postgres re-checks the WHERE clause on the row the other transaction committed)."""
        free = sa.or_(runs_table.c.lease_until.is_(None), runs_table.c.lease_until < now)
        if mine_ok:
            free = sa.or_(free, runs_table.c.replica == replica)
        query = (
            runs_table.update()
            .where(runs_table.c.id == run_id, runs_table.c.status.in_(list(statuses)), free)
            .values(replica=replica, lease_until=now + lease_s, updated_at=now)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(query)
        return bool(result.rowcount == 1)

    async def renew(self, run_ids: Sequence[str], replica: str, until: float) -> tuple[set[str], set[str], set[str]]:
        """Extend this replica's leases on ``run_ids``. Returns the ids it still holds, those of them still leased
        (queued or running: not finished, not waiting for a human), and those whose cancellation was asked for."""
        if not run_ids:
            return set(), set(), set()
        mine = sa.and_(runs_table.c.id.in_(list(run_ids)), runs_table.c.replica == replica)
        leased = sa.and_(runs_table.c.status.in_(UNFINISHED), runs_table.c.lease_until.is_not(None))
        async with self.engine.begin() as conn:
            await conn.execute(runs_table.update().where(mine, leased).values(lease_until=until))
            query = sa.select(runs_table.c.id, runs_table.c.cancel_requested, leased.label("leased")).where(mine)
            rows = (await conn.execute(query)).all()
        return {r.id for r in rows}, {r.id for r in rows if r.leased}, {r.id for r in rows if r.cancel_requested}

    async def release(self, run_ids: Sequence[str], replica: str) -> None:
        """Give up this replica's leases (a clean shutdown), so another replica recovers the runs at once."""
        if run_ids:
            async with self.engine.begin() as conn:
                await conn.execute(
                    runs_table.update()
                    .where(runs_table.c.id.in_(list(run_ids)), runs_table.c.replica == replica)
                    .values(lease_until=None)
                )

    async def request_cancel(self, run_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(runs_table.update().where(runs_table.c.id == run_id).values(cancel_requested=True))

    async def last_seq(self, run_id: str) -> int:
        query = sa.select(sa.func.max(events_table.c.seq)).where(events_table.c.run_id == run_id)
        async with self.engine.connect() as conn:
            value = (await conn.execute(query)).scalar()
        return int(value or 0)

    async def events_after(self, run_id: str, after: int, limit: int = 10_000) -> list[StoredEvent]:
        query = (
            events_table.select()
            .where(events_table.c.run_id == run_id, events_table.c.seq > after)
            .order_by(events_table.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [StoredEvent(r.run_id, r.seq, r.type, r.data) for r in rows]

    async def write_batch(
        self,
        events: Sequence[StoredEvent],
        updates: Sequence[tuple[str, dict[str, Any]]],
        runs: Sequence[RunRecord] = (),
    ) -> None:
        """Insert runs and events and apply run updates in one transaction (events before updates, so a run's
        final status is never visible before its final event)."""
        now = time.time()
        async with self.engine.begin() as conn:
            if runs:
                await conn.execute(
                    runs_table.insert(),
                    [
                        {
                            "id": r.id,
                            "owner": r.owner,
                            "kind": r.kind,
                            "strategy": r.strategy,
                            "task": column_value(r.task),
                            "options": r.options,
                            "status": r.status.value,
                            "created_at": r.created_at,
                            "updated_at": r.updated_at,
                            "replica": r.replica,
                            "lease_until": r.lease_until,
                            "cancel_requested": r.cancel_requested,
                            "conversation_id": r.conversation_id,
                        }
                        for r in runs
                    ],
                )
            if events:
                await conn.execute(
                    events_table.insert(),
                    [{"run_id": e.run_id, "seq": e.seq, "type": e.type, "data": e.data} for e in events],
                )
            for run_id, values in updates:
                values = {k: column_value(v) for k, v in values.items()}
                await conn.execute(
                    runs_table.update().where(runs_table.c.id == run_id).values(**values, updated_at=now)
                )


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), default=str)
