#!/usr/bin/env bash
# Create ./.venv with Python 3.11 and install geohsi into it (editable), plus optional extras.
# Usage: bash scripts/setup.sh [EXTRAS]     e.g. bash scripts/setup.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PY"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# torch is pinned to the CPU wheel the project is tested with.
spec="."
[ -n "${1:-}" ] && spec=".[$1]"
echo "[setup] pip install torch==2.13.0 -e $spec"
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" -e "$spec"
