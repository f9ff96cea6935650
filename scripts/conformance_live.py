#!/usr/bin/env python
"""Run the ChatModel conformance suite (tests/llm/test_conformance.py) against a live vLLM server.

    PONDER_CONFORMANCE_VLLM_URL=http://gpu-host:8000/v1 PONDER_CONFORMANCE_VLLM_MODEL=Qwen/Qwen2.5-1.5B-Instruct \\
        python scripts/conformance_live.py [extra pytest args]

or ``python scripts/conformance_live.py --url http://gpu-host:8000/v1 --model NAME``. Without a URL it says so and
exits 0 (nothing to test). ``PONDER_CONFORMANCE_VLLM_API_KEY`` (or ``--api-key``) is sent as a bearer token.
The vLLM server must be one with ``structured_outputs`` support (vLLM >= 0.10.2); older servers ignore the field
and the regex/choice tests fail, which is the point of running this.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("PONDER_CONFORMANCE_VLLM_URL", ""), help="vLLM /v1 URL")
    parser.add_argument("--model", default=os.environ.get("PONDER_CONFORMANCE_VLLM_MODEL", ""), help="served model")
    parser.add_argument("--api-key", default=os.environ.get("PONDER_CONFORMANCE_VLLM_API_KEY", ""))
    args, pytest_args = parser.parse_known_args()
    if not args.url:
        print("conformance_live: PONDER_CONFORMANCE_VLLM_URL (or --url) is not set; nothing to test.")
        return 0
    env = {
        **os.environ,
        "PONDER_CONFORMANCE_VLLM_URL": args.url,
        "PONDER_CONFORMANCE_VLLM_MODEL": args.model,
        "PONDER_CONFORMANCE_VLLM_API_KEY": args.api_key,
    }
    command = [sys.executable, "-m", "pytest", "tests/llm/test_conformance.py", "-k", "vllm-live", "-v"]
    return subprocess.call([*command, *pytest_args], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
