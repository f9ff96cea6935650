"""Request and response bodies of the REST API (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from ponder.agents import StrategyResult, Task
from ponder.api._record import TITLE_CHARS, Conversation, ErrorInfo, PendingQuestion, RunRecord, RunStatus
from ponder.llm import Costs


class CreateRun(BaseModel):
    strategy: str = Field(default="cot", description="a name from GET /strategies", examples=["cot"])
    input: Task = Field(description="the task: question, answer family, choices, context")
    options: dict[str, Any] = Field(default_factory=dict, description="the strategy's options (GET /strategies)")
    conversation_id: str | None = Field(
        default=None,
        pattern=r"^conv_[0-9a-f]{1,40}$",
        description="the conversation this run is a turn of (from an earlier run's conversation_id); "
        "left out, the run starts a new conversation titled by its question. The earlier turns the model should "
        "read still go in input.conversation",
    )


class RunView(BaseModel):
    id: str
    kind: str = "run"
    strategy: str
    status: RunStatus
    input: Task
    options: dict[str, Any]
    result: StrategyResult | None = Field(default=None, description="the strategy's result once succeeded")
    answer: Any = Field(default=None, description="the typed answer (a shortcut into result)")
    text: str | None = Field(default=None, description="the answer as text (a shortcut into result)")
    error: ErrorInfo | None = None
    costs: Costs | None = Field(default=None, description="LLM calls, tokens and seconds so far")
    pending: PendingQuestion | None = Field(default=None, description="the human question a waiting run asks")
    created_at: float
    updated_at: float
    conversation_id: str | None = Field(default=None, description="the conversation the run is a turn of")

    @classmethod
    def of(cls, record: RunRecord) -> RunView:
        result = record.strategy_result
        return cls(
            id=record.id,
            kind=record.kind,
            strategy=record.strategy,
            status=record.status,
            input=record.run_task,
            options=record.options,
            result=result,
            answer=result.answer if result is not None else None,
            text=result.text if result is not None else None,
            error=record.error,
            costs=record.costs,
            pending=record.pending,
            created_at=record.created_at,
            updated_at=record.updated_at,
            conversation_id=record.conversation_id,
        )


class RunList(BaseModel):
    runs: list[RunView]


class ConversationView(BaseModel):
    id: str
    title: str = Field(description="its first question, until renamed")
    turns: int = Field(description="runs in it")
    last_status: RunStatus | None = Field(default=None, description="the status of its latest turn")
    created_at: float
    updated_at: float = Field(description="when its latest turn started, or it was renamed")

    @classmethod
    def of(cls, c: Conversation) -> ConversationView:
        return cls(id=c.id, title=c.title, turns=c.turns, last_status=c.last_status, created_at=c.created_at,
                   updated_at=c.updated_at)  # fmt: skip


class ConversationList(BaseModel):
    conversations: list[ConversationView]


class ConversationDetail(ConversationView):
    runs: list[RunView] = Field(description="its turns, oldest first")


class RenameConversation(BaseModel):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_CHARS)] = Field(
        description="the new title"
    )


class HumanAnswer(BaseModel):
    answer: str = Field(min_length=1, description="the reply to the pending question")
    interrupt_id: str | None = Field(default=None, description="the interrupt answered (from needs_human)")


class StrategyInfo(BaseModel):
    name: str
    model: str = Field(description="its model id on the OpenAI-compatible endpoint")
    description: str
    resumable: bool = Field(description="whether it can stop for a human question and continue")
    requires_toolserver: bool = Field(description="whether it runs code in the sandbox (needs Docker)")
    accepts_client_tools: bool = Field(description="whether it takes tools the client runs (OpenAI `tools`)")
    asks_humans: bool = Field(description="whether it may stop on a question for a person")
    options_schema: dict[str, Any]
    title: str = Field(default="", description="what it does, in plain words")
    good_for: str = Field(default="", description="what to use it for, in plain words")
    example: str = Field(default="", description="a question it suits")
    typical_seconds: float | None = Field(
        default=None, description="median seconds of its succeeded runs on this server (None: none yet)"
    )
    finished_runs: int = Field(default=0, description="succeeded runs the typical time is taken from")


class ToolInfo(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]


class Health(BaseModel):
    status: str
    model: str
    database: str
    runs_active: int
    context_tokens: int | None = Field(default=None, description="the model's context (embedded backend), in tokens")
    max_question_chars: int | None = Field(
        default=None, description="the longest question (with its conversation) the model can read, in characters"
    )


class ErrorBody(BaseModel):
    error: dict[str, Any]
