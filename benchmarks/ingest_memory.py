"""Peak memory of ``geohsi ingest`` on a large synthetic GeoTIFF (it must stream, not load).

Writes a tiled multi-band int16 GeoTIFF (default 200 bands × 2300 × 2300 ≈ 2.1 GB), ingests it with
the real CLI in a child process, and reports the child's peak resident set size (``VmHWM``, read by the child from
``/proc/self/status`` as it exits) next to the file size and to the peak RSS of a child that only imports the same
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

_IMPORTS = "import geohsi.ingestion, geohsi.io.geotiff, zarr, dask.array, xarray, rasterio"


def write_synthetic_geotiff(path: Path, bands: int, size: int, block: int = 256) -> int:
    """Write a tiled int16 GeoTIFF ``[bands, size, size]`` block by block; return its size in bytes.

    Values are ``(7·band + row + 3·col) mod 20000`` so a reader's output can be checked anywhere.
    """
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = {
        "driver": "GTiff",
        "dtype": "int16",
        "count": bands,
        "width": size,
        "height": size,
        "crs": "EPSG:32633",
        "transform": from_origin(300000.0, 5800000.0, 30.0, 30.0),
        "nodata": -32768,
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "BIGTIFF": "YES",
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


# The child reports its own peak RSS (VmHWM of its address space). ru_maxrss from wait4 is not used:
# Linux carries the parent's RSS at fork into the child's ru_maxrss, which would floor the number at
# whatever this benchmark process holds after writing the GeoTIFF.
_CHILD = r"""
import os, sys
def _hwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return -1
try:
    if sys.argv[1] == "--imports-only":
        exec(sys.argv[2])
    else:
        from geohsi.cli.main import main
        main(sys.argv[1:])
finally:
    with open(os.environ["GEOHSI_HWM_FILE"], "w") as f:
        f.write(str(_hwm()))
"""


def run_measured(args: list[str]) -> tuple[int, int, float]:
    """Run the child with ``args``; return (exit code, its peak RSS in bytes, seconds)."""
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".hwm") as hwm:
        env = {**os.environ, "GEOHSI_HWM_FILE": hwm.name}
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False
        )
        secs = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr.decode(errors="replace"))
        text = Path(hwm.name).read_text().strip()
    return proc.returncode, int(text) if text else -1, secs


def measure(src: Path, out: Path, chunks: int = 256) -> dict[str, float]:
    """Ingest ``src`` into ``out`` through the CLI in a child process and measure it.

    The baseline is the same CLI ingesting a 16 × 16 GeoTIFF with as many bands: the fixed cost
    (interpreter, libraries, GDAL/zarr/dask thread pools) without the data volume. Their difference
    is what streaming the data costs; for a streaming reader it depends on ``chunks``, not on the file size.
    """
    import rasterio

    with rasterio.open(src) as f:
        bands = f.count
    rc, peak, secs = run_measured(["ingest", str(src), "--out", str(out), "--chunks", str(chunks), "--overwrite"])
    if rc != 0:
        raise SystemExit(f"ingest failed with exit code {rc}")
    tiny = out.with_name(out.stem + "-tiny.tif")
    write_synthetic_geotiff(tiny, bands, 16, block=16)
    tiny_out = out.with_name(out.stem + "-tiny.zarr")
    rc, base, _ = run_measured(["ingest", str(tiny), "--out", str(tiny_out), "--chunks", str(chunks), "--overwrite"])
    shutil.rmtree(tiny_out, ignore_errors=True)
    tiny.unlink(missing_ok=True)
    _, imports, _ = run_measured(["--imports-only", _IMPORTS])
    size = src.stat().st_size
    return {
        "file_bytes": size,
        "peak_rss_bytes": peak,
        "tiny_ingest_rss_bytes": base,
        "import_only_rss_bytes": imports,
        "peak_rss_over_file": peak / size,
        "streaming_rss_bytes": peak - base,
        "streaming_rss_over_file": (peak - base) / size,
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
    for b, r, c in (
        (0, 0, 0),
        (args.bands - 1, args.size - 1, args.size - 1),
        (17 % args.bands, 1000 % args.size, 2001 % args.size),
    ):
        assert int(v[b, r, c]) == (7 * b + r + 3 * c) % 20000, (b, r, c)
    res["zarr_bytes"] = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(json.dumps(res, indent=2))
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
        src.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
