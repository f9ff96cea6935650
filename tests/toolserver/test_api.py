"""The manager's HTTP API: authentication and bad input, each a 4xx whose message names the problem."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from docker.client import DockerClient

from ponder.errors import SandboxUnavailable, ToolArgumentsInvalid, UnknownTool

from .conftest import HttpManager, make_settings, running_http_manager

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.docker]


@pytest_asyncio.fixture(loop_scope="module")
async def raw(http_manager: HttpManager) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {http_manager.token}"}
    async with httpx.AsyncClient(base_url=http_manager.url, headers=headers) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="module")
async def session_id(raw: httpx.AsyncClient) -> AsyncIterator[str]:
    created = await raw.post("/sessions")
    assert created.status_code == 201
    yield created.json()["id"]
    await raw.delete(f"/sessions/{created.json()['id']}")


def error_of(response: httpx.Response) -> dict[str, object]:
    body: dict[str, object] = response.json()["error"]
    return body


async def test_health_needs_no_token_everything_else_does(http_manager: HttpManager) -> None:
    async with httpx.AsyncClient(base_url=http_manager.url) as anonymous:
        health = await anonymous.get("/healthz")
        assert health.status_code == 200 and health.json()["ok"] is True
        for method, path in [("GET", "/tools"), ("POST", "/sessions"), ("DELETE", "/sessions/x")]:
            denied = await anonymous.request(method, path)
            assert denied.status_code == 401, path
            assert error_of(denied)["type"] == "Unauthenticated"
        wrong = await anonymous.post("/sessions", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        assert "Authorization: Bearer" in str(error_of(wrong)["hint"])


async def test_tools_lists_function_specs(raw: httpx.AsyncClient) -> None:
    tools = (await raw.get("/tools")).json()
    assert [t["function"]["name"] for t in tools] == ["python", "shell", "files", "run", "upload", "download"]


async def test_unknown_tool_is_404_naming_it(raw: httpx.AsyncClient, session_id: str) -> None:
    response = await raw.post(f"/sessions/{session_id}/calls", json={"tool": "rm_rf", "args": {}})
    assert response.status_code == 404
    error = error_of(response)
    assert error["type"] == "UnknownTool"
    assert "'rm_rf'" in str(error["message"])
    assert "python" in str(error["hint"])


async def test_arguments_failing_the_schema_are_422_naming_the_field(raw: httpx.AsyncClient, session_id: str) -> None:
    response = await raw.post(f"/sessions/{session_id}/calls", json={"tool": "python", "args": {"cod": "1"}})
    assert response.status_code == 422
    error = error_of(response)
    assert error["type"] == "ToolArgumentsInvalid"
    assert "code: Field required" in str(error["message"]) and "cod: Extra inputs" in str(error["message"])
    op = await raw.post(f"/sessions/{session_id}/calls", json={"tool": "files", "args": {"op": "delete"}})
    assert op.status_code == 422 and "op: Input should be 'list', 'read' or 'write'" in str(error_of(op)["message"])


async def test_malformed_requests_are_422(raw: httpx.AsyncClient, session_id: str) -> None:
    no_tool = await raw.post(f"/sessions/{session_id}/calls", json={"args": {}})
    assert no_tool.status_code == 422
    assert "tool: Field required" in str(error_of(no_tool)["message"])
    negative = await raw.post(
        f"/sessions/{session_id}/calls", json={"tool": "python", "args": {"code": "1"}, "timeout_s": -1}
    )
    assert negative.status_code == 422 and "timeout_s" in str(error_of(negative)["message"])
    not_json = await raw.post(
        f"/sessions/{session_id}/calls", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422


async def test_unknown_session_is_404(raw: httpx.AsyncClient) -> None:
    response = await raw.post("/sessions/nope/calls", json={"tool": "python", "args": {"code": "1"}})
    assert response.status_code == 404
    assert "no session 'nope'" in str(error_of(response)["message"])
    assert (await raw.delete("/sessions/nope")).status_code == 404


async def test_oversized_payloads_are_413(raw: httpx.AsyncClient, session_id: str, http_manager: HttpManager) -> None:
    limit = http_manager.manager.settings.max_request_bytes
    body = {"tool": "python", "args": {"code": "x = '" + "a" * (limit + 10) + "'"}}
    declared = await raw.post(f"/sessions/{session_id}/calls", json=body)
    assert declared.status_code == 413
    assert str(limit) in str(error_of(declared)["message"])

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams in
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536

    streamed = await raw.post(
        f"/sessions/{session_id}/calls", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    still = await raw.post(f"/sessions/{session_id}/calls", json={"tool": "python", "args": {"code": "'fine'"}})
    assert still.status_code == 200 and still.json()["output"]["result"] == "'fine'"


async def test_client_raises_the_typed_errors(http_manager: HttpManager) -> None:
    async with http_manager.client.session() as s:
        with pytest.raises(UnknownTool, match="'nope'"):
            await s.call("nope", {})
        with pytest.raises(ToolArgumentsInvalid, match="code"):
            await s.call("python", {"code": 5})


async def test_session_limit_is_a_retryable_503(docker_client: DockerClient) -> None:
    async with running_http_manager(make_settings(pool_size=0, max_sessions=1)) as running:
        async with running.client.session():
            with pytest.raises(SandboxUnavailable, match="all 1 sandbox sessions are in use") as caught:
                async with running.client.session():
                    pass
            assert caught.value.retryable
        async with running.client.session() as again:  # the slot is free once the first session closed
            assert (await again.call("python", {"code": "'ok'"})).ok
