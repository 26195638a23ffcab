"""NetCDF / HDF5 / Zarr reader through xarray.

The cube is the 3-D numeric variable (``var=`` picks; else the largest). Its band dimension is
``band_dim=`` or the one dimension whose name is not spatial (``y``, ``x``, ``lat``, ``lon``,
``row``, ``col``, ``line``, ``sample``, …) or, failing that, a dimension named ``band``,
``wavelength``, ``channel``, …. A ``wavelength`` coordinate on the band dimension (or a band
dimension named ``wavelength``) gives band centres; ``fwhm`` and ``good_band``/``bbl`` likewise.
CRS and transform come from the CF grid mapping through rioxarray when present; otherwise the
scene is a pixel grid. A store that already is a geohsi scene is read with its labels, class legend
and band names.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

from geohsi.bands import band_table_nm
from geohsi.errors import GeoreferenceError, InputFormatError, UsageError
from geohsi.scene import DATA_VARS, add_labels, chosen_nodata, make_scene

_SPATIAL = {
    "y",
    "x",
    "lat",
    "lon",
    "latitude",
    "longitude",
    "row",
    "rows",
    "col",
    "cols",
    "column",
    "columns",
    "line",
    "lines",
    "sample",
    "samples",
    "northing",
    "easting",
    "height",
    "width",
}
#: 1-D variables on the band dimension that make the band table.
_BAND_TABLE = ("wavelength", "wavelengths", "wl", "fwhm", "good_band", "bbl", "band_name")
_BAND_NAMES = ("band", "bands", "wavelength", "wavelengths", "wl", "channel", "channels", "spectral", "lambda", "z")
_Y_NAMES = ("y", "lat", "latitude", "row", "rows", "line", "lines", "northing", "height")


def _open(p: Path) -> xr.Dataset:
    try:
        if p.is_dir():
            return _open_zarr(p)
        return xr.open_dataset(p, mask_and_scale=False, decode_coords="all", chunks={})
    except Exception as e:  # xarray/backends raise many types for bad files
        raise InputFormatError(f"cannot open {p} with xarray: {type(e).__name__}: {e}; check the file") from e


def _open_zarr(p: Path) -> xr.Dataset:
    """A Zarr store through its consolidated metadata when it has some (one read), else its hierarchy.

    (``consolidated=None`` does the same but warns on every store written without consolidation,
    geohsi's own included.)
    """
    options: dict[str, Any] = {"mask_and_scale": False, "decode_coords": "all", "chunks": {}}
    try:
        return xr.open_zarr(p, consolidated=True, **options)
    except ValueError:  # no consolidated metadata
        return xr.open_zarr(p, consolidated=False, **options)


def _band_dim(p: Path, v: xr.DataArray, band_dim: str | None, band_axis: int | None) -> str:
    if band_axis is not None:
        if band_axis not in range(v.ndim):
            raise UsageError(f"--band-axis {band_axis} is not an axis of {v.name!r} {v.dims}; use 0, 1 or 2")
        return str(v.dims[band_axis])
    if band_dim is not None:
        if band_dim not in v.dims:
            raise InputFormatError(f"{p}: {v.name!r} has no dimension {band_dim!r} (dims {v.dims}); pass band_dim= one of them")
        return band_dim
    non_spatial = [d for d in v.dims if str(d).lower() not in _SPATIAL]
    if len(non_spatial) == 1:
        return str(non_spatial[0])
    named = [d for d in v.dims if str(d).lower() in _BAND_NAMES]
    if len(named) == 1:
        return str(named[0])
    raise InputFormatError(
        f"{p}: cannot tell the band dimension of {v.name!r} {v.dims}; name it with --band-axis N (its position) or band_dim= (API)"
    )


def _coord(v: xr.DataArray, names: tuple[str, ...], dim: str) -> np.ndarray | None:
    for n in names:
        if n in v.coords and v.coords[n].dims == (dim,):
            try:
                return np.asarray(v.coords[n].values, dtype="float64")
            except (TypeError, ValueError):
                return None
    return None


def _band_table(v: xr.DataArray, bdim: str) -> Any:
    """The band centres and widths in nm (:func:`~geohsi.bands.band_table_nm`) of the cube's coordinates."""
    wl_units = next((v.coords[n].attrs.get("units") for n in ("wavelength", "wavelengths", bdim) if n in v.coords), None)
    names = ("wavelength", "wavelengths", "wl", bdim) if bdim.lower().startswith("wave") else ("wavelength", "wavelengths", "wl")
    fw_units = v.coords["fwhm"].attrs.get("units") if "fwhm" in v.coords else None
    return band_table_nm(_coord(v, names, bdim), _coord(v, ("fwhm",), bdim), units=wl_units, fwhm_units=fw_units)


def read(
    path: str | os.PathLike,
    *,
    var: str | None = None,
    band_dim: str | None = None,
    band_axis: int | None = None,
    chunks: int = 256,
    quantity: str | None = None,
    nodata: float | str | None = None,
) -> xr.Dataset:
    """Read a 3-D variable of a NetCDF file or Zarr store lazily as a scene.

    Args:
        path: a ``.nc``/``.h5`` file or a Zarr directory.
        var: the cube variable; the largest 3-D numeric variable when ``None``.
        band_dim: the band dimension's name; detected when ``None`` (see module docstring).
        band_axis: the band dimension by its position in the variable's dimensions (``--band-axis``).
        chunks: spatial chunk edge in pixels.
        quantity: ``"reflectance"`` or ``"radiance"``; the variable's own name when it is one of
            these, else reflectance.
        nodata: the value marking pixels without data, replacing the variable's ``_FillValue``/``missing_value``:
            a number, or ``"none"`` for none (``None``: the file's own; :func:`geohsi.scene.chosen_nodata`).

    Returns:
        The scene Dataset ``[B, H, W]`` (raw values; ``_FillValue``/scale kept as attributes).

    Raises:
        InputFormatError: missing/unreadable file, no 3-D numeric variable, unknown band dimension.
        GeoreferenceError: the grid's coordinates are not regularly spaced.
    """
    p = Path(path)
    if not p.exists():
        raise InputFormatError(f"input {p} does not exist; check the path")
    src = _open(p)
    name = _cube_variable(p, src, var)
    v = src[name]
    bdim = _band_dim(p, v, band_dim, band_axis)
    # a CF file keeps its band table as variables on the band dimension (coordinates only when it is named alike)
    v = v.assign_coords({n: src[n] for n in _BAND_TABLE if n in src.data_vars and src[n].dims == (bdim,)})
    ydim, xdim = [str(d) for d in v.dims if d != bdim]
    if xdim.lower() in _Y_NAMES and ydim.lower() not in _Y_NAMES:
        ydim, xdim = xdim, ydim
    stored_order = tuple(map(str, v.dims)) == (bdim, ydim, xdim)
    v = v.transpose(bdim, ydim, xdim)
    v, crs, transform, flipped = _georeference(p, src, v, name, ydim, xdim)
    stored_order = stored_order and not flipped
    bands_nm = _band_table(v, bdim)
    good = _coord(v, ("good_band", "bbl"), bdim)
    attrs: dict[str, Any] = {k: val for k, val in src.attrs.items() if k in ("sensor", "units", "acquisition_time")}
    attrs.update(source_files=[str(p.resolve())], source_format="zarr" if p.is_dir() else "netcdf", source_variable=name)
    attrs.update(_uncharted(v, ydim, xdim, transform) if crs is None else {})
    fill = v.attrs.get("_FillValue", v.encoding.get("_FillValue", v.attrs.get("missing_value")))
    if p.is_dir() and stored_order and (p / name).is_dir():
        from geohsi.scene import guarded_zarr_array

        # read the chunks through zarr so a damaged chunk names the store instead of a codec error
        data = guarded_zarr_array(p, name, (-1, chunks, chunks))
    else:
        data = v.data.rechunk((-1, chunks, chunks))
    data, fill = _unsigned(v, data, fill)
    scene = make_scene(
        data,
        var=quantity or (name if name in DATA_VARS else "reflectance"),
        wavelength=bands_nm.wavelength,
        fwhm=bands_nm.fwhm,
        good_band=None if good is None else good != 0,
        crs=crs,
        transform=None if crs is None else transform,
        nodata=chosen_nodata(None if fill is None else float(np.asarray(fill).reshape(-1)[0]), nodata),
        scale_factor=v.attrs.get("scale_factor"),
        add_offset=v.attrs.get("add_offset"),
        band_names=v.coords["band_name"].values if "band_name" in v.coords else None,
        attrs=attrs,
    )
    return _with_labels(src, scene, flipped) if "geohsi_scene_version" in src.attrs else scene


def _unsigned(v: xr.DataArray, data: Any, fill: Any) -> tuple[Any, Any]:
    """The cube and its fill value as unsigned integers where the file says so (``_Unsigned = "true"``, the
    NetCDF-3 way to store uint16 in int16): 40000 had been read as −25536."""
    flag = v.attrs.get("_Unsigned", v.encoding.get("_Unsigned"))
    if str(flag).lower() != "true" or np.dtype(data.dtype).kind != "i":
        return data, fill
    unsigned = np.dtype(f"u{np.dtype(data.dtype).itemsize}")
    if fill is not None:  # a missing_value may be a vector: its first value, as for a signed cube
        fill = np.asarray(fill).reshape(-1)[:1].astype(data.dtype).view(unsigned).item()
    return data.view(unsigned), fill


def _with_labels(store: xr.Dataset, scene: xr.Dataset, flipped: bool) -> xr.Dataset:
    """A geohsi scene store read again (``geohsi ingest a.zarr --chunks 512``): its labels and class legend come
    along, turned north up with the cube where it was (a store written south up before geohsi turned grids)."""
    if "labels" not in store:
        return scene
    lab = _north_up(store["labels"], "y", "x")[0] if flipped else store["labels"]
    return add_labels(
        scene,
        np.asarray(lab.values),
        class_names=lab.attrs.get("class_names"),
        class_colors=lab.attrs.get("class_colors"),
        source=lab.attrs.get("source"),
    )


def _cube_variable(p: Path, src: xr.Dataset, var: str | None) -> str:
    """The cube's variable: ``var`` (checked), a geohsi data variable, or the largest 3-D numeric one.

    Raises:
        InputFormatError: ``var`` missing or not a 3-D numeric cube; no 3-D numeric variable at all.
    """
    numeric3 = {str(n): v for n, v in src.data_vars.items() if v.ndim == 3 and np.dtype(v.dtype).kind in "iufb"}
    if var is not None:
        if var not in src.data_vars:
            raise InputFormatError(
                f"{p} has no variable {var!r} (it has {sorted(map(str, src.data_vars))}); choose one with --var"
            )
        if var not in numeric3:
            raise InputFormatError(
                f"{p}: variable {var!r} has dims {src[var].dims}, not a 3-D numeric cube; choose one with --var"
            )
        return var
    if not numeric3:
        found = ", ".join(f"{n} {tuple(v.dims)}" for n, v in src.data_vars.items()) or "none"
        raise InputFormatError(f"{p} holds no 3-D numeric variable (variables: {found}); give a (band, y, x) cube")
    geohsi_var = [n for n in DATA_VARS if n in numeric3]
    return geohsi_var[0] if geohsi_var else max(numeric3, key=lambda n: numeric3[n].size)


def _georeference(p: Path, src: xr.Dataset, v: xr.DataArray, name: str, ydim: str, xdim: str):
    """``(v, crs, transform, flipped)``: the variable with its spatial dims set (north up, see :func:`_north_up`), its CRS
    and affine (``None`` for a pixel grid), and whether rows or columns were reversed from the stored order.

    Without a CRS the variable stays in stored order, and the grid of coordinates that say what they are
    (:func:`_charted`) is still returned, for ``--crs`` alone to place it as stored (south up where the
    rows run south to north); ``crs`` is then ``None`` and ``transform`` is that grid.

    Raises:
        GeoreferenceError: a CRS without coordinates, or coordinates that are not a regular grid.
    """
    crs = None
    try:
        v = v.rio.set_spatial_dims(x_dim=xdim, y_dim=ydim)
        crs = v.rio.crs or src.rio.crs
    except Exception:  # noqa: BLE001 — non-spatial dims: treated as a pixel grid below
        crs = None
    if int(src.attrs.get("georeferenced", 1)) == 0:
        return v, None, None, False  # a geohsi pixel-grid scene stays one
    if crs is None:  # a pixel grid in stored order (labels in that order match it); the coordinates' grid kept
        try:
            return v, None, v.rio.transform(recalc=True) if _charted(v, ydim, xdim) else None, False
        except Exception:  # noqa: BLE001 — irregular coordinates: no grid to keep
            return v, None, None, False
    if xdim not in v.coords or ydim not in v.coords:
        raise GeoreferenceError(f"{p}: {name!r} has a CRS but no {xdim}/{ydim} coordinates; add them or drop the CRS")
    v, flipped = _north_up(v, ydim, xdim)
    try:
        transform = v.rio.transform(recalc=True)
    except Exception as e:  # rioxarray raises for irregular coordinates
        raise GeoreferenceError(f"{p}: the {ydim}/{xdim} coordinates are not a regular grid ({e}); regrid first") from e
    return v, crs, transform, flipped


#: CF ``units`` of coordinates in degrees (latitude, longitude) and in a projection's length unit.
_DEGREES = {"degrees_north", "degree_north", "degrees_n", "degree_n", "degrees_east", "degree_east", "degrees_e", "degree_e"}
_LENGTHS = {"m", "metre", "meter", "metres", "meters"}  # not km: EPSG grids are in metres


def _charted(v: xr.DataArray, ydim: str, xdim: str) -> str | None:
    """What a grid's coordinates are when their attributes say (CF ``standard_name`` or ``units``):
    ``"geographic"`` (latitude/longitude in degrees), ``"projected"`` (x/y in metres) or ``None``."""
    kinds = set()
    for dim in (ydim, xdim):
        attrs = v.coords[dim].attrs if dim in v.coords else {}
        standard, units = str(attrs.get("standard_name", "")), str(attrs.get("units", "")).strip().lower()
        if standard in ("latitude", "longitude") or units in _DEGREES:
            kinds.add("geographic")
        elif standard.startswith("projection_") or units in _LENGTHS:
            kinds.add("projected")
        else:
            return None
    return kinds.pop() if len(kinds) == 1 else None


def _uncharted(v: xr.DataArray, ydim: str, xdim: str, transform: Any) -> dict[str, Any]:
    """The attributes of a grid its coordinates give without a CRS (``{}`` without one): the grid, for
    ``--crs`` to place it, and a note saying which ``--crs`` does."""
    if transform is None:
        return {}
    if _charted(v, ydim, xdim) == "geographic":
        note = f"its {ydim}/{xdim} coordinates are degrees but no grid_mapping names their datum; --crs EPSG:4326 places it on WGS 84"
    else:
        note = f"its {ydim}/{xdim} coordinates are metres but no grid_mapping names their CRS; --crs EPSG:XXXX alone places it"
    return {"crs_note": note, "source_transform": list(transform)[:6]}


def _north_up(v: xr.DataArray, ydim: str, xdim: str) -> tuple[xr.DataArray, bool]:
    """``v`` with rows from north to south and columns from west to east, as a scene's grid is.

    CF files often store y (or latitude) ascending: read as it is, the scene was a south-up grid
    (positive pixel height) that labels and maps on north-up grids did not match.
    """
    flipped = False
    for dim, ascending in ((ydim, False), (xdim, True)):
        c = np.asarray(v[dim].values)
        if c.size > 1 and (c[1] > c[0]) != ascending:
            v, flipped = v.isel({dim: slice(None, None, -1)}), True
    # isel forgets rioxarray's spatial dims: dims it does not recognise by name (lat/lon) had made an identity transform
    return (v.rio.set_spatial_dims(x_dim=xdim, y_dim=ydim) if flipped else v), flipped


__all__ = ["read"]
