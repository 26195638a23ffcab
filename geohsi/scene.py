"""The geohsi scene: a hyperspectral cube as an xarray Dataset stored in Zarr v3.

Schema (see ``docs/scene-format.md``):

* data variable ``reflectance`` or ``radiance``, dims ``(band, y, x)``, dtype as read (integer
  DN/reflectance keep their dtype; CF ``scale_factor``/``add_offset`` attrs record the physical
  scale); nodata as CF ``_FillValue`` (read back by ``rio.nodata``);
* coords ``band`` (1-based index), ``wavelength`` and ``fwhm`` (nm, NaN where unknown),
  ``good_band`` (bool; ENVI ``bbl``, EnMAP bad bands), ``y``/``x`` pixel centres in map units,
  ``spatial_ref`` (CRS + GeoTransform, rioxarray convention);
* optional ``labels(y, x)`` (uint8/uint16, 0 = unlabelled) with attrs ``class_ids``, ``class_names``,
  ``class_colors``;
* dataset attrs: ``sensor``, ``source_files``, ``units``, ``acquisition_time``, ``georeferenced``.

A scene without CRS is an explicit pixel grid: ``georeferenced = 0``, ``x = col + 0.5``,
``y = row + 0.5`` and no CRS in ``spatial_ref``; every later stage checks :func:`scene_crs`.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
import xarray as xr
from affine import Affine

from geohsi.errors import DataError, GeoreferenceError, InputFormatError, UsageError
from geohsi.files import atomic_output, joined_dask_threads

try:
    import rioxarray  # noqa: F401  (registers the .rio accessor)
except ImportError:  # an install without GDAL (rasterio/rioxarray/pyproj), e.g. the offline GPU check
    rioxarray = None  # pixel-grid scenes and Zarr maps still work; a CRS is refused with one line

if TYPE_CHECKING:
    from rasterio.crs import CRS

DATA_VARS: tuple[str, ...] = ("reflectance", "radiance")
DEFAULT_CHUNK = 256
SCENE_FORMAT_VERSION = 1

#: The class colours used when a dataset gives none: 20 colours as far apart as they can be (minimum
#: pairwise CIEDE2000 ΔE₀₀ 24.4, also from the white nodata background and from black; tab20, used
#: before, had 12.1), lightness L* 30–92, ordered so that the first k of them are far apart too
#: (ΔE₀₀ ≥ 31 for 5 classes, ≥ 25.6 for 10). Chosen by a max–min search over an 18-level sRGB grid;
#: tests/test_palette.py checks the distances with geohsi.plot.palette_distances.
DEFAULT_COLORS: tuple[str, ...] = (
    "#ff004b",
    "#1e87f0",
    "#968700",
    "#0000ff",
    "#005a5a",
    "#00c32d",
    "#ff00e1",
    "#96005a",
    "#5a4b2d",
    "#c3b4ff",
    "#2dd2ff",
    "#ffc378",
    "#5affe1",
    "#006900",
    "#e1f000",
    "#789687",
    "#5a5a78",
    "#c3691e",
    "#e1a5a5",
    "#960f00",
)


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


def _needs_gdal(what: str) -> GeoreferenceError:
    return GeoreferenceError(
        f"{what} needs rasterio and rioxarray (GDAL), which this installation lacks; install them "
        "(pip install rasterio rioxarray) or use a pixel-grid scene"
    )


def scene_crs(ds: xr.Dataset) -> CRS | None:
    """The scene's CRS, or ``None`` for a pixel-grid scene.

    Raises:
        GeoreferenceError: the scene has a CRS and rasterio/rioxarray are not installed.
    """
    if int(ds.attrs.get("georeferenced", 1)) == 0:
        return None
    if rioxarray is None:
        ref = ds.coords["spatial_ref"].attrs if "spatial_ref" in ds.coords else {}
        if ref.get("crs_wkt") or ref.get("spatial_ref"):
            raise _needs_gdal(f"{ds.encoding.get('source', 'the scene')} has a CRS; reading it")
        return None
    return ds.rio.crs


def scene_transform(obj: xr.Dataset | xr.DataArray) -> Affine:
    """The affine pixel → world (or pixel-grid) transform of a scene or map, as rioxarray reads it."""
    if rioxarray is not None:
        return obj.rio.transform()
    gt = obj.coords["spatial_ref"].attrs.get("GeoTransform") if "spatial_ref" in obj.coords else None
    if not gt:
        raise _needs_gdal("deriving a transform from coordinates")
    c, a, b, f, d, e = (float(v) for v in str(gt).split())
    return Affine(a, b, c, d, e, f)


def write_georef(obj: Any, transform: Affine, crs: Any = None) -> Any:
    """``obj`` with ``spatial_ref`` holding ``transform`` (GDAL GeoTransform) and, when given, ``crs``.

    Args:
        obj: a Dataset or DataArray with ``y``/``x``.
        transform: pixel → world (or pixel-grid) transform.
        crs: anything :class:`rasterio.crs.CRS` understands, or ``None`` for a pixel grid.

    Raises:
        GeoreferenceError: a CRS is given and rasterio/rioxarray are not installed.
    """
    if rioxarray is not None:
        if crs is None:
            return obj.rio.write_transform(transform)
        from rasterio.crs import CRS

        # write_crs drops an earlier GeoTransform; written after it, the transform stays with the CRS
        return obj.rio.write_crs(CRS.from_user_input(crs)).rio.write_transform(transform)
    if crs is not None:
        raise _needs_gdal("writing a CRS")
    ref = xr.DataArray(0, attrs={"GeoTransform": " ".join(str(v) for v in transform.to_gdal())})
    return obj.assign_coords(spatial_ref=ref)


def pixel_centres(transform: Affine, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(y, x)`` of a north-up grid.

    Raises:
        GeoreferenceError: the transform is rotated/sheared (not representable by 1-D coords).
    """
    if transform.b != 0 or transform.d != 0:
        raise GeoreferenceError(
            f"rotated or sheared grid {tuple(transform)[:6]} is not supported; warp the scene to a north-up grid "
            "first (e.g. gdalwarp)"
        )
    x = transform.c + transform.a * (np.arange(width) + 0.5)
    y = transform.f + transform.e * (np.arange(height) + 0.5)
    return y, x


