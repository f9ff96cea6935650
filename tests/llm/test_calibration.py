"""The embedded engine calibrated per host (issue 36): step costs measured once per build + model, and the scheduler's
rows per step and draft lengths drawn from them instead of from constants tuned on one host."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ponder.llm import ChatRequest, user
from ponder.llm.embedded._calibration import Calibration, Host, assumed, load_or_measure, stamp_path
from ponder.llm.embedded._scheduler import DraftRecord

if TYPE_CHECKING:
    from ponder.llm.embedded import EmbeddedModel

HOST = Host(cpu="test", isa=[], cores=2)


def calibration(step: dict[int, float], verify: dict[int, float] | None = None) -> Calibration:
    return Calibration(key="test", host=HOST, threads=0, threads_batch=0, step_s=step, verify_s=verify or {})


# Measured on an AVX2-only AMD host (2 cores, Q4_K_M): a verified row costs nearly a plain step's price.
AVX2 = calibration(
    {1: 0.0555, 2: 0.0947, 3: 0.1187, 4: 0.176, 6: 0.2615, 8: 0.5743, 12: 0.5838, 16: 0.5838},
    {2: 0.094, 3: 0.1379, 4: 0.1873, 5: 0.2003, 7: 0.2818, 9: 0.5074},
)
# The first host's rule of thumb (Intel with AMX): a step of 9 rows costs about twice a step of one.
CHEAP = assumed(16, 8)


def test_drafts_pay_only_where_the_costs_let_them() -> None:
    assert CHEAP.draft_length(0.5, 8) > 0
    assert CHEAP.draft_length(0.9, 8) > CHEAP.draft_length(0.5, 8)  # surer drafts are drafted longer
    assert CHEAP.draft_length(0.1, 8) == 0  # prose-like acceptance: not even there
    for a in (0.2, 0.5, 0.7):
        assert AVX2.draft_length(a, 8) == 0, a  # two rows cost 1.7 steps: a draft must be nearly certain
    assert AVX2.draft_length(0.95, 8) > 0
    assert CHEAP.draft_length(0.9, 0) == 0  # no room left in the budget


def test_a_busy_step_takes_drafts_only_when_they_raise_its_throughput() -> None:
    linear = calibration({1: 1.0, 8: 8.0}, {2: 2.0, 9: 9.0})  # every row costs the same: a draft never pays
    assert linear.draft_length(0.9, 8, rows=4) == 0
    flat = calibration({1: 1.0, 16: 1.2}, {2: 1.05, 9: 1.2})  # rows nearly free: drafting pays in a busy step too
    assert flat.draft_length(0.6, 8, rows=4) > 0


def test_rows_per_step_follow_the_measured_throughput_not_a_constant() -> None:
    # 8 rows cost more per row than 3 on the AVX2 host: 8 waiting calls decode 3 at a time
    assert AVX2.best_rows(8) == 3
    assert AVX2.best_rows(16) == 16  # 16 rows are the most rows per second there
    assert AVX2.best_rows(1) == 1
    for demand in (2, 5, 8, 16):  # where every row is cheap, every call that wants to run does
        assert CHEAP.best_rows(demand) == demand


def test_costs_interpolate_and_a_noisy_cheaper_larger_step_is_flattened() -> None:
    from ponder.llm.embedded._calibration import _monotone

    assert _monotone({1: 1.0, 2: 3.0, 3: 2.0}) == {1: 1.0, 2: 3.0, 3: 3.0}
    cal = calibration({1: 1.0, 3: 3.0})
    assert cal.cost(2) == pytest.approx(2.0)
    assert cal.cost(5) == pytest.approx(5.0)  # extrapolated from the last two sizes
    assert cal.cost(2, one_sequence=True) == pytest.approx(2.0)  # no verify table: the step table


def test_a_draft_record_learns_from_drafts_it_never_verified() -> None:
    record = DraftRecord()
    start = record.acceptance
    for _ in range(3):  # shadow drafts that the decoded tokens follow to their end
        record.shadow = [5, 6, 7]
        for token in (5, 6, 7):
            record.observe(token)
        assert not record.shadow
    assert record.acceptance > 0.85 > start
    seen = [record.acceptance]
    for _ in range(10):  # then drafts that miss at once: recent text counts most
        record.shadow = [1, 2]
        record.observe(9)
        seen.append(record.acceptance)
    assert seen == sorted(seen, reverse=True) and seen[-1] < 0.25
    record.observe(3)  # no shadow open: nothing changes
    assert record.acceptance == seen[-1]


# --- on the real model ------------------------------------------------------------------------------------------

COPY = (
    "Repeat this Python function exactly, with no comment:\n\n"
    "def clamp(value, low, high):\n    if value < low:\n        return low\n    if value > high:\n"
    "        return high\n    return value\n"
)
PROSE = "Describe how a bicycle works to a child."


def greedy(prompt: str, max_tokens: int = 48) -> ChatRequest:
    return ChatRequest(messages=[user(prompt)], max_tokens=max_tokens, temperature=0.0)


@pytest.fixture(scope="module")
def model_path() -> Path:
    pytest.importorskip("llama_cpp", reason="the embedded backend needs `pip install 'ponder[embedded]'`")
    from ponder.config import LLMSettings
    from ponder.llm.embedded._model_files import ensure_default_model

    return ensure_default_model(LLMSettings().cache_dir)


@pytest.mark.embedded
def test_the_costs_are_measured_once_per_build_and_model_and_stamped(model_path: Path, tmp_path: Path) -> None:
    from ponder.llm.embedded._runtime import LlamaRuntime

    runtime = LlamaRuntime(model_path, n_ctx=256, n_threads=1)
    try:
        kwargs = {"max_sequences": 4, "draft_tokens": 2, "threads": None, "default_threads": 1, "kv_tokens": 1024}
        cal = load_or_measure(runtime, model_path, tmp_path, **kwargs)  # type: ignore[arg-type]
        stamp = stamp_path(tmp_path, model_path, max_sequences=4, draft_tokens=2, threads=None, kv_tokens=1024)
        assert stamp.is_file()
        assert sorted(cal.step_s) == [1, 2, 3, 4] and sorted(cal.verify_s) == [2, 3]
        assert all(s > 0 for s in cal.step_s.values())
        assert list(cal.step_s.values()) == sorted(cal.step_s.values())  # more rows never cost less
        assert cal.threads in cal.thread_trials and cal.threads_batch in cal.thread_trials
        again = load_or_measure(runtime, model_path, tmp_path, **kwargs)  # type: ignore[arg-type]
        assert again == cal  # read from the stamp, not measured again
        other = stamp_path(tmp_path, model_path, max_sequences=8, draft_tokens=2, threads=None, kv_tokens=1024)
        assert other != stamp  # other settings are measured on their own
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def calibrated(model_path: Path) -> Iterator[dict[str, EmbeddedModel]]:
    """Two small batching models on the default GGUF, each with costs given instead of measured."""
    from ponder.llm.embedded import BatchingOptions, EmbeddedModel

    def make(cal: Calibration) -> EmbeddedModel:
        options = BatchingOptions(
            max_sequences=4, kv_tokens=2048, prefill_chunk=64, max_queue=16, draft_tokens=8, calibration=cal
        )
        return EmbeddedModel(model_path, batching=options)

    # drafts pay from ~55 % acceptance; 4 rows per step give fewer rows per second than 2
    models = {
        "selective": make(
            calibration({1: 1.0, 2: 1.1, 3: 3.0, 4: 4.0}, {r: 1.0 + 0.5 * (r - 1) for r in range(2, 10)})
        ),
        "expensive": make(calibration({1: 1.0, 4: 4.0}, {r: float(r) for r in range(2, 10)})),
    }
    yield models
    for m in models.values():
        asyncio.run(m.aclose())


@pytest.mark.embedded
async def test_prose_falls_back_to_plain_decoding_and_a_copy_keeps_drafting(
    calibrated: dict[str, EmbeddedModel],
) -> None:
    model = calibrated["selective"]
    stats = model._shared.batcher().stats

    async def drafted(m: EmbeddedModel, prompt: str) -> tuple[int, int, str]:
        d, a = stats.drafted, stats.accepted
        reply = await m.complete(greedy(prompt))
        return stats.drafted - d, stats.accepted - a, reply.choices[0].text

    forced, _, _ = await drafted(model.always_speculating(), PROSE)
    auto, _, _ = await drafted(model, PROSE)
    assert forced > 0, "the prose prompt offered no draft at all: the test proves nothing"
    assert auto <= forced // 2, (auto, forced)
    copy_drafted, copy_accepted, text = await drafted(model, COPY)
    plain = await model.without_speculation().complete(greedy(COPY))
    assert copy_accepted > 0 and copy_accepted >= copy_drafted // 2, (copy_drafted, copy_accepted)
    assert text == plain.choices[0].text


@pytest.mark.embedded
async def test_where_a_verified_row_costs_a_step_nothing_is_drafted(calibrated: dict[str, EmbeddedModel]) -> None:
    model = calibrated["expensive"]
    stats = model._shared.batcher().stats
    before = stats.drafted
    for prompt in (PROSE, COPY):
        await model.complete(greedy(prompt, 32))
    assert stats.drafted == before


@pytest.mark.embedded
async def test_calls_past_the_calibrated_knee_wait_and_all_complete(calibrated: dict[str, EmbeddedModel]) -> None:
    model = calibrated["selective"]
    stats = model._shared.batcher().stats
    capped = stats.capped
    prompts = ["Name a color.", "Name a fruit.", "Name a city.", "Name an animal."]
    replies = await asyncio.gather(*(model.complete(greedy(p, 8)) for p in prompts))
    assert all(r.choices[0].text for r in replies)
    assert stats.max_running == 2  # 2 rows per second-best, 4 would be worse: the other two waited
    assert stats.capped > capped
