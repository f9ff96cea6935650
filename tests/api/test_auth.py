"""API keys: each run belongs to its key; another key can neither read, stream, answer nor cancel it."""

from __future__ import annotations

from collections.abc import Callable

from ponder.api import KeyRing, hash_key, is_loopback
from tests.api.conftest import Server, wait_status


async def test_runs_are_private_to_their_key(make_server: Callable[..., Server]) -> None:
    server = make_server(keys=["key-alice", f"sha256:{hash_key('key-bob')}"])  # plain and hashed forms
    async with server.client("key-alice") as alice, server.client("key-bob") as bob:
        run = (await alice.post("/runs", json={"strategy": "ask", "input": {"question": "secret"}})).json()
        await wait_status(alice, run["id"], "waiting")
        run_id = run["id"]
        for method, path, body in [
            ("GET", f"/runs/{run_id}", None),
            ("GET", f"/runs/{run_id}/events", None),
            ("POST", f"/runs/{run_id}/answer", {"answer": "mallory"}),
            ("POST", f"/runs/{run_id}/cancel", None),
        ]:
            response = await bob.request(method, path, json=body)
            assert response.status_code == 403, (path, response.text)
            assert "another API key" in response.json()["error"]["message"]
            assert "secret" not in response.text
        assert (await bob.get("/runs")).json()["runs"] == []
        assert [r["id"] for r in (await alice.get("/runs")).json()["runs"]] == [run_id]
        # the owner still can, and nothing bob tried changed the run
        assert (await alice.get(f"/runs/{run_id}")).json()["status"] == "waiting"
        assert (await alice.post(f"/runs/{run_id}/answer", json={"answer": "Ada"})).status_code == 200
        assert (await wait_status(alice, run_id, "succeeded"))["text"] == "hello, Ada"


async def test_missing_or_unknown_keys_are_401(make_server: Callable[..., Server]) -> None:
    server = make_server(keys=["key-alice"])
    async with server.client() as anonymous, server.client("wrong") as wrong:
        for client in (anonymous, wrong):
            response = await client.post("/runs", json={"strategy": "cot", "input": {"question": "q"}})
            assert response.status_code == 401
            assert "Authorization: Bearer" in response.json()["error"]["hint"]
            assert (await client.get("/runs")).status_code == 401
            assert (await client.get("/v1/models")).status_code == 401
        assert (await anonymous.get("/healthz")).status_code == 200
        ok = await anonymous.get("/runs", headers={"X-API-Key": "key-alice"})
        assert ok.status_code == 200


def test_keys_are_kept_as_hashes() -> None:
    ring = KeyRing(["plain-key", "sha256:" + hash_key("other")])
    assert ring.owner("plain-key") == hash_key("plain-key")[:24]
    assert ring.owner("other") == hash_key("other")[:24]
    assert "plain-key" not in repr(vars(ring))
    assert KeyRing([]).open


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("10.1.2.3")
