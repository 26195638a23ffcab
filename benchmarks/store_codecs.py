"""How the scene store's cube is compressed: size on disk and read time of candidate Zarr codecs.

``python -m benchmarks store-codecs`` ingests the shared real scenes (Indian Pines, the EnMAP
Potsdam mosaic, AVIRIS-NG radiance, Jasper Ridge) with ``geohsi ingest``'s writer, takes each cube
as stored (its dtype, chunks of all bands and the default 256² pixels), writes it again as a Zarr v3 array with each
candidate codec, and reads it back whole several times (on one thread, as in a Dask worker's task).
The codec :func:`geohsi.scene.store.cube_compressor` writes is marked "geohsi's". It also writes one chunk of the uniform
random cube the large-scene and training-data benchmarks generate (incompressible, so only the codec's
overhead shows). Per scene and codec it reports the compression ratio, the best read time and the
read speed-up over zarr's default codec (``zstd`` level 0, what scene stores used before 0.3) — all
measured in one run, so the ratios are comparable while the machine's load drifts.

.. versionadded:: 0.3
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: The datasets of the shared data whose cubes are compared.
DATASETS: tuple[str, ...] = ("indian_pines", "enmap_potsdam", "aviris_ng", "jasper_ridge")


def candidates() -> dict[str, Any]:
    """The codecs compared: zarr's default and Blosc with its two fast compressors and shuffles."""
    from zarr.codecs import BloscCodec, ZstdCodec

    return {
        "zstd (zarr default)": ZstdCodec(level=0),
        "blosc lz4 shuffle": BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
        "blosc lz4 bitshuffle": BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),
        "blosc zstd-1 shuffle": BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),
        "blosc zstd-1 bitshuffle": BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle"),
    }


def _cubes(data_dir: Path, work: Path) -> dict[str, np.ndarray]:
    """Each shared scene's cube as its store holds it, and one random chunk."""
    import zarr

    from geohsi.datasets.registry import ingest_dataset
    from geohsi.scene import data_var_name, open_scene

    cubes = {}
    for name in DATASETS:
        if not (data_dir / name).exists():
            continue
        store = work / f"{name}.zarr"
        if not store.exists():
            ingest_dataset(name, store)
        var = data_var_name(open_scene(store))
        cubes[name] = np.asarray(zarr.open_array(store / var, mode="r")[...])
    rng = np.random.default_rng(0)
    cubes["random uint16 (training-data benchmark's cube)"] = (rng.random((224, 256, 256)) * 8000 + 1000).astype("uint16")
    return cubes


def _measure(cube: np.ndarray, codec: Any, path: Path, repeats: int) -> tuple[float, float]:
    """(compression ratio, best seconds to read the whole array) of ``cube`` stored with ``codec``."""
    import zarr

    from geohsi.scene import DEFAULT_CHUNK

    chunks = (cube.shape[0], min(DEFAULT_CHUNK, cube.shape[1]), min(DEFAULT_CHUNK, cube.shape[2]))
    arr = zarr.create_array(path, shape=cube.shape, dtype=cube.dtype, chunks=chunks, compressors=[codec], overwrite=True)
    arr[...] = cube
    stored = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.name != "zarr.json")
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        zarr.open_array(path, mode="r")[...]
        best = min(best, time.perf_counter() - t0)
    return cube.nbytes / stored, best


def run(data_dir: Path, *, repeats: int = 5, workdir: Path | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """One row per scene and codec: ratio, best read seconds, read speed-up over zarr's default."""
    from numcodecs import blosc

    from geohsi.scene.store import cube_compressor

    # One thread, as blosc runs inside a Dask worker's task (not the main thread) and as zstd runs anyway.
    blosc.use_threads = False
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="geohsi-codecs-"))
    work.mkdir(parents=True, exist_ok=True)
    codecs = {f"{name} (geohsi's)" if codec == cube_compressor() else name: codec for name, codec in candidates().items()}
    rows = []
    for scene, cube in _cubes(data_dir, work).items():
        results = {name: _measure(cube, codec, work / "trial.zarr", repeats) for name, codec in codecs.items()}
        base = results["zstd (zarr default)"][1]
        for name, (ratio, seconds) in results.items():
            rows.append(
                {
                    "scene": scene,
                    "shape": "×".join(map(str, cube.shape)),
                    "dtype": str(cube.dtype),
                    "codec": name,
                    "ratio": round(ratio, 2),
                    "read_ms": round(1e3 * seconds, 2),
                    "speedup": round(base / seconds, 2),
                }
            )
            log(f"{scene:34s} {name:24s} ratio {ratio:5.2f}  read {1e3 * seconds:8.2f} ms  {base / seconds:5.2f}× the default")
    return rows


def markdown(rows: list[dict], command: str) -> str:
    """The docs table: one row per scene and codec."""
    lines = [
        f"Command: `{command}` (one run; read = best of the repeats, one thread).",
        "",
        "| scene | cube (bands×y×x, dtype) | codec | compression ratio | read (ms) | read speed vs zstd default |",
        "|---|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['scene']} | {r['shape']}, {r['dtype']} | {r['codec']} | {r['ratio']:.2f} | {r['read_ms']:.1f} | {r['speedup']:.2f}× |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


__all__ = ["DATASETS", "candidates", "markdown", "run"]
