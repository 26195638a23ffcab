"""Map writers: class ids (and probabilities / confidence) from a Zarr group into the final outputs.

The classification stage computes chunks into a resumable parts store
(:mod:`geohsi.classification.parts`), then converts it once with these writers:

* ``.tif`` → Cloud-Optimized GeoTIFF: a tiled GTiff with the colour table, class names (band tags
  ``CLASS_<id>`` and dataset tag ``GEOHSI_CLASSES`` JSON) and nodata 0, copied by GDAL's COG driver,
  which builds overviews with ``MODE`` resampling (categorical data: no invented classes);
* ``.zarr`` → a georeferenced Zarr v3 Dataset (``classes`` and optional ``confidence``).

Probabilities and confidence encodings (documented choice):

* in ``.zarr``: float16, NaN = nodata (error ≤ 2.5e-4 for values in [0, 1]);
* in ``.tif``: uint8 ``round(p · 254)`` with band scale ``1/254`` and nodata 255 (error ≤ 0.002);
  GeoTIFF readers everywhere understand it, and it is 2× smaller than float16. Overviews: AVERAGE.

Every map records what it was made from — bundle path and sha256, scene source and identity —
as ``GEOHSI_*`` dataset tags of the GeoTIFF or attributes of the Zarr store (:func:`read_identity`).

With a ``.tif`` map, ``--confidence`` writes ``NAME.confidence.tif`` beside it; with ``.zarr`` it
is a ``confidence`` variable of the same store.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import GeoreferenceError, UsageError
from geohsi.scene import Legend

#: class id of unclassified (nodata) pixels in every map.
NODATA = 0
MAP_SUFFIXES = (".tif", ".tiff", ".zarr")
PROB_SCALE = 254
PROB_NODATA = 255
COG_BLOCK = 512
STRIP_ROWS = 512
#: prefix of the dataset tags a GeoTIFF map records its bundle and scene in.
TAG_PREFIX = "GEOHSI_"


def labels_from_probabilities(probs: Any, class_ids: np.ndarray) -> Any:
    """Class ids of the most probable class; :data:`NODATA` (0) where probabilities are NaN.

    Args:
        probs: ``[K, h, w]`` numpy or dask float32.
        class_ids: ``[K]`` class id of each logit.

    Returns:
        ``[h, w]`` uint8/uint16 class ids (same container type as ``probs``).
    """
    import dask.array as da

    dt = class_dtype(class_ids)
    if isinstance(probs, da.Array):
        # the class axis is one chunk, so labels are a per-block function that drops it
        return probs.rechunk({0: -1}).map_blocks(labels_from_probabilities, class_ids, drop_axis=0, dtype=dt)
    lut = np.asarray(class_ids, dtype=dt)
    ids = lut[np.nan_to_num(probs, nan=-1.0).argmax(axis=0)]
    return np.where(np.isnan(probs[0]), np.asarray(NODATA, dt), ids)


def class_dtype(class_ids: np.ndarray) -> np.dtype:
    """uint8 when every class id fits below 255, else uint16."""
    return np.dtype("uint8" if int(np.max(class_ids, initial=0)) < 255 else "uint16")


def check_suffix(path: Path | str, what: str = "--out") -> str:
    """``tif`` or ``zarr`` for an output path or URL.

    Raises:
        UsageError: another suffix.
    """
    from geohsi.storage import display, name

    suf = Path(name(path)).suffix.lower()
    if suf not in MAP_SUFFIXES:
        raise UsageError(f"{what} {display(path)} must end in .tif or .zarr (Cloud-Optimized GeoTIFF or georeferenced Zarr)")
    return "zarr" if suf == ".zarr" else "tif"


def require_crs(scene_path: Any, crs: Any, out: Path | str) -> None:
    """A GeoTIFF map needs a CRS: refuse pixel-grid scenes with a one-line way forward.

    Raises:
        GeoreferenceError: ``crs`` is ``None``.
    """
    from geohsi.storage import display, with_suffix

    if crs is None:  # the path beside it: the bare name had pointed at the scene itself (ip.zarr) or lost the folder
        raise GeoreferenceError(
            f"{scene_path} is a pixel-grid scene without a CRS, so {out} cannot be a georeferenced GeoTIFF; "
            f"write it as a Zarr map ({display(with_suffix(out, '.zarr'))}; a batch: --format auto or zarr) instead, "
            "or re-ingest the scene with --crs and --transform"
        )


def _rgba(color: str) -> tuple[int, int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255


def _strips(h: int):
    for y0 in range(0, h, STRIP_ROWS):
        yield y0, min(h, y0 + STRIP_ROWS)


def _tiled_profile(
    width: int, height: int, count: int, dtype: str, crs: Any, transform: Any, nodata: float, **extra: Any
) -> dict[str, Any]:
    """The rasterio profile of the tiled, DEFLATE-compressed GeoTIFF a COG is copied from."""
    return dict(
        driver="GTiff",
        width=width,
        height=height,
        count=count,
        dtype=dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        tiled=True,
        blockxsize=COG_BLOCK,
        blockysize=COG_BLOCK,
        compress="deflate",
        BIGTIFF="IF_SAFER",
        **extra,
    )


def _cog_copy(src: Path, dst: Path, resampling: str) -> None:
    import rasterio.shutil

    rasterio.shutil.copy(
        str(src),
        str(dst),
        driver="COG",
        COMPRESS="DEFLATE",
        BLOCKSIZE=COG_BLOCK,
        OVERVIEW_RESAMPLING=resampling,
        OVERVIEWS="AUTO",
        BIGTIFF="IF_SAFER",
    )


@contextlib.contextmanager
def _tiled_beside(dst: Path) -> Iterator[Path]:
    """A local tiled GeoTIFF beside the (temporary, local) COG ``dst``, for GDAL's COG driver to copy; removed after."""
    tiled = Path(dst).with_name(Path(dst).name + "-tiled.tif")
    try:
        yield tiled
    finally:
        tiled.unlink(missing_ok=True)


