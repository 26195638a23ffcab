#!/usr/bin/env bash
# Set up .venv with the dev extras (tests, STAC, a local STAC API server, linters) and run the whole test suite:
# the lint checks (ruff, import layers), the fast job, then the slow job.
# Real scenes are read from GEOHSI_DATA_DIR (default: ../shared/data beside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
if [ -z "${GEOHSI_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  GEOHSI_DATA_DIR="$(cd ../shared/data && pwd)"
  export GEOHSI_DATA_DIR
fi
echo "[test] lint: ruff check, ruff format --check, lint-imports, functions over 100 lines"
.venv/bin/ruff check --no-cache geohsi cli benchmarks tests
.venv/bin/ruff format --check --no-cache geohsi cli benchmarks tests
.venv/bin/lint-imports --no-cache
.venv/bin/python scripts/long_functions.py
echo "[test] fast job"
.venv/bin/python -m pytest -m "not slow" -q -p no:cacheprovider --durations=15
echo "[test] GPU check, dry run on the CPU (benchmarks/gpu_check.sh --dry-run)"
bash benchmarks/gpu_check.sh --dry-run --out "$(mktemp -d)"
echo "[test] slow job"
# exit code 5 means "no slow tests collected", which is fine for the slow job alone
.venv/bin/python -m pytest -m slow -q -p no:cacheprovider --durations=15 || [ $? -eq 5 ]
