"""Georeferencing of a scene: its CRS and affine transform (rioxarray convention), writing them, pixel centres.

Without GDAL (rasterio/rioxarray) pixel-grid scenes still work; asking for a CRS raises one line
that says what to install.

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from affine import Affine

from geohsi.errors import GeoreferenceError

try:
    import rioxarray  # noqa: F401  (registers the .rio accessor)
except ImportError:  # an install without GDAL (rasterio/rioxarray/pyproj), e.g. the offline GPU check
    rioxarray = None  # pixel-grid scenes and Zarr maps still work; a CRS is refused with one line

if TYPE_CHECKING:
    from rasterio.crs import CRS


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


def grid_overlaps(grids: list[tuple[Any, Affine, tuple[int, int]]]) -> list[tuple[int, int, float]]:
    """Pairs of grids of one CRS whose footprints share more than half a pixel.

    Args:
        grids: ``(crs, transform, (height, width))`` of each grid (north-up); grids without CRS or
            in different CRSs are not compared (their bounding boxes would overlap where the
            footprints do not).

    Returns:
        ``(i, j, shared area in CRS units²)`` with ``i < j``, sorted.

    .. versionadded:: 0.3
    """
    out = []
    for crs in {g[0] for g in grids if g[0] is not None}:
        group = [k for k, g in enumerate(grids) if g[0] == crs]
        tf = [grids[k][1] for k in group]
        corners = np.asarray(
            [(t.c, t.f, t.c + t.a * grids[k][2][1], t.f + t.e * grids[k][2][0]) for k, t in zip(group, tf, strict=True)]
        )
        b = np.stack(
            [corners[:, [0, 2]].min(1), corners[:, [1, 3]].min(1), corners[:, [0, 2]].max(1), corners[:, [1, 3]].max(1)], 1
        )
        w = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
        h = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
        shared = np.clip(w, 0, None) * np.clip(h, 0, None)
        pixel = np.asarray([abs(t.determinant) for t in tf])
        big = np.triu(shared > 0.5 * np.minimum(pixel[:, None], pixel[None, :]), 1)
        out += [(group[i], group[j], float(shared[i, j])) for i, j in zip(*np.nonzero(big), strict=True)]
    return sorted(out)
