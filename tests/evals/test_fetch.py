"""``ponder eval fetch`` and ``ponder eval datasets`` against a real HTTP server on loopback (issue 23)."""

from __future__ import annotations

import gzip
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ponder.cli import app
from ponder.errors import FetchError, InputError
from ponder.evals._datasets import load_dataset
from ponder.evals._fetch import UPSTREAM, fetch, git_blob_sha1

GSM8K_LINES = [
    {"question": "Tom has 3 apples and buys 4 more. How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
    {"question": "A box holds 1,200 nails; half are used. Left?", "answer": "1200 / 2 = 600\n#### 600"},
]
SVAMP = [{"ID": "chal-1", "Body": "Jo has 5 pens.", "Question": "How many pens after 2 more?", "Answer": 7.0,
          "Equation": "( 5.0 + 2.0 )", "Type": "Addition"}]  # fmt: skip
HUMANEVAL = [{"task_id": "HumanEval/0", "prompt": "def add(a, b):\n", "canonical_solution": "    return a + b\n",
              "test": "def check(f):\n    assert f(1, 2) == 3\n", "entry_point": "add"}]  # fmt: skip


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[str]:
    """A static file server on a loopback port, holding files in the upstream formats."""
    root = tmp_path / "mirror"
    root.mkdir()
    (root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GSM8K_LINES))
    (root / "SVAMP.json").write_text(json.dumps(SVAMP))
    (root / "HumanEval.jsonl.gz").write_bytes(gzip.compress(json.dumps(HUMANEVAL[0]).encode() + b"\n"))
    (root / "broken.json").write_text("{not json")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_writes_what_eval_reads(mirror: str, tmp_path: Path) -> None:
    data = tmp_path / "benchmarks"
    path, count, verified = fetch("gsm8k", data, source=f"{mirror}/test.jsonl")
    assert (path, count, verified) == (data / "gsm8k.jsonl.gz", 2, False)  # a mirror is not the pinned file
    items = load_dataset("gsm8k", data_dir=data).items
    assert [i.gold for i in items] == [7.0, 600.0] and items[0].id == "gsm8k-test-0001"
    assert "Tom has 3 apples" in items[0].task.question
    fetch("svamp", data, source=f"{mirror}/SVAMP.json")
    (svamp,) = load_dataset("svamp", data_dir=data).items
    assert svamp.task.question == "Jo has 5 pens. How many pens after 2 more?" and svamp.gold == 7.0
    fetch("humaneval", data, source=f"{mirror}/HumanEval.jsonl.gz")
    (code,) = load_dataset("humaneval", data_dir=data).items
    assert code.gold_extra == {"entry_point": "add"} and code.task.question.startswith("def add")


def test_the_pinned_upstream_must_match_its_hash_and_nothing_is_written_otherwise(tmp_path: Path) -> None:
    served: list[str] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        served.append(str(request.url))
        return httpx.Response(200, content=b'{"question": "altered", "answer": "#### 1"}\n')

    with pytest.raises(FetchError, match="does not hold the expected file"):
        fetch("gsm8k", tmp_path, transport=httpx.MockTransport(upstream))
    assert served == [UPSTREAM["gsm8k"].url] and "/3101c7d5072418e28b9008a6636bde82a006892c/" in served[0]
    assert list(tmp_path.iterdir()) == []


def test_git_blob_hash_is_gits(tmp_path: Path) -> None:
    file = tmp_path / "f.jsonl"
    file.write_bytes(b'{"a": 1}\n')
    expected = subprocess.run(["git", "hash-object", str(file)], capture_output=True, text=True, check=True).stdout
    assert git_blob_sha1(file.read_bytes()) == expected.strip()


def test_bad_downloads_fail_clearly(mirror: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch("gsm8k", tmp_path, source=f"{mirror}/missing.jsonl")
    with pytest.raises(FetchError, match="not in its upstream format"):
        fetch("svamp", tmp_path, source=f"{mirror}/broken.json")
    with pytest.raises(InputError, match="cannot fetch 'boolq' yet"):
        fetch("boolq", tmp_path)
    assert not (tmp_path / "svamp.jsonl.gz").exists()


def test_the_cli_fetches_then_lists_the_dataset_as_here(mirror: str, tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "benchmarks"
    before = runner.invoke(app, ["eval", "datasets", "--data-dir", str(data)], env={"COLUMNS": "200"})
    assert before.exit_code == 0
    gsm8k_row = next(line for line in before.output.splitlines() if line.startswith("│ gsm8k"))
    assert "│ no " in gsm8k_row and "ponder eval fetch gsm8k" in gsm8k_row and "MIT" in gsm8k_row
    args = ["eval", "fetch", "gsm8k", "--data-dir", str(data), "--from", f"{mirror}/test.jsonl"]
    got = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert got.exit_code == 0, got.output
    assert "2 items" in got.output and "not checked against the upstream hash" in got.output
    after = runner.invoke(app, ["eval", "datasets", "--data-dir", str(data)], env={"COLUMNS": "200"})
    assert "│ yes " in next(line for line in after.output.splitlines() if line.startswith("│ gsm8k"))
