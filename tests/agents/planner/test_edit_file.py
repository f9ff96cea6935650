"""``edit_file`` (issue 21): one exact snippet replaced, or a whole file written, with the diff shown; refused
without writing when the snippet matches nowhere or more than once, or the file is binary. Against a workspace
that behaves as the runner's ``files`` tool does (reads replace undecodable bytes), and once in the real sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ponder.agents.planner._tools import edit_file
from ponder.tools import ToolResult

SCRIPT = "def area(r):\n    return 3.14 * r * r\n\n\ndef perimeter(r):\n    return 2 * 3.14 * r\n"


class Workspace:
    """The ``files`` tool's read and write, over a folder (a read decodes with replacement, as the runner's)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.writes = 0

    async def __call__(self, tool: str, args: dict[str, Any]) -> ToolResult:
        assert tool == "files"
        path = self.root / args["path"]
        if args["op"] == "read":
            if not path.exists():
                return ToolResult(tool=tool, ok=False, error=f"FileNotFoundError: {args['path']}")
            return ToolResult(tool=tool, ok=True, output={"content": path.read_bytes().decode("utf-8", "replace")})
        self.writes += 1
        path.write_text(args["content"], encoding="utf-8")
        return ToolResult(tool=tool, ok=True, output={"bytes": len(args["content"])})


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "area.py").write_text(SCRIPT)
    (tmp_path / "blob.bin").write_bytes(b"\x89PNG\x00\xff\xfe")
    return Workspace(tmp_path)


async def test_a_unique_snippet_is_replaced_and_the_diff_shown(ws: Workspace) -> None:
    result = await edit_file(ws, {"path": "area.py", "old": "return 3.14 * r * r", "new": "return math.pi * r * r"})
    assert result.ok, result.error
    assert (ws.root / "area.py").read_text() == SCRIPT.replace("3.14 * r * r", "math.pi * r * r")
    assert "-    return 3.14 * r * r\n+    return math.pi * r * r" in result.output["diff"]


async def test_no_match_and_several_matches_write_nothing(ws: Workspace) -> None:
    missing = await edit_file(ws, {"path": "area.py", "old": "return 3.14*r*r", "new": "x"})
    assert not missing.ok and "does not occur" in (missing.error or "")
    assert "closest line is '    return 3.14 * r * r'" in (missing.error or "")
    several = await edit_file(ws, {"path": "area.py", "old": "3.14", "new": "math.pi"})
    assert not several.ok and "occurs 2 times" in (several.error or "")
    assert ws.writes == 0 and (ws.root / "area.py").read_text() == SCRIPT


async def test_a_binary_file_is_refused_and_a_new_file_is_written_whole(ws: Workspace) -> None:
    binary = await edit_file(ws, {"path": "blob.bin", "old": "PNG", "new": "JPG"})
    assert not binary.ok and "binary" in (binary.error or "")
    assert (ws.root / "blob.bin").read_bytes() == b"\x89PNG\x00\xff\xfe"
    created = await edit_file(ws, {"path": "report.txt", "new": "total: 42\n"})
    assert created.ok and created.output["created"] is True and "+total: 42" in created.output["diff"]
    gone = await edit_file(ws, {"path": "nothing.py", "old": "a", "new": "b"})
    assert not gone.ok and "does not exist" in (gone.error or "")


@pytest.mark.docker
async def test_edit_file_in_the_real_sandbox() -> None:
    import uuid

    from ponder.config import ToolServerSettings
    from ponder.toolserver import build_toolserver

    settings = ToolServerSettings(instance=f"edit-{uuid.uuid4().hex[:8]}", pool_size=1)
    async with build_toolserver(settings) as ts, ts.session() as session:

        async def call(tool: str, args: dict[str, Any]) -> ToolResult:
            return await session.call(tool, args)

        await session.call("files", {"op": "write", "path": "area.py", "content": SCRIPT})
        await session.call("python", {"code": "open('blob.bin', 'wb').write(bytes(range(256)))"})
        fixed = await edit_file(call, {"path": "area.py", "old": "2 * 3.14 * r", "new": "2 * 3.14159 * r"})
        assert fixed.ok, fixed.error
        ran = await session.call("python", {"code": "import runpy; runpy.run_path('area.py')['perimeter'](1)"})
        assert ran.output["result"] == "6.28318"
        refused = await edit_file(call, {"path": "blob.bin", "old": "a", "new": "b"})
        assert not refused.ok and "binary" in (refused.error or "")
