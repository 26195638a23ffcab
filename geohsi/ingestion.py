"""Ingest: source files → one validated, georeferenced scene in a Zarr v3 store.

:func:`ingest` reads the sources lazily (:mod:`geohsi.io`), settles the georeference, attaches
labels aligned to the scene grid and class names, checks everything, and only then streams the
cube chunk by chunk into a temporary store that is renamed into place when complete
(:func:`geohsi.scene.write_scene`). A failed ingest leaves no store under the output name.
:func:`ingest_item` does the same for STAC items (read by :mod:`geohsi.io.stac`).

.. versionadded:: 0.1
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from affine import Affine

if TYPE_CHECKING:
    from rasterio.crs import CRS

from geohsi.errors import BandMismatchError, DataError, GeohsiError, GeoreferenceError, InputFormatError, OutputError, UsageError
from geohsi.files import check_output
from geohsi.io.vector import is_vector
from geohsi.scene import (
    DEFAULT_CHUNK,
    DEFAULT_COLORS,
    add_labels,
    check_bands,
    cube,
    make_scene,
    nodata_value,
    scene_crs,
    scene_transform,
    write_scene,
)
from geohsi.storage import absolute, as_path, is_url, local_copy
from geohsi.storage import name as storage_name

PathLike = str | os.PathLike

_NO_CRS_HINT = "pass --crs none to ingest it as a pixel grid, or --crs EPSG:XXXX --transform a,b,c,d,e,f to georeference it"


# --------------------------------------------------------------------------- option parsing


def parse_crs(value: Any) -> CRS | None | str:
    """Parse a ``--crs`` value: ``None`` (keep the source's), ``"none"`` (pixel grid) or a CRS.

    Returns:
        ``None``, the string ``"none"``, or a :class:`rasterio.crs.CRS`.

    Raises:
        UsageError: the value is not a CRS rasterio understands.
    """
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "none":
        return "none"
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    if isinstance(value, CRS):
        return value
    try:
        return CRS.from_user_input(value)
    except (CRSError, ValueError, TypeError) as e:
        raise UsageError(f"--crs {value!r} is not a CRS ({e}); use e.g. EPSG:32633, a WKT/PROJ string, or 'none'") from e


def parse_transform(value: str | Sequence[float] | Affine) -> Affine:
    """Parse a ``--transform``: six numbers in affine order, or GDAL order behind a ``gdal:`` prefix.

    Affine order (rasterio, ``rio info --transform``): ``a,b,c,d,e,f`` = pixel width, row rotation,
    x of the upper-left corner, column rotation, pixel height (negative for north-up), y of the
    upper-left corner. GDAL order (``gdalinfo`` GeoTransform): ``gdal:c,a,b,f,d,e``.

    Example: ``30,0,362175,0,-30,5809965`` = 30 m pixels, upper-left corner (362175, 5809965).

    Raises:
        UsageError: not six numbers, or a singular transform.
    """
    if isinstance(value, Affine):
        tf = value
    else:
        gdal = False
        if isinstance(value, str):
            text = value.strip()
            if text.lower().startswith("gdal:"):
                gdal, text = True, text[5:]
            parts = [t for t in re.split(r"[,\s]+", text.strip("()[] ")) if t]
        else:
            parts = list(value)
        try:
            nums = [float(t) for t in parts]
        except (TypeError, ValueError) as e:
            raise UsageError(f"--transform {value!r} must be six numbers a,b,c,d,e,f; see 'geohsi ingest --help'") from e
        if len(nums) != 6:
            raise UsageError(f"--transform {value!r} has {len(nums)} numbers, needs six: a,b,c,d,e,f (affine order)")
        tf = Affine.from_gdal(*nums) if gdal else Affine(*nums)
    if tf.determinant == 0:
        raise UsageError(f"--transform {tuple(tf)[:6]} is singular (zero pixel size); check the numbers and their order")
    return tf


_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def _colour(value: str, where: str) -> str:
    m = _HEX.match(value.strip())
    if not m:
        raise UsageError(f"colour {value!r} in {where} is not #rrggbb; write colours as hex, e.g. #1f77b4")
    return "#" + m.group(1).lower()


def _is_file(spec: Any) -> bool:
    """Whether an option value names an existing file (a long comma list is not a file name, not an error)."""
    try:
        return isinstance(spec, (str, os.PathLike)) and Path(spec).is_file()
    except OSError:  # e.g. a name too long for the file system
        return False


def parse_class_names(spec: str | os.PathLike | Sequence[str]) -> tuple[list[str], list[str] | None]:
    """Read class names (and colours) from a file or a comma list.

    A file holds either one name per line (line *i* names class *i*) or CSV rows
    ``id,name[,#rrggbb]`` (a header row is skipped; ids not listed are named ``class_<id>``).
    A string that is not a file is a comma list ``"roof,pavement,tree"``.

    Returns:
        ``(names, colours)``: names of classes 1..K; colours or ``None`` when none were given.

    Raises:
        UsageError: an empty list, a bad id or colour.
    """
    if not isinstance(spec, (str, os.PathLike)):
        names = [str(n).strip() for n in spec]
        if not names:
            raise UsageError("--class-names is empty; give one name per class")
        return names, None
    p = Path(spec)
    if not _is_file(p):
        text = str(spec)
        if os.sep in text or text.endswith((".txt", ".csv")):
            raise UsageError(f"--class-names file {p} does not exist; check the path or give a comma list")
        names = [n.strip() for n in text.split(",")]
        if not all(names):
            raise UsageError(f"--class-names {text!r} has an empty name; give 'name1,name2,…'")
        return names, None
    rows = [r for r in csv.reader(io.StringIO(p.read_text())) if r and any(c.strip() for c in r)]
    rows = [[c.strip() for c in r] for r in rows if not r[0].lstrip().startswith("#")]
    if not rows:
        raise UsageError(f"--class-names file {p} is empty; write one class name per line")
    if any(len(r) > 1 for r in rows):
        if not rows[0][0].isdigit():
            rows = rows[1:]  # header
        table: dict[int, tuple[str, str | None]] = {}
        for r in rows:
            if not r[0].isdigit() or len(r) < 2:
                raise UsageError(f"--class-names file {p}: row {','.join(r)!r} is not id,name[,colour]; fix the file")
            cid = int(r[0])
            if cid == 0:
                continue  # 0 is always "unlabelled"
            table[cid] = (r[1], _colour(r[2], str(p)) if len(r) > 2 and r[2] else None)
        k = max(table, default=0)
        if k == 0:
            raise UsageError(f"--class-names file {p} names no class ids ≥ 1; ids start at 1 (0 = unlabelled)")
        names = [table.get(i, (f"class_{i}", None))[0] for i in range(1, k + 1)]
        given = [table.get(i, ("", None))[1] for i in range(1, k + 1)]
        colours = None
        if any(given):
            colours = [c or DEFAULT_COLORS[(i - 1) % len(DEFAULT_COLORS)] for i, c in enumerate(given, start=1)]
        return names, colours
    return [r[0] for r in rows], None


def _numbers(spec: Any, what: str) -> list[float]:
    """Numbers from a list or a comma/whitespace-separated string."""
    items = [t for t in re.split(r"[,\s]+", spec.strip()) if t] if isinstance(spec, str) else list(np.asarray(spec).reshape(-1))
    try:
        return [float(t) for t in items]
    except (TypeError, ValueError) as e:
        raise UsageError(f"{what} {spec!r} is neither a file nor numbers; give a CSV or 'v1,v2,…'") from e


def _column_unit(name: str) -> str | None:
    low = name.lower()
    return "um" if re.search(r"um|micro", low) else ("nm" if "nm" in low else None)


def _band_file(p: Path) -> tuple[list[float], list[float] | None, str | None, str | None]:
    """``(centres, widths, centre unit, width unit)`` as written in a ``--wavelengths`` file."""
    text = p.read_text()
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    try:
        if not re.search(r"[A-Za-z]", first):
            return [float(t) for t in re.split(r"[,\s]+", text.strip()) if t], None, None, None
        rows = list(csv.DictReader(io.StringIO(text)))
        cols = {c.lower().strip(): c for c in (rows[0].keys() if rows else [])}
        wcol = next((c for k, c in cols.items() if k.startswith("wavelength") or k in ("wl", "center", "centre")), None)
        if wcol is None:
            raise UsageError(f"--wavelengths file {p} has no 'wavelength' column (columns {list(cols.values())}); add one")
        fcol = next((c for k, c in cols.items() if k.startswith("fwhm")), None)
        rcol = cols.get("removed")
        rows = [r for r in rows if not (rcol and str(r[rcol]).strip() in ("1", "true", "True"))]
        widths = [float(r[fcol]) for r in rows] if fcol else None
        return [float(r[wcol]) for r in rows], widths, _column_unit(wcol), _column_unit(fcol) if fcol else None
    except ValueError as e:
        raise UsageError(f"--wavelengths file {p} holds a non-number ({e}); fix the file") from e


def parse_wavelengths(spec: Any, nbands: int, fwhm: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Band centres (and FWHM) in nm from a list, a comma string or a file, by one unit rule.

    A file is either CSV with a header naming a ``wavelength…`` column (and optionally ``fwhm…``
    and ``removed``: rows with ``removed = 1`` are bands absent from the cube, as in
    ``indian_pines/wavelengths.csv``) or plain numbers separated by commas/whitespace. Column names
    with ``um``/``micro`` (``nm``) state micrometres (nanometres); otherwise centres below 30 are
    taken as µm. The widths, from the file or from ``fwhm`` (``--fwhm``), are in the centres' unit
    unless their own column names one (:func:`geohsi.bands.band_table_nm`).

    Args:
        spec: the ``--wavelengths`` value: a file, a list, or ``"w1,w2,…"``.
        nbands: the cube's band count.
        fwhm: the ``--fwhm`` value (list or string), overriding the file's widths.

    Returns:
        ``(wavelength, fwhm)`` in nm (``fwhm`` ``None`` when neither the file nor ``fwhm`` gives widths).

    Raises:
        BandMismatchError: the count differs from the cube's band count.
        UsageError: unreadable values.
    """
    from geohsi.bands import band_table_nm

    if _is_file(spec):
        centres, widths, unit, width_unit = _band_file(Path(spec))
        where = str(spec)
    else:
        centres, widths, unit, width_unit, where = _numbers(spec, "--wavelengths"), None, None, None, "the wavelength list"
    if fwhm is not None:
        widths, width_unit = _numbers(fwhm, "--fwhm"), None
    table = band_table_nm(centres, widths, units=unit, fwhm_units=width_unit)
    if len(centres) != nbands:
        raise BandMismatchError(f"{where} gives {len(centres)} wavelengths but the cube has {nbands} bands; give one per band")
    if widths is not None and len(widths) != nbands:
        raise BandMismatchError(f"{len(widths)} FWHM values given but the cube has {nbands} bands; give one per band")
    return table.wavelength, table.fwhm


# --------------------------------------------------------------------------- scene assembly


def _rebuild(ds: xr.Dataset, **changes: Any) -> xr.Dataset:
    """Re-make a scene with some metadata changed (CRS/transform/wavelengths), data kept lazy."""
    v = cube(ds)
    georef = scene_crs(ds) is not None
    args: dict[str, Any] = {
        "var": str(v.name),
        "wavelength": ds["wavelength"].values,
        "fwhm": ds["fwhm"].values,
        "good_band": ds["good_band"].values,
        "crs": scene_crs(ds),
        "transform": scene_transform(ds) if georef else None,
        "nodata": nodata_value(ds),
        "scale_factor": v.attrs.get("scale_factor"),
        "add_offset": v.attrs.get("add_offset"),
        "band_names": ds["band_name"].values if "band_name" in ds.coords else None,
        "attrs": {k: a for k, a in ds.attrs.items() if k not in ("georeferenced", "geohsi_scene_version")},
    }
    args.update(changes)
    return make_scene(v.data, **args)


def _settle_georef(ds: xr.Dataset, crs: Any, transform: Any, what: str) -> xr.Dataset:
    target = parse_crs(crs)
    src_crs = scene_crs(ds)
    if target is None:
        if transform is not None:
            raise UsageError("--transform needs --crs EPSG:XXXX (the CRS the transform is in)")
        if src_crs is None:
            note = ds.attrs.get("crs_note")
            raise GeoreferenceError(f"{what} has no CRS{' (' + note + ')' if note else ''}; {_NO_CRS_HINT}")
        return ds
    if target == "none":
        if transform is not None:
            raise UsageError("--crs none makes a pixel grid and takes no --transform; drop one of them")
        return ds if src_crs is None else _rebuild(ds, crs=None, transform=None)
    tf = None if transform is None else parse_transform(transform)
    if src_crs is not None:
        if target != src_crs:
            raise GeoreferenceError(
                f"{what} is already in {src_crs.to_string()}, not {target.to_string()}; ingest does not reproject, "
                "drop --crs or warp the source first (gdalwarp -t_srs)"
            )
        if tf is not None and not tf.almost_equals(scene_transform(ds)):
            raise GeoreferenceError(f"{what} already has transform {tuple(scene_transform(ds))[:6]}; drop --transform")
        return ds
    if tf is None:
        raise GeoreferenceError(
            f"--crs {target.to_string()} given for {what}, which has no grid; add --transform a,b,c,d,e,f "
            "(pixel width, 0, left x, 0, -pixel height, top y)"
        )
    return _rebuild(ds, crs=target, transform=tf)


def _align_labels(lab: xr.Dataset, ds: xr.Dataset, source: str) -> np.ndarray:
    """Labels on the scene grid ``[H, W]``: cropped/padded by map coordinates when both are georeferenced."""
    values = np.asarray(cube(lab).isel(band=0).values)
    nd = nodata_value(lab)
    if nd is not None:
        values = np.where(values == np.asarray(nd, values.dtype), 0, values)
    h, w = ds.sizes["y"], ds.sizes["x"]
    lcrs, scrs = scene_crs(lab), scene_crs(ds)
    if lcrs is None or scrs is None:
        return values  # shapes must agree; add_labels says so when they do not
    if lcrs != scrs:
        raise GeoreferenceError(
            f"labels {source} are in {lcrs.to_string()} but the scene is in {scrs.to_string()}; "
            f"reproject the labels (gdalwarp -t_srs {scrs.to_string()} -r near)"
        )
    lt, st = scene_transform(lab), scene_transform(ds)
    if not (np.isclose(lt.a, st.a) and np.isclose(lt.e, st.e)):
        raise GeoreferenceError(
            f"labels {source} have pixel size ({lt.a}, {lt.e}) but the scene ({st.a}, {st.e}); resample the labels (gdalwarp -tr -r near)"
        )
    col = (st.c - lt.c) / lt.a
    row = (st.f - lt.f) / lt.e
    if abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
        raise GeoreferenceError(
            f"labels {source} are off the scene's pixel grid by a fraction of a pixel; resample them with gdalwarp -tap"
        )
    col, row = int(round(col)), int(round(row))
    lh, lw = values.shape
    out = np.zeros((h, w), dtype=values.dtype)
    # Intersection of the scene window [row, row+h) × [col, col+w) with the label raster.
    r0, r1, c0, c1 = max(row, 0), min(row + h, lh), max(col, 0), min(col + w, lw)
    if r0 >= r1 or c0 >= c1:
        raise GeoreferenceError(f"labels {source} do not overlap the scene; give labels covering the scene's bounds")
    out[r0 - row : r1 - row, c0 - col : c1 - col] = values[r0:r1, c0:c1]
    return out


def _with_vector_labels(
    ds: xr.Dataset, path: Path, label_field: str | None, layer: str | None, all_touched: bool, names: list[str] | None, what: str
) -> xr.Dataset:
    """The scene with a vector file's features rasterised onto its grid as ``labels`` (pixel centres, or all touched)."""
    from geohsi.io.vector import read_vector_labels

    if not label_field:
        raise UsageError(f"vector labels {path} need --label-field NAME (the attribute holding the class)")
    crs = scene_crs(ds)
    if crs is None:
        raise GeoreferenceError(
            f"vector labels need a georeferenced scene, but {what} is a pixel grid; ingest it with --crs and --transform"
        )
    vec = read_vector_labels(path, label_field, layer=layer, all_touched=all_touched, class_names=names)
    grid = vec.rasterize(crs, scene_transform(ds), (int(ds.sizes["y"]), int(ds.sizes["x"])))
    if not grid.any():
        raise DataError(f"no feature of {path} ({vec.describe_bounds()}) falls on {what}; check the file and the scene's CRS")
    named = {c.id: c for c in vec.legend}
    top = max(named)
    return add_labels(
        ds,
        grid,
        class_names=[named[i].name if i in named else f"class_{i}" for i in range(1, top + 1)],
        class_colors=[named[i].color or DEFAULT_COLORS[(i - 1) % len(DEFAULT_COLORS)] for i in range(1, top + 1)],
        source=str(path.resolve()),
    )


def _as_paths(srcs: PathLike | Sequence[PathLike]) -> list[Path | str]:
    """The sources as paths; URLs of GeoTIFFs stay URLs (read in place), other URLs become local copies."""
    from geohsi.storage import local_copy

    def one(s: PathLike) -> Path | str:
        if is_url(s) and str(s).split("?", 1)[0].lower().endswith((".tif", ".tiff")):
            return str(s)
        return local_copy(s, "input")

    return [one(s) for s in ([srcs] if isinstance(srcs, (str, os.PathLike)) else srcs)]


def build_scene(
    srcs: PathLike | Sequence[PathLike],
    *,
    labels: PathLike | None = None,
    class_names: str | os.PathLike | Sequence[str] | None = None,
    class_colors: Sequence[str] | None = None,
    crs: Any = None,
    transform: Any = None,
    chunks: int = DEFAULT_CHUNK,
    var: str | None = None,
    label_var: str | None = None,
    sensor: str | None = None,
    wavelengths: Any = None,
    fwhm: Sequence[float] | None = None,
    units: str | None = None,
    band_axis: int | None = None,
    label_field: str | None = None,
    layer: str | None = None,
    all_touched: bool = False,
) -> xr.Dataset:
    """Everything :func:`ingest` does except writing: the validated, lazy scene Dataset.

    Args: see :func:`ingest`.

    Returns:
        The scene (cube still lazy; labels in memory).
    """
    from geohsi import io as gio

    paths = _as_paths(srcs)
    first = storage_name(paths[0])
    what = first if len(paths) == 1 else f"{first} (+{len(paths) - 1} tiles)"
    kwargs: dict[str, Any] = {}
    if band_axis is not None:
        kwargs["band_axis"] = band_axis
    ds = gio.read(paths, var=var, chunks=chunks, **kwargs)
    ds = _settle_georef(ds, crs, transform, what)
    nb = cube(ds).sizes["band"]
    changes: dict[str, Any] = {}
    if wavelengths is not None:
        # --fwhm shares the unit of --wavelengths (one band table, one unit)
        wl, given_fwhm = parse_wavelengths(wavelengths, nb, fwhm)
        changes["wavelength"] = wl
        if given_fwhm is not None:
            changes["fwhm"] = given_fwhm
    elif fwhm is not None:
        # widths alone go beside the source's centres, which are in nm already: taken as nm (no µm guess)
        fw = np.asarray(_numbers(fwhm, "--fwhm"))
        if fw.size != nb:
            raise BandMismatchError(f"{fw.size} FWHM values given but the cube has {nb} bands; give one per band")
        changes["fwhm"] = fw
    if changes:
        ds = _rebuild(ds, **changes)
    if sensor:
        ds.attrs["sensor"] = sensor
    if units:
        ds.attrs["units"] = units
    ds.attrs["source_files"] = [absolute(p) for p in paths]
    names = colours = None
    if class_names is not None:
        names, colours = parse_class_names(class_names)
    if class_colors is not None:
        colours = [_colour(c, "--class-colors") for c in class_colors]
    if labels is not None and is_vector(labels):
        ds = _with_vector_labels(ds, local_copy(labels, "label file"), label_field, layer, all_touched, names, what)
    elif labels is not None:
        if label_field or layer or all_touched:
            raise UsageError(f"--label-field/--layer/--all-touched apply to vector labels, but {labels} is a raster")
        lp = local_copy(labels, "label file")
        lab = gio.read_labels(lp, var=label_var)
        aligned = _align_labels(lab, ds, str(lp))
        if colours is not None and names is not None and len(colours) < len(names):
            raise UsageError(f"{len(colours)} colours for {len(names)} classes; give one colour per class")
        ds = add_labels(ds, aligned, class_names=names, class_colors=colours, source=str(lp.resolve()))
    elif class_names is not None or label_var is not None or label_field is not None:
        raise UsageError("--class-names/--label-var/--label-field describe labels; add --labels FILE")
    return check_bands(ds, what)


def _is_scene_store(p: Path) -> bool:
    """Whether ``p`` is a geohsi scene store (a Zarr v3 group written by :func:`geohsi.scene.write_scene`)."""
    import json

    meta = p / "zarr.json"
    if not (p.is_dir() and meta.is_file()):
        return False
    try:
        return "geohsi_scene_version" in json.loads(meta.read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False


def open_source(src: PathLike | Any, *, chunks: int = DEFAULT_CHUNK) -> xr.Dataset:
    """A scene to classify, read lazily in place: a scene store, any file :func:`ingest` reads, or a STAC item.

    No copy is made: a geohsi scene store is opened (:func:`geohsi.scene.open_scene`), a GeoTIFF /
    ENVI / NetCDF / MATLAB file or a foreign Zarr store is read by :func:`geohsi.io.read` (a source
    without CRS is a pixel grid), and a ``pystac.Item`` is read from its asset hrefs by
    :func:`geohsi.io.stac.build_item_scene`, as ``geohsi ingest --from-stac`` does.

    Args:
        src: a path, or a ``pystac.Item``.
        chunks: spatial chunk edge of the lazy read (pixels).

    Returns:
        The scene Dataset, cube lazy; ``encoding["source"]`` names it in messages (the path, or the
        item's self href or ``stac:ID``).

    Raises:
        InputFormatError: missing, unknown or unreadable source.
        GeoreferenceError / BandMismatchError: a STAC item that cannot be read as one scene.
    """
    from geohsi.scene import open_scene, validate_scene

    if hasattr(src, "assets") and hasattr(src, "properties"):  # a pystac.Item
        from geohsi.io.stac import build_item_scene

        ds = build_item_scene([src], chunks=chunks)
        ds.encoding["source"] = src.get_self_href() or f"stac:{src.id}"
        return check_bands(ds)
    if is_url(src):
        return _open_url_source(str(src), chunks)
    p = Path(src)
    if not p.exists():
        raise InputFormatError(f"scene {p} does not exist; check the path (a scene store, or any file 'geohsi ingest' reads)")
    if _is_scene_store(p):
        return open_scene(p)
    from geohsi import io as gio

    ds = gio.read([p], chunks=chunks)
    validate_scene(ds)
    ds.encoding["source"] = str(p)
    return check_bands(ds)


def _open_url_source(url: str, chunks: int) -> xr.Dataset:
    """:func:`open_source` of a URL: a scene store or a GeoTIFF/COG read in place, other formats from a local copy.

    Scene stores are read chunk by chunk through fsspec and GeoTIFFs window by window through GDAL's
    virtual file systems, wherever the graph runs; ENVI, NetCDF and MATLAB files are downloaded once
    into the cache (:func:`geohsi.storage.local_copy`).
    """
    from geohsi import io as gio
    from geohsi.scene import open_scene, validate_scene
    from geohsi.storage import COMPLETE, display, exists, join, local_copy

    if not exists(url):
        raise InputFormatError(
            f"scene {display(url)} does not exist; check the URL (a scene store, or any file 'geohsi ingest' reads)"
        )
    geotiff = url.split("?", 1)[0].lower().endswith((".tif", ".tiff"))
    if not geotiff and exists(join(url, COMPLETE)):
        return open_scene(url)  # a store geohsi uploaded whole
    if not geotiff and (exists(join(url, "zarr.json")) or exists(join(url, ".zgroup"))):
        raise InputFormatError(
            f"{display(url)} is a Zarr store without geohsi's {COMPLETE} marker: an upload that was interrupted "
            "(write it again with --overwrite) or a store another tool wrote (ingest a local copy with 'geohsi ingest')"
        )
    ds = gio.read([url if geotiff else local_copy(url, "scene")], chunks=chunks)
    validate_scene(ds)
    ds.encoding["source"] = display(url)
    return check_bands(ds)


def ingest(
    srcs: PathLike | Sequence[PathLike],
    out: PathLike,
    *,
    labels: PathLike | None = None,
    class_names: str | os.PathLike | Sequence[str] | None = None,
    class_colors: Sequence[str] | None = None,
    crs: Any = None,
    transform: Any = None,
    chunks: int = DEFAULT_CHUNK,
    overwrite: bool = False,
    var: str | None = None,
    label_var: str | None = None,
    sensor: str | None = None,
    wavelengths: Any = None,
    fwhm: Sequence[float] | None = None,
    units: str | None = None,
    band_axis: int | None = None,
    from_stac: str | None = None,
    collection: str | None = None,
    label_field: str | None = None,
    layer: str | None = None,
    all_touched: bool = False,
) -> Path:
    """Ingest source files, or STAC items, into a scene store (Zarr v3), atomically: what ``geohsi ingest`` runs.

    Args:
        srcs: one file/store, or several GeoTIFF tiles to mosaic; with ``from_stac``: item ids
            (or item URLs/files), tiles of one product.
        out: the output ``.zarr`` directory.
        labels: a class-id raster (``.mat``, GeoTIFF or ENVI); cropped/padded onto the scene grid
            when both are georeferenced (same CRS and pixel size, aligned), else its shape must
            equal the scene's. 0 = unlabelled; the label raster's nodata becomes 0. Or a vector file
            (GeoPackage, GeoJSON, Shapefile, FlatGeobuf) of polygons/points in any CRS, rasterised
            onto the scene grid (:mod:`geohsi.io.vector`) from its ``label_field``.
        class_names: a file (one name per line, or CSV ``id,name[,#rrggbb]``) or a comma list / sequence.
        class_colors: ``#rrggbb`` per class (overrides colours from the file).
        crs: ``None`` keeps the source's CRS (a source without one is refused), ``"none"`` makes an
            explicit pixel grid, ``"EPSG:XXXX"`` (with ``transform``) georeferences a bare array.
        transform: ``"a,b,c,d,e,f"`` in affine order or ``"gdal:c,a,b,f,d,e"`` (see :func:`parse_transform`).
        chunks: spatial chunk edge in pixels (all bands are one chunk).
        overwrite: replace an existing store.
        var: the cube variable (MATLAB/NetCDF/Zarr).
        label_var: the label variable in a ``.mat`` labels file.
        sensor: sensor name stored in the scene attrs.
        wavelengths: band centres (nm) as a list, a comma string or a file (see :func:`parse_wavelengths`).
        fwhm: band widths (nm), same forms as ``wavelengths`` (overrides FWHM from a wavelength file).
        units: unit of the cube's values, stored in the scene attrs (e.g. "reflectance × 10000").
        band_axis: MATLAB axis holding the bands (default: last).
        from_stac: a STAC API URL or catalogue preset: ``srcs`` are items of it (:func:`ingest_item`).
        collection: the STAC collection holding the item ids.
        label_field: vector ``labels``: the attribute holding the class (names or integer ids).
        layer: vector ``labels``: the layer, when the file has several.
        all_touched: vector ``labels``: label every pixel a polygon touches (default: pixel centres inside).

    Returns:
        The store path.

    Raises:
        InputFormatError: missing/unknown/unreadable inputs.
        GeoreferenceError: no CRS without ``crs``, mixed-CRS tiles, labels off the grid or of another shape.
        BandMismatchError: tiles with other band counts; wavelength count ≠ band count.
        OutputError: ``out`` exists without ``overwrite`` or cannot be written.
        UsageError: bad option values.
    """
    if from_stac is not None or collection is not None:
        _refuse_for_stac(labels=labels, class_names=class_names, crs=crs, transform=transform, wavelengths=wavelengths, var=var)
        ids = [str(s) for s in ([srcs] if isinstance(srcs, (str, os.PathLike)) else srcs)]
        return ingest_item(ids, out, url=from_stac, collection=collection, chunks=chunks, overwrite=overwrite, sensor=sensor)
    out_p = _checked_out(out, overwrite)  # before reading anything: the cheapest refusal first
    paths = _as_paths(srcs)
    if isinstance(out_p, Path) and any(absolute(p) == absolute(out_p) for p in paths):
        raise UsageError(f"--out {out_p} is also an input; write the scene under another name")
    ds = build_scene(paths, labels=labels, class_names=class_names, class_colors=class_colors, crs=crs, transform=transform,
                     chunks=chunks, var=var, label_var=label_var, sensor=sensor, wavelengths=wavelengths, fwhm=fwhm,
                     units=units, band_axis=band_axis, label_field=label_field, layer=layer, all_touched=all_touched)  # fmt: skip
    try:
        return write_scene(ds, out_p, chunks=chunks, overwrite=overwrite)
    except OSError as e:
        # write_scene has already removed its temporary store; say which side failed and why.
        fname = str(getattr(e, "filename", "") or "")
        if fname and isinstance(out_p, Path) and not fname.startswith(str(out_p.absolute().parent)):
            raise InputFormatError(f"cannot read {fname}: {e.strerror or e}; check the input") from e
        raise OutputError(f"cannot write {out_p}: {e.strerror or e}; choose a writable --out with free space") from e


def _refuse_for_stac(**options: Any) -> None:
    """Refuse the options a STAC item's own metadata replaces (``labels=...`` → ``--labels``)."""
    given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
    if given:
        raise UsageError(f"{', '.join(given)} do not apply to STAC items (their metadata comes from the item); drop them")


def _checked_out(out: PathLike, overwrite: bool) -> Path | str:
    """``out`` as a path (or URL), refused when a parent is a file or it exists without ``overwrite``."""
    out_p = as_path(out)
    if isinstance(out_p, Path):
        parent = out_p.absolute().parent
        for anc in (parent, *parent.parents):
            if anc.exists():
                if not anc.is_dir():
                    raise OutputError(f"cannot write {out_p}: {anc} is a file, not a directory; choose a writable --out")
                break
    check_output(out_p, overwrite)
    return out_p


def ingest_item(
    items: str | Any | Sequence[str | Any],
    out: PathLike,
    *,
    url: str | None = None,
    collection: str | None = None,
    assets: Sequence[str] | None = None,
    chunks: int = DEFAULT_CHUNK,
    overwrite: bool = False,
    sensor: str | None = None,
    quantity: str = "reflectance",
    timeout: float = 20.0,
) -> Path:
    """Ingest one or more STAC items (tiles of one product) into a scene store (Zarr v3), atomically.

    Args:
        items: item ids (with ``url``/``collection``), item URLs/files, or ``pystac.Item`` objects.
        out: the output ``.zarr`` directory.
        url: STAC API root URL or catalogue preset.
        collection: the collection holding the ids.
        assets: asset keys holding the bands (default: every spectral asset).
        chunks: spatial chunk edge in pixels.
        overwrite: replace an existing store.
        sensor: sensor name stored in the scene (default: the item's ``instruments``/``platform``).
        quantity: ``"reflectance"`` or ``"radiance"``.
        timeout: seconds per API request.

    Returns:
        The store path.

    Raises:
        InputFormatError / GeoreferenceError / BandMismatchError: see :func:`build_item_scene`.
        OutputError: ``out`` exists without ``overwrite`` or cannot be written.
    """
    from geohsi.catalog import DEFAULT_TIMEOUT as _  # noqa: F401  (pystac-client is importable)
    from geohsi.catalog import fetch_items
    from geohsi.io.stac import build_item_scene

    out_p = as_path(out)
    check_output(out_p, overwrite)
    seq = [items] if isinstance(items, str) or not isinstance(items, (list, tuple)) else list(items)
    refs = [i for i in seq if isinstance(i, str)]
    fetched = iter(fetch_items(refs, url=url, collection=collection, timeout=timeout)) if refs else iter(())
    objs = [next(fetched) if isinstance(i, str) else i for i in seq]
    ds = check_bands(build_item_scene(objs, assets=assets, chunks=chunks, quantity=quantity), f"STAC item {objs[0].id}")
    if sensor:
        ds.attrs["sensor"] = sensor
    try:
        return write_scene(ds, out_p, chunks=chunks, overwrite=overwrite)
    except GeohsiError:
        raise
    except OSError as e:
        raise OutputError(f"cannot write {out_p}: {e.strerror or e}; choose a writable --out with free space") from e


__all__ = [
    "build_scene",
    "ingest",
    "ingest_item",
    "open_source",
    "parse_class_names",
    "parse_crs",
    "parse_transform",
    "parse_wavelengths",
]