def _band_coord(values: Sequence[float] | np.ndarray | None, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    arr = np.asarray(values, dtype="float64").reshape(-1)
    if arr.size != n:
        raise InputFormatError(f"{name} has {arr.size} values but the cube has {n} bands; fix the metadata")
    return arr


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
    coords: dict[str, Any] = {
        "band": np.arange(1, nb + 1, dtype="int32"),
        "wavelength": ("band", _band_coord(wavelength, nb, "wavelength")),
        "fwhm": ("band", _band_coord(fwhm, nb, "fwhm")),
        "good_band": ("band", np.ones(nb, bool) if good_band is None else np.asarray(good_band, bool).reshape(-1)),
        "y": y,
        "x": x,
    }
    if coords["good_band"][1].size != nb:
        raise InputFormatError(f"bad-band list has {coords['good_band'][1].size} values for {nb} bands; fix the metadata")
    if band_names is not None:
        # object strings: Zarr v3 has a stable encoding for them (fixed-width UTF-32 it has not)
        coords["band_name"] = ("band", np.asarray([str(b) for b in band_names], dtype=object))
    arr = xr.DataArray(data, dims=("band", "y", "x"), coords=coords, name=var)
    arr.coords["wavelength"].attrs.update(units="nm", long_name="band centre wavelength")
    arr.coords["fwhm"].attrs.update(units="nm", long_name="band full width at half maximum")
    if nodata is not None:
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
        InputFormatError: labels are not non-negative integers.
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
    colors = list(class_colors) if class_colors is not None else [DEFAULT_COLORS[i % len(DEFAULT_COLORS)] for i in range(n_named)]
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


def default_color(class_id: int) -> str:
    """The palette colour of a class id that comes without one (:data:`DEFAULT_COLORS`, cycled)."""
    return DEFAULT_COLORS[(int(class_id) - 1) % len(DEFAULT_COLORS)]


@dataclass(frozen=True)
class ClassInfo:
    """One class of a legend.

    Attributes:
        id: the class id in label rasters and maps (≥ 1; 0 means unlabelled / nodata).
        name: human-readable name.
        color: ``#rrggbb`` display colour, or ``None`` when unknown.
    """

    id: int
    name: str
    color: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "name", "color"}`` (the JSON form bundles and map tags store)."""
        return {"id": self.id, "name": self.name, "color": self.color}


@dataclass(frozen=True)
class Legend(Sequence[ClassInfo]):
    """An ordered class legend: a model's logit ``k`` is class ``legend[k]``.

    Built from a scene's labels (:func:`scene_legend`), a bundle's ``classes`` record
    (:meth:`from_list`) or a map's attributes (:meth:`from_attrs`); written back with
    :meth:`to_list` / :meth:`to_attrs`. It is a sequence of :class:`ClassInfo`.

    Attributes:
        classes: the classes in order.

    .. versionadded:: 0.1
    """

    classes: tuple[ClassInfo, ...]

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, k):  # type: ignore[override]
        return self.classes[k]

    def __iter__(self):
        return iter(self.classes)

    @property
    def ids(self) -> np.ndarray:
        """``[K]`` int64 class ids in order."""
        return np.asarray([c.id for c in self.classes], dtype=np.int64)

    @property
    def names(self) -> list[str]:
        """Class names in order."""
        return [c.name for c in self.classes]

    @property
    def colors(self) -> list[str | None]:
        """Class colours in order."""
        return [c.color for c in self.classes]

    def positions(self) -> dict[int, int]:
        """``{class id: position}`` (the logit index of each class)."""
        return {c.id: k for k, c in enumerate(self.classes)}

    def to_list(self) -> list[dict[str, Any]]:
        """``[{"id", "name", "color"}, …]``."""
        return [c.to_dict() for c in self.classes]

    def to_attrs(self) -> dict[str, list]:
        """``class_ids`` / ``class_names`` / ``class_colors`` attributes (the xarray/Zarr convention)."""
        return {"class_ids": [int(i) for i in self.ids], "class_names": self.names, "class_colors": self.colors}

    @classmethod
    def from_list(cls, items: Iterable[Mapping[str, Any] | ClassInfo]) -> Legend:
        """From ``[{"id", "name", "color"}, …]`` mappings (a bundle's ``classes``) or :class:`ClassInfo` objects."""
        out = []
        for c in items:
            if isinstance(c, ClassInfo):
                out.append(c)
            else:
                color = c.get("color")
                out.append(ClassInfo(int(c["id"]), str(c["name"]), None if color is None else str(color)))
        return cls(tuple(out))

    @classmethod
    def coerce(cls, classes: Legend | Iterable[Mapping[str, Any] | ClassInfo]) -> Legend:
        """A :class:`Legend` as it is, anything :meth:`from_list` takes otherwise."""
        return classes if isinstance(classes, Legend) else cls.from_list(classes)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Legend | None:
        """From ``class_ids``/``class_names``[/``class_colors``] attributes, or a COG's ``GEOHSI_CLASSES`` tag.

        Returns:
            The legend, or ``None`` when the attributes carry none.
        """
        if "class_ids" in attrs and "class_names" in attrs:
            ids, names = list(attrs["class_ids"]), list(attrs["class_names"])
            colors = list(attrs.get("class_colors") or [None] * len(ids))
            return cls(
                tuple(
                    ClassInfo(int(i), str(n), None if c is None else str(c)) for i, n, c in zip(ids, names, colors, strict=False)
                )
            )
        if "GEOHSI_CLASSES" in attrs:
            return cls.from_list(json.loads(attrs["GEOHSI_CLASSES"]))
        return None


def scene_legend(ds: xr.Dataset, present: Iterable[int] | None = None) -> Legend:
    """The legend of a scene's labels: every declared class and every id present in ``labels``.

    Ids present in the labels but not declared get the name ``class_<id>``; classes without a
    colour get :func:`default_color`. Ordered by id.

    Args:
        ds: a labelled scene.
        present: the ids present in its labels, when already known (else the labels are read).

    Raises:
        DataError: the scene has no labels.
    """
    if "labels" not in ds:
        src = ds.encoding.get("source", "the scene")
        raise DataError(f"{src} has no labels; ingest it with --labels FILE to train or evaluate")
    declared = {c.id: c for c in (Legend.from_attrs(ds["labels"].attrs) or ())}
    present = np.unique(np.asarray(ds["labels"].values)) if present is None else list(present)
    ids = sorted(set(declared) | {int(i) for i in present if i != 0})
    return Legend(
        tuple(
            ClassInfo(
                i,
                declared[i].name if i in declared else f"class_{i}",
                (declared[i].color if i in declared else None) or default_color(i),
            )
            for i in ids
        )
    )


def labels_and_valid(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(labels [H, W], valid [H, W])`` of a labelled scene, in memory."""
    return np.asarray(ds["labels"].values), np.asarray(valid_mask(ds).values, dtype=bool)


def labels_digest(labels: np.ndarray) -> str:
    """sha256 of a label grid (shape + values): how evaluation recognises the training scene."""
    a = np.ascontiguousarray(labels, dtype=np.int64)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()


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


def write_scene(ds: xr.Dataset, path: str | os.PathLike, *, chunks: int = DEFAULT_CHUNK, overwrite: bool = False) -> Path | str:
    """Write a scene to a Zarr v3 store atomically (temporary name, then rename).

    The cube streams chunk by chunk from its (lazy) source, so scenes larger than memory work.

    Args:
        ds: the scene.
        path: the output ``.zarr`` directory.
        chunks: spatial chunk edge in pixels.
        overwrite: replace an existing store.

    Returns:
        The store path.

    Raises:
        OutputError: the store exists without ``overwrite`` or cannot be written.
    """
    validate_scene(ds)
    ds = rechunk_scene(ds, chunks)
    for name in ds.variables:
        ds[name].encoding = {}
        if "_FillValue" not in ds[name].attrs:
            # without a nodata value, say so: xarray would otherwise write a NaN fill value that reads back as nodata
            ds[name].encoding["_FillValue"] = None
    from geohsi.storage import as_path

    with atomic_output(path, overwrite) as tmp, joined_dask_threads(), consolidated_quietly():
        # consolidated: a reader opens the store with one metadata request (one object on S3)
        ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=True, compute=True)
    return as_path(path)


@contextlib.contextmanager
def consolidated_quietly() -> Iterator[None]:
    """Write or open consolidated Zarr v3 metadata without zarr's note that the spec does not define it yet.

    zarr-python, xarray and every reader geohsi supports read it; readers that do not fall back to the
    per-array metadata, which is written too.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        yield


class _StoreBlocks:
    """Array-like over one Zarr array of a store: ``__getitem__`` reads a window with zarr.

    Wrapping the cube this way (instead of xarray's own reader) lets a damaged chunk (truncated by a
    copy, corrupted on disk) surface as an :class:`InputFormatError` naming the store and the window,
    wherever the block is computed (ingest, train, a Dask worker in classify), not as a codec error.
    Holds only the path (picklable, no open handles).
    """

    def __init__(self, store: str | os.PathLike, var: str, shape: tuple[int, ...], dtype: np.dtype, token: str = "") -> None:
        self.path, self.var, self.token = str(store), var, token
        self.shape, self.dtype, self.ndim = tuple(int(s) for s in shape), np.dtype(dtype), len(shape)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        try:
            return np.asarray(_open_array(self.path, self.var, self.token)[key])
        except Exception as e:  # zarr/numcodecs raise RuntimeError/ValueError/OSError for damaged chunks
            why = f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
        # outside the except block: read on a Dask worker, the error must unpickle on the client
        window = ", ".join(f"{k.start}:{k.stop}" for k in key)
        raise InputFormatError(
            f"cannot read chunk [{window}] of {self.var!r} in {self.path} ({why}); "
            "the store is truncated or corrupted, re-create it from its source"
        )


@functools.lru_cache(maxsize=32)
def _open_array(path: str, var: str, token: str) -> Any:
    """The zarr array ``path/var``, opened once per process (one metadata request on object storage, not one per
    chunk); ``token`` names the store's version, so a rewritten store is opened anew."""
    import zarr

    from geohsi.storage import is_url

    # a scene store in a bucket is Zarr v3: no probing for v2 metadata objects
    return zarr.open_array(f"{path}/{var}", mode="r", zarr_format=3 if is_url(path) else None)


def guarded_zarr_array(store: str | os.PathLike, var: str, chunks: Any, like: xr.DataArray | None = None) -> da.Array:
    """A Dask array over ``store/var`` whose damaged chunks raise :class:`InputFormatError`.

    Args:
        store: a Zarr (v2 or v3) directory store, or the URL of a v3 store.
        var: the array's name inside the store.
        chunks: Dask chunks (anything :func:`dask.array.from_array` accepts).
        like: the variable as xarray opened it (shape, dtype, encoding): on object storage it spares
            a request for the array's own metadata.

    Returns:
        The lazy array, named by the store's path and metadata so identical reads share graph keys.
    """
    import zarr
    from dask.base import tokenize

    from geohsi.storage import COMPLETE, is_url, join, stamp

    if is_url(store):
        # ``like`` comes from the consolidated metadata xarray has read: no request for the array's own zarr.json
        arr = like if like is not None else zarr.open_array(str(join(store, var)), mode="r", zarr_format=3)
        encoding = sorted(map(str, getattr(arr, "encoding", {}).items()))
        token = tokenize(str(store), var, arr.shape, str(arr.dtype), encoding, stamp(join(store, COMPLETE)))
    else:
        p = Path(store)
        arr = zarr.open_array(p / var, mode="r")
        meta_files = [f for f in (p / var / "zarr.json", p / var / ".zarray") if f.is_file()]
        token = tokenize(str(p.resolve()), var, [(f.read_bytes(), f.stat().st_mtime_ns) for f in meta_files])
    src = _StoreBlocks(store, var, arr.shape, arr.dtype, token)
    return da.from_array(
        src,
        chunks=chunks,
        name=f"zarr-{var}-{token}",
        lock=False,
        fancy=False,
        asarray=False,
        meta=np.empty((0,) * len(arr.shape), dtype=arr.dtype),
    )


def check_bands(ds: xr.Dataset, source: str | None = None, *, stored: bool = False) -> xr.Dataset:
    """Refuse a scene whose band table cannot be right; warn about one that looks odd.

    See :func:`geohsi.bands.check_band_table` (centres outside 300–15,000 nm, widths not positive or
    wider than half the covered range are refused; widths over 4× the band spacing are warned about).

    Args:
        ds: the scene.
        source: the file or store named in messages (default: ``ds.encoding["source"]``).
        stored: ``ds`` is a scene store (a bad table is then fixed by re-ingesting its source).

    Returns:
        ``ds`` itself, for chaining.

    Raises:
        InputFormatError: one line naming the source and the fix.
    """
    from geohsi.bands import check_band_table

    where = source or str(ds.encoding.get("source", "the scene"))
    check_band_table(ds["wavelength"].values, ds["fwhm"].values, where, stored=stored)
    return ds


def _open_store(p: Path | str) -> xr.Dataset:
    """``xr.open_zarr`` of a scene store: its consolidated metadata (one request), else the per-array metadata
    of stores written before geohsi consolidated them."""
    options = {"mask_and_scale": False, "decode_coords": "all", "zarr_format": 3}
    with consolidated_quietly():
        try:
            return xr.open_zarr(p, consolidated=True, **options)
        except ValueError as e:
            if "consolidated metadata" not in str(e).lower():
                raise
            return xr.open_zarr(p, consolidated=False, **options)


def open_scene(path: str | os.PathLike, *, check_band_table: bool = True) -> xr.Dataset:
    """Open a scene store lazily (raw values; nodata and scale kept as attributes).

    Args:
        path: a ``.zarr`` store written by :func:`write_scene`.
        check_band_table: refuse an implausible band table (:func:`check_bands`); ``geohsi info``
            opens without, to show what is wrong.

    Returns:
        The scene Dataset backed by Dask.

    Raises:
        InputFormatError: the path is missing or not a geohsi scene, or its band table is implausible.
    """
    from geohsi.storage import check_complete, display, is_url

    p = str(path) if is_url(path) else Path(path)
    if is_url(p):
        check_complete(p, "scene store")
    elif not p.exists():
        raise InputFormatError(f"scene {p} does not exist; create it with 'geohsi ingest SRC --out {p}'")
    elif not (p / "zarr.json").is_file():
        raise InputFormatError(f"{p} is not a Zarr v3 store; create a scene with 'geohsi ingest SRC --out SCENE.zarr'")
    try:
        ds = _open_store(p)
    except Exception as e:  # zarr/xarray raise many types for broken stores
        why = f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
        raise InputFormatError(f"cannot open scene {display(p)}: {why}; re-create it with 'geohsi ingest'") from e
    validate_scene(ds)
    # Band metadata is tiny: load it now, in this process. Left lazy, every later `.values` would be
    # a Dask computation on whatever cluster is current (and wait forever on paused workers).
    band_coords = [c for c in ("wavelength", "fwhm", "good_band", "band_name") if c in ds.coords]
    ds = ds.assign_coords({c: ds[c].variable.compute(scheduler="sync") for c in band_coords})
    var = data_var_name(ds)
    ds[var] = ds[var].copy(data=guarded_zarr_array(p, var, ds[var].data.chunks, like=ds[var]))
    ds.encoding["source"] = display(p)
    return check_bands(ds, stored=True) if check_band_table else ds


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


def nodata_value(ds: xr.Dataset) -> float | None:
    """The cube's nodata value (CF ``_FillValue``), or ``None``."""
    v = cube(ds)
    fv = v.attrs.get("_FillValue", v.encoding.get("_FillValue"))
    return None if fv is None else float(fv)


def validity_bands(ds: xr.Dataset) -> np.ndarray:
    """0-based bands the validity test reads: the good bands, or every band when none is flagged."""
    good = np.asarray(ds["good_band"].values, bool)
    return np.flatnonzero(good) if good.any() else np.arange(int(ds.sizes["band"]))


def valid_mask(ds: xr.Dataset) -> xr.DataArray:
    """Lazy boolean mask ``(y, x)``: True where every good band is finite and not nodata."""
    v = cube(ds)
    good = np.asarray(ds["good_band"].values, bool)
    if good.any():
        v = v.isel(band=validity_bands(ds))
    ok = xr.ones_like(v.isel(band=0), dtype=bool)
    nd = nodata_value(ds)
    data = v.data
    if np.dtype(v.dtype).kind == "f":
        ok = ok & da.isfinite(data).all(axis=0)
    if nd is not None:
        ok = ok & (data != np.asarray(nd, dtype=v.dtype)).all(axis=0)
    ok.name = "valid"
    return ok


def pixel_areas(ds: xr.Dataset) -> tuple[np.ndarray | None, str]:
    """The ground area of the scene's pixels, per row, in square metres.

    * projected CRS: ``|a·e − b·d|`` of the transform times the square of the CRS's linear unit in
      metres (every pixel has the same area);
    * geographic CRS: the geodesic area of each row's pixel quadrilateral on the CRS's ellipsoid
      (``pyproj.Geod``), taken at the middle column (exact for north-up grids);
    * pixel grid (no CRS): ``None`` — a pixel has no ground size.

    Args:
        ds: a scene (or any Dataset with ``spatial_ref``, ``y`` and ``x``).

    Returns:
        ``(areas, note)``: ``[H]`` float64 m² per pixel of each row (``None`` for a pixel grid), and
        a short phrase saying how they were computed.
    """
    crs = scene_crs(ds)
    h, w = int(ds.sizes["y"]), int(ds.sizes["x"])
    if crs is None:
        return None, "no CRS (pixel grid): a pixel has no ground area"
    tf = scene_transform(ds)
    if crs.is_geographic:
        from pyproj import CRS as ProjCRS

        pcrs = ProjCRS.from_wkt(crs.to_wkt())
        geod = pcrs.get_geod()
        if geod is None:
            return None, f"{crs.to_string()} names no ellipsoid: geodesic areas cannot be computed"
        col = w // 2
        areas = np.empty(h, dtype="float64")
        for r in range(h):
            corners = [tf @ (col, r), tf @ (col + 1, r), tf @ (col + 1, r + 1), tf @ (col, r + 1)]
            lons, lats = zip(*corners, strict=True)
            areas[r] = abs(geod.polygon_area_perimeter(lons, lats)[0])
        return areas, f"geodesic pixel areas on the {pcrs.ellipsoid.name} ellipsoid"
    unit = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
    area = abs(tf.a * tf.e - tf.b * tf.d) * unit**2
    return np.full(h, area, dtype="float64"), f"{area:,.2f} m² per pixel from the {crs.to_string()} transform"


def attrs_json(value: Any) -> str:
    """Serialise a metadata value for Zarr attributes (used for nested structures)."""
    return json.dumps(value, sort_keys=True)
