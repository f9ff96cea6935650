"""The built-in sandbox tools: their argument models (whose docstrings and field descriptions the model reads)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ponder.tools._spec import ToolSpec

_STRICT = ConfigDict(extra="forbid")


class PythonArgs(BaseModel):
    """Run Python code in the session's interpreter; variables persist across calls like notebook cells."""

    model_config = _STRICT
    code: str = Field(min_length=1, description="Python source; the value of a final expression is returned")


class ShellArgs(BaseModel):
    """Run a bash command in the workspace; returns its exit code, stdout and stderr."""

    model_config = _STRICT
    command: str = Field(min_length=1, description="a bash command line, run with `bash -c` in /workspace")


class FilesArgs(BaseModel):
    """List a directory, read a text file or write one, inside the workspace only."""

    model_config = _STRICT
    op: Literal["list", "read", "write"] = Field(description="list a directory, read a file or write a file")
    path: str = Field(default=".", description="a path relative to the workspace")
    content: str | None = Field(default=None, description="the text to write (op=write only)")
    recursive: bool | None = Field(default=None, description="op=list: every file below the path, not one folder")


class UploadArgs(BaseModel):
    """Put a file (any bytes, base64-encoded) into the workspace."""

    model_config = _STRICT
    path: str = Field(min_length=1, description="a path relative to the workspace")
    content_base64: str = Field(description="the file's bytes, base64-encoded")


class DownloadArgs(BaseModel):
    """Fetch a workspace file's bytes, base64-encoded."""

    model_config = _STRICT
    path: str = Field(min_length=1, description="a path relative to the workspace")


class RunArgs(BaseModel):
    """Run one program (no shell) with its input; returns its exit code and merged output."""

    model_config = _STRICT
    argv: list[str] = Field(min_length=1, description='the program and its arguments, e.g. ["python3", "fix.py"]')
    stdin: str = Field(default="", description="what the program reads on its standard input")
    files: dict[str, str] = Field(
        default_factory=dict, description="text files (plain names) for a fresh folder it runs in, removed after"
    )
    nonce: str = Field(default="", description="output lines starting with this are returned apart, in lines")
    timeout_s: float | None = Field(default=None, gt=0, description="its time limit (at most the call's)")
    max_output: int | None = Field(default=None, ge=1, description="characters of output kept (at most the call's)")


BUILTIN_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="python",
        description=(
            "Run Python 3 code in a stateful sandbox (no network; numpy, pandas, scipy, matplotlib: save figures "
            "to files, sympy, openpyxl installed). Returns stdout, stderr, the repr of the last expression, and the "
            "traceback if it raised."
        ),
        args_model=PythonArgs,
    ),
    ToolSpec(
        name="shell",
        description="Run a bash command in the workspace, /workspace, your home (no network; only the workspace and "
        "/tmp are writable). Installed: coreutils, find, grep, sed, awk, jq, bc, sqlite3, git, zip, ps, curl. "
        "Returns exit_code, stdout, stderr.",
        args_model=ShellArgs,
    ),
    ToolSpec(
        name="files",
        description="List, read or write text files in the sandbox's workspace.",
        args_model=FilesArgs,
    ),
    ToolSpec(
        name="run",
        description="Run one program (argv, no shell) with optional stdin and a time limit; returns exit_code, the "
        "merged output (capped) and its size. Everything it starts is killed when it ends or runs over.",
        args_model=RunArgs,
    ),
    ToolSpec(name="upload", description="Write a binary file into the workspace.", args_model=UploadArgs),
    ToolSpec(name="download", description="Read a binary file from the workspace.", args_model=DownloadArgs),
)
