"""The API on the real embedded model (one short question): what `ponder serve` does out of the box."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import openai
import pytest

from ponder.api import create_app
from tests.api._support import make_settings
from tests.api.conftest import serve

if TYPE_CHECKING:
    from ponder.llm.embedded import EmbeddedModel


@pytest.mark.embedded
async def test_the_openai_client_gets_a_typed_answer_from_the_embedded_model(
    embedded_model: EmbeddedModel, tmp_path: Path
) -> None:
    with serve(create_app(make_settings(tmp_path), model=embedded_model)) as server:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="local", max_retries=0, timeout=300)
        async with client:
            completion = await client.chat.completions.create(
                model="ponder-cot",
                messages=[{"role": "user", "content": "A farmer has 3 pens with 4 sheep in each pen. How many sheep?"}],
                extra_body={"family": "number", "ponder_options": {"max_tokens": 256}},
            )
    assert completion.choices[0].message.content == "12"
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
