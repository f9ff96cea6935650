#!/usr/bin/env bash
# Set up everything ponder needs on a fresh Debian/Ubuntu machine (run as root, or with sudo available):
# system packages, the Docker engine, a virtual environment with ponder and its extras, the default model,
# the sandbox image and the default search index + knowledge base. Idempotent: a second run does little.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

APT_PACKAGES=(docker.io mmdebstrap wordnet-base postgresql chromium docker-compose iproute2)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting the Docker engine"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl start docker
  else
    $SUDO sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
pip install -q --upgrade pip >/dev/null 2>&1 || true

# llama.cpp, built for a fixed instruction set chosen from /proc/cpuinfo, never -march=native (a native wheel
# crashes on other hosts). GGML_NATIVE=OFF alone gives ggml's x86-64 baseline: SSE4.2, AVX, AVX2, BMI2, FMA, F16C.
# Measured side by side on this project's hosts (benchmarks/llama_builds.py, README): the AVX-512 set prefills 1.46x
# the baseline, AVX-512 + AMX 1.63x AVX-512 and makes batched decoding 1.6x cheaper. ggml's AMX kernels fault
# (SIGILL, issue 15) because GCC drops the stores that fill the tile configuration before `ldtilecfg`; an AMX build
# is made from the sdist with a one-line compiler barrier there (scripts/patch_llama_amx.py, the upstream bug:
# llama.cpp PR #26954). LLAMA_CMAKE_ARGS (or CMAKE_ARGS) builds for a specific CPU. The wheel is built with pip's
# cache off into .cache/wheels/llama-<hash of the flags>, so pip never hands a wheel built with other flags to this
# one; the self-check below (and the server's, once per build) catches a build this CPU cannot run and falls back.
LLAMA_VERSION=0.3.36
PORTABLE_ARGS="-DGGML_NATIVE=OFF"
AVX512_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON"
AMX_ARGS="$AVX512_ARGS -DGGML_AMX_TILE=ON -DGGML_AMX_INT8=ON -DGGML_AMX_BF16=ON"
BASELINE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_BMI2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF"
default_llama_args() {
  local flags
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true) "
  has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
  if has avx512f avx512bw avx512vl avx512_vnni avx512vbmi avx512_bf16 amx_tile amx_int8 amx_bf16; then
    echo "$AMX_ARGS"
  elif has avx512f avx512bw avx512vl avx512_vnni avx512vbmi avx512_bf16; then
    echo "$AVX512_ARGS"
  else
    echo "$PORTABLE_ARGS"
  fi
}
LLAMA_ARGS=${LLAMA_CMAKE_ARGS:-${CMAKE_ARGS:-$(default_llama_args)}}
LLAMA_STAMP=.venv/.ponder-llama-build
[ "${1:-}" = "--rebuild-llama" ] && rm -f "$LLAMA_STAMP"

install_llama() {  # $1: CMake arguments; builds (or reuses) the wheel for them and installs it
  local args=$1 key wheels
  if [ -f "$LLAMA_STAMP" ] && [ "$(cat "$LLAMA_STAMP")" = "$LLAMA_VERSION $args" ] \
      && python -c "import llama_cpp" >/dev/null 2>&1; then
    return 0
  fi
  key=$(printf '%s %s' "$LLAMA_VERSION" "$args" | sha256sum | cut -c1-12)
  wheels=.cache/wheels/llama-$key
  if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    log "building llama-cpp-python $LLAMA_VERSION with CMAKE_ARGS='$args' (~7 minutes on 2 cores)"
    mkdir -p "$wheels"
    local source="llama-cpp-python==$LLAMA_VERSION"
    if [[ "$args" == *"GGML_AMX_TILE=ON"* ]]; then  # AMX needs the tile-configuration fix: build a patched sdist
      rm -rf .cache/llama-src && mkdir -p .cache/llama-src
      pip download -q --no-deps --no-binary :all: -d .cache/llama-src "$source" || return 1
      tar -xzf .cache/llama-src/llama_cpp_python-"$LLAMA_VERSION".tar.gz -C .cache/llama-src
      source=.cache/llama-src/llama_cpp_python-$LLAMA_VERSION
      python scripts/patch_llama_amx.py "$source" || return 1
    fi
    CMAKE_ARGS="$args" FORCE_CMAKE=1 pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
      -w "$wheels" "$source" || { rm -rf "$wheels"; return 1; }
  fi
  pip install -q --no-deps --force-reinstall "$wheels"/llama_cpp_python-*.whl
  printf '%s %s' "$LLAMA_VERSION" "$args" > "$LLAMA_STAMP"
}
install_llama "$LLAMA_ARGS" || { echo "building llama-cpp-python failed (see above)" >&2; exit 1; }

