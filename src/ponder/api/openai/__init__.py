"""``/v1``, the OpenAI-compatible endpoint, laid out as vLLM's entrypoints are: :mod:`.router` (routes that only
dispatch), :mod:`.protocol` (the wire format, typed), :mod:`.direct` (``ponder-direct``), :mod:`.strategy` (a
strategy model's run), :mod:`.answer` (its reply in the client's form) and :mod:`.chunks` (its stream)."""

from ponder.api.openai.router import router

__all__ = ["router"]
