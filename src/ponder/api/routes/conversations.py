"""Conversations: the runs a chat is made of, listed with a title, searched, renamed and deleted (each API key sees
only its own)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ponder.api._deps import OwnerDep, ServiceDep
from ponder.api._schemas import (
    ConversationDetail,
    ConversationList,
    ConversationView,
    ErrorBody,
    RenameConversation,
    RunView,
)

router = APIRouter(
    prefix="/conversations",
    tags=["conversations"],
    responses={
        401: {"model": ErrorBody, "description": "missing or unknown API key"},
        403: {"model": ErrorBody, "description": "the conversation belongs to another key"},
        404: {"model": ErrorBody, "description": "no such conversation"},
    },
)


@router.get("", response_model=ConversationList, summary="List your conversations, latest activity first")
async def list_conversations(
    service: ServiceDep,
    owner: OwnerDep,
    q: Annotated[str, Query(max_length=200, description="words in the title or in any question asked")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ConversationList:
    found = await service.store.list_conversations(owner, search=q.strip(), limit=limit)
    return ConversationList(conversations=[ConversationView.of(c) for c in found])


@router.get("/{conversation_id}", response_model=ConversationDetail, summary="A conversation with its turns")
async def get_conversation(conversation_id: str, service: ServiceDep, owner: OwnerDep) -> ConversationDetail:
    conversation = await service.runs.conversation(conversation_id, owner)
    runs = await service.store.list_runs(owner, conversation_id=conversation_id, limit=500, oldest_first=True)
    return ConversationDetail(**ConversationView.of(conversation).model_dump(), runs=[RunView.of(r) for r in runs])


@router.patch("/{conversation_id}", response_model=ConversationView, summary="Rename a conversation")
async def rename_conversation(
    conversation_id: str, body: RenameConversation, service: ServiceDep, owner: OwnerDep
) -> ConversationView:
    await service.runs.conversation(conversation_id, owner)
    await service.store.update_conversation(conversation_id, title=body.title)
    found = await service.store.get_conversation(conversation_id)
    assert found is not None
    return ConversationView.of(found)


@router.delete(
    "/{conversation_id}",
    status_code=204,
    summary="Delete a conversation and its runs",
    responses={409: {"model": ErrorBody, "description": "a turn of it is still running"}},
)
async def delete_conversation(conversation_id: str, service: ServiceDep, owner: OwnerDep) -> Response:
    await service.runs.delete_conversation(conversation_id, owner)
    return Response(status_code=204)
