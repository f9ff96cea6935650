"""`ponder eval run` and `ponder eval compare` as real processes against an OpenAI-compatible server on loopback
(a small stdlib HTTP server playing the model: it answers each item's code, and fails item 2 with HTTP 400)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).parents[2]


class Handler(BaseHTTPRequestHandler):
    asked: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = body["messages"][-1]["content"]
        Handler.asked.append(question)
        number = re.search(r"item (\d+)", question)
        if number and number.group(1) == "2":
            self._send(400, {"error": {"message": "this prompt is refused", "type": "invalid_request_error"}})
            return
        content = json.dumps({"reasoning": "recall", "answer": f"code-{number.group(1) if number else 'x'}"})
        if body.get("stream"):
            self._stream(content)
            return
        self._send(
            200,
            {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "fake"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
            },
        )

    def _stream(self, content: str) -> None:
        """Server-sent events as OpenAI streams them: content deltas, a finish chunk with usage, [DONE]."""
        half = len(content) // 2
        chunks: list[dict[str, object]] = [
            {"index": 0, "delta": {"role": "assistant", "content": content[:half]}, "finish_reason": None},
            {"index": 0, "delta": {"content": content[half:]}, "finish_reason": None},
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        ]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i, choice in enumerate(chunks):
            event: dict[str, object] = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "fake"}
            event["choices"] = [choice]
            if i == len(chunks) - 1:
                event["usage"] = {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def _send(self, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.asked = []
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def ponder(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PONDER_")}
    env["PONDER_LLM__MAX_RETRIES"] = "0"
    return subprocess.run(
        [sys.executable, "-m", "ponder.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_eval_run_and_compare_end_to_end(server: str, tmp_path: Path) -> None:
    data = tmp_path / "codes.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"i{k}", "question": f"What is the code of item {k}?", "answer": f"code-{k}"}) + "\n"
            for k in range(5)
        )
    )
    common = ["--dataset", str(data), "--family", "string", "--base-url", server, "--model", "fake"]
    run = ponder("eval", "run", *common, "--runs-dir", "runs", "--concurrency", "2", "--no-progress", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "4/5 correct" in " ".join(run.stdout.split()) and "1 failed" in run.stdout
    results = tmp_path / "runs" / "codes-cot" / "results.jsonl"
    records = [json.loads(line) for line in results.read_text().splitlines()]
    failed = [r for r in records if r["status"] == "failed"]
    assert [r["id"] for r in failed] == ["i2"] and failed[0]["error"]["type"] == "ModelRequestRejected"
    assert len(Handler.asked) == 5

    # the same command again: nothing is asked, totals are unchanged
    again = ponder("eval", *common, "--runs-dir", "runs", "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(Handler.asked) == 5 and "0 run now, 5 already done" in " ".join(again.stdout.split())

    report = ponder("eval", "compare", "runs/codes-cot", "--out", "report", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| codes | cot | 5 | 80.0% |" in text and "| 1 |" in text
    assert (tmp_path / "report" / "accuracy.png").stat().st_size > 5000


def _processes_with(marker: str) -> list[str]:
    """Command lines of live processes whose environment holds ``marker`` (Ray's processes inherit the driver's)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker.encode() in environ:
            found.append(f"{pid}: {cmdline[:120]}")
    return found


@pytest.mark.slow
def test_a_local_ray_instance_goes_down_with_the_command_that_started_it(server: str, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    data = tmp_path / "codes.jsonl"
    data.write_text(json.dumps({"id": "i0", "question": "What is the code of item 0?", "answer": "code-0"}) + "\n")
    marker = f"PONDER_RAY_PROBE={os.getpid()}-{threading.get_ident()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PONDER_")}
    env |= {"PONDER_LLM__MAX_RETRIES": "0", "PONDER_LLM__BACKEND": "openai", marker.split("=")[0]: marker.split("=")[1]}
    common = ["--dataset", str(data), "--family", "string", "--base-url", server, "--model", "fake", "--ray", "local"]
    run = subprocess.run(
        [sys.executable, "-m", "ponder.cli", "eval", "run", *common, "--runs-dir", "runs", "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "1/1 correct" in " ".join(run.stdout.split())  # the item ran on a Ray worker
    left = _processes_with(marker)
    for _ in range(20):  # the agents take a moment to exit after the raylet
        if not left:
            break
        time.sleep(0.5)
        left = _processes_with(marker)
    assert left == [], f"processes the command started outlived it: {left}"
