"""RecordingModel writes JSONL that ReplayModel answers from, without the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ponder.errors import ConfigError, ModelRequestRejected
from ponder.llm import ChatRequest, Choice, RecordingModel, RegexConstraint, ReplayModel, user
from tests.fakes import ScriptedModel


def _request(text: str, **kw: object) -> ChatRequest:
    return ChatRequest(messages=[user(text)], **kw)  # type: ignore[arg-type]


async def test_round_trip_replays_the_same_responses_in_order(tmp_path: Path) -> None:
    path = tmp_path / "rec" / "calls.jsonl"
    inner = ScriptedModel(["first", Choice(text="cut", finish_reason="length"), "second", "a", "b"])
    recorder = RecordingModel(inner, path)
    constrained = _request("code?", constraint=RegexConstraint(pattern=r"\d+"), max_tokens=3)
    originals = [
        await recorder.complete(_request("q")),
        await recorder.complete(constrained),
        await recorder.complete(_request("q")),
        await recorder.complete(_request("two", n=2)),
    ]
    inner.assert_complete()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["key"] for line in lines] == [r.fingerprint() for r in [_request("q"), constrained, _request("q")]] + [
        _request("two", n=2).fingerprint()
    ]

    replay = ReplayModel(path, name="replayed")
    assert await replay.complete(constrained) == originals[1]
    assert (await replay.complete(_request("q"))).text == "first"
    assert (await replay.complete(_request("q"))).text == "second"
    assert (await replay.complete(_request("q"))).text == "second", "the last answer repeats"
    assert [c.text for c in (await replay.complete(_request("two", n=2))).choices] == ["a", "b"]
    assert (await replay.complete(constrained)).choices[0].finish_reason == "length"


async def test_replay_refuses_an_unrecorded_request(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await RecordingModel(ScriptedModel(["x"]), path).complete(_request("q"))
    with pytest.raises(ModelRequestRejected, match="not in the recording"):
        await ReplayModel(path).complete(_request("q", temperature=0.5))


def test_replay_of_a_missing_or_broken_file_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no recording"):
        ReplayModel(tmp_path / "none.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"key": "k"}\n')
    with pytest.raises(ConfigError, match=r"broken.jsonl:1"):
        ReplayModel(broken)
