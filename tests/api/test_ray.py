"""Eval items as tasks of a real local Ray instance, every worker calling a shared OpenAI-compatible model
endpoint (a small HTTP server on loopback playing the model)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ponder.api import create_app
from ponder.config import Backend, LLMSettings
from ponder.errors import ConfigError
from tests.api._strategies import TEST_STRATEGIES
from tests.api._support import make_settings, model_server
from tests.api.conftest import Server, collect, serve
from tests.fakes import FunctionModel

ray = pytest.importorskip("ray")
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "benchmarks"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
async def test_an_eval_job_on_ray_workers(tmp_path: Path, make_server: Callable[..., Server]) -> None:
    from ponder.evals._ray import RayExecutor

    if not (SHARED / "gsm8k.jsonl.gz").is_file():
        pytest.skip("needs the shared benchmark files")
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(SHARED / "gsm8k.jsonl.gz", tmp_path / "benchmarks" / "gsm8k.jsonl.gz")
    fake_app, seen = model_server()
    with serve(fake_app) as endpoint:
        settings = make_settings(tmp_path)
        settings.llm = LLMSettings(backend=Backend.openai, base_url=endpoint.url + "/v1", model="shared", max_retries=0)

        def in_process(request: Any) -> Any:
            raise AssertionError("the items must run on the Ray workers, not in the API process")

        app = create_app(
            settings, model=FunctionModel(in_process), strategies=TEST_STRATEGIES, eval_executor=RayExecutor(settings)
        )
        with serve(app) as server:
            async with server.client(timeout=120) as client:
                job = (await client.post("/evals", json={"dataset": "gsm8k", "limit": 3, "concurrency": 2})).json()
                events = await collect(client, job["id"])
                assert json.loads(events[-1]["data"]) == {"status": "succeeded"}, events
                done = (await client.get(f"/evals/{job['id']}")).json()
    assert done["progress"]["done"] == 3
    assert done["result"]["failed"] == 0
    assert len(seen) == 6  # two calls per item (think, then answer), each made by a Ray worker
    assert all(body["model"] == "shared" for body in seen)


def test_ray_workers_need_a_shared_endpoint(tmp_path: Path) -> None:
    from ponder.evals._ray import RayExecutor

    with pytest.raises(ConfigError, match="shared model endpoint"):
        RayExecutor(make_settings(tmp_path))
