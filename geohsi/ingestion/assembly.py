"""One scene from the sources: georeference settled, labels aligned to the grid (rasters or vectors), bands and classes named.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from geohsi.errors import BandMismatchError, DataError, GeoreferenceError, UsageError
from geohsi.ingestion.options import NO_CRS_HINT, parse_class_names, parse_crs, parse_numbers, parse_transform, parse_wavelengths
from geohsi.io.vector import is_vector
from geohsi.scene import (
    DEFAULT_CHUNK,
    add_labels,
    check_bands,
    cube,
    filled_colors,
    flag_empty_bands,
    make_scene,
    nodata_value,
    parse_colour,
    scene_crs,
    scene_transform,
)
from geohsi.storage import absolute, display, is_url, local_copy
from geohsi.storage import name as storage_name

PathLike = str | os.PathLike


#: Attributes :func:`make_scene` writes itself.
_REMADE = ("georeferenced", "geohsi_scene_version")


def _rebuild(ds: xr.Dataset, drop: tuple[str, ...] = (), **changes: Any) -> xr.Dataset:
    """Re-make a scene with some metadata changed (CRS/transform/wavelengths), data kept lazy; labels it has
    (a scene store given again) stay on it, pixel for pixel. ``drop`` names attributes that no longer apply."""
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
        "attrs": {k: a for k, a in ds.attrs.items() if k not in (*_REMADE, *drop)},
    }
    args.update(changes)
    out = make_scene(v.data, **args)
    if "labels" in ds:
        out["labels"] = xr.DataArray(
            ds["labels"].data, dims=("y", "x"), coords={"y": out.y, "x": out.x}, attrs=ds["labels"].attrs
        )
    return out


def _settle_georef(ds: xr.Dataset, crs: Any, transform: Any, what: str) -> xr.Dataset:
    target = parse_crs(crs)
    src_crs = scene_crs(ds)
    if target is None:
        if transform is not None:
            raise UsageError("--transform needs --crs EPSG:XXXX (the CRS the transform is in)")
        if src_crs is None:
            note = ds.attrs.get("crs_note")
            raise GeoreferenceError(f"{what} has no CRS{' (' + note + ')' if note else ''}; {NO_CRS_HINT}")
        return ds
    if target == "none":
        if transform is not None:
            raise UsageError("--crs none makes a pixel grid and takes no --transform; drop one of them")
        return ds if src_crs is None else _rebuild(ds, crs=None, transform=None)
    tf = parse_transform(transform) if transform is not None else _source_grid(ds)
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
    return _rebuild(ds, drop=("crs_note", "source_transform"), crs=target, transform=tf)


def _source_grid(ds: xr.Dataset) -> Affine | None:
    """The grid a source file gave without a CRS geohsi could read (``--crs`` alone then places it)."""
    grid = ds.attrs.get("source_transform")
    return None if grid is None else Affine(*grid)


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
    ds: xr.Dataset, given: Any, label_field: str | None, layer: str | None, all_touched: bool, names: list[str] | None, what: str
) -> xr.Dataset:
    """The scene with a vector file's features rasterised onto its grid as ``labels`` (pixel centres, or all touched);
    ``given``: the file or URL (read from its local copy, recorded as given)."""
    path = local_copy(given, "label file")
    from geohsi.io.vector import read_vector_labels

    if not label_field:
        raise UsageError(f"vector labels {display(given)} need --label-field NAME (the attribute holding the class)")
    crs = scene_crs(ds)
    if crs is None:
        raise GeoreferenceError(
            f"vector labels need a georeferenced scene, but {what} is a pixel grid; ingest it with --crs and --transform"
        )
    vec = read_vector_labels(path, label_field, layer=layer, all_touched=all_touched, class_names=names)
    grid = vec.rasterize(crs, scene_transform(ds), (int(ds.sizes["y"]), int(ds.sizes["x"])))
    if not grid.any():
        raise DataError(
            f"no feature of {display(given)} ({vec.describe_bounds()}) falls on {what}; check the file and the scene's CRS"
        )
    named = {c.id: c for c in vec.legend}
    top = max(named)
    return add_labels(
        ds,
        grid,
        class_names=[named[i].name if i in named else f"class_{i}" for i in range(1, top + 1)],
        class_colors=filled_colors([named[i].color if i in named else None for i in range(1, top + 1)]),
        source=absolute(given),
    )


def source_paths(srcs: PathLike | Sequence[PathLike]) -> list[Path | str]:
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
    nodata: float | str | None = None,
) -> xr.Dataset:
    """Everything :func:`ingest` does except writing: the validated, lazy scene Dataset.

    Args: see :func:`ingest`.

    Returns:
        The scene (cube still lazy; labels in memory).
    """
    from geohsi import io as gio

    paths = source_paths(srcs)
    first = storage_name(paths[0])
    what = first if len(paths) == 1 else f"{first} (+{len(paths) - 1} tiles)"
    kwargs: dict[str, Any] = {}
    if band_axis is not None:
        kwargs["band_axis"] = band_axis
    if nodata is not None:
        kwargs["nodata"] = nodata
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
        fw = np.asarray(parse_numbers(fwhm, "--fwhm"))
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
        colours = [parse_colour(c, "--class-colors") for c in class_colors]
    if labels is not None and is_vector(labels):
        ds = _with_vector_labels(ds, labels, label_field, layer, all_touched, names, what)
    elif labels is not None:
        if label_field or layer or all_touched:
            raise UsageError(f"--label-field/--layer/--all-touched apply to vector labels, but {labels} is a raster")
        lp = local_copy(labels, "label file")
        lab = gio.read_labels(lp, var=label_var)
        aligned = _align_labels(lab, ds, str(lp))
        if colours is not None and names is not None and len(colours) < len(names):
            raise UsageError(f"{len(colours)} colours for {len(names)} classes; give one colour per class")
        ds = add_labels(ds, aligned, class_names=names, class_colors=colours, source=absolute(labels))  # not the cache copy
    elif class_names is not None or label_var is not None or label_field is not None or layer is not None or all_touched:
        raise UsageError("--class-names/--label-var/--label-field/--layer/--all-touched describe labels; add --labels FILE")
    return check_bands(flag_empty_bands(ds, what), what)
