"""The scene schema: building a scene Dataset (:func:`make_scene`), its labels, checks and identity.

.. versionadded:: 0.1
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from affine import Affine

from geohsi.errors import GeoreferenceError, InputFormatError, UsageError
from geohsi.scene.georef import pixel_centres, write_georef
from geohsi.scene.legend import filled_colors

DATA_VARS: tuple[str, ...] = ("reflectance", "radiance")


DEFAULT_CHUNK = 256


SCENE_FORMAT_VERSION = 1


def data_var_name(ds: xr.Dataset) -> str:
    """Return the name of the scene's spectral variable (``reflectance`` or ``radiance``).

    Raises:
        InputFormatError: the dataset holds neither.
    """
    for name in DATA_VARS:
        if name in ds.data_vars:
            return name
    raise InputFormatError(
        f"not a geohsi scene: no 'reflectance' or 'radiance' variable (found {sorted(map(str, ds.data_vars))}); "
        "create one with 'geohsi ingest'"
    )


def cube(ds: xr.Dataset) -> xr.DataArray:
    """The spectral cube ``(band, y, x)`` of a scene."""
    return ds[data_var_name(ds)]


def _band_coord(values: Sequence[float] | np.ndarray | None, n: int, name: str, where: str) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    arr = np.asarray(values, dtype="float64").reshape(-1)
    if arr.size != n:
        raise InputFormatError(f"{where}{name} has {arr.size} values but the cube has {n} bands; fix the metadata")
    return arr


def _where(attrs: dict[str, Any] | None) -> str:
    """``"FILE: "`` of a scene's first source file, to name it in a message; ``""`` when unknown.

    A STAC asset's href may be a signed URL: its query goes (:func:`geohsi.storage.display`).
    """
    from geohsi.storage import display, name

    files = (attrs or {}).get("source_files")
    return f"{name(display(files[0]))}: " if files else ""


def _band_coords(
    nb: int,
    wavelength: Sequence[float] | np.ndarray | None,
    fwhm: Sequence[float] | np.ndarray | None,
    good_band: Sequence[bool] | np.ndarray | None,
    where: str = "",
) -> dict[str, Any]:
    """The band coordinates of :func:`make_scene`: index, wavelength, FWHM and the good-band flag."""
    coords: dict[str, Any] = {
        "band": np.arange(1, nb + 1, dtype="int32"),
        "wavelength": ("band", _band_coord(wavelength, nb, "wavelength", where)),
        "fwhm": ("band", _band_coord(fwhm, nb, "fwhm", where)),
        "good_band": ("band", np.ones(nb, bool) if good_band is None else np.asarray(good_band, bool).reshape(-1)),
    }
    if coords["good_band"][1].size != nb:
        raise InputFormatError(f"{where}bad-band list has {coords['good_band'][1].size} values for {nb} bands; fix the metadata")
    return coords


def make_scene(
    data: np.ndarray | da.Array,
    *,
    var: str = "reflectance",
    wavelength: Sequence[float] | np.ndarray | None = None,
    fwhm: Sequence[float] | np.ndarray | None = None,
    good_band: Sequence[bool] | np.ndarray | None = None,
    crs: Any = None,
    transform: Affine | None = None,
    nodata: float | None = None,
    scale_factor: float | None = None,
    add_offset: float | None = None,
    band_names: Sequence[str] | None = None,
    attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Build a scene Dataset from a ``(band, y, x)`` array and its metadata.

    Args:
        data: the cube ``[B, H, W]`` (numpy or dask; kept lazy).
        var: ``"reflectance"`` or ``"radiance"``.
        wavelength: band centres in nm (``None`` → NaN, i.e. unknown).
        fwhm: band widths in nm.
        good_band: per-band usability flag (default all True).
        crs: anything :class:`rasterio.crs.CRS` understands, or ``None`` for a pixel grid.
        transform: affine transform of the grid; required when ``crs`` is given. ``None`` with
            ``crs=None`` gives the pixel grid (pixel size 1, origin at the top-left corner).
        nodata: value marking missing pixels (written as CF ``_FillValue``).
        scale_factor: physical value = raw × scale_factor + add_offset (CF convention).
        add_offset: see ``scale_factor``.
        band_names: optional per-band names.
        attrs: dataset attributes (sensor, source_files, units, acquisition_time, …).

    Returns:
        The scene Dataset (lazy where ``data`` is).

    Raises:
        UsageError: ``var`` is not a known variable name.
        GeoreferenceError: a CRS without a transform.
    """
    if var not in DATA_VARS:
        raise UsageError(f"unknown data variable {var!r}; use one of {DATA_VARS}")
    if data.ndim != 3:
        raise InputFormatError(f"a scene cube must be 3-D (band, y, x), got shape {tuple(data.shape)}")
    nb, h, w = (int(s) for s in data.shape)
    georeferenced = crs is not None
    if georeferenced and transform is None:
        raise GeoreferenceError("a CRS was given without a transform; pass --transform or use --crs none")
    if transform is None:
        transform = Affine(1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    y, x = pixel_centres(transform, h, w)
    where = _where(attrs)
    coords = {**_band_coords(nb, wavelength, fwhm, good_band, where), "y": y, "x": x}
    if band_names is not None:
        # object strings: Zarr v3 has a stable encoding for them (fixed-width UTF-32 it has not)
        coords["band_name"] = ("band", np.asarray([str(b) for b in band_names], dtype=object))
    arr = xr.DataArray(data, dims=("band", "y", "x"), coords=coords, name=var)
    arr.coords["wavelength"].attrs.update(units="nm", long_name="band centre wavelength")
    arr.coords["fwhm"].attrs.update(units="nm", long_name="band full width at half maximum")
    if nodata is not None:
        _check_nodata_fits(nodata, np.dtype(data.dtype), where)
        arr.attrs["_FillValue"] = (
            np.asarray(nodata, dtype=data.dtype).item() if np.dtype(data.dtype).kind in "iu" else float(nodata)
        )
    if scale_factor is not None:
        arr.attrs["scale_factor"] = float(scale_factor)
    if add_offset is not None:
        arr.attrs["add_offset"] = float(add_offset)
    ds = xr.Dataset({var: arr})
    ds.attrs.update(attrs or {})
    ds.attrs["georeferenced"] = int(georeferenced)
    ds.attrs["geohsi_scene_version"] = SCENE_FORMAT_VERSION
    ds = write_georef(ds, transform, crs if georeferenced else None)
    ds[var].attrs["grid_mapping"] = "spatial_ref"
    return ds


def add_labels(
    ds: xr.Dataset,
    labels: np.ndarray | da.Array | xr.DataArray,
    class_names: Sequence[str] | None = None,
    class_colors: Sequence[str] | None = None,
    source: str | None = None,
) -> xr.Dataset:
    """Attach a ``labels(y, x)`` variable (0 = unlabelled) to a scene.

    Args:
        ds: the scene.
        labels: integer class ids on the scene grid ``[H, W]``.
        class_names: names of classes 1..K (index i → class i+1). Defaults to ``class_<id>``.
        class_colors: ``#rrggbb`` colours for classes 1..K; a default palette otherwise.
        source: file the labels came from (recorded in attrs).

    Returns:
        A new Dataset with ``labels``.

    Raises:
        GeoreferenceError: the label grid's shape differs from the scene's.
        InputFormatError: labels are not integers from 0 to 65,535.
    """
    values = labels.data if isinstance(labels, xr.DataArray) else labels
    h, w = ds.sizes["y"], ds.sizes["x"]
    if tuple(values.shape) != (h, w):
        raise GeoreferenceError(
            f"labels{' ' + source if source else ''} have shape {tuple(values.shape)} but the scene is {h}×{w} pixels; "
            "give labels on the scene's grid"
        )
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not np.all(arr[finite] == np.round(arr[finite])):
            raise InputFormatError(f"labels{' ' + source if source else ''} are not integer class ids; give a class-id raster")
        arr = np.where(finite, arr, 0)
    if arr.size and arr.min() < 0:
        raise InputFormatError(f"labels{' ' + source if source else ''} contain negative class ids; use 0 for unlabelled")
    max_id = int(arr.max()) if arr.size else 0
    if max_id > 65535:  # uint16 would wrap it onto another class (65537 -> 1)
        raise InputFormatError(
            f"labels{' ' + source if source else ''} hold class id {max_id:,}; class ids go up to 65,535: renumber the classes 1..K"
        )
    arr = arr.astype("uint8" if max_id < 256 else "uint16")
    ids = [int(i) for i in np.unique(arr) if i != 0]
    n_named = max(ids, default=0)
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if len(class_names) < n_named:
            raise UsageError(
                f"{len(class_names)} class names given but labels use ids up to {n_named}; give one name per class 1..{n_named}"
            )
        n_named = len(class_names)
    names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(1, n_named + 1)]
    colors = list(class_colors) if class_colors is not None else filled_colors([None] * n_named)
    lab = xr.DataArray(arr, dims=("y", "x"), coords={"y": ds.y, "x": ds.x}, name="labels")
    lab.attrs.update(
        class_ids=list(range(1, n_named + 1)),
        class_names=names,
        class_colors=colors[:n_named],
        long_name="class id (0 = unlabelled)",
        grid_mapping="spatial_ref",
    )
    if source:
        lab.attrs["source"] = source
    out = ds.copy()
    out["labels"] = lab
    return out


