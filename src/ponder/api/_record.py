"""The run record, typed: what the store keeps for a run or an eval job, as the API reads and writes it.

The store maps it to and from its JSON columns (``ponder.api._store``); nothing else in the API reads raw dicts.
A run (``kind`` "run") holds a :class:`~ponder.agents.Task` and, once it succeeded, the strategy's
:class:`~ponder.agents.StrategyResult`; an eval job (``kind`` "eval") holds its :class:`CreateEval` spec and an
:class:`EvalResult`. Errors are :class:`ErrorInfo`, built only from :meth:`PonderError.to_dict`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from ponder.agents import StrategyResult, Task
from ponder.errors import InternalError
from ponder.llm import Costs

Kind = Literal["run", "chat", "eval"]  # chat: a run started by /v1/chat/completions


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    waiting = "waiting"  # a human question is pending
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled)


class ErrorInfo(BaseModel):
    """Why a run failed or stopped: :meth:`ponder.errors.PonderError.to_dict`'s fields."""

    type: str = Field(description="the error class (ponder.errors), e.g. ModelUnavailable, Cancelled")
    message: str
    hint: str = Field(default="", description="what to do about it")
    retryable: bool = False

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        return cls.model_validate(InternalError.of(exc).to_dict())


class PendingQuestion(BaseModel):
    question: str
    interrupt_id: str = ""
    tool_call: dict[str, Any] | None = Field(default=None, description="a client tool the run waits on")


class CreateEval(BaseModel):
    dataset: str = Field(description="a built-in dataset name (GET /evals/datasets)", examples=["gsm8k"])
    strategy: str = Field(default="cot", description="a name from GET /strategies")
    options: dict[str, Any] = Field(default_factory=dict, description="the strategy's options")
    limit: int | None = Field(default=20, ge=1, le=100_000, description="first N items (after offset)")
    offset: int = Field(default=0, ge=0)
    concurrency: int = Field(default=2, ge=1, le=256, description="items in flight at once")


class EvalResult(BaseModel):
    """An eval job's outcome: the item count as soon as the dataset is loaded, the rest once it finished."""

    items: int = Field(description="items in the job")
    resumed: int | None = Field(default=None, description="items answered by an earlier attempt of this job")
    ran: int | None = None
    ok: int | None = Field(default=None, description="items that ran without an error")
    failed: int | None = None
    correct: int | None = None
    tokens: int | None = None
    accuracy: float | None = Field(default=None, description="correct / items")
    report: dict[str, str] = Field(default_factory=dict, description="report files by kind (GET /evals/{id}/files)")


@dataclass
class RunRecord:
    id: str
    owner: str
    kind: Kind
    strategy: str
    task: Task | CreateEval  # a Task for a run or chat, the spec for an eval job
    options: dict[str, Any]  # the strategy's options as given (validated), in JSON form
    status: RunStatus
    created_at: float
    updated_at: float
    result: StrategyResult | EvalResult | None = None
    error: ErrorInfo | None = None
    costs: Costs | None = None
    pending: PendingQuestion | None = None
    replica: str | None = None
    lease_until: float | None = None
    cancel_requested: bool = False
    conversation_id: str | None = None  # the chat a run is a turn of (runs made by the REST API and the UI)

    @classmethod
    def new(
        cls,
        kind: Kind,
        owner: str,
        strategy: str,
        task: Task | CreateEval,
        options: dict[str, Any],
        *,
        replica: str,
        lease_until: float,
        conversation_id: str | None = None,
    ) -> RunRecord:
        """A queued run or eval job, held by ``replica`` until ``lease_until``: the one way both are made."""
        now = time.time()
        return cls(
            id=("eval_" if kind == "eval" else "run_") + secrets.token_hex(10),
            owner=owner,
            kind=kind,
            strategy=strategy,
            task=task,
            options=options,
            status=RunStatus.queued,
            created_at=now,
            updated_at=now,
            replica=replica,
            lease_until=lease_until,
            conversation_id=conversation_id,
        )

    @property
    def strategy_result(self) -> StrategyResult | None:
        return self.result if isinstance(self.result, StrategyResult) else None

    @property
    def eval_result(self) -> EvalResult | None:
        return self.result if isinstance(self.result, EvalResult) else None

    @property
    def run_task(self) -> Task:
        """A run's task (an eval job has none: asking for it is a bug)."""
        if not isinstance(self.task, Task):
            raise TypeError(f"{self.id} is an eval job, not a run")
        return self.task

    @property
    def eval_spec(self) -> CreateEval:
        if not isinstance(self.task, CreateEval):
            raise TypeError(f"{self.id} is a run, not an eval job")
        return self.task


@dataclass
class Conversation:
    """A chat: the runs that are its turns share its id; its title is its first question until renamed."""

    id: str
    owner: str
    title: str
    created_at: float
    updated_at: float
    turns: int = 0
    last_status: RunStatus | None = None

    @classmethod
    def new(cls, owner: str, first_question: str) -> Conversation:
        now = time.time()
        title = " ".join(first_question.split())
        title = title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1].rstrip() + "…"
        return cls(id="conv_" + secrets.token_hex(10), owner=owner, title=title or "(empty)", created_at=now,
                   updated_at=now)  # fmt: skip


TITLE_CHARS = 80
