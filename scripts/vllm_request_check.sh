#!/usr/bin/env bash
# Validate every request body ponder builds for vLLM with vLLM's own request model (tests/llm/test_vllm_request_model.py)
# in a throwaway venv: vllm==0.33.0 installs on a CPU-only machine (~5 minutes, ~9.5 GB), nothing else changes.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VLLM_CHECK_VENV:-$(mktemp -d)/venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install -q "vllm==${VLLM_VERSION:-0.33.0}" -e . pytest pytest-asyncio pytest-timeout
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/llm/test_vllm_request_model.py "$@"
