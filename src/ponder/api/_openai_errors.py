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


def openai_error_of(
    status: int, error: dict[str, Any], *, param: str | None = None, hint_in_message: bool = True
) -> dict[str, Any]:
    """OpenAI's error object for one of ponder's error bodies (``PonderError.to_dict()``): the hint joins the
    message, as ``str(PonderError)`` writes it, because OpenAI clients show only the message."""
    hint = error.get("hint") if hint_in_message else None
    message = str(error.get("message", "")) + (f" ({hint})" if hint else "")
    return openai_error(status, message, code=str(error.get("type", "PonderError")), param=param, extra=error)
