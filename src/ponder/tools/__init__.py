"""Tools with JSON-schema function specs, and the client side of the ToolServer seam."""

from ponder.tools._builtin import BUILTIN_TOOLS, DownloadArgs, FilesArgs, PythonArgs, ShellArgs, UploadArgs
from ponder.tools._client import HttpToolServer
from ponder.tools._protocols import ToolResult, ToolServer, ToolSession
from ponder.tools._spec import ToolSpec, find_tool, tool_call_schema

__all__ = [
    "BUILTIN_TOOLS",
    "DownloadArgs",
    "FilesArgs",
    "HttpToolServer",
    "PythonArgs",
    "ShellArgs",
    "ToolResult",
    "ToolServer",
    "ToolSession",
    "ToolSpec",
    "UploadArgs",
    "find_tool",
    "tool_call_schema",
]
