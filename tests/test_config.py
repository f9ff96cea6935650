"""Settings come from PONDER_* variables and a .env file, nested with a double underscore."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.config import Backend, Settings


def test_env_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PONDER_LLM__BACKEND=vllm\nPONDER_LLM__BASE_URL=http://127.0.0.1:9/v1\n")
    monkeypatch.setenv("PONDER_TOOLSERVER__POOL_SIZE", "5")
    settings = Settings()
    assert settings.llm.backend is Backend.vllm
    assert settings.llm.base_url == "http://127.0.0.1:9/v1"
    assert settings.toolserver.pool_size == 5


def test_environment_beats_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PONDER_LLM__BACKEND=vllm\n")
    monkeypatch.setenv("PONDER_LLM__BACKEND", "openai")
    assert Settings().llm.backend is Backend.openai


def test_bad_value_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PONDER_LLM__BACKEND", "gpt5")
    with pytest.raises(ValueError, match="backend"):
        Settings()
