"""Tools with JSON-schema function specs, and the client side of the ToolServer seam."""

from ponder.tools._protocols import ToolResult, ToolServer, ToolSession
from ponder.tools._spec import ToolSpec, find_tool, tool_call_schema

__all__ = ["ToolResult", "ToolServer", "ToolSession", "ToolSpec", "find_tool", "tool_call_schema"]
