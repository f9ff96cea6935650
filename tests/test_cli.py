"""The ``ponder`` command as a user runs it: real subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def ponder(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ponder.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_strategies_lists_cot() -> None:
    out = ponder("strategies")
    assert out.returncode == 0, out.stderr
    assert "cot" in out.stdout


def test_models_reports_a_server_that_does_not_answer() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    out = ponder("models", "--backend", "vllm", "--base-url", url, "--model", "m", env={"PONDER_LLM__MAX_RETRIES": "0"})
    assert out.returncode == 1
    assert "answers: False" in out.stdout
    assert url in out.stdout


def test_missing_model_file_says_how_to_fix_it(tmp_path: Path) -> None:
    out = ponder("ask", "--model", str(tmp_path / "nope.gguf"), "hi")
    assert out.returncode == 1
    assert "does not exist" in out.stderr
    assert "hint" in out.stderr


def test_server_backend_without_url_is_a_config_error() -> None:
    out = ponder("ask", "--backend", "vllm", "hi", env={"PONDER_LLM__BASE_URL": ""})
    assert out.returncode == 1
    assert "PONDER_LLM__BASE_URL" in out.stderr


@pytest.mark.embedded
def test_ask_streams_an_answer_from_the_embedded_model() -> None:
    out = ponder("ask", "--family", "number", "A farmer has 3 pens with 4 sheep each; how many sheep?")
    assert out.returncode == 0, out.stderr
    assert "reasoning:" in out.stdout
    assert "answer: 12" in out.stdout


def test_serve_on_a_busy_port_says_so_and_how_to_fix_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = ponder("serve", "--port", str(port), "--no-tools", "--no-search", env={"PONDER_DATA_DIR": str(tmp_path)})
    assert out.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in out.stderr and f"--port {port + 1}" in out.stderr
    assert "Errno" not in out.stderr and "Traceback" not in out.stderr


def test_ask_names_the_answer_types_and_needs_options_for_a_choice() -> None:
    out = ponder("ask", "--family", "integer", "q")
    assert out.returncode == 2 and "use one of: number, choice, yes_no, string, code, open" in out.stderr
    out = ponder("ask", "--family", "choice", "q")
    assert out.returncode == 2 and "--choice" in out.stderr


def test_config_shows_the_threads_this_machine_uses() -> None:
    out = ponder("config")
    assert out.returncode == 0, out.stderr
    assert '"n_threads": null' not in out.stdout and "llm.n_threads is not set" in out.stdout


def test_the_serve_banner_names_the_ui_docs_and_model() -> None:
    from ponder.api._serve import banner
    from ponder.config import Settings

    lines = banner(Settings())
    assert lines[0] == "ponder is serving on http://localhost:8000"
    text = "\n".join(lines)
    assert "http://localhost:8000/docs" in text and "embedded" in text and "/v1" in text


def test_ask_planner_calls_an_mcp_servers_tool(tmp_path: Path) -> None:
    """`ponder ask -s planner` with PONDER_MCP_SERVERS: the planner calls the MCP server's tool. The model is a
    loopback OpenAI-compatible server that plays the planner's replies in order."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from typing import Any

    from tests.agents.planner._script import answer, call, submit

    replies = [  # the planner's default (adaptive): ReACT on the whole task first, no plan call
        call("shop_price", item="pear"),
        submit("a pear costs 0.75"),
        answer(0.75),
    ]
    asked: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked.append(body)
            message = {"role": "assistant", "content": json.dumps(replies.pop(0))}
            usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            out = {"id": "x", "object": "chat.completion", "model": "m", "usage": usage,
                   "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
            data = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shop = {"name": "shop", "command": [sys.executable, "-m", "tests.agents.planner._mcp_shop"], "allow": ["price"]}
    env = {
        "PONDER_LLM__BACKEND": "openai",
        "PONDER_LLM__BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/v1",
        "PONDER_LLM__MODEL": "m",
        "PONDER_MCP_SERVERS": json.dumps([shop]),
        "PONDER_DATA_DIR": str(tmp_path),
        "PONDER_CHECKPOINT_URL": f"sqlite:///{tmp_path / 'cp.sqlite'}",
    }
    try:
        out = ponder("ask", "-s", "planner", "--family", "number", "What does a pear cost?", env=env, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 0, out.stderr
    assert "shop_price" in out.stdout and "0.75" in out.stdout
    assert replies == []
    schema = json.dumps(asked[0]["response_format"])  # the act step was constrained to the MCP tool's schema
    assert "shop_price" in schema and "item" in schema


def test_config_shows_this_hosts_engine_calibration_once_measured(tmp_path: Path) -> None:
    from ponder.config import LLMSettings
    from ponder.llm.embedded._calibration import Calibration, Host, settings_stamp

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    env = {"PONDER_LLM__CACHE_DIR": str(tmp_path), "PONDER_LLM__MODEL_PATH": str(model)}
    out = ponder("config", env=env)
    assert out.returncode == 0, out.stderr
    assert "not measured yet" in out.stdout and "ponder calibrate" in out.stdout
    cal = Calibration(
        key="k",
        host=Host(cpu="test cpu", isa=["avx2"], cores=2),
        threads=2,
        threads_batch=2,
        step_s={1: 0.05, 2: 0.09, 8: 0.5},
        verify_s={2: 0.08},
    )
    stamp = settings_stamp(LLMSettings(cache_dir=tmp_path, model_path=model))
    stamp.write_text(cal.model_dump_json())
    out = ponder("config", env=env)
    assert out.returncode == 0, out.stderr
    assert "test cpu" in out.stdout and "rows_per_step_by_demand" in out.stdout
