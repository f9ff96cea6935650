"""The built-in tools' specs and the HTTP client's error mapping; no Docker needed (the HTTP side is faked at our
own seam, httpx's MockTransport)."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest
from pydantic import SecretStr

from ponder.config import ToolServerSettings
from ponder.errors import SandboxError, SandboxUnavailable, ToolArgumentsInvalid, ToolError, UnknownTool
from ponder.tools import BUILTIN_TOOLS, HttpToolServer, find_tool, tool_call_schema
from ponder.toolserver import LocalToolServer, build_toolserver


def test_every_builtin_tool_has_a_function_spec() -> None:
    specs = [t.function_spec() for t in BUILTIN_TOOLS]
    assert [s["function"]["name"] for s in specs] == ["python", "shell", "files", "run", "upload", "download"]
    for spec in specs:
        assert spec["type"] == "function"
        assert spec["function"]["description"]
        assert spec["function"]["parameters"]["additionalProperties"] is False
    files = find_tool(BUILTIN_TOOLS, "files").parameters()
    assert files["properties"]["op"]["enum"] == ["list", "read", "write"]


def test_tool_call_schema_pins_args_to_the_named_tool() -> None:
    schema = tool_call_schema(BUILTIN_TOOLS)
    jsonschema.validate({"tool": "python", "args": {"code": "1"}}, schema)
    jsonschema.validate({"tool": "files", "args": {"op": "read", "path": "a.txt"}}, schema)
    for wrong in (
        {"tool": "python", "args": {"command": "ls"}},  # shell's arguments under python's name
        {"tool": "rm", "args": {}},
        {"tool": "files", "args": {"op": "delete"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema)


def test_argument_validation_names_the_problem() -> None:
    with pytest.raises(ToolArgumentsInvalid, match="code: Field required"):
        find_tool(BUILTIN_TOOLS, "python").validate_args({})
    with pytest.raises(UnknownTool, match="'nope'") as caught:
        find_tool(BUILTIN_TOOLS, "nope")
    assert "python" in caught.value.hint


def test_build_toolserver_picks_http_when_a_url_is_set() -> None:
    remote = build_toolserver(ToolServerSettings(url="http://127.0.0.1:9", token=SecretStr("t")))
    assert isinstance(remote, HttpToolServer)
    local = build_toolserver(ToolServerSettings())
    assert isinstance(local, LocalToolServer)  # constructing it is cheap: nothing starts before `async with`


def manager_double(calls: list[tuple[str, str, dict[str, object]]]) -> httpx.MockTransport:
    """Plays the manager's HTTP API: one session, python answers, `boom` fails as a dead sandbox would."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        calls.append((request.method, request.url.path, body))
        assert request.headers["authorization"] == "Bearer sekret"
        if request.url.path == "/sessions":
            return httpx.Response(201, json={"id": "s1"})
        if request.method == "DELETE":
            return httpx.Response(204)
        if body["tool"] == "boom":
            error = {
                "type": "SandboxError",
                "message": "the sandbox container stopped",
                "hint": "call again",
                "retryable": True,
            }
            return httpx.Response(503, json={"error": error})
        if body["tool"] == "weird":
            error = {"type": "NotAnError", "message": "odd", "hint": "", "retryable": False}
            return httpx.Response(400, json={"error": error})
        if body["tool"] == "html":
            return httpx.Response(502, text="<html>bad gateway</html>")
        return httpx.Response(200, json={"tool": "python", "ok": True, "output": {"result": "2"}})

    return httpx.MockTransport(handle)


async def test_http_client_speaks_the_api_and_rebuilds_typed_errors() -> None:
    calls: list[tuple[str, str, dict[str, object]]] = []
    server = HttpToolServer("http://manager", "sekret", transport=manager_double(calls))
    async with server, server.session() as s:
        assert s.id == "s1"
        result = await s.call("python", {"code": "1+1"}, timeout_s=5)
        assert result.ok and result.output["result"] == "2"
        with pytest.raises(SandboxError, match="stopped") as caught:
            await s.call("boom", {})
        assert caught.value.retryable and caught.value.hint == "call again"
        with pytest.raises(ToolError, match="odd") as odd:
            await s.call("weird", {})
        assert type(odd.value) is ToolError  # unknown type names fall back to the base class
        with pytest.raises(ToolError, match="HTTP 502"):
            await s.call("html", {})
    assert calls[0][:2] == ("POST", "/sessions")
    assert calls[1] == ("POST", "/sessions/s1/calls", {"tool": "python", "args": {"code": "1+1"}, "timeout_s": 5})
    assert calls[-1][:2] == ("DELETE", "/sessions/s1")


async def test_http_client_reports_an_unreachable_manager() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with HttpToolServer("http://manager", transport=httpx.MockTransport(refuse)) as server:
        with pytest.raises(SandboxUnavailable, match="cannot reach the ToolServer at http://manager") as caught:
            async with server.session():
                pass
    assert caught.value.retryable