def write_class_cog(
    group: str | os.PathLike, dst: Path, *, crs: Any, transform: Any, classes: Legend, identity: dict[str, str] | None = None
) -> None:
    """Convert a group's ``classes`` array to a COG at ``dst`` (colour table, class names, nodata 0, MODE overviews).

    Args:
        group: a Zarr group directory holding ``classes`` ``[H, W]`` (the parts store); the tiled
            GeoTIFF the COG is copied from is written inside it and removed.
        dst: the COG to write.
        crs: the map's CRS.
        transform: its affine transform.
        classes: the legend (colour table, ``CLASS_<id>`` band tags, ``GEOHSI_CLASSES`` dataset tag).
        identity: what the map was made from (``bundle``, ``bundle_sha256``, ``scene``,
            ``scene_identity``), stored as ``GEOHSI_<KEY>`` dataset tags (see :func:`read_identity`).
    """
    import rasterio
    import zarr
    from rasterio.windows import Window

    arr = zarr.open_group(str(group), mode="r")["classes"]
    h, w = arr.shape
    profile = _tiled_profile(w, h, 1, str(arr.dtype), crs, transform, NODATA, photometric="palette")
    with _tiled_beside(dst) as tiled:
        with rasterio.open(tiled, "w", **profile) as out:
            for y0, y1 in _strips(h):
                out.write(arr[y0:y1, :], 1, window=Window(0, y0, w, y1 - y0))
            cmap = {NODATA: (0, 0, 0, 0)}
            cmap.update({c.id: _rgba(c.color) for c in classes})
            out.write_colormap(1, cmap)
            out.update_tags(GEOHSI_CLASSES=json.dumps(classes.to_list()))
            if identity:
                out.update_tags(**{f"{TAG_PREFIX}{k.upper()}": str(v) for k, v in identity.items()})
            out.update_tags(1, **{f"CLASS_{c.id}": c.name for c in classes}, CLASS_0="nodata")
            out.set_band_description(1, "class id (0 = nodata)")
        _cog_copy(tiled, dst, "MODE")


