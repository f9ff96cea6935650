"""Fix ggml's AMX tile configuration in a llama-cpp-python source tree (used by scripts/setup.sh for AMX builds).

ggml-cpu/amx/mmq.cpp fills a ``tile_config_t`` on the stack and passes it to ``_tile_loadconfig``. GCC 12 does not
see the builtin read the structure, drops the stores to its rows and column widths as dead, and ``ldtilecfg`` loads
palette 1 with every tile unconfigured: the first ``tilezero`` raises #UD and the process dies with SIGILL (seen in
the disassembly: only ``palette_id = 1`` is stored; upstream: llama.cpp PR #26954). A compiler barrier that takes the
structure's address keeps the stores. Idempotent; fails loudly when the source no longer looks as expected.

    python scripts/patch_llama_amx.py path/to/llama_cpp_python-0.3.36
"""

from __future__ import annotations

import sys
from pathlib import Path

TARGET = "vendor/llama.cpp/ggml/src/ggml-cpu/amx/mmq.cpp"
BEFORE = "    _tile_loadconfig(&tc);\n"
BARRIER = '    __asm__ __volatile__("" : : "r"(&tc) : "memory");  // ponder: GCC drops the stores above otherwise\n'


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = Path(sys.argv[1]) / TARGET
    text = path.read_text()
    if BARRIER in text:
        return
    if text.count(BEFORE) != 1:
        sys.exit(f"{path}: expected exactly one `_tile_loadconfig(&tc);` line; the AMX fix needs updating")
    path.write_text(text.replace(BEFORE, BARRIER + BEFORE))
    print(f"patched {path}")


if __name__ == "__main__":
    main()