def _check_nodata_fits(nodata: float, dtype: np.dtype, where: str = "") -> None:
    """Refuse a nodata value the cube's integer type cannot hold (an ENVI ``data ignore value = -9999`` on uint16)."""
    if dtype.kind not in "iu":
        return
    info = np.iinfo(dtype)
    if not (np.isfinite(nodata) and float(nodata).is_integer() and info.min <= nodata <= info.max):
        raise InputFormatError(
            f"{where}nodata value {nodata:g} cannot occur in {dtype.name} data ({info.min}..{info.max}); ingest with "
            "--nodata VALUE (one it can hold) or --nodata none, or fix the file (ENVI: 'data ignore value'; GeoTIFF: "
            "gdal_edit.py -a_nodata VALUE or -unsetnodata)"
        )


def chosen_nodata(declared: float | None, override: float | str | None) -> float | None:
    """The nodata value a reader gives its scene: the file's ``declared`` one unless ``override`` (``--nodata``)
    replaces it — a number (or its text), or ``"none"`` for a file whose declared value is real data.

    Raises:
        UsageError: ``override`` is text that is neither a number nor ``none``.
    """
    if override is None:
        return declared
    if not isinstance(override, str):
        return float(override)
    text = override.strip().lower()
    if text == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise UsageError(
            f"--nodata {override} is not a number; give the stored value that marks pixels without data (e.g. -9999), or none"
        ) from None


