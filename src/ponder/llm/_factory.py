"""Build the configured :class:`ChatModel` from settings (the only place backends are chosen)."""

from __future__ import annotations

from ponder.config import Backend, LLMSettings
from ponder.errors import ConfigError
from ponder.llm._types import ChatModel


def build_model(settings: LLMSettings) -> ChatModel:
    if settings.backend is Backend.embedded:
        from ponder.llm.embedded import EmbeddedModel

        return EmbeddedModel.from_settings(settings)
    if not settings.base_url:
        raise ConfigError(
            f"backend {settings.backend.value!r} needs a server URL",
            hint="set PONDER_LLM__BASE_URL (e.g. http://localhost:8000/v1) or pass --base-url",
        )
    from ponder.llm.openai_compat import OpenAICompatModel

    return OpenAICompatModel.from_settings(settings)
