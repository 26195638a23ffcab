"""Writing maps: chunk results into a resumable intermediate Zarr store, then one final conversion.

The intermediate store ``.NAME.parts.zarr`` sits beside the output. Every chunk task writes its
region of each array (chunk-aligned, so parallel writers never touch the same Zarr chunk) and then
a marker ``done/I_J.json`` (written under a temporary name and renamed, so a marker only exists for
a complete chunk). A re-run with the same bundle hash, scene identity, chunking and outputs skips
the chunks that have markers. After the last chunk, :func:`finalize` converts once:

* ``.tif`` → Cloud-Optimized GeoTIFF: a tiled GTiff with the colour table, class names (band tags
  ``CLASS_<id>`` and dataset tag ``GEOHSI_CLASSES`` JSON) and nodata 0, copied by GDAL's COG driver,
  which builds overviews with ``MODE`` resampling (categorical data: no invented classes);
* ``.zarr`` → a georeferenced Zarr v3 Dataset (``classes`` and optional ``confidence``).

Probabilities and confidence encodings (documented choice):

* in ``.zarr``: float16, NaN = nodata (error ≤ 2.5e-4 for values in [0, 1]);
* in ``.tif``: uint8 ``round(p · 254)`` with band scale ``1/254`` and nodata 255 (error ≤ 0.002);
  GeoTIFF readers everywhere understand it, and it is 2× smaller than float16. Overviews: AVERAGE.

With a ``.tif`` map, ``--confidence`` writes ``NAME.confidence.tif`` beside it; with ``.zarr`` it
is a ``confidence`` variable of the same store.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.classify.graph import NODATA, labels_from_probabilities
from geohsi.errors import GeoreferenceError, UsageError
from geohsi.scene import Legend

MAP_SUFFIXES = (".tif", ".tiff", ".zarr")
PROB_SCALE = 254
PROB_NODATA = 255
COG_BLOCK = 512
STRIP_ROWS = 512


def check_suffix(path: Path, what: str = "--out") -> str:
    """``tif`` or ``zarr`` for an output path.

    Raises:
        UsageError: another suffix.
    """
    suf = path.suffix.lower()
    if suf not in MAP_SUFFIXES:
        raise UsageError(f"{what} {path} must end in .tif or .zarr (Cloud-Optimized GeoTIFF or georeferenced Zarr)")
    return "zarr" if suf == ".zarr" else "tif"


def require_crs(scene_path: Any, crs: Any, out: Path) -> None:
    """A GeoTIFF map needs a CRS: refuse pixel-grid scenes with a one-line way forward.

    Raises:
        GeoreferenceError: ``crs`` is ``None``.
    """
    if crs is None:
        raise GeoreferenceError(
            f"{scene_path} is a pixel-grid scene without a CRS, so {out} cannot be a georeferenced GeoTIFF; "
            f"write --out {out.with_suffix('.zarr').name} instead, or re-ingest the scene with --crs and --transform"
        )


def intermediate_path(out: Path) -> Path:
    """The resumable intermediate store of an output: ``.NAME.parts.zarr`` beside it."""
    return out.parent / f".{out.name}.parts.zarr"


@dataclass
class Intermediate:
    """The chunk store of one classification run.

    Attributes:
        path: the ``.parts.zarr`` directory.
        shape: ``(H, W)``.
        chunk: spatial chunk edge.
        n_classes: K.
        probabilities: whether per-class probabilities are stored.
        confidence: whether the max probability is stored.
    """

    path: Path
    shape: tuple[int, int]
    chunk: int
    n_classes: int
    probabilities: bool
    confidence: bool

    @property
    def done_dir(self) -> Path:
        return self.path / "done"

    def done(self) -> set[tuple[int, int]]:
        """Chunks ``(i, j)`` whose results are complete."""
        out = set()
        if self.done_dir.is_dir():
            for f in self.done_dir.glob("*.json"):
                i, j = f.stem.split("_")
                out.add((int(i), int(j)))
        return out

    def markers(self) -> dict[tuple[int, int], dict[str, Any]]:
        """The content of every completion marker (write id, worker, pid)."""
        return {
            tuple(int(v) for v in f.stem.split("_")): json.loads(f.read_text())
            for f in sorted(self.done_dir.glob("*.json"))
        }


def open_intermediate(
    out: Path,
    *,
    identity: dict[str, Any],
    shape: tuple[int, int],
    chunk: int,
    n_classes: int,
    dtype: np.dtype,
    probabilities: bool,
    confidence: bool,
    resume: bool,
) -> tuple[Intermediate, str | None]:
    """Open the intermediate store for resuming, or (re)create it.

    Args:
        out: the final output path.
        identity: bundle hash, scene identity, chunking and outputs; must equal the stored one to resume.
        shape: ``(H, W)``.
        chunk: spatial chunk edge.
        n_classes: K.
        dtype: class-id dtype.
        probabilities: store per-class probabilities.
        confidence: store the max probability.
        resume: reuse matching completed chunks.

    Returns:
        ``(intermediate, note)``; ``note`` says why an existing store was discarded, if it was.
    """
    import zarr

    path = intermediate_path(out)
    inter = Intermediate(path, shape, chunk, n_classes, probabilities, confidence)
    note = None
    if path.exists():
        try:
            stored = dict(zarr.open_group(str(path), mode="r").attrs).get("identity")
        except Exception:  # a broken store from a crash during creation: start again
            stored = None
        if resume and stored == identity:
            return inter, None
        note = (
            "--no-resume: recomputing every chunk" if not resume
            else f"intermediate {path} belongs to another bundle, scene, chunking or output set; recomputing every chunk"
        )
        shutil.rmtree(path)
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    h, w = shape
    g.create_array("classes", shape=(h, w), chunks=(chunk, chunk), dtype=dtype, fill_value=NODATA)
    if probabilities:
        g.create_array("probabilities", shape=(n_classes, h, w), chunks=(n_classes, chunk, chunk), dtype="float32", fill_value=np.nan)
    if confidence:
        g.create_array("confidence", shape=(h, w), chunks=(chunk, chunk), dtype="float32", fill_value=np.nan)
    g.attrs["identity"] = identity
    inter.done_dir.mkdir()
    return inter, note


def store_chunk(
    probs: np.ndarray, i: int, j: int, *, inter: Intermediate, class_ids: np.ndarray,
) -> int:
    """Write one chunk's results into the intermediate store, then its completion marker.

    Runs on a worker. Region writes are aligned to the store's chunks, so concurrent tasks never
    write the same Zarr chunk.

    Args:
        probs: ``[K, h, w]`` float32 probabilities of chunk ``(i, j)``, NaN = nodata.
        i: chunk row index.
        j: chunk column index.
        inter: the intermediate store.
        class_ids: ``[K]`` class id per logit.

    Returns:
        The number of classified (valid) pixels in the chunk.
    """
    import socket

    import zarr

    g = zarr.open_group(str(inter.path), mode="r+")
    y0, x0 = i * inter.chunk, j * inter.chunk
    _, h, w = probs.shape
    g["classes"][y0: y0 + h, x0: x0 + w] = labels_from_probabilities(probs, class_ids)
    if inter.probabilities:
        g["probabilities"][:, y0: y0 + h, x0: x0 + w] = probs
    if inter.confidence:
        g["confidence"][y0: y0 + h, x0: x0 + w] = probs.max(axis=0)
    worker = None
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        pass
    marker = {"write_id": uuid.uuid4().hex, "worker": worker, "host": socket.gethostname(), "pid": os.getpid()}
    final = inter.done_dir / f"{i}_{j}.json"
    tmp = inter.done_dir / f".{i}_{j}.{marker['write_id']}.tmp"
    tmp.write_text(json.dumps(marker))
    os.replace(tmp, final)
    return int((~np.isnan(probs[0])).sum())


def _rgba(color: str) -> tuple[int, int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255


def _strips(h: int):
    for y0 in range(0, h, STRIP_ROWS):
        yield y0, min(h, y0 + STRIP_ROWS)


def _cog_copy(src: Path, dst: Path, resampling: str) -> None:
    import rasterio.shutil

    rasterio.shutil.copy(
        str(src), str(dst), driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=COG_BLOCK,
        OVERVIEW_RESAMPLING=resampling, OVERVIEWS="AUTO", BIGTIFF="IF_SAFER",
    )


def write_class_cog(inter: Intermediate, dst: Path, *, crs: Any, transform: Any, classes: Legend) -> None:
    """Convert the stored class ids to a COG at ``dst`` (colour table, class names, nodata 0, MODE overviews)."""
    import rasterio
    import zarr
    from rasterio.windows import Window

    arr = zarr.open_group(str(inter.path), mode="r")["classes"]
    h, w = inter.shape
    tiled = inter.path / "classes.tif"
    profile = dict(
        driver="GTiff", width=w, height=h, count=1, dtype=str(arr.dtype), crs=crs, transform=transform,
        nodata=NODATA, tiled=True, blockxsize=COG_BLOCK, blockysize=COG_BLOCK, compress="deflate",
        photometric="palette", BIGTIFF="IF_SAFER",
    )
    with rasterio.open(tiled, "w", **profile) as out:
        for y0, y1 in _strips(h):
            out.write(arr[y0:y1, :], 1, window=Window(0, y0, w, y1 - y0))
        cmap = {NODATA: (0, 0, 0, 0)}
        cmap.update({c.id: _rgba(c.color) for c in classes})
        out.write_colormap(1, cmap)
        out.update_tags(GEOHSI_CLASSES=json.dumps(classes.to_list()))
        out.update_tags(1, **{f"CLASS_{c.id}": c.name for c in classes}, CLASS_0="nodata")
        out.set_band_description(1, "class id (0 = nodata)")
    _cog_copy(tiled, dst, "MODE")
    tiled.unlink()


def write_scaled_cog(
    inter: Intermediate, name: str, dst: Path, *, crs: Any, transform: Any, descriptions: list[str]
) -> None:
    """Convert stored probabilities/confidence to a uint8 COG (``round(p·254)``, scale 1/254, nodata 255)."""
    import rasterio
    import zarr
    from rasterio.windows import Window

    arr = zarr.open_group(str(inter.path), mode="r")[name]
    h, w = inter.shape
    count = arr.shape[0] if arr.ndim == 3 else 1
    tiled = inter.path / f"{name}.tif"
    profile = dict(
        driver="GTiff", width=w, height=h, count=count, dtype="uint8", crs=crs, transform=transform,
        nodata=PROB_NODATA, tiled=True, blockxsize=COG_BLOCK, blockysize=COG_BLOCK, compress="deflate",
        interleave="band", BIGTIFF="IF_SAFER",
    )
    with rasterio.open(tiled, "w", **profile) as out:
        for y0, y1 in _strips(h):
            p = np.asarray(arr[..., y0:y1, :], dtype="float32").reshape(count, y1 - y0, w)
            q = np.where(np.isnan(p), PROB_NODATA, np.rint(np.nan_to_num(p) * PROB_SCALE)).astype("uint8")
            out.write(q, window=Window(0, y0, w, y1 - y0))
        out.scales = (1.0 / PROB_SCALE,) * count
        out.offsets = (0.0,) * count
        for b, d in enumerate(descriptions, start=1):
            out.set_band_description(b, d)
        out.update_tags(GEOHSI_ENCODING=f"probability = value / {PROB_SCALE}; {PROB_NODATA} = nodata")
    _cog_copy(tiled, dst, "AVERAGE")
    tiled.unlink()


def write_zarr_map(
    inter: Intermediate, dst: Path, *, scene: Any, classes: Legend, variables: tuple[str, ...],
    attrs: dict[str, Any],
) -> None:
    """Write stored arrays as a georeferenced Zarr v3 Dataset at ``dst`` (streamed, chunk by chunk)."""
    import dask.array as da
    import xarray as xr
    import zarr

    from geohsi.scene import scene_crs

    g = zarr.open_group(str(inter.path), mode="r")
    coords = {"y": scene["y"].values, "x": scene["x"].values}
    ids = [int(i) for i in classes.ids]
    data = {}
    for v in variables:
        arr = da.from_zarr(g[v])
        if v != "classes":
            arr = arr.astype("float16")  # the intermediate keeps float32 so each output is quantised once
        if v == "probabilities":
            data[v] = xr.DataArray(arr, dims=("class", "y", "x"), coords={"class": ids, **coords})
            data[v].attrs["long_name"] = "class probability (float16, NaN = nodata)"
        else:
            data[v] = xr.DataArray(arr, dims=("y", "x"), coords=coords)
            data[v].attrs["long_name"] = (
                "class id (0 = nodata)" if v == "classes" else "probability of the predicted class (float16, NaN = nodata)"
            )
    ds = xr.Dataset(data)
    ds.attrs.update(attrs)
    ds.attrs.update(classes.to_attrs())
    crs = scene_crs(scene)
    ds.attrs["georeferenced"] = int(crs is not None)
    ds = ds.rio.write_transform(scene.rio.transform())
    if crs is not None:
        ds = ds.rio.write_crs(crs).rio.write_transform(scene.rio.transform())
    if "classes" in ds:
        ds["classes"].encoding["_FillValue"] = NODATA
    ds.to_zarr(dst, mode="w", zarr_format=3, consolidated=False)


def remove_intermediate(inter: Intermediate) -> None:
    """Delete the intermediate store once every output is in place."""
    shutil.rmtree(inter.path, ignore_errors=True)


__all__ = [
    "Intermediate",
    "MAP_SUFFIXES",
    "PROB_NODATA",
    "PROB_SCALE",
    "check_suffix",
    "intermediate_path",
    "open_intermediate",
    "remove_intermediate",
    "require_crs",
    "store_chunk",
    "write_class_cog",
    "write_scaled_cog",
    "write_zarr_map",
]
