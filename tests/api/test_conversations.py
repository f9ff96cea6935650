"""Conversations (issue 37) against a real server on SQLite and on Postgres: a chat's turns share one entry with its
first question as title; listed, searched, renamed, deleted; each API key sees only its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from tests.api.conftest import Server, collect


async def test_turns_share_a_conversation_listed_searched_renamed_and_deleted(
    make_server: Callable[..., Server], database_url: str
) -> None:
    alice, bob = f"alice-{uuid.uuid4().hex}", f"bob-{uuid.uuid4().hex}"  # keys of their own: Postgres is shared
    server = make_server(keys=[alice, bob], api={"database_url": database_url})
    async with server.client(alice) as client:
        first = (await client.post("/runs", json={"input": {"question": "What is   2+2?"}})).json()
        conversation = first["conversation_id"]
        assert conversation.startswith("conv_")
        await collect(client, first["id"])
        follow_up = {
            "input": {"question": "And doubled?", "conversation": [{"role": "user", "content": "What is 2+2?"},
                                                                   {"role": "assistant", "content": "4"}]},
            "conversation_id": conversation,
        }  # fmt: skip
        second = (await client.post("/runs", json=follow_up)).json()
        assert second["conversation_id"] == conversation
        await collect(client, second["id"])
        other = (await client.post("/runs", json={"input": {"question": "Name a prime"}})).json()
        await collect(client, other["id"])

        listed = (await client.get("/conversations")).json()["conversations"]
        assert [c["title"] for c in listed] == ["Name a prime", "What is 2+2?"]  # latest activity first
        assert listed[1]["turns"] == 2 and listed[1]["last_status"] == "succeeded"
        found = (await client.get("/conversations", params={"q": "doubled"})).json()["conversations"]
        assert [c["id"] for c in found] == [conversation]  # a later question matches too
        assert (await client.get("/conversations", params={"q": "100%_"})).json()["conversations"] == []

        detail = (await client.get(f"/conversations/{conversation}")).json()
        assert [r["input"]["question"] for r in detail["runs"]] == ["What is   2+2?", "And doubled?"]

        renamed = await client.patch(f"/conversations/{conversation}", json={"title": "  arithmetic  "})
        assert renamed.status_code == 200 and renamed.json()["title"] == "arithmetic"
        blank = await client.patch(f"/conversations/{conversation}", json={"title": "   "})
        assert blank.status_code == 422

        unknown = await client.post("/runs", json={"input": {"question": "q"}, "conversation_id": "conv_0000"})
        assert unknown.status_code == 404 and "GET /conversations" in unknown.text

    async with server.client(bob) as client:
        assert (await client.get("/conversations")).json()["conversations"] == []
        assert (await client.get(f"/conversations/{conversation}")).status_code == 403
        assert (await client.delete(f"/conversations/{conversation}")).status_code == 403
        sneaking = await client.post("/runs", json={"input": {"question": "q"}, "conversation_id": conversation})
        assert sneaking.status_code == 403
        assert (await client.get("/runs")).json()["runs"] == []

    async with server.client(alice) as client:
        assert (await client.delete(f"/conversations/{conversation}")).status_code == 204
        assert (await client.get(f"/conversations/{conversation}")).status_code == 404
        assert (await client.get(f"/runs/{first['id']}")).status_code == 404  # its runs went with it
        assert [c["title"] for c in (await client.get("/conversations")).json()["conversations"]] == ["Name a prime"]


async def test_a_conversation_with_a_running_turn_is_not_deleted(make_server: Callable[..., Server]) -> None:
    server = make_server()
    async with server.client() as client:
        run = (
            await client.post(
                "/runs",
                json={"strategy": "steps", "input": {"question": "q"}, "options": {"steps": 50, "pause_s": 0.5}},
            )
        ).json()
        refused = await client.delete(f"/conversations/{run['conversation_id']}")
        assert refused.status_code == 409 and f"POST /runs/{run['id']}/cancel" in refused.text
        await client.post(f"/runs/{run['id']}/cancel")
        await collect(client, run["id"])
        assert (await client.delete(f"/conversations/{run['conversation_id']}")).status_code == 204
