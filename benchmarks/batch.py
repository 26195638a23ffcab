"""Batch mapping throughput: the 18 EnMAP Potsdam tiles as one ``geohsi classify --out-dir`` command vs
18 single-scene ``geohsi classify --out`` commands, measured in one run (``python -m benchmarks batch``).

Reported:

* wall time of the 18 single-scene commands (each starts its cluster and loads the model) and of
  the one batch command, and their ratio;
* the share of worker time inside the model forward in the batch (``summary.json``) vs in one
  scene of the same pixels: the 18 tiles laid side by side (3 × 6) in one GeoTIFF, classified
  with the same workers and the tiles' chunking (32 px), so both runs have the same 18 tasks;
* that the batch's maps equal the single-scene maps;
* with ``--train`` (the default when no ``--bundle`` is given): ``geohsi train`` with only the
  defaults on the EnMAP mosaic and ``geohsi classify`` of it — both wall times and the test OA.

Every command runs as a user runs it: a fresh ``geohsi`` process, the embedded cluster.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: the marker pair in docs/performance.md the results are written between.
START, END = "<!-- batch:start -->", "<!-- batch:end -->"


def _data_dir() -> Path:
    return Path(os.environ.get("GEOHSI_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _geohsi(*args: Any, cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``geohsi ARGS`` in a fresh process; ``(wall seconds, completed process)``."""
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "geohsi.cli.main", *map(str, args)], capture_output=True, text=True, cwd=cwd, check=False
    )
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"geohsi {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr[-2000:]}")
    return seconds, r


def _labels(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1)


