#!/usr/bin/env bash
# geohsi end to end on the bundled real data (AVIRIS Indian Pines), with the embedded defaults:
# set up .venv, ingest the scene into a georeferenced Zarr cube and describe it.
# Outputs go to ./out/ (override with OUT=...). Data come from GEOHSI_DATA_DIR
# (default ../shared/data beside the checkout), else they are downloaded from the official URLs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${GEOHSI_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  GEOHSI_DATA_DIR="$(cd ../shared/data && pwd)"
  export GEOHSI_DATA_DIR
fi
OUT=${OUT:-out}
mkdir -p "$OUT"
geohsi=.venv/bin/geohsi
echo "[1/2] ingest Indian Pines → $OUT/indian_pines.zarr"
$geohsi datasets ingest indian_pines --out "$OUT/indian_pines.zarr" --overwrite
echo "[2/2] describe the scene"
$geohsi info "$OUT/indian_pines.zarr"
