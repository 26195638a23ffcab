"""Which pixels of a scene are valid (nodata, bad bands) and how much ground each pixel covers.

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from geohsi.scene.georef import scene_crs, scene_transform
from geohsi.scene.schema import cube


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


#: the edge of the window :func:`empty_bands` reads.
_SAMPLE_EDGE = 64


def _middle_window(ds: xr.Dataset, edge: int) -> tuple[slice, slice]:
    """An ``edge``² window at the start of the scene's middle chunk: it reads one chunk of the cube."""
    out = []
    for dim in ("y", "x"):
        n = int(ds.sizes[dim])
        chunks = cube(ds).chunksizes.get(dim) or (n,)
        starts = np.cumsum((0, *chunks[:-1]))
        s0 = int(starts[len(starts) // 2])
        s0 = max(0, min(s0, n - edge))
        out.append(slice(s0, s0 + edge))
    return out[0], out[1]


def empty_bands(ds: xr.Dataset) -> np.ndarray:
    """0-based good bands that hold no data (nodata or non-finite) at any sampled pixel where another band does.

    One 64 × 64 window is read, in the scene's middle chunk. A good band that is nodata wherever
    the others hold data makes every pixel invalid (:func:`valid_mask`): a sensor's absorption bands
    written as nodata in a file without a bad-band list. None is reported when fewer than 64 sampled
    pixels hold data, or when half the good bands or more look empty (a scene mostly without data).
    """
    v, good, nd = cube(ds), validity_bands(ds), nodata_value(ds)
    ys, xs = _middle_window(ds, _SAMPLE_EDGE)
    blk = np.asarray(v.isel(band=good, y=ys, x=xs).values).reshape(len(good), -1)
    m = ~np.isfinite(blk) if blk.dtype.kind == "f" else np.zeros(blk.shape, bool)
    if nd is not None:
        m |= blk == nd
    has_data = ~m.all(axis=0)
    empty = m[:, has_data].all(axis=1)
    if has_data.sum() < 64 or 2 * empty.sum() >= len(good):
        return np.empty(0, np.int64)
    return good[empty].astype(np.int64)


def labels_and_valid(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(labels [H, W], valid [H, W])`` of a labelled scene, in memory."""
    return np.asarray(ds["labels"].values), np.asarray(valid_mask(ds).values, dtype=bool)


def pixel_areas(ds: xr.Dataset) -> tuple[np.ndarray | None, str]:
    """The ground area of the scene's pixels, per row, in square metres (see :func:`grid_pixel_areas`).

    Args:
        ds: a scene (or any Dataset with ``spatial_ref``, ``y`` and ``x``).

    Returns:
        ``(areas, note)``: ``[H]`` float64 m² per pixel of each row (``None`` for a pixel grid), and
        a short phrase saying how they were computed.
    """
    return grid_pixel_areas(scene_crs(ds), scene_transform(ds), (int(ds.sizes["y"]), int(ds.sizes["x"])))


def grid_pixel_areas(crs: Any, transform: Any, shape: tuple[int, int]) -> tuple[np.ndarray | None, str]:
    """The ground area of a grid's pixels, per row, in square metres.

    * projected CRS: ``|a·e − b·d|`` of the transform times the square of the CRS's linear unit in
      metres (every pixel has the same area) — unless the projection scales areas by more than
      :data:`AREAL_SCALE_TOLERANCE` at the grid's centre (Web Mercator), which gets geodesic areas per
      row like a geographic CRS;
    * geographic CRS: the geodesic area of each row's pixel quadrilateral on the CRS's ellipsoid
      (``pyproj.Geod``), taken at the middle column (exact for north-up grids);
    * pixel grid (no CRS): ``None`` — a pixel has no ground size.

    Args:
        crs: the grid's :class:`rasterio.crs.CRS`, or ``None`` for a pixel grid.
        transform: pixel → CRS coordinates (an :class:`affine.Affine`).
        shape: ``(H, W)``.

    Returns:
        ``(areas, note)``: ``[H]`` float64 m² per pixel of each row (``None`` for a pixel grid), and
        a short phrase saying how they were computed.
    """
    h, w = shape
    if crs is None:
        return None, "no CRS (pixel grid): a pixel has no ground area"
    if crs.is_geographic:
        areas, ellipsoid = _geodesic_row_areas(crs, transform, shape)
        if areas is None:
            return None, f"{crs.to_string()} names no ellipsoid: geodesic areas cannot be computed"
        return areas, f"geodesic pixel areas on the {ellipsoid} ellipsoid"
    unit = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
    area = abs(transform.a * transform.e - transform.b * transform.d) * unit**2
    scale = _areal_scale(crs, transform @ (w / 2, h / 2))
    if scale is not None and abs(scale - 1.0) > AREAL_SCALE_TOLERANCE:
        areas, _ = _geodesic_row_areas(crs, transform, shape)
        if areas is not None:
            return areas, (
                f"geodesic pixel areas: {crs.to_string()} scales areas by {scale:.3g} here, so the nominal "
                f"{area:,.2f} m² would be wrong"
            )
    return np.full(h, area, dtype="float64"), f"{area:,.2f} m² per pixel from the {crs.to_string()} transform"


#: a projected CRS whose areal scale at the grid's centre differs from 1 by more than this (Web
#: Mercator: 2.7 at 52° N) gets geodesic pixel areas; UTM and national grids (< 0.2 %) keep the nominal area.
AREAL_SCALE_TOLERANCE = 0.01


def _areal_scale(crs: Any, xy: tuple[float, float]) -> float | None:
    """The projection's areal scale factor at a point of the CRS (``None`` where pyproj cannot say)."""
    from pyproj import CRS as ProjCRS
    from pyproj import Proj, Transformer

    try:
        pcrs = ProjCRS.from_wkt(crs.to_wkt())
        lon, lat = Transformer.from_crs(pcrs, pcrs.geodetic_crs, always_xy=True).transform(*xy)
        return float(Proj(pcrs).get_factors(lon, lat).areal_scale)
    except Exception:  # noqa: BLE001 - an exotic CRS: keep the nominal area
        return None


def _geodesic_row_areas(crs: Any, transform: Any, shape: tuple[int, int]) -> tuple[np.ndarray | None, str]:
    """Each row's pixel area at the middle column, ``([H] m², ellipsoid name)``: the pixel's corners
    (taken to the CRS's own geographic CRS where it is projected) as a geodesic polygon on its ellipsoid;
    ``(None, "")`` for a CRS that names no ellipsoid."""
    from pyproj import CRS as ProjCRS
    from pyproj import Transformer

    h, w = shape
    pcrs = ProjCRS.from_wkt(crs.to_wkt())
    geod = pcrs.get_geod()
    if geod is None:
        return None, ""
    col = w // 2
    rows = np.arange(h + 1, dtype="float64")
    (llon, llat), (rlon, rlat) = (transform @ (np.full(h + 1, float(c)), rows) for c in (col, col + 1))
    if not crs.is_geographic:
        to_geo = Transformer.from_crs(pcrs, pcrs.geodetic_crs, always_xy=True)
        (llon, llat), (rlon, rlat) = to_geo.transform(llon, llat), to_geo.transform(rlon, rlat)
    areas = [abs(geod.polygon_area_perimeter([llon[r], rlon[r], rlon[r + 1], llon[r + 1]], [llat[r], rlat[r], rlat[r + 1], llat[r + 1]])[0])
             for r in range(h)]  # fmt: skip
    return np.asarray(areas, dtype="float64"), pcrs.ellipsoid.name
