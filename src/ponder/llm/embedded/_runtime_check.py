"""Does the installed llama.cpp build run on this CPU? Checked once per build, in a child process.

A llama.cpp build compiled for instructions the CPU lacks, or that fault at run time (ggml's AMX kernels on a host
whose virtual CPU advertises AMX, issue 15), kills the process with SIGILL on the first matrix product. In the
server that would take every run down with it, so the embedded backend decodes a few tokens in a child process
first (``python -m ponder.llm.embedded._runtime_check MODEL``) and turns a signal there into :class:`ModelRuntimeError`.

The verdict is kept per build: a stamp named by the hash of the installed llama.cpp libraries (names, sizes,
modification times) and the model file, so a rebuilt or reinstalled llama-cpp-python is checked again and an
unchanged one costs nothing after the first start. ``scripts/setup.sh`` runs the same check after the build.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ponder.errors import ModelFileError, ModelRuntimeError

CHECK_TIMEOUT_S = 300.0  # loading 1 GB of weights and decoding 4 tokens takes seconds; a hung build fails too
CHECK_PROMPT = "1+1="
CHECK_TOKENS = 4
LOAD_FAILED = 3  # the child's exit code when llama.cpp refuses the model file (not the build's fault)


def llama_lib_dir() -> Path | None:
    """Where the installed llama_cpp package keeps its shared libraries, found without importing it."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def build_key(model_path: Path) -> str:
    """Names one build of llama.cpp with one model file: any rebuild or reinstall changes it."""
    digest = hashlib.sha256(str(model_path.resolve()).encode())
    parts = [model_path]
    lib_dir = llama_lib_dir()
    if lib_dir is not None and lib_dir.is_dir():
        parts += sorted(p for p in lib_dir.iterdir() if p.is_file())
    for path in parts:
        st = path.stat()
        digest.update(f"\0{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def check_runtime(
    model_path: Path, stamp_dir: Path, *, command: Sequence[str] | None = None, timeout_s: float = CHECK_TIMEOUT_S
) -> None:
    """Raise :class:`ModelRuntimeError` unless this build of llama.cpp decodes with ``model_path`` on this CPU.

    ``command`` replaces the child process (tests use one that dies with SIGILL); a passing check leaves a stamp
    in ``stamp_dir`` and later calls return at once."""
    stamp = stamp_dir / f"llama-runtime-{build_key(model_path)}.ok"
    if command is None and stamp.is_file():
        return
    argv = list(command or [sys.executable, "-m", "ponder.llm.embedded._runtime_check", str(model_path)])
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ModelRuntimeError(
            f"the llama.cpp runtime check did not finish within {timeout_s:g} s (loading {model_path.name} and "
            f"decoding {CHECK_TOKENS} tokens)",
            hint="the machine may be out of memory or heavily loaded; try again, or rebuild llama-cpp-python",
        ) from exc
    tail = proc.stderr.decode("utf-8", "replace").strip()[-800:]
    if proc.returncode < 0:
        name = _signal_name(-proc.returncode)
        cause = (
            "the build uses instructions this CPU does not have or cannot run (for example ggml's AMX kernels, or "
            "a -march=native build made on another host)"
            if -proc.returncode == signal.SIGILL
            else "llama.cpp crashed"
        )
        raise ModelRuntimeError(
            f"the embedded llama.cpp build died with {name} while decoding a test prompt in a child process: {cause}"
            + (f"; its last output: {tail}" if tail else "")
        )
    if proc.returncode == LOAD_FAILED:
        raise ModelFileError(f"llama.cpp could not load {model_path}: {tail} (the file may be truncated or corrupted)")
    if proc.returncode != 0:
        raise ModelRuntimeError(
            f"the llama.cpp runtime check failed with exit code {proc.returncode}: {tail or '(no output)'}",
            hint="see the message; if llama_cpp does not import, reinstall it with ./scripts/setup.sh",
        )
    stamp_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_bytes(proc.stdout[-4096:])


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _decode(model_path: str) -> dict[str, object]:
    """The child's work: load the model and decode a few tokens greedily."""
    import llama_cpp

    try:
        llama = llama_cpp.Llama(model_path=model_path, n_ctx=256, n_threads=1, n_gpu_layers=0, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(LOAD_FAILED)
    out: Any = llama.create_completion(CHECK_PROMPT, max_tokens=CHECK_TOKENS, temperature=0.0)
    return {
        "ok": True,
        "text": out["choices"][0]["text"],
        "llama_cpp": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode(),
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m ponder.llm.embedded._runtime_check MODEL.gguf")
    print(json.dumps(_decode(sys.argv[1])))
