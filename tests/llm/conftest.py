"""Fixtures of the model-seam tests: a real llama.cpp OpenAI-compatible server on loopback, and the conformance
harness that puts every ChatModel backend behind one interface."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ponder.config import Backend, LLMSettings
from ponder.llm import ChatModel, ChatRequest, user
from ponder.llm.openai_compat import OpenAICompatModel
from tests.llm.openai_fake import FakeOpenAIServer

SERVER_START_TIMEOUT_S = 180.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llamacpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with the default GGUF on a free loopback port; yields its ``/v1`` URL."""
    pytest.importorskip("llama_cpp.server.app", reason="needs `pip install 'llama-cpp-python[server]'`")
    from ponder.llm.embedded._model_files import ensure_default_model

    model_path = ensure_default_model(LLMSettings().cache_dir)
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llamacpp") / "server.log"
    args = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1"]
    args += ["--port", str(port), "--n_threads", "1", "--n_threads_batch", "1", "--n_ctx", "2048"]
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(proc, base_url, log_path)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama.cpp server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"llama.cpp server did not answer within {SERVER_START_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}")


class _AddToBody(httpx.AsyncBaseTransport):
    """Forwards requests to ``inner`` with ``extra`` merged into their JSON body."""

    def __init__(self, inner: httpx.AsyncBaseTransport, extra: dict[str, object]) -> None:
        self.inner = inner
        self.extra = extra

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = {**json.loads(request.content), **self.extra}
        rebuilt = httpx.Request(request.method, request.url, headers={"content-type": "application/json"}, json=body)
        return await self.inner.handle_async_request(rebuilt)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Harness:
    """One backend under the conformance suite."""

    model: ChatModel
    # Makes a call that the backend's server answers with HTTP 5xx; it must raise ModelServerError (HTTP only).
    provoke_server_error: Callable[[], Awaitable[object]] | None = None
    # How many HTTP requests reached the server so far (None where it cannot be observed).
    requests_sent: Callable[[], int] | None = None
    real: bool = False


def _fake_harness(dialect: Backend, fake: FakeOpenAIServer, client: httpx.AsyncClient) -> Harness:
    model = OpenAICompatModel(client, dialect=dialect, model=fake.model, max_retries=1, backoff_s=0.001)

    async def provoke() -> object:
        fake.fail(500, times=2)  # the attempt and its one retry
        return await model.complete(ChatRequest(messages=[user("hi")]))

    return Harness(model=model, provoke_server_error=provoke, requests_sent=lambda: len(fake.bodies))


# A live vLLM server joins the suite when these are set (scripts/conformance_live.py sets them from its options).
LIVE_VLLM_URL = os.environ.get("PONDER_CONFORMANCE_VLLM_URL", "")
LIVE_VLLM_MODEL = os.environ.get("PONDER_CONFORMANCE_VLLM_MODEL") or None
LIVE_VLLM_API_KEY = os.environ.get("PONDER_CONFORMANCE_VLLM_API_KEY") or None

CONFORMANCE_BACKENDS = [
    pytest.param("embedded", marks=pytest.mark.embedded, id="embedded"),
    pytest.param("llamacpp-server", marks=pytest.mark.embedded, id="llamacpp-server"),
    pytest.param("vllm-mock", id="vllm-mock"),
    pytest.param("openai-mock", id="openai-mock"),
    pytest.param(
        "vllm-live",
        marks=pytest.mark.skipif(not LIVE_VLLM_URL, reason="set PONDER_CONFORMANCE_VLLM_URL to test a live vLLM"),
        id="vllm-live",
    ),
]


@pytest.fixture(params=CONFORMANCE_BACKENDS)
async def conformance(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    kind = request.param
    if kind == "embedded":
        try:
            model = request.getfixturevalue("embedded_model")
        except pytest.FixtureLookupError:
            pytest.skip("the embedded_model fixture (tests/conftest.py) is not available yet")
        yield Harness(model=model, real=True)
        return
    if kind == "llamacpp-server":
        base_url = request.getfixturevalue("llamacpp_server")
        settings = LLMSettings(backend=Backend.llamacpp, base_url=base_url, timeout_s=120.0, max_retries=1)
        async with OpenAICompatModel.from_settings(settings) as model:

            async def provoke() -> object:
                # A logit_bias key that is not a token id makes llama-cpp-python's server answer HTTP 500 (and
                # stay up; an unparsable grammar would crash it). The field is added on the wire, below our seam.
                transport = _AddToBody(httpx.AsyncHTTPTransport(), {"logit_bias": {"not-a-token": 1.0}})
                async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=60.0) as client:
                    broken = OpenAICompatModel(client, dialect=Backend.llamacpp, max_retries=1, backoff_s=0.01)
                    return await broken.complete(ChatRequest(messages=[user("hi")], max_tokens=2))

            yield Harness(model=model, provoke_server_error=provoke, real=True)
        return
    if kind == "vllm-live":
        live = LLMSettings(
            backend=Backend.vllm,
            base_url=LIVE_VLLM_URL,
            model=LIVE_VLLM_MODEL,
            api_key=LIVE_VLLM_API_KEY,
            timeout_s=120.0,
            max_retries=1,
        )
        async with OpenAICompatModel.from_settings(live) as model:
            yield Harness(model=model, real=True)
        return
    dialect = Backend.vllm if kind == "vllm-mock" else Backend.openai
    fake = FakeOpenAIServer(dialect.value)
    async with fake.client() as client:
        yield _fake_harness(dialect, fake, client)
    assert not fake.rejected, f"the fake {dialect.value} server refused bodies: {fake.rejected}"
