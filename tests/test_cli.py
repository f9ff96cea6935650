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
