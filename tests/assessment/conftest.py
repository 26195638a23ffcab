"""Fixtures of the assessment tests: the worked example of Olofsson et al. (2014) as a map raster and a
points file, and small class-map writers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

#: Olofsson et al. (2014), section 5 (Table 8): map classes and the error matrix of sample counts
#: (rows: map class, columns: reference class).
CLASSES = ("Deforestation", "Forest gain", "Stable forest", "Stable non-forest")
COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
#: mapped area of each class, in 30 m pixels (0.09 ha): 18,000 / 13,500 / 288,000 / 580,500 ha.
MAPPED_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])
HA_PER_PIXEL = 0.09
#: the example map as a raster: pixel counts scaled by 1/1000 (100 × 100 pixels), each pixel
#: 1000 m × 900 m = 90 ha = 1000 of the paper's pixels, so every area comes out in the paper's hectares.
SCALE = 1000
PIXEL = (1000.0, 900.0)
ORIGIN = (400_000.0, 5_800_000.0)  # UTM 33N
CRS = "EPSG:32633"
COLORS = ("#d62728", "#2ca02c", "#006400", "#c7c7c7")


def write_class_tif(path: Path, ids: np.ndarray, names, *, crs=CRS, transform=None, tags: bool = True) -> Path:
    """A class map as ``geohsi classify`` writes it: uint8 ids, nodata 0, colour table and class names."""
    import rasterio

    transform = transform or Affine(PIXEL[0], 0, ORIGIN[0], 0, -PIXEL[1], ORIGIN[1])
    h, w = ids.shape
    profile = dict(driver="GTiff", width=w, height=h, count=1, dtype="uint8", crs=crs, transform=transform, nodata=0,
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate")  # fmt: skip
    classes = [{"id": i + 1, "name": n, "color": COLORS[i % len(COLORS)]} for i, n in enumerate(names)]
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(ids.astype("uint8"), 1)
        if tags:
            dst.write_colormap(1, {0: (0, 0, 0, 0), **{c["id"]: (*bytes.fromhex(c["color"][1:]), 255) for c in classes}})
            dst.update_tags(GEOHSI_CLASSES=json.dumps(classes))
    return path


def example_ids() -> np.ndarray:
    """``[100, 100]`` class ids with 200 / 150 / 3,200 / 6,450 pixels of classes 1–4, in row-major runs."""
    return np.repeat(np.arange(1, 5), MAPPED_PIXELS // SCALE).reshape(100, 100).astype("uint8")


def example_points(map_ids: np.ndarray, *, names: bool = True, seed: int = 0):
    """Points on distinct pixels of each map class, n_ij of them labelled with reference class j (Table 8)."""
    import geopandas as gpd

    rng = np.random.default_rng(seed)
    tf = Affine(PIXEL[0], 0, ORIGIN[0], 0, -PIXEL[1], ORIGIN[1])
    rows, cols, ref = [], [], []
    for i in range(4):
        r, c = np.nonzero(map_ids == i + 1)
        pick = rng.choice(r.size, COUNTS[i].sum(), replace=False)
        rows += r[pick].tolist()
        cols += c[pick].tolist()
        ref += [CLASSES[j] if names else j + 1 for j in range(4) for _ in range(COUNTS[i, j])]
    x, y = tf @ (np.asarray(cols) + 0.5, np.asarray(rows) + 0.5)
    return gpd.GeoDataFrame({"ref": ref}, geometry=gpd.points_from_xy(x, y), crs=CRS)


@pytest.fixture()
def example(tmp_path: Path):
    """``(map.tif, points.gpkg)`` of the worked example: the map raster and the labelled points."""
    ids = example_ids()
    tif = write_class_tif(tmp_path / "change_map.tif", ids, CLASSES)
    pts = tmp_path / "points.gpkg"
    example_points(ids).to_file(pts, driver="GPKG", engine="pyogrio")
    return tif, pts