def write_scaled_cog(
    group: str | os.PathLike, name: str, dst: Path, *, crs: Any, transform: Any, descriptions: list[str]
) -> None:
    """Convert a group's ``probabilities`` ``[K, H, W]`` or ``confidence`` ``[H, W]`` to a uint8 COG
    (``round(p·254)``, scale 1/254, nodata 255, AVERAGE overviews)."""
    import rasterio
    import zarr
    from rasterio.windows import Window

    arr = zarr.open_group(str(group), mode="r")[name]
    h, w = arr.shape[-2:]
    count = arr.shape[0] if arr.ndim == 3 else 1
    profile = _tiled_profile(w, h, count, "uint8", crs, transform, PROB_NODATA, interleave="band")
    with _tiled_beside(dst) as tiled:
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


def write_zarr_map(
    group: str | os.PathLike, dst: Path, *, scene: Any, classes: Legend, variables: tuple[str, ...], attrs: dict[str, Any]
) -> None:
    """Write a group's arrays as a georeferenced Zarr v3 Dataset at ``dst`` (streamed, chunk by chunk)."""
    import dask.array as da
    import xarray as xr
    import zarr

    from geohsi.scene import consolidated_quietly, scene_crs, scene_transform, write_georef

    g = zarr.open_group(str(group), mode="r")
    coords = {"y": scene["y"].values, "x": scene["x"].values}
    ids = [int(i) for i in classes.ids]
    data = {}
    for v in variables:
        arr = da.from_zarr(g[v])
        if v != "classes":
            arr = arr.astype("float16")  # the parts store keeps float32 so each output is quantised once
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
    ds = write_georef(ds, scene_transform(scene), crs)
    if "classes" in ds:
        ds["classes"].encoding["_FillValue"] = NODATA
    for v in ds.data_vars:  # listed as a coordinate, xarray opens spatial_ref with each variable without decode_coords="all"
        ds[v].encoding["coordinates"] = "spatial_ref"
    with consolidated_quietly():  # a reader opens the map with one metadata request (one object on S3)
        ds.to_zarr(dst, mode="w", zarr_format=3, consolidated=True)


def read_identity(path: str | os.PathLike) -> dict[str, str] | None:
    """What a map written by geohsi records about its making (``bundle_sha256``, ``scene_identity``, …).

    Reads the ``GEOHSI_*`` dataset tags of a GeoTIFF map or the attributes of a Zarr map.

    Returns:
        The recorded keys in lower case, or ``None`` when the path is not a readable map or records nothing.
    """
    from geohsi.storage import name, open_raster

    keys = ("bundle", "bundle_sha256", "scene", "scene_identity")
    try:
        if Path(name(path)).suffix.lower() == ".zarr":
            import zarr

            attrs = dict(zarr.open_group(str(path), mode="r").attrs)
            found = {k: str(attrs[k]) for k in keys if k in attrs}
        else:
            with open_raster(path) as src:
                tags = src.tags()
            found = {k: tags[f"{TAG_PREFIX}{k.upper()}"] for k in keys if f"{TAG_PREFIX}{k.upper()}" in tags}
    except Exception:  # noqa: BLE001 - an unreadable or foreign file records nothing
        return None
    return found or None


__all__ = [
    "MAP_SUFFIXES",
    "NODATA",
    "PROB_NODATA",
    "PROB_SCALE",
    "TAG_PREFIX",
    "check_suffix",
    "class_dtype",
    "labels_from_probabilities",
    "read_identity",
    "require_crs",
    "write_class_cog",
    "write_scaled_cog",
    "write_zarr_map",
]
