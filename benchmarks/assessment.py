"""Sampling and assessment cost vs one full read of the map (``python -m benchmarks assessment``).

The goal of issue 31: drawing a 1,000-point stratified sample of a 10,000 × 10,000 class map and
assessing it takes at most twice the time of one full chunked read of that map.

* the map: a synthetic uint8 COG as ``geohsi classify`` writes it (512-pixel DEFLATE tiles, MODE
  overviews, class names in its tags): six classes in 50-pixel patches with 10 % salt-and-pepper
  pixels, the texture of a per-pixel classifier's output;
* one full read: every 2048² chunk through the reader geohsi uses (:func:`geohsi.assessment.open_map`,
  Dask threads), reduced to nothing;
* sample: :func:`geohsi.assessment.sample` → GeoPackage; the reference is then synthesised (not
  timed: a person labels it) from the recorded map class, 10 % of points given another class;
* assess: :func:`geohsi.assessment.assess` with the map class recorded by ``sample``
  (``map_field="map_class"``), writing JSON, CSV, Markdown and PNG. Assessing with the map class read
  from the map at the points is timed too and reported beside it (1,000 random points touch nearly
  every tile of the map, so it costs about one more read).

Each step runs once to warm up (imports, thread pools), then ``repeats`` rounds run every step once
in turn; each step's minimum counts, and the ratio of every round is reported beside (min, median, max).
GDAL's block cache is kept small (16 MB, the map is 100 MB) so no step reads tiles decoded by another.

.. versionadded:: 0.3
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

NAMES = ("water", "forest", "grassland", "cropland", "built-up", "bare")


def write_map(path: Path, size: int, seed: int = 0) -> Path:
    """A ``size × size`` uint8 class-map COG (tiled DEFLATE, MODE overviews, ``GEOHSI_CLASSES`` tag)."""
    import rasterio
    import rasterio.shutil
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    patches = rng.integers(1, 7, (size // 50 + 1, size // 50 + 1)).astype("uint8")
    tiled = path.with_suffix(".tiled.tif")
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs="EPSG:32633", nodata=0,
                   transform=from_origin(300_000, 5_900_000, 10, 10), tiled=True, blockxsize=512, blockysize=512,
                   compress="deflate", BIGTIFF="IF_SAFER")  # fmt: skip
    with rasterio.open(tiled, "w", **profile) as dst:
        for y0 in range(0, size, 500):
            h = min(500, size - y0)
            block = np.kron(patches[y0 // 50 : (y0 + h + 49) // 50], np.ones((50, 50), "uint8"))[:h, :size]
            noise = rng.random(block.shape) < 0.1
            dst.write(np.where(noise, rng.integers(1, 7, block.shape), block).astype("uint8"), 1, window=Window(0, y0, size, h))
        dst.update_tags(GEOHSI_CLASSES=json.dumps([{"id": i + 1, "name": n, "color": "#808080"} for i, n in enumerate(NAMES)]))
    rasterio.shutil.copy(
        tiled, path, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=512, OVERVIEW_RESAMPLING="MODE", BIGTIFF="IF_SAFER"
    )
    tiled.unlink()
    return path


def full_read(path: Path) -> None:
    """One full chunked read: every chunk of the map through geohsi's reader, on Dask threads."""
    from geohsi.assessment import open_map
    from geohsi.files import joined_dask_threads

    data = open_map(path).data
    with joined_dask_threads():
        data.map_blocks(lambda b: np.zeros((1, 1)), chunks=(1, 1), dtype=float).sum().compute()


def label(points: Path, out: Path, error: float = 0.1, seed: int = 1) -> Path:
    """The reference a person would give: the recorded map class, another class at ``error`` of the points."""
    import geopandas as gpd

    rng = np.random.default_rng(seed)
    g = gpd.read_file(points, engine="pyogrio")
    ids = g["map_class_id"].to_numpy()
    other = (ids - 1 + rng.integers(1, len(NAMES), ids.size)) % len(NAMES) + 1
    g["ref"] = np.where(rng.random(ids.size) < error, other, ids).astype(str)
    g.to_file(out, driver="GPKG", engine="pyogrio")
    return out


def _rounds(steps: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each step over ``repeats`` rounds, every round running each step once in turn (a
    machine that slows down or speeds up during the run then weighs on every step alike)."""
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for k, fn in steps.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return times


def run(
    size: int = 10_000, n: int = 1000, repeats: int = 3, workdir: Path | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Write the map, then time one full read, ``sample`` and ``assess`` (see the module docstring).

    Returns:
        Seconds of each step, the ratio (sample + assess) / full read, and the machine.
    """
    os.environ.setdefault("GDAL_CACHEMAX", "16")
    from geohsi.assessment import assess, sample

    work = Path(workdir or tempfile.mkdtemp(prefix="geohsi-assess-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tif = work / f"map_{size}.tif"
    if not tif.exists():
        t = time.perf_counter()
        write_map(tif, size)
        log(f"wrote {tif} ({tif.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s")
    pts, labelled, report = work / "points.gpkg", work / "labelled.gpkg", work / "report.json"
    quiet = {"log": lambda m: None, "overwrite": True}
    full_read(tif)  # warm-up: imports, thread pools
    sample([tif], n=n, seed=0, out=pts, **quiet)  # the same seed draws the same points every round
    label(pts, labelled)
    steps = {
        "read": lambda: full_read(tif),
        "sample": lambda: sample([tif], n=n, seed=0, out=pts, **quiet),
        "assess": lambda: assess([tif], reference=labelled, map_field="map_class", out=report, **quiet),
        "assess_read": lambda: assess([tif], reference=labelled, out=report, **quiet),
    }
    steps["assess"]()
    times = _rounds(steps, repeats)
    read_s, sample_s, assess_s, assess_read_s = (min(times[k]) for k in steps)
    per_round = [(s + a) / r for r, s, a in zip(times["read"], times["sample"], times["assess"], strict=True)]
    res = {
        "map": f"{size} x {size} uint8 COG, {tif.stat().st_size / 1e6:.1f} MB",
        "points": n,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "full_read_s": round(read_s, 4),
        "sample_s": round(sample_s, 4),
        "assess_s": round(assess_s, 4),
        "assess_reading_the_map_s": round(assess_read_s, 4),
        "ratio": round((sample_s + assess_s) / read_s, 3),
        "ratio_per_round": [round(min(per_round), 3), round(float(np.median(per_round)), 3), round(max(per_round), 3)],
        "ratio_assess_reading_the_map": round((sample_s + assess_read_s) / read_s, 3),
        "overall_accuracy": json.loads(report.read_text())["overall_accuracy"],
    }
    log(
        f"full read {read_s:.3f} s; sample {sample_s:.3f} s + assess {assess_s:.3f} s = {(sample_s + assess_s) / read_s:.2f}× "
        f"(goal ≤ 2; per round min/median/max {'/'.join(f'{r:.2f}' for r in res['ratio_per_round'])}); "
        f"assess reading the map at the points {assess_read_s:.3f} s → {res['ratio_assess_reading_the_map']:.2f}×"
    )
    return res


__all__ = ["full_read", "label", "run", "write_map"]