def side_by_side(tiles: list[Path], out: Path, cols: int = 6) -> Path:
    """The tiles laid out ``rows × cols`` in one GeoTIFF with the first tile's georeference and band metadata."""
    import rasterio
    from affine import Affine

    with rasterio.open(tiles[0]) as ref:
        profile, tags, band_tags = ref.profile, ref.tags(), [ref.tags(i) for i in range(1, ref.count + 1)]
        descriptions, scales, offsets, h, w = ref.descriptions, ref.scales, ref.offsets, ref.height, ref.width
    rows = -(-len(tiles) // cols)
    big = np.full((profile["count"], rows * h, cols * w), profile["nodata"], dtype=profile["dtype"])
    for k, t in enumerate(tiles):
        with rasterio.open(t) as src:
            r, c = divmod(k, cols)
            big[:, r * h : (r + 1) * h, c * w : (c + 1) * w] = src.read()
    tf = profile["transform"]
    profile = dict(profile, height=rows * h, width=cols * w, transform=Affine(tf.a, tf.b, tf.c, tf.d, tf.e, tf.f))
    profile.pop("blockxsize", None), profile.pop("blockysize", None), profile.pop("tiled", None)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(big)
        dst.update_tags(**tags)
        for i, bt in enumerate(band_tags, start=1):
            dst.update_tags(i, **bt)
            dst.set_band_description(i, descriptions[i - 1])
        dst.scales, dst.offsets = scales, offsets
    return out


def train_defaults(workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """``geohsi train`` (defaults) on the EnMAP mosaic, then ``geohsi classify`` of it: times and OA."""
    import geohsi

    scene = workdir / "enmap_potsdam.zarr"
    if not scene.exists():
        geohsi.ingest_dataset("enmap_potsdam", scene)
    bundle = workdir / "bundle-defaults"
    train_s, r = _geohsi("train", scene, "--adapter", "lokr", "--out", bundle, "--overwrite")
    metrics = json.loads((bundle / "metrics.json").read_text())
    log(f"geohsi train (defaults) on the EnMAP mosaic: {train_s:.1f} s, test OA {metrics['overall_accuracy']:.4f}")
    classify_s, _ = _geohsi("classify", scene, "--bundle", bundle, "--out", workdir / "mosaic-map.tif", "--overwrite")
    log(f"geohsi classify of the mosaic: {classify_s:.1f} s")
    return {
        "bundle": str(bundle),
        "train_seconds": round(train_s, 1),
        "classify_seconds": round(classify_s, 1),
        "test_oa": metrics["overall_accuracy"],
        "test_aa": metrics["average_accuracy"],
        "test_kappa": metrics["kappa"],
        "n_test": metrics["n_test"],
        "train_summary": (r.stderr.strip().splitlines() or [""])[-1],
    }


def run(bundle: Path | None = None, *, workers: int = 2, workdir: Path | None = None, log: Callable[[str], None] = print) -> dict:
    """Measure the batch against single-scene commands (see the module docstring).

    Args:
        bundle: the bundle to map with; ``None`` trains one with the defaults (reported).
        workers: worker processes of the batch and of the equal-pixel scene.
        workdir: keep scenes, bundles and maps here (default: a temporary directory).
        log: receives progress lines.

    Returns:
        Every number, JSON-able.
    """
    import geohsi

    os.environ.setdefault("GEOHSI_DATA_DIR", str(_data_dir()))  # the registry reads the shared scenes from there
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="geohsi-batch-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tiles = sorted((_data_dir() / "enmap_potsdam" / "images").glob("*.tif"))
    if len(tiles) != 18:
        raise RuntimeError(f"expected the 18 EnMAP Potsdam tiles under {_data_dir()}, found {len(tiles)}")
    res: dict[str, Any] = {"tiles": len(tiles), "pixels_per_tile": 32 * 32, "workers": workers}
    if bundle is None:
        res["defaults"] = train_defaults(work, log)
        bundle = Path(res["defaults"]["bundle"])
    res["bundle"] = str(bundle)

    single_dir = work / "single"
    single_dir.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    for t in tiles:
        _geohsi("classify", t, "--bundle", bundle, "--out", single_dir / f"{t.stem}.tif", "--overwrite", "--no-progress")
    res["single_seconds"] = round(time.perf_counter() - t0, 2)
    log(f"18 single-scene commands: {res['single_seconds']:.1f} s")

    batch_dir = work / "batch"
    batch_s, r = _geohsi("classify", *tiles, "--bundle", bundle, "--out-dir", batch_dir, "--workers", workers, "--overwrite")
    summary = json.loads((batch_dir / "summary.json").read_text())
    res["batch_seconds"] = round(batch_s, 2)
    res["batch_inner_seconds"] = summary["seconds"]
    res["batch_forward_share"] = summary["forward_share"]
    res["ratio"] = round(res["single_seconds"] / batch_s, 2)
    log(f"one batch command: {batch_s:.1f} s → {res['ratio']:.1f}× faster; forward share {summary['forward_share']:.1%}")
    res["maps_identical"] = all(
        np.array_equal(_labels(single_dir / f"{t.stem}.tif"), _labels(batch_dir / f"{t.stem}.tif")) for t in tiles
    )

    wide = side_by_side(tiles, work / "tiles_side_by_side.tif")
    one = geohsi.classify(
        wide,
        work / "side_by_side_map.tif",
        bundle,
        workers=workers,
        chunks=32,
        overwrite=True,
        progress=False,
        log=lambda m: None,
    )
    res["one_scene_forward_share"] = None if one.forward_share is None else round(one.forward_share, 4)
    res["one_scene_seconds"] = round(one.seconds, 2)
    res["forward_share_gap_points"] = (
        None
        if one.forward_share is None or summary["forward_share"] is None
        else round(100 * (one.forward_share - summary["forward_share"]), 1)
    )
    log(f"one scene of the same pixels (3 × 6 tiles, 18 chunks): forward share {one.forward_share:.1%}")
    res["workdir"] = str(work)
    m = re.search(r"(\d+) model tasks", r.stderr)
    res["batch_model_tasks"] = int(m.group(1)) if m else None
    return res


def render_markdown(res: dict, command: str) -> str:
    """The results as the Markdown section of docs/performance.md."""
    lines = [
        START,
        "",
        f"Generated by `{command}` (one run on this machine; {res['workers']} workers for the batch).",
        "",
        "| | wall time | |",
        "|---|---:|---|",
        f"| 18 × `geohsi classify TILE --out TILE.tif` | {res['single_seconds']:.1f} s | one cluster start and model load per tile |",
        f"| `geohsi classify 18 TILES --out-dir maps/` | {res['batch_seconds']:.1f} s "
        f"| one cluster session ({res['batch_inner_seconds']:.1f} s after start-up) |",
        f"| **ratio** | **{res['ratio']:.1f} ×** | goal ≥ 5 × |",
        "",
        "| share of worker time in the model forward | |",
        "|---|---:|",
        f"| the batch (18 scenes, `summary.json`) | {100 * res['batch_forward_share']:.1f} % |",
        f"| one scene of the same pixels (the tiles side by side, 18 chunks of 32 px) | {100 * res['one_scene_forward_share']:.1f} % |",
        f"| gap | {res['forward_share_gap_points']:+.1f} points (goal: within 10) |",
        "",
        f"Batch maps identical to the single-scene maps: **{'yes' if res['maps_identical'] else 'NO'}**; "
        f"model tasks in the batch: {res['batch_model_tasks']}.",
    ]
    d = res.get("defaults")
    if d:
        lines += [
            "",
            f"Defaults on the EnMAP mosaic: `geohsi train enmap.zarr --adapter lokr` {d['train_seconds']:.0f} s "
            f"(test OA {d['test_oa']:.4f}), then `geohsi classify enmap.zarr --out map.tif` {d['classify_seconds']:.0f} s.",
        ]
    lines += ["", END]
    return "\n".join(lines)


def write_docs(res: dict, path: str | os.PathLike, command: str) -> Path:
    """Replace the section between the batch markers of ``path`` (appended when missing)."""
    from benchmarks.inference import replace_section

    return replace_section(path, START, END, render_markdown(res, command), "## Batch mapping: one command for many scenes")


__all__ = ["render_markdown", "run", "side_by_side", "train_defaults", "write_docs"]
