"""What the API tests share with the server they start in another process: settings and the fake model."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from ponder.agents import Task
from ponder.api import RunRecord, RunStatus
from ponder.config import APISettings, Settings
from ponder.llm import ANSWER_MARKER, ChatRequest, JsonSchemaConstraint


def typed_answer(schema: dict[str, Any]) -> Any:
    """A valid value for the ``answer`` property of a strategy's output schema (number, bool, choice, text)."""
    prop = schema.get("properties", {}).get("answer", {})
    if "$ref" in prop:
        prop = schema.get("$defs", {}).get(prop["$ref"].rsplit("/", 1)[-1], {})
    if prop.get("enum"):
        return prop["enum"][0]
    if "const" in prop:
        return prop["const"]
    return {"number": 4, "integer": 4, "boolean": True}.get(prop.get("type", "string"), "4")


def reply(request: ChatRequest) -> Any:
    """Plays the model: a valid chain-of-thought object for constrained calls; a reasoning that ends in its
    ``Final answer:`` line when asked for one in plain text (CoT's text form); a short word otherwise."""
    if isinstance(request.constraint, JsonSchemaConstraint):
        return {"reasoning": "2 plus 2 is 4", "answer": typed_answer(request.constraint.json_schema)}
    if _wants_final_line([m.content for m in request.messages], request.stop):
        return f"2 plus 2 is 4\n{ANSWER_MARKER} 4"
    return "hello"


def _wants_final_line(contents: list[Any], stop: list[str]) -> bool:
    return ANSWER_MARKER not in stop and any(isinstance(c, str) and ANSWER_MARKER in c for c in contents[:1])


def model_server() -> tuple[FastAPI, list[dict[str, Any]]]:
    """An OpenAI-compatible chat endpoint answering every constrained request with a valid typed object."""
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    @app.post("/v1/chat/completions", response_model=None)
    async def complete(request: Request) -> dict[str, Any] | StreamingResponse:
        body = await request.json()
        seen.append(body)
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema") or (
            (body.get("structured_outputs") or {}).get("json") or {}
        )
        content = json.dumps({"reasoning": "worker", "answer": typed_answer(schema)})
        if not schema and _wants_final_line([m.get("content") for m in body["messages"]], body.get("stop") or []):
            content = f"worker\n{ANSWER_MARKER} 4"
        if body.get("stream"):  # the OpenAI streaming format: content chunks, then finish and usage, then [DONE]
            chunks = [
                {"choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": None}]},
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}},
            ]
            lines = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return StreamingResponse(iter([lines]), media_type="text/event-stream")
        return {
            "id": "x",
            "object": "chat.completion",
            "model": body.get("model", "m"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5},
        }

    return app, seen


def slow_reply(delay_s: float) -> Any:
    async def fn(request: ChatRequest) -> Any:
        await asyncio.sleep(delay_s)
        return reply(request)

    return fn


def make_settings(
    data_dir: Path, keys: list[str] | None = None, database_url: str | None = None, **api: Any
) -> Settings:
    url = database_url or f"sqlite:///{data_dir / 'runs.sqlite'}"
    return Settings(data_dir=data_dir, api=APISettings(database_url=url, api_keys=keys or [], **api))


def main() -> None:
    """Serve the test app in this process: ``python -m tests.api._support --data DIR --port N [--delay S]``."""
    import uvicorn

    from ponder.api import create_app
    from tests.api._strategies import TEST_STRATEGIES
    from tests.fakes import FunctionModel

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--key", action="append", default=[])
    args = parser.parse_args()
    model = FunctionModel(slow_reply(args.delay) if args.delay else reply)
    app = create_app(make_settings(args.data, args.key), model=model, strategies=TEST_STRATEGIES)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()


def record(run_id: str, owner: str = "alice", status: RunStatus = RunStatus.queued) -> RunRecord:
    """A new run record for store tests."""
    now = time.time()
    return RunRecord(
        id=run_id, owner=owner, kind="run", strategy="cot", task=Task(question="q"), options={"k": 1},
        status=status, created_at=now, updated_at=now,
    )  # fmt: skip
