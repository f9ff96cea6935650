"""The llama.cpp build runs on this CPU (issue 15): the real build decodes in a child process, and a build that dies
with a signal becomes a typed error that fails requests, not the server."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ponder.api import create_app
from ponder.config import LLMSettings
from ponder.errors import ModelFileError, ModelRuntimeError
from ponder.llm import user
from ponder.llm._types import ChatRequest
from tests.api._support import make_settings
from tests.api.conftest import serve

DIE_WITH_SIGILL = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]


@pytest.mark.embedded
def test_the_installed_build_decodes_the_default_model_in_a_child_process() -> None:
    pytest.importorskip("llama_cpp", reason="the embedded backend needs `pip install 'ponder[embedded]'`")
    from ponder.llm.embedded._model_files import ensure_default_model

    model = ensure_default_model(LLMSettings().cache_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "ponder.llm.embedded._runtime_check", str(model)],
        capture_output=True,
        timeout=300,
        check=False,
    )
    if proc.returncode < 0:  # a signal: the build cannot run on this CPU. Fail, never skip.
        pytest.fail(
            f"llama.cpp died with {signal.Signals(-proc.returncode).name} decoding the default model: "
            f"{proc.stderr.decode(errors='replace')[-2000:]}"
        )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert '"ok": true' in proc.stdout.decode()


def test_a_build_that_dies_with_sigill_is_a_typed_error_naming_cause_and_fix(tmp_path: Path) -> None:
    from ponder.llm.embedded._runtime_check import check_runtime

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelRuntimeError) as caught:
        check_runtime(model, tmp_path / "stamps", command=DIE_WITH_SIGILL)
    assert "SIGILL" in caught.value.message
    assert "instructions this CPU does not have" in caught.value.message
    assert "--rebuild-llama" in caught.value.hint and "GGML_NATIVE=OFF" in caught.value.hint
    assert not (tmp_path / "stamps").exists()  # a failure is never stamped as a pass


def test_a_model_file_llama_cpp_refuses_is_a_file_error_not_a_build_error(tmp_path: Path) -> None:
    from ponder.llm.embedded._runtime_check import LOAD_FAILED, check_runtime

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    refuse = [
        sys.executable,
        "-c",
        f"import sys; print('ValueError: bad tensor data', file=sys.stderr); sys.exit({LOAD_FAILED})",
    ]
    with pytest.raises(ModelFileError, match="bad tensor data"):
        check_runtime(model, tmp_path, command=refuse)


def test_a_passing_check_is_stamped_per_build(tmp_path: Path) -> None:
    from ponder.llm.embedded._runtime_check import build_key, check_runtime

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    ok = [sys.executable, "-c", "print('{\"ok\": true}')"]
    check_runtime(model, tmp_path, command=ok)
    assert (tmp_path / f"llama-runtime-{build_key(model)}.ok").read_text().strip() == '{"ok": true}'
    before = build_key(model)
    model.write_bytes(b"GGUF" + bytes(65))  # another file (or another build) is another key: checked again
    assert build_key(model) != before


async def test_the_server_answers_other_requests_when_the_build_cannot_run(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="the embedded backend needs `pip install 'ponder[embedded]'`")
    from ponder.llm.embedded import EmbeddedModel

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + bytes(64))
    model = EmbeddedModel(gguf, runtime_check=DIE_WITH_SIGILL, stamp_dir=tmp_path)
    with pytest.raises(ModelRuntimeError, match="SIGILL"):
        await model.complete(ChatRequest(messages=[user("1+1=")], max_tokens=4))
    with serve(create_app(make_settings(tmp_path), model=model)) as server:
        async with server.client() as client:
            for _ in range(2):  # every ask fails with the typed error, at once after the first; the server lives
                answer = await client.post(
                    "/v1/chat/completions",
                    json={"model": "ponder-cot", "messages": [{"role": "user", "content": "What is 1 + 1?"}]},
                )
                assert answer.status_code == 500, answer.text
                assert answer.json()["error"]["code"] == "ModelRuntimeError", answer.text  # OpenAI shape: type, code
                assert "SIGILL" in answer.json()["error"]["message"]
                health = await client.get("/healthz")
                assert health.status_code == 200 and health.json()["status"] == "ok"
