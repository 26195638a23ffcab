#!/usr/bin/env bash
# Prepare the offline GPU check (benchmarks/gpu_check.sh) on a machine with network:
#   bash scripts/gpu_wheels.sh
# gpu_wheels/: Python 3.12 manylinux x86-64 wheels of what the check imports besides torch (the GPU
#   machine brings its own torch), with requirements.txt; gpu_data/indian_pines/: the scene the GPU
#   tests and benchmark read. Both are git-ignored; copy the checkout (with them) to the GPU machine.
# It prints the folder sizes against the 64 MiB a checkout may carry to the device machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 )}"
pin() { "$PY" -c "import importlib.metadata as m; print('$1==' + m.version('$1'))" 2>/dev/null || echo "$1"; }
rm -rf gpu_wheels && mkdir -p gpu_wheels
# What `import geohsi` and the classify/training path import (pyproject's dependencies minus torch and
# the packages only plotting, metrics baselines and NetCDF/HDF5 ingest need), plus pytest.
REQS=(dask distributed xarray zarr numcodecs rioxarray rasterio pyproj scipy numpy pandas safetensors click rich pyyaml affine pytest)
: > gpu_wheels/requirements.txt
for r in "${REQS[@]}"; do pin "$r" >> gpu_wheels/requirements.txt; done
"$PY" -m pip download -q --only-binary=:all: --implementation cp --python-version 3.12 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  -d gpu_wheels -r gpu_wheels/requirements.txt
DATA="${GEOHSI_DATA_DIR:-../shared/data}"
rm -rf gpu_data && mkdir -p gpu_data/indian_pines
cp "$DATA"/indian_pines/* gpu_data/indian_pines/
w=$(du -sm gpu_wheels | cut -f1); d=$(du -sm gpu_data | cut -f1)
echo "gpu_wheels: ${w} MiB ($(ls gpu_wheels/*.whl | wc -l) wheels), gpu_data: ${d} MiB; budget 64 MiB with the checkout"
if [ $((w + d)) -gt 60 ]; then
  echo "warning: over the device machine's 64 MiB carry budget by about $((w + d + 4 - 64)) MiB; the largest wheels:" >&2
  ls -S gpu_wheels/*.whl | head -5 | xargs -n1 du -m | sed 's/^/  /' >&2
fi
