"""Object storage: what reading a scene from an S3 API server costs, and a batch from a bucket vs from disk.

``python -m benchmarks object-storage`` starts moto's standalone S3 server on loopback (its request
log is the measurement: one line per HTTP request) and, in one run:

* **open**: opens the EnMAP Potsdam mosaic's scene store (uploaded with 64-px chunks) from the bucket
  and counts the requests and the metadata (``zarr.json``) reads;
* **input check**: counts the cube chunks the client reads for classify's input-distribution check;
* **read once**: maps that store from the bucket into the bucket with 64-px tasks (halos cross the
  chunk borders) and adds up the bytes of the cube's chunk objects the workers fetched, against their
  stored bytes (a chunk fetched twice, e.g. for a halo, would push the ratio over 1);
* **GeoTIFF reads**: the 18 tiles read whole through GDAL's ``/vsis3/`` and through fsspec file objects;
* **batch**: maps the 18 EnMAP tiles (GeoTIFFs) as one batch from the bucket into the bucket, and the
  same tiles from local disk into a local folder, with the same bundle: wall times and their ratio.

It writes a section of ``docs/performance.md``. Loopback has no network latency: the ratio is
geohsi's own overhead for object storage (requests, uploads, no shared disk), not a cloud's.

.. versionadded:: 0.3
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

#: the spatial chunk edge of the bucket's scene store and of the map's tasks (halos cross chunk borders)
CHUNK = 64
_REQUEST = re.compile(r'"(?:\x1b\[\d+m)?([A-Z]+) (\S+) HTTP/1\.1')


def _start_server(log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=f, stderr=f)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).read()
            return proc, endpoint
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"moto server did not start: {log.read_text()[-500:]}")


class RequestLog:
    """The server's request log, read from a mark: ``(method, path)`` of each request since."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def since(self) -> list[tuple[str, str]]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        return [(m.group(1), m.group(2)) for m in _REQUEST.finditer(text)]


