#!/usr/bin/env bash
# geohsi end to end on the bundled real data, with the embedded defaults (a Dask LocalCluster):
#   1. Indian Pines (AVIRIS, a bare MATLAB array: no CRS) → scene → KronA+ bundle → class map (Zarr)
#   2. EnMAP Potsdam (18 georeferenced GeoTIFF tiles) → mosaic scene → KronA+ bundle → COG map
# Both fine-tune the shipped pretrained `small` backbone with KronA+ in dense mode (a segmentation head on
# the token grid: 299–421× more pixels per second than per-pixel windows in fp32 on this CPU, see
# docs/performance.md; the paper's per-pixel protocol is `--head patch`).
# Outputs go to ./out/ (override with OUT=...). Data come from GEOHSI_DATA_DIR
# (set to ../shared/data beside the checkout when unset), else they are downloaded from the official URLs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${GEOHSI_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  GEOHSI_DATA_DIR="$(cd ../shared/data && pwd)"
  export GEOHSI_DATA_DIR
fi
OUT=${OUT:-out}
EPOCHS=${EPOCHS:-150}  # the protocol of docs/results.md
MODEL=${MODEL:-small}
TRAIN_OPTS=(--adapter krona+ --head dense --model "$MODEL" --split fraction:0.1 --epochs "$EPOCHS" --batch-size 8 --lr 0.002)
mkdir -p "$OUT"
geohsi=.venv/bin/geohsi

echo "== Indian Pines =="
$geohsi datasets ingest indian_pines --out "$OUT/indian_pines.zarr" --overwrite
$geohsi info "$OUT/indian_pines.zarr"
$geohsi train "$OUT/indian_pines.zarr" "${TRAIN_OPTS[@]}" --out "$OUT/indian_pines.bundle" --overwrite --quiet
$geohsi evaluate "$OUT/indian_pines.bundle" "$OUT/indian_pines.zarr" --out "$OUT/indian_pines.metrics.json" --overwrite
# no CRS → a pixel-grid map in Zarr (a GeoTIFF needs georeferencing)
$geohsi classify "$OUT/indian_pines.zarr" --bundle "$OUT/indian_pines.bundle" --out "$OUT/indian_pines.map.zarr" --overwrite --no-progress

echo "== EnMAP Potsdam =="
$geohsi datasets ingest enmap_potsdam --out "$OUT/enmap_potsdam.zarr" --overwrite
$geohsi train "$OUT/enmap_potsdam.zarr" "${TRAIN_OPTS[@]}" --out "$OUT/enmap_potsdam.bundle" --overwrite --quiet
$geohsi evaluate "$OUT/enmap_potsdam.bundle" "$OUT/enmap_potsdam.zarr" --out "$OUT/enmap_potsdam.metrics.json" --overwrite
$geohsi classify "$OUT/enmap_potsdam.zarr" --bundle "$OUT/enmap_potsdam.bundle" --out "$OUT/enmap_potsdam.map.tif" \
  --confidence --overwrite --no-progress
echo "maps: $OUT/indian_pines.map.zarr (+ .png) and $OUT/enmap_potsdam.map.tif (COG, EPSG:32633, + .png)"