log "installing ponder and its extras"
pip install -q -e ".[embedded,model,dense,llamacpp-server,dev]" 2>&1 | grep -vE "^WARNING: (Location|The candidate|Skipping)" || true
python -c "import ponder, llama_cpp" || { echo "installing ponder failed" >&2; exit 1; }
# BFCL's data and AST checker (`ponder eval run -d bfcl-simple_python`): bfcl-eval pins numpy 1.26.4, faiss,
# sentence-transformers and a dozen provider SDKs, none of which the checker uses, so it comes without them
# (ponder.evals._bfcl explains the one import it stands in for).
log "installing BFCL's datasets and checker (bfcl-eval, without its dependencies)"
pip install -q --no-deps "bfcl-eval==2026.3.23" 2>&1 | grep -vE "^WARNING: (Location|The candidate|Skipping)" || true
# AgentBench-OS's tasks and check scripts (`ponder eval run -d agentbench-os`) ship as data files inside
# inspect-evals; only those files are read (ponder.evals._agentbench), so it comes without inspect-ai and the rest.
log "installing AgentBench-OS's task data (inspect-evals, without its dependencies)"
pip install -q --no-deps "inspect-evals==0.28.0" 2>&1 | grep -vE "^WARNING: (Location|The candidate|Skipping)" || true

log "assembling and verifying the default model"
python - <<'PY'
from ponder.config import Settings
from ponder.llm.embedded._model_files import ensure_default_model
print(ensure_default_model(Settings().llm.cache_dir))
PY

# The build must decode on this CPU: a few tokens in a child process (the same check the server runs once per
# build). A crash rebuilds with the portable flags, then with the SSE-only baseline, before giving up.
llama_runs() {
  python - <<'PY'
import sys
from ponder.config import Settings
from ponder.errors import PonderError
from ponder.llm.embedded._model_files import ensure_default_model
from ponder.llm.embedded._runtime_check import check_runtime
cache = Settings().llm.cache_dir
try:
    check_runtime(ensure_default_model(cache), cache)
except PonderError as exc:
    print(f"[setup] llama.cpp self-check failed: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}
log "checking that llama.cpp decodes on this CPU"
if ! llama_runs; then
  for args in "$AVX512_ARGS" "$PORTABLE_ARGS" "$BASELINE_ARGS"; do  # the CPU could not run the chosen set
    [ "$args" = "$AVX512_ARGS" ] && [ "$(default_llama_args)" = "$PORTABLE_ARGS" ] && continue
    [ "$args" = "$(cut -d' ' -f2- "$LLAMA_STAMP")" ] && continue
    log "rebuilding llama-cpp-python with CMAKE_ARGS='$args'"
    install_llama "$args" && llama_runs && break
  done
  llama_runs || {
    echo "llama.cpp cannot decode on this CPU with '$LLAMA_ARGS' or any fallback ('$PORTABLE_ARGS', ...)." >&2
    echo "Build it for this CPU by hand: LLAMA_CMAKE_ARGS='-DGGML_NATIVE=OFF ...' ./scripts/setup.sh --rebuild-llama," >&2
    echo "or use a model server instead (PONDER_LLM__BACKEND=openai_compat, see the README)." >&2
    exit 1
  }
fi

# What a step of 1..N rows and a verified draft cost on this CPU decides the batching scheduler's rows per step,
# threads and draft lengths (src/ponder/llm/embedded/_calibration.py). Measured once per llama.cpp build and model (~40 s),
# stamped beside the self-check, so the server's first request does not wait for it.
log "calibrating the embedded engine for this host (skipped when this build and model were measured)"
ponder calibrate >/dev/null 2>&1 || log "calibration failed here; the server measures on its first request instead"

if [ -f src/ponder/toolserver/cli.py ]; then
  log "building the sandbox image (skipped when present)"
  ponder toolserver build-image
fi
if ponder index --help >/dev/null 2>&1; then
  log "building the default search index and knowledge base (skipped when present)"
  ponder index build-default
fi
log "done: . .venv/bin/activate && ponder serve"