def run(data_dir: Path, *, workdir: Path | None = None, epochs: int = 2, log: Callable[[str], None] = print) -> dict:
    """Every measurement of the module docstring, as one JSON-able dict."""
    import s3fs

    import geohsi
    from geohsi.datasets.registry import ingest_dataset
    from geohsi.scene import open_scene, write_scene
    from geohsi.storage import put

    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="geohsi-s3bench-"))
    work.mkdir(parents=True, exist_ok=True)
    proc, endpoint = _start_server(work / "requests.log")
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret", AWS_ENDPOINT_URL=endpoint,
                      AWS_DEFAULT_REGION="us-east-1", GEOHSI_CACHE_DIR=str(work / "cache"))  # fmt: skip
    requests = RequestLog(work / "requests.log")
    try:
        fs = s3fs.S3FileSystem()
        fs.mkdir("bench")
        mosaic = work / "enmap_potsdam.zarr"
        if not mosaic.exists():
            ingest_dataset("enmap_potsdam", mosaic)
        chunked = write_scene(open_scene(mosaic), work / "enmap_64.zarr", chunks=CHUNK, overwrite=True)
        put(chunked, "s3://bench/enmap.zarr", overwrite=True)
        tiles = sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))
        for t in tiles:
            fs.put_file(str(t), f"bench/tiles/{t.name}")
        bundle = geohsi.train(mosaic, out=work / "bundle", adapter="krona+", epochs=epochs, split="fraction:0.1",
                              overwrite=True, progress=False, log=lambda m: None)  # fmt: skip
        res: dict = {"scene": f"enmap_potsdam mosaic, {CHUNK}-px chunks", "tiles": len(tiles)}
        res.update(_read_costs(fs, requests, bundle))
        res.update(_tile_reads(fs, [f"s3://bench/tiles/{t.name}" for t in tiles]))
        res.update(_window_reads(fs, chunked, work))
        t0 = time.perf_counter()
        local = geohsi.classify_many([str(t) for t in tiles], bundle, work / "maps_local", overwrite=True,
                                     log=lambda m: None)  # fmt: skip
        res["batch_local_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        remote = geohsi.classify_many([f"s3://bench/tiles/{t.name}" for t in tiles], bundle, "s3://bench/maps_batch",
                                      overwrite=True, log=lambda m: None)  # fmt: skip
        res["batch_bucket_s"] = round(time.perf_counter() - t0, 1)
        res["batch_ratio"] = round(res["batch_bucket_s"] / res["batch_local_s"], 2)
        res["batch_done"] = [local.counts().get("done", 0), remote.counts().get("done", 0)]
        log(str(res))
        return res
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _read_costs(fs, requests: RequestLog, bundle: Path) -> dict:
    """Requests to open the bucket's scene store, the chunks the client's input check reads, and the chunk bytes
    the map's graph fetches (halos included) against the cube's stored bytes."""
    from geohsi.bundle import load_bundle
    from geohsi.classification.cluster import open_cluster
    from geohsi.classification.plan import build_plan
    from geohsi.classification.run import write_map
    from geohsi.scene import open_scene

    url = "s3://bench/enmap.zarr"
    sizes = {"/" + f["name"]: int(f["size"]) for f in fs.find("bench/enmap.zarr", detail=True).values()}
    cube = {p: s for p, s in sizes.items() if "/reflectance/c/" in p}
    out: dict = {"cube_chunks": len(cube), "cube_bytes": sum(cube.values())}
    requests.mark()
    ds = open_scene(url)
    opened = requests.since()
    out["open_requests"] = len(opened)
    out["open_metadata_reads"] = sum(1 for m, p in opened if m == "GET" and p.endswith("zarr.json"))
    b = load_bundle(bundle)
    requests.mark()
    b.transform.check_scene(ds, warn=lambda m: None)  # the input check classify runs first (nine windows)
    out["check_chunks"] = len({p for m, p in requests.since() if m == "GET" and p in cube})
    n_tasks = -(-int(ds.sizes["y"]) // CHUNK) * -(-int(ds.sizes["x"]) // CHUNK)
    with open_cluster(None, workers=2, device="cpu", max_tasks=n_tasks) as info:
        plan = build_plan(ds, b, chunks=CHUNK, device=info.device, precision="fp32", gpu_resources=info.gpu_resources,
                          torch_threads=info.torch_threads, host_workers=info.host_workers)  # fmt: skip
        requests.mark()
        write_map(plan, "s3://bench/maps/enmap.tif", info.client, overwrite=True, progress=False, log=lambda m: None)
    fetched = [p.split("?", 1)[0] for m, p in requests.since() if m == "GET"]
    out["map_tasks"] = n_tasks
    out["cube_bytes_fetched"] = sum(cube.get(p, 0) for p in fetched)
    out["cube_chunks_fetched_twice"] = sum(1 for p in set(fetched) if p in cube and fetched.count(p) > 1)
    out["fetched_ratio"] = round(out["cube_bytes_fetched"] / out["cube_bytes"], 3)
    return out


def _tile_reads(fs, urls: list[str], repeats: int = 3) -> dict:
    """The GeoTIFF tiles read whole through GDAL's /vsis3/ (what geohsi uses) and through fsspec file objects,
    alternated, the minimum of ``repeats`` each."""
    import rasterio

    from geohsi.storage import open_raster

    def gdal() -> None:
        for u in urls:
            with open_raster(u) as src:
                src.read()

    def fsspec_file() -> None:
        for u in urls:
            with fs.open(u.removeprefix("s3://"), "rb") as f, rasterio.open(f) as src:
                src.read()

    best = {"gdal": float("inf"), "fsspec": float("inf")}
    for _ in range(repeats):
        for name, fn in (("gdal", gdal), ("fsspec", fsspec_file)):
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {"tiles_gdal_s": round(best["gdal"], 3), "tiles_fsspec_s": round(best["fsspec"], 3)}


def _window_reads(fs, store: Path, work: Path, n: int = 20) -> dict:
    """``n`` random 32 × 32 windows (all bands) of the mosaic as one large COG, through GDAL and through fsspec
    file objects: seconds and bytes received (from the server's log), the minimum of two rounds each."""
    import numpy as np
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window

    from geohsi.scene import cube, open_scene
    from geohsi.storage import open_raster

    ds = open_scene(store)
    arr = cube(ds).values
    tif = work / "mosaic.tif"
    with rasterio.open(tif.with_suffix(".tiled.tif"), "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                       count=arr.shape[0], dtype=arr.dtype, tiled=True, blockxsize=32, blockysize=32) as dst:  # fmt: skip
        dst.write(arr)
    rasterio.shutil.copy(tif.with_suffix(".tiled.tif"), tif, driver="COG", BLOCKSIZE=32, INTERLEAVE="TILE")
    fs.put_file(str(tif), "bench/mosaic.tif")
    rng = np.random.default_rng(0)
    windows = [Window(int(c), int(r), 32, 32) for r, c in zip(rng.integers(0, arr.shape[1] - 32, n),
                                                              rng.integers(0, arr.shape[2] - 32, n), strict=True)]  # fmt: skip

    def gdal() -> None:
        for w in windows:
            with open_raster("s3://bench/mosaic.tif") as src:
                src.read(window=w)

    def fsspec_file() -> None:
        for w in windows:
            with fs.open("bench/mosaic.tif", "rb") as f, rasterio.open(f) as src:
                src.read(window=w)

    best = {"gdal": float("inf"), "fsspec": float("inf")}
    for _ in range(2):
        for name, fn in (("gdal", gdal), ("fsspec", fsspec_file)):
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {"cog_mb": round(tif.stat().st_size / 2**20, 1), "windows": n, "windows_gdal_s": round(best["gdal"], 3),
            "windows_fsspec_s": round(best["fsspec"], 3)}  # fmt: skip


def markdown(res: dict, command: str) -> str:
    """The docs section."""
    return (
        f"Command: `{command}` (moto's S3 server on loopback, its request log counted; the bundle: `small` dense "
        "KronA+).\n\n"
        "| measurement | value |\n|---|---|\n"
        f"| requests to open the scene store ({res['scene']}) | {res['open_requests']} "
        f"(`zarr.json` reads: {res['open_metadata_reads']}; the rest: the completion marker and the band coordinates) |\n"
        f"| cube chunks the client's input check reads before the map (nine sample windows) | {res['check_chunks']} "
        f"of {res['cube_chunks']} |\n"
        f"| cube chunk bytes the map's graph fetches ÷ stored ({res['map_tasks']} tasks with halos) | {res['fetched_ratio']} "
        f"({res['cube_bytes_fetched']:,} of {res['cube_bytes']:,} B; chunks fetched twice: {res['cube_chunks_fetched_twice']}) |\n"
        f"| the {res['tiles']} tiles read whole: GDAL /vsis3/ vs fsspec file objects (best of 3) | "
        f"{res['tiles_gdal_s']} s vs {res['tiles_fsspec_s']} s |\n"
        f"| {res['windows']} random 32 × 32 windows of a {res['cog_mb']} MB COG: GDAL /vsis3/ vs fsspec file objects | "
        f"{res['windows_gdal_s']} s vs {res['windows_fsspec_s']} s |\n"
        f"| batch of the {res['tiles']} tiles, local disk → local folder | {res['batch_local_s']} s |\n"
        f"| the same batch, bucket → bucket | {res['batch_bucket_s']} s ({res['batch_ratio']}× the local run) |\n"
    )


__all__ = ["RequestLog", "markdown", "run"]
