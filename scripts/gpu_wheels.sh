#!/usr/bin/env bash
# Prepare the offline GPU check (benchmarks/gpu_check.sh) on a machine with network:
#   bash scripts/gpu_wheels.sh [--with-numpy]
# gpu_wheels/: Python 3.12 manylinux x86-64 wheels of what the check imports besides torch and numpy
#   (the GPU machine brings its own PyTorch, and numpy with it: torch.from_numpy needs it; --with-numpy
#   adds a numpy wheel for a machine without one), with requirements.txt;
# gpu_data/indian_pines.zarr: Indian Pines ingested here, the scene the GPU tests and benchmark read
#   (geohsi.datasets.ingest_dataset copies a pre-ingested NAME.zarr of the data dir).
# The check's path (Zarr scenes and maps, pixel grids, training, the Dask map) needs neither GDAL
# (rasterio/rioxarray/pyproj) nor SciPy: leaving them out is what keeps wheels + data + checkout
# under the 64 MiB that may be copied to the device machine. Both folders are git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_NUMPY=0
[ "${1:-}" = "--with-numpy" ] && WITH_NUMPY=1
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 )}"
pin() { "$PY" -c "import importlib.metadata as m; print('$1==' + m.version('$1'))" 2>/dev/null || echo "$1"; }
rm -rf gpu_wheels && mkdir -p gpu_wheels
# What `import geohsi`, the Zarr classify path, training and pytest import: pyproject's dependencies
# minus torch, GDAL (rasterio, rioxarray, pyproj), SciPy/scikit-learn (MATLAB reading, baselines),
# matplotlib (figures and quicklooks, which the check does not write) and
# the NetCDF/HDF5 and STAC extras. affine is pure Python (geohsi's transforms).
REQS=(dask distributed xarray zarr numcodecs pandas safetensors click rich pyyaml affine pytest)
: > gpu_wheels/requirements.txt
for r in "${REQS[@]}"; do pin "$r" >> gpu_wheels/requirements.txt; done
"$PY" -m pip download -q --only-binary=:all: --implementation cp --python-version 3.12 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  -d gpu_wheels -r gpu_wheels/requirements.txt
if [ "$WITH_NUMPY" = 0 ]; then
  rm -f gpu_wheels/numpy-*.whl   # the machine's own numpy satisfies pandas', xarray's, … requirement
else
  pin numpy >> gpu_wheels/requirements.txt
fi
DATA="${GEOHSI_DATA_DIR:-../shared/data}"
rm -rf gpu_data && mkdir -p gpu_data
GEOHSI_DATA_DIR="$DATA" "$PY" -c "from geohsi.datasets.registry import ingest_dataset; ingest_dataset('indian_pines', 'gpu_data/indian_pines.zarr')"
w=$(du -sm gpu_wheels | cut -f1); d=$(du -sm gpu_data | cut -f1)
repo=$(git ls-files -z | du -cm --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$((w + d + repo))
echo "gpu_wheels: ${w} MiB ($(ls gpu_wheels/*.whl | wc -l) wheels), gpu_data: ${d} MiB, checkout: ${repo} MiB; ${total} of 64 MiB"
if [ "$total" -gt 64 ]; then
  echo "warning: over the device machine's 64 MiB carry budget by about $((total - 64)) MiB; the largest wheels:" >&2
  ls -S gpu_wheels/*.whl | head -5 | xargs -n1 du -m | sed 's/^/  /' >&2
fi
