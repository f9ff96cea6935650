"""The q8_0-for-q6_k weight layout (issue 36): Q6_K tensors re-encoded as Q8_0, everything else copied unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ponder.config import WeightLayout
from ponder.llm.embedded._weight_layout import convert_q6_k_to_q8_0, ensure_layout, layout_path

gguf = pytest.importorskip("gguf")
Q = gguf.GGMLQuantizationType
Q6_K_BLOCK = 210  # bytes per 256 values: ql 128, qh 64, scales 16, d (fp16) 2


def q6_k_bytes(rows: int, blocks: int, seed: int = 0) -> np.ndarray:
    """Random but valid Q6_K rows (a finite fp16 scale per block)."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(rows, blocks, Q6_K_BLOCK), dtype=np.uint8)
    raw[:, :, 208:210] = np.frombuffer(np.float16(0.01).tobytes(), dtype=np.uint8)
    return raw.reshape(rows, blocks * Q6_K_BLOCK)


def write_model(path: Path) -> dict[str, np.ndarray]:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("tiny")
    writer.add_uint32("tiny.answer", 42)
    tensors = {
        "output.weight": (q6_k_bytes(8, 2), Q.Q6_K),
        "blk.0.attn_norm.weight": (np.linspace(-1, 1, 64, dtype=np.float32), Q.F32),
        "blk.0.ffn_up.weight": (gguf.quants.quantize(np.ones((8, 64), dtype=np.float32), Q.Q8_0), Q.Q8_0),
    }
    for name, (data, qtype) in tensors.items():
        writer.add_tensor_info(name, data.shape, data.dtype, data.nbytes, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for data, _ in tensors.values():
        writer.write_tensor_data(data)
    writer.close()
    return {name: data for name, (data, _) in tensors.items()}


def test_q6_k_tensors_become_q8_0_with_their_values_and_the_rest_is_copied(tmp_path: Path) -> None:
    src, dst = tmp_path / "tiny.gguf", tmp_path / "tiny.q8.gguf"
    original = write_model(src)
    assert convert_q6_k_to_q8_0(src, dst) == 1
    before, after = gguf.GGUFReader(src), gguf.GGUFReader(dst)
    types = {t.name: t.tensor_type for t in after.tensors}
    assert types == {"output.weight": Q.Q8_0, "blk.0.attn_norm.weight": Q.F32, "blk.0.ffn_up.weight": Q.Q8_0}
    old = {t.name: t for t in before.tensors}
    for t in after.tensors:
        if t.name != "output.weight":  # untouched tensors are copied bit for bit
            assert np.array_equal(np.asarray(t.data), np.asarray(old[t.name].data)), t.name
    want = gguf.quants.dequantize(old["output.weight"].data, Q.Q6_K)
    got = gguf.quants.dequantize(next(t for t in after.tensors if t.name == "output.weight").data, Q.Q8_0)
    assert got.shape == want.shape == (8, 512)
    block_max = np.abs(want.reshape(8, -1, 32)).max(axis=2, keepdims=True)
    # half a Q8_0 step (1/254 of the block's largest magnitude) plus the fp16 scale's rounding: within one step
    assert np.all(np.abs(got - want).reshape(8, -1, 32) <= block_max / 127)
    assert np.abs(got - want).mean() < np.abs(want).mean() / 200
    assert after.fields["tiny.answer"].contents() == 42
    assert after.fields["general.name"].contents() == "tiny"
    assert original["output.weight"].shape == (8, 2 * Q6_K_BLOCK)


def test_a_layout_is_made_once_and_remade_when_the_model_changes(tmp_path: Path) -> None:
    src = tmp_path / "tiny.gguf"
    write_model(src)
    assert ensure_layout(src, WeightLayout.as_shipped) == src
    made = ensure_layout(src, WeightLayout.q8_0_for_q6_k)
    assert made == layout_path(src, WeightLayout.q8_0_for_q6_k) and made.is_file()
    first = made.stat().st_mtime_ns
    assert ensure_layout(src, WeightLayout.q8_0_for_q6_k).stat().st_mtime_ns == first  # reused, not made again
    write_model(src)  # a new model file (new mtime): its layout is made again
    assert ensure_layout(src, WeightLayout.q8_0_for_q6_k).stat().st_mtime_ns != first
