"""The same model in another weight layout: its Q6_K tensors as Q8_0, for hosts where Q6_K batches badly.

Why (issue 36, ``benchmarks/weight_layout.py``): llama.cpp's CPU backend multiplies a many-row batch fast only for
weights it can repack into interleaved tiles (Q4_0, Q4_K, IQ4_NL, MXFP4 on AVX2; ``ggml-cpu/repack.cpp``) or hand
to its tinyBLAS kernels (F32, F16, BF16, Q8_0, Q4_0, Q5_0, IQ4_NL; ``llamafile/sgemm.cpp``). A Q6_K tensor has
neither on x86: every row of a batch pays a full dot-product pass over it. In the default Q4_K_M file the Q6_K
tensors are the output projection (151,936 x 1,536, the largest matrix) and half the layers' ``ffn_down`` and
``attn_v``: about a third of the multiply-adds of a token. Re-encoding them as Q8_0 (32-value blocks, 8-bit values
and one scale each) puts them on tinyBLAS; the Q4_K tensors are copied bit for bit. Q8_0 holds each Q6_K value to
within half a step, 1/254 of its block's largest magnitude (plus the rounding of its fp16 scale), an eighth of
Q6_K's own step. Measured on an AVX2 host (``benchmarks/weight_layout.py``, README): 8 concurrent calls 1.44x the
tokens per second, one stream unchanged; on 100 GSM8K, HumanEval+ and MBPP+ items no accuracy difference is
significant (8 items right only as shipped, 4 only in this layout, p = 0.39) but the answers often differ (a long
greedy chain diverges on any change of rounding), so it stays opt-in (``PONDER_LLM__WEIGHT_LAYOUT``). The file
grows by 105 MB (1.12 -> 1.22 GB).

The conversion uses ``gguf`` (llama.cpp's own Python package: the reader, the writer and numpy (de)quantizers), runs
once (about 30 s), and is stamped like the default model (size + mtime) so later starts reuse it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ponder.config import LLMSettings, WeightLayout
from ponder.errors import ModelFileError
from ponder.llm.embedded._model_files import ensure_default_model
from ponder.llm.embedded._runtime import check_model_file


def model_file(settings: LLMSettings) -> Path:
    """The GGUF the embedded backend loads for ``settings``: ``model_path`` (checked) or the default model,
    assembled and verified in the cache, in the weight layout the settings name."""
    if settings.model_path is not None:
        path = settings.model_path.expanduser()
        check_model_file(path)
    else:
        path = ensure_default_model(settings.cache_dir.expanduser())
    return ensure_layout(path, settings.weight_layout)


def layout_path(path: Path, layout: WeightLayout) -> Path:
    return path if layout is WeightLayout.as_shipped else path.with_name(f"{path.stem}.{layout.value}.gguf")


def ensure_layout(path: Path, layout: WeightLayout) -> Path:
    """``path`` in ``layout``: the file itself for the shipped layout, else a converted copy beside it, made once."""
    if layout is WeightLayout.as_shipped:
        return path
    target = layout_path(path, layout)
    stamp = target.with_suffix(".ok")
    source = path.stat()
    expected = f"{source.st_size}:{source.st_mtime_ns}"
    if target.is_file() and stamp.is_file():
        st = target.stat()
        if stamp.read_text().strip() == f"{expected}>{st.st_size}:{st.st_mtime_ns}":
            return target
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    try:
        convert_q6_k_to_q8_0(path, tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    stamp.write_text(f"{expected}>{st.st_size}:{st.st_mtime_ns}\n")
    return target


def convert_q6_k_to_q8_0(src: Path, dst: Path) -> int:
    """Copy the GGUF ``src`` to ``dst`` with every Q6_K tensor re-encoded as Q8_0 and everything else (metadata,
    other tensors) unchanged; returns how many tensors were re-encoded."""
    try:
        import gguf
        import numpy as np
        from gguf import GGMLQuantizationType as Q
    except ImportError as exc:
        raise ModelFileError(
            "the q8_0-for-q6_k weight layout needs the gguf package", hint="pip install 'ponder[embedded]'"
        ) from exc
    reader = gguf.GGUFReader(src)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(dst, arch)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by the writer itself
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    converted = 0
    tensors = []
    for tensor in reader.tensors:
        data, qtype = tensor.data, tensor.tensor_type
        if qtype == Q.Q6_K:
            data = gguf.quants.quantize(gguf.quants.dequantize(data, Q.Q6_K).astype(np.float32), Q.Q8_0)
            qtype = Q.Q8_0
            converted += 1
        tensors.append(data)
        writer.add_tensor_info(tensor.name, data.shape, data.dtype, data.nbytes, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for data in tensors:
        writer.write_tensor_data(data)
    writer.close()
    return converted
