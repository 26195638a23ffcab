"""Peak memory of ``geohsi ingest`` on a large synthetic GeoTIFF (it must stream, not load).

Writes a tiled multi-band int16 GeoTIFF (default 200 bands × 2300 × 2300 ≈ 2.1 GB), ingests it with
the real CLI in a child process, and reports the child's peak resident set size (``ru_maxrss`` from
``os.wait4``) next to the file size and to the peak RSS of a child that only imports the same
modules (the fixed cost of Python + numpy + xarray + dask + zarr + rasterio).

Usage::

    .venv/bin/python benchmarks/ingest_memory.py [--dir /tmp/geohsi-bench] [--bands 200] [--size 2300]

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

_IMPORTS = "import geohsi.ingest, geohsi.io.geotiff, zarr, dask.array, xarray, rasterio"


def write_synthetic_geotiff(path: Path, bands: int, size: int, block: int = 256) -> int:
    """Write a tiled int16 GeoTIFF ``[bands, size, size]`` block by block; return its size in bytes.

    Values are ``(7·band + row + 3·col) mod 20000`` so a reader's output can be checked anywhere.
    """
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = {
        "driver": "GTiff", "dtype": "int16", "count": bands, "width": size, "height": size,
        "crs": "EPSG:32633", "transform": from_origin(300000.0, 5800000.0, 30.0, 30.0), "nodata": -32768,
        "tiled": True, "blockxsize": block, "blockysize": block, "BIGTIFF": "YES",
    }
    b = np.arange(bands, dtype="int64")[:, None, None]
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, block):
            for c0 in range(0, size, block):
                h, w = min(block, size - r0), min(block, size - c0)
                rows = np.arange(r0, r0 + h, dtype="int64")[None, :, None]
                cols = np.arange(c0, c0 + w, dtype="int64")[None, None, :]
                dst.write(((7 * b + rows + 3 * cols) % 20000).astype("int16"), window=Window(c0, r0, w, h))
        for i in range(1, bands + 1):
            dst.update_tags(i, wavelength=str(400.0 + 10.0 * i), fwhm="10.0", bbl="1", wavelength_units="Nanometers")
    return path.stat().st_size


def run_measured(cmd: list[str]) -> tuple[int, int, float]:
    """Run ``cmd``; return (exit code, peak RSS in bytes, seconds). Linux ``ru_maxrss`` is in KiB."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        sys.stderr.write(err)
    return proc.returncode, usage.ru_maxrss * 1024, time.perf_counter() - t0


def measure(src: Path, out: Path, chunks: int = 256) -> dict[str, float]:
    """Ingest ``src`` into ``out`` through the CLI in a child process and measure it."""
    rc, peak, secs = run_measured([sys.executable, "-m", "geohsi.cli.main", "ingest", str(src), "--out", str(out),
                                   "--chunks", str(chunks), "--overwrite"])
    if rc != 0:
        raise SystemExit(f"ingest failed with exit code {rc}")
    _, base, _ = run_measured([sys.executable, "-c", _IMPORTS])
    size = src.stat().st_size
    return {
        "file_bytes": size,
        "peak_rss_bytes": peak,
        "import_baseline_rss_bytes": base,
        "peak_rss_over_file": peak / size,
        "streaming_rss_bytes": peak - base,
        "seconds": secs,
    }


def main() -> None:
    """Command-line entry: write, ingest, report (JSON on stdout)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/geohsi-bench"))
    ap.add_argument("--bands", type=int, default=200)
    ap.add_argument("--size", type=int, default=2300)
    ap.add_argument("--chunks", type=int, default=256)
    ap.add_argument("--keep", action="store_true", help="keep the GeoTIFF and the store")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    src, out = args.dir / "synthetic.tif", args.dir / "synthetic.zarr"
    t0 = time.perf_counter()
    size = write_synthetic_geotiff(src, args.bands, args.size)
    print(f"wrote {src}: {size / 1e9:.2f} GB in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    res = measure(src, out, args.chunks)
    # Spot-check the written store against the formula (first and last chunk corners).
    from geohsi.scene import open_scene

    ds = open_scene(out)
    v = ds["reflectance"]
    for b, r, c in ((0, 0, 0), (args.bands - 1, args.size - 1, args.size - 1), (17 % args.bands, 1000 % args.size, 2001 % args.size)):
        assert int(v[b, r, c]) == (7 * b + r + 3 * c) % 20000, (b, r, c)
    res["zarr_bytes"] = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(json.dumps(res, indent=2))
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
        src.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