def labels_digest(labels: np.ndarray) -> str:
    """sha256 of a label grid (shape + values): how evaluation recognises the training scene."""
    a = np.ascontiguousarray(labels, dtype=np.int64)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()


def sparse_labels_digest(index: np.ndarray, labels: np.ndarray, shape: tuple[int, int], rows: int = 1024) -> str:
    """:func:`labels_digest` of the grid of ``shape`` holding ``labels`` at the flat ``index`` (0 elsewhere),
    built ``rows`` rows at a time: the same digest, in memory that follows the labels.

    .. versionadded:: 0.3
    """
    h, w = (int(n) for n in shape)
    order = np.argsort(index, kind="stable")  # a repeated index keeps its last label, as an assignment does
    index, labels = np.asarray(index)[order], np.asarray(labels)[order]
    digest = hashlib.sha256(repr((h, w)).encode())
    for r0 in range(0, h, rows):
        lo, hi = np.searchsorted(index, [r0 * w, min(h, r0 + rows) * w])
        block = np.zeros((min(h, r0 + rows) - r0) * w, dtype=np.int64)
        block[index[lo:hi] - r0 * w] = labels[lo:hi]
        digest.update(block.tobytes())
    return digest.hexdigest()


def rechunk_scene(ds: xr.Dataset, chunks: int = DEFAULT_CHUNK) -> xr.Dataset:
    """Chunk a scene the geohsi way: all bands in one chunk, square ``chunks``×``chunks`` spatial chunks."""
    if chunks <= 0:
        raise UsageError(f"--chunks must be a positive pixel count, got {chunks}")
    spec = {"band": -1, "y": chunks, "x": chunks}
    out = ds.copy()
    for name, v in ds.data_vars.items():
        # data variables only: chunking the small band coordinates would make every later read of
        # them a Dask computation on the current cluster
        out[name] = v.chunk({k: spec[k] for k in v.dims if k in spec})
    return out


def validate_scene(ds: xr.Dataset) -> None:
    """Check a Dataset against the scene schema.

    Raises:
        InputFormatError: a required variable/coordinate is missing or has the wrong dims.
    """
    var = data_var_name(ds)
    if ds[var].dims != ("band", "y", "x"):
        raise InputFormatError(f"scene variable {var!r} has dims {ds[var].dims}, expected ('band', 'y', 'x')")
    for c in ("wavelength", "fwhm", "good_band"):
        if c not in ds.coords:
            raise InputFormatError(f"scene lacks the {c!r} band coordinate; re-create it with 'geohsi ingest'")
    if "labels" in ds and ds["labels"].dims != ("y", "x"):
        raise InputFormatError(f"scene labels have dims {ds['labels'].dims}, expected ('y', 'x')")


def scene_identity(scene: xr.Dataset) -> str:
    """A string that changes when the scene store, its grid or its metadata change (resume and provenance key).

    Uses the store path, the cube's shape and dtype, and the sha256 of the store's ``zarr.json``
    metadata files (root and cube); an in-memory scene falls back to Dask's token of the cube.
    """
    from dask.base import tokenize

    v = cube(scene)
    h = hashlib.sha256(f"{tuple(v.shape)}|{v.dtype}".encode())
    src = scene.encoding.get("source")
    if src and Path(src, "zarr.json").is_file():
        h.update(os.path.abspath(src).encode())
        for meta in (Path(src, "zarr.json"), Path(src, str(v.name), "zarr.json")):
            if meta.is_file():
                h.update(meta.read_bytes())
    else:
        h.update(tokenize(v.data).encode())
    return h.hexdigest()


def attrs_json(value: Any) -> str:
    """Serialise a metadata value for Zarr attributes (used for nested structures)."""
    return json.dumps(value, sort_keys=True)
