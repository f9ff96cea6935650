#!/usr/bin/env bash
# Set up everything (scripts/setup.sh), then run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
ruff check src tests
python scripts/check_imports.py
exec python -m pytest -q -p no:cacheprovider "$@"
