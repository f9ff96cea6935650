"""A ToolServer at ponder's own seam for the planner's loop tests: each session starts with an empty workspace
folder (like a fresh container), runs Python in process, and journals every call's start and end to a file so a
test can see which calls ran, even across a killed process."""

from __future__ import annotations

import ast
import asyncio
import base64
import contextlib
import io
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ponder.tools import FilesArgs, ToolResult, ToolSpec


class PythonArgs(BaseModel):
    code: str = Field(description="Python code; the last expression's value is returned")


class WriteArgs(BaseModel):
    path: str
    content: str


class ReadArgs(BaseModel):
    path: str


class FailArgs(BaseModel):
    message: str = "it broke"


class SleepArgs(BaseModel):
    seconds: float = Field(ge=0)


class UploadArgs(BaseModel):
    path: str
    content_base64: str


SPECS = [
    ToolSpec(name="python", description="Run Python code.", args_model=PythonArgs),
    ToolSpec(name="write_file", description="Write a text file in the workspace.", args_model=WriteArgs),
    ToolSpec(name="read_file", description="Read a text file from the workspace.", args_model=ReadArgs),
    ToolSpec(name="fail", description="A tool that always fails.", args_model=FailArgs),
    ToolSpec(name="sleep", description="Wait some seconds.", args_model=SleepArgs),
    ToolSpec(name="files", description="List, read or write workspace files.", args_model=FilesArgs),
    ToolSpec(name="upload", description="Write a file from base64.", args_model=UploadArgs),
    ToolSpec(name="download", description="Read a file as base64.", args_model=ReadArgs),
]


class FakeSession:
    def __init__(self, server: FakeToolServer, number: int) -> None:
        self.server = server
        self.number = number
        self.namespace: dict[str, Any] = {}

    @property
    def id(self) -> str:
        return f"fake-{self.number}"

    async def call(self, tool: str, args: dict[str, Any], *, timeout_s: float | None = None) -> ToolResult:
        self.server.log("start", tool, args)
        root = self.server.root
        if tool == "python":
            out = io.StringIO()
            tree = ast.parse(args["code"])
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(tree, "<cell>", "exec"), self.namespace)
                    tail = compile(ast.Expression(last.value), "<cell>", "eval") if last else None
                    value = eval(tail, self.namespace) if tail else None
            except Exception as exc:  # noqa: BLE001 - user code may raise anything; reported as a failed call
                result = ToolResult(tool=tool, ok=False, error=f"{type(exc).__name__}: {exc}")
            else:
                output = {"stdout": out.getvalue(), "result": None if value is None else repr(value)}
                result = ToolResult(tool=tool, ok=True, output=output)
        elif tool == "write_file":
            (root / args["path"]).write_text(args["content"])
            result = ToolResult(tool=tool, ok=True, output={"bytes": len(args["content"])})
        elif tool == "read_file":
            path = root / args["path"]
            if path.exists():
                result = ToolResult(tool=tool, ok=True, output={"content": path.read_text()})
            else:
                result = ToolResult(tool=tool, ok=False, error=f"FileNotFoundError: {args['path']}")
        elif tool == "files" and args["op"] == "list":  # as the runner's files tool (recursive: every file)
            entries = [
                {"name": str(p.relative_to(root)), "type": "file", "size": p.stat().st_size,
                 "mtime_ns": p.stat().st_mtime_ns}
                for p in sorted(root.rglob("*")) if p.is_file()
            ]  # fmt: skip
            result = ToolResult(tool=tool, ok=True, output={"path": ".", "entries": entries})
        elif tool == "files" and args["op"] == "read":
            path = root / args["path"]
            if path.is_file():
                result = ToolResult(
                    tool=tool, ok=True, output={"content": path.read_bytes().decode("utf-8", "replace")}
                )
            else:
                result = ToolResult(tool=tool, ok=False, error=f"FileNotFoundError: {args['path']}")
        elif tool == "files" and args["op"] == "write":
            (root / args["path"]).write_text(args["content"])
            result = ToolResult(tool=tool, ok=True, output={"bytes": len(args["content"].encode())})
        elif tool == "upload":
            (root / args["path"]).parent.mkdir(parents=True, exist_ok=True)
            (root / args["path"]).write_bytes(base64.b64decode(args["content_base64"]))
            result = ToolResult(tool=tool, ok=True)
        elif tool == "download":
            data = base64.b64encode((root / args["path"]).read_bytes()).decode()
            result = ToolResult(tool=tool, ok=True, output={"content_base64": data})
        elif tool == "sleep":
            await asyncio.sleep(self.server.hang_s if self.server.hang_s is not None else args["seconds"])
            result = ToolResult(tool=tool, ok=True, output={"slept": args["seconds"]})
        else:
            result = ToolResult(tool=tool, ok=False, error=args.get("message", f"no tool {tool}"))
        self.server.log("end", tool, args)
        return result


class FakeToolServer:
    def __init__(self, root: Path, journal: Path | None = None, *, hang_s: float | None = None) -> None:
        self.root = root
        self.journal = journal
        self.hang_s = hang_s
        self.sessions = 0
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def log(self, phase: str, tool: str, args: dict[str, Any]) -> None:
        if phase == "start":
            self.calls.append((tool, args))
        syncing = tool in ("upload", "download") or (tool == "files" and args.get("op") == "list")
        if self.journal is not None and tool != "python" and not syncing:  # the workspace sync is not journalled
            with self.journal.open("a") as f:
                f.write(json.dumps({"phase": phase, "tool": tool, "args": args}) + "\n")

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[FakeSession]:
        shutil.rmtree(self.root, ignore_errors=True)  # a fresh container has an empty workspace
        self.root.mkdir(parents=True)
        self.sessions += 1
        yield FakeSession(self, self.sessions)

    tools = SPECS

    def specs(self) -> list[dict[str, Any]]:
        return [s.function_spec() for s in SPECS]

    def model_calls(self, tool: str) -> list[dict[str, Any]]:
        return [args for name, args in self.calls if name == tool]
