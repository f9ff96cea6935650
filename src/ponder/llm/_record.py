"""Record every request and response of a model to JSONL, and replay them later without the model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from ponder.errors import ConfigError, ModelRequestRejected
from ponder.llm._types import Capabilities, ChatModel, ChatRequest, ChatResponse, ModelWrapper


class RecordingModel(ModelWrapper):
    """Delegates to ``inner`` and appends ``{"key", "request", "response"}`` lines to ``path``."""

    def __init__(self, inner: ChatModel, path: Path) -> None:
        super().__init__(inner)
        self.path = path
        self._lock = asyncio.Lock()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        response = await self.inner.complete(request)
        line = json.dumps(
            {
                "key": request.fingerprint(),
                "request": request.model_dump(mode="json"),
                "response": response.model_dump(mode="json"),
            }
        )
        async with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        return response


class ReplayModel:
    """Answers requests from a JSONL recording; identical requests replay in the order they were recorded."""

    def __init__(self, path: Path, *, name: str = "replay", capabilities: Capabilities | None = None) -> None:
        if not path.is_file():
            raise ConfigError(f"no recording at {path}", hint="record one with RecordingModel first")
        self._name = name
        self._capabilities = capabilities or Capabilities(
            constraints=frozenset({"json_schema", "regex", "choice", "grammar"}), native_n=True
        )
        self._answers: dict[str, list[ChatResponse]] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                response = ChatResponse.model_validate(record["response"])
                key = str(record["key"])
            except (ValueError, KeyError) as exc:
                raise ConfigError(f"{path}:{number}: not a recording line: {exc}") from exc
            self._answers.setdefault(key, []).append(response)

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def complete(self, request: ChatRequest) -> ChatResponse:
        queue = self._answers.get(request.fingerprint())
        if not queue:
            raise ModelRequestRejected(
                "this request is not in the recording",
                hint="re-record with RecordingModel; the request differs from every recorded one",
            )
        return queue.pop(0) if len(queue) > 1 else queue[0]
