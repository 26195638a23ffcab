#!/usr/bin/env bash
# Dense classify of the 1024² synthetic scene across chunk sizes and worker layouts, twice, in one session:
#   bash benchmarks/classify_layout_sweep.sh BUNDLE [WORKDIR]
# Each line is one `python -m benchmarks large-scene` run (classify px/s between two measurements of
# the same workers' bare forward). 2 workers = two processes with one Dask thread and one torch thread
# each; 1 worker = one process, one Dask thread, torch on both cores (what --workers 1 gives).
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=$(realpath "$1") work=${2:-/tmp/geohsi-layout-sweep}
mkdir -p "$work"
for run in 1 2; do
  for layout in "256 2" "384 2" "512 2" "192 2" "256 1" "512 1"; do
    set -- $layout
    echo "== chunks $1, workers $2, run $run"
    .venv/bin/python -m benchmarks large-scene "$bundle" --size 1024 --chunks "$1" --workers "$2" --workdir "$work" | grep "synthetic scene"
  done
done
