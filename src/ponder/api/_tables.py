"""The run store's tables and the one mapping between a row and a typed :class:`RunRecord`.

JSON lives only here: a record's typed parts (task, result, error, costs, pending question) are dumped into their
JSON columns on write and validated back on read.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from ponder.agents import StrategyResult, Task
from ponder.api._record import CreateEval, ErrorInfo, EvalResult, PendingQuestion, RunRecord, RunStatus
from ponder.llm import Costs

metadata = sa.MetaData()

runs_table = sa.Table(
    "ponder_runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False, default="run"),
    sa.Column("strategy", sa.String(64), nullable=False),
    sa.Column("task", sa.JSON, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("costs", sa.JSON, nullable=True),
    sa.Column("pending", sa.JSON, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # the lease: which API replica executes the run, until when (renewed while it runs); see ponder.api._lease
    sa.Column("replica", sa.String(128), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("conversation_id", sa.String(40), nullable=True, index=True),
)

# columns added after the first release: ``open()`` adds them to an existing table (a database of an older ponder)
_ADDED_COLUMNS = ("replica", "lease_until", "cancel_requested", "conversation_id")

conversations_table = sa.Table(
    "ponder_conversations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False, index=True),
)

UNFINISHED = ("queued", "running", "waiting")

events_table = sa.Table(
    "ponder_events",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)


def row_to_record(row: sa.Row[Any]) -> RunRecord:
    """The one place a stored row becomes a typed record (rows written by older versions read the same: the JSON
    shapes have only gained optional fields)."""
    m = row._mapping
    kind = m["kind"]
    result = m["result"]
    return RunRecord(
        id=m["id"],
        owner=m["owner"],
        kind=kind,
        strategy=m["strategy"],
        task=(CreateEval if kind == "eval" else Task).model_validate(m["task"]),
        options=m["options"],
        status=RunStatus(m["status"]),
        result=None if result is None else (EvalResult if kind == "eval" else StrategyResult).model_validate(result),
        error=None if m["error"] is None else ErrorInfo.model_validate(m["error"]),
        costs=None if m["costs"] is None else Costs.model_validate(m["costs"]),
        pending=None if m["pending"] is None else PendingQuestion.model_validate(m["pending"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        replica=m["replica"],
        lease_until=m["lease_until"],
        cancel_requested=bool(m["cancel_requested"]),
        conversation_id=m["conversation_id"],
    )


def column_value(value: Any) -> Any:
    """A record field as its column holds it: typed parts as JSON, a status as its name."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, RunStatus):
        return value.value
    return value


def add_missing_columns(conn: sa.Connection) -> None:
    """Bring a table created by an older ponder up to date (``create_all`` creates only missing tables)."""
    present = {c["name"] for c in sa.inspect(conn).get_columns(runs_table.name)}
    for name in _ADDED_COLUMNS:
        if name in present:
            continue
        column = runs_table.c[name]
        sqlite = conn.dialect.name == "sqlite"
        ddl = (
            f"ALTER TABLE {runs_table.name} ADD COLUMN {'' if sqlite else 'IF NOT EXISTS '}{name} "
            f"{column.type.compile(dialect=conn.dialect)}"
        )
        if name == "cancel_requested":
            ddl += " NOT NULL DEFAULT " + ("0" if sqlite else "false")
        conn.execute(sa.text(ddl))


def adopt_runs_without_conversation(conn: sa.Connection) -> None:
    """Give every run an older ponder stored (before conversations) a conversation of its own, titled by its
    question, so past runs stay listed in the chat UI. Runs of /v1 (``chat``) and eval jobs have none."""
    from ponder.api._record import Conversation  # the one place titles are made

    rows = conn.execute(
        sa.select(
            runs_table.c.id, runs_table.c.owner, runs_table.c.task, runs_table.c.created_at, runs_table.c.updated_at
        ).where(runs_table.c.conversation_id.is_(None), runs_table.c.kind == "run")
    ).all()
    for row in rows:
        question = str((row.task or {}).get("question", "")) if isinstance(row.task, dict) else ""
        made = Conversation.new(row.owner, question)
        conn.execute(
            conversations_table.insert().values(
                id=made.id, owner=row.owner, title=made.title, created_at=row.created_at, updated_at=row.updated_at
            )
        )
        conn.execute(runs_table.update().where(runs_table.c.id == row.id).values(conversation_id=made.id))
