"""compose.yaml as docker-compose reads it: valid, every service of the stack there, only the toolserver near the
Docker socket, vLLM with structured outputs, tool calls, a health check, a GPU and a model cache."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = shutil.which("docker-compose")

pytestmark = pytest.mark.skipif(COMPOSE is None, reason="needs docker-compose (apt-get install docker-compose)")


def config(
    *profiles: str, keys: str | None = '["sha256:' + "a" * 64 + '"]', token: str | None = "s3cret-token"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PONDER_")}
    if keys is not None:
        env["PONDER_API_KEYS"] = keys
    if token is not None:
        env["PONDER_TOOLSERVER_TOKEN"] = token
    args = [str(COMPOSE), "-f", str(ROOT / "compose.yaml")]
    for profile in profiles:
        args += ["--profile", profile]
    return subprocess.run([*args, "config"], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)


def services(*profiles: str) -> dict[str, Any]:
    result = config(*profiles)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    return loaded


def test_the_gpu_stack() -> None:
    stack = services("gpu")
    assert {"vllm", "api", "toolserver", "postgres", "node-image"} <= set(stack)
    assert stack["vllm"]["profiles"] == ["gpu"]  # docker-compose v1's `config` lists every profile's services
    assert stack["api"]["profiles"] == ["gpu"]
    assert "profiles" not in stack["toolserver"]
    assert "profiles" not in stack["postgres"]
    vllm = stack["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    flags = " ".join(vllm["command"])
    assert "--structured-outputs-config" in flags
    assert "guided" not in flags  # the removed guided_* options are ignored by current vLLM
    assert "--enable-auto-tool-choice" in flags
    assert "--tool-call-parser=hermes" in flags
    assert "--generation-config=vllm" in flags and "--enable-prompt-tokens-details" in flags
    assert not vllm["command"][0].startswith("--") and "--model" not in flags  # the model is positional
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    assert vllm["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert any(str(v).endswith("/root/.cache/huggingface") or "huggingface" in str(v) for v in vllm["volumes"])
    api = stack["api"]
    assert api["environment"]["PONDER_LLM__BASE_URL"] == "http://vllm:8000/v1"
    assert api["environment"]["PONDER_API__DATABASE_URL"].startswith("postgresql://")
    assert api["depends_on"]["vllm"]["condition"] == "service_healthy"


def test_the_cpu_profile_runs_the_embedded_model_without_vllm() -> None:
    stack = services("cpu")
    assert stack["api-cpu"]["profiles"] == ["cpu"]
    assert "vllm" not in stack["api-cpu"]["depends_on"]
    assert stack["api-cpu"]["environment"]["PONDER_LLM__BACKEND"] == "embedded"
    assert stack["api-cpu"]["build"]["args"]["EXTRAS"] == "embedded,model"


def test_only_the_toolserver_sees_the_docker_socket() -> None:
    stack = services("gpu", "cpu", "search", "monitoring")
    assert {"searxng", "prometheus", "grafana"} <= set(stack)
    with_socket = {name for name, svc in stack.items() if "docker.sock" in yaml.safe_dump(svc.get("volumes", []))}
    assert with_socket == {"toolserver"}
    assert not any(svc.get("privileged") for svc in stack.values())


def test_the_api_refuses_to_come_up_without_keys() -> None:
    result = config("gpu", keys=None)
    assert result.returncode != 0
    assert "PONDER_API_KEYS" in result.stderr


def test_the_grafana_dashboard_charts_ponder_and_vllm() -> None:
    import json

    dashboard = json.loads((ROOT / "docker/grafana/dashboards/ponder.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert "vllm:time_per_output_token_seconds" not in exprs  # removed from vLLM; inter_token_latency replaced it
    for metric in ("ponder_runs_total", "ponder_llm_call_seconds_bucket", "ponder_tool_call_seconds_bucket", "vllm:"):
        assert metric in exprs


def test_no_placeholder_toolserver_token() -> None:
    result = config("cpu", token=None)
    assert result.returncode != 0
    assert "PONDER_TOOLSERVER_TOKEN" in result.stderr


def test_the_tracing_profile_runs_jaeger_and_the_api_can_send_to_it() -> None:
    stack = services("gpu", "tracing")
    assert stack["jaeger"]["profiles"] == ["tracing"]
    published = [p.get("published") if isinstance(p, dict) else str(p).split(":")[0] for p in stack["jaeger"]["ports"]]
    assert [int(p) for p in published] == [16686]  # only the UI: OTLP stays inside the stack
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in stack["api"]["environment"]
