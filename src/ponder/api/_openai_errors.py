"""OpenAI's error object, for every answer under ``/v1`` (its clients read ``error.message`` and the status)."""

from __future__ import annotations

from typing import Any

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(
    status: int, message: str, *, code: str, param: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """OpenAI's error object (``message``, ``type``, ``param``, ``code``); ponder's own fields ride along."""
    body = {k: v for k, v in (extra or {}).items() if k not in ("type", "message")}
    return {
        **body,
        "message": message,
        "type": _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        "param": param,
        "code": code,
    }
