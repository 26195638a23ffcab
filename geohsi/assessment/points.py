"""Sample points on disk: GeoPackage, GeoJSON or CSV (by suffix), read and written with geopandas/pyogrio.

The columns :func:`geohsi.sample` writes (one row per sampled pixel):

=====================  ==========================================================================
``point_id``           1 … n, in a random order (so that labelling in file order reveals nothing)
``map``                the map's file name; ``row``/``col``: the pixel in it
``x``, ``y``           pixel centre in the map's CRS; ``lon``, ``lat``: the same in EPSG:4326
``stratum``            the stratum (the map class it was drawn from) — name and ``stratum_id``
``map_class``          the map's class there — name and ``map_class_id``
``inclusion_prob``     ``n_h / N_h``: the chance that the design picked this pixel
``stratum_pixels``     ``N_h``, the stratum's pixels; ``stratum_area_ha`` its area
``ref``                empty: the reference class to fill in (class name or id)
=====================  ==========================================================================

The geometry is the pixel centre in the maps' CRS (EPSG:4326 when the maps have different CRSs,
and always in GeoJSON, whose standard says so); CSV files carry the coordinates as columns.

.. versionadded:: 0.3
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import DataError, GeohsiWarning, InputFormatError, UsageError
from geohsi.scene import Legend

#: output suffix → pyogrio driver (``None``: CSV, written by pandas).
FORMATS: dict[str, str | None] = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".csv": None}
#: the columns :func:`geohsi.sample` writes beside the reference field (and the geometry).
SAMPLE_COLUMNS = ("point_id", "map", "row", "col", "x", "y", "lon", "lat", "stratum", "stratum_id", "map_class",
                  "map_class_id", "inclusion_prob", "stratum_pixels", "stratum_area_ha", "geometry")  # fmt: skip
#: the columns that describe the sampling design (read back by :func:`geohsi.assess`).
DESIGN_COLUMNS = ("stratum_id", "stratum", "stratum_pixels")
_INT = re.compile(r"^[+-]?\d+(\.0*)?$")


def points_driver(path: str | os.PathLike) -> str | None:
    """The writer of a points file, from its suffix.

    Raises:
        UsageError: an unsupported suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"cannot write points to {path}: use a .gpkg (GeoPackage), .geojson or .csv file")
    return FORMATS[suffix]


def write_points(gdf: Any, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a points GeoDataFrame atomically (a temporary file, renamed when complete).

    Raises:
        UsageError: an unsupported suffix; OutputError: the file exists without ``overwrite``.
    """
    from geohsi.files import atomic_output

    out = Path(path)
    driver = points_driver(out)
    with atomic_output(out, overwrite=overwrite) as tmp:
        # GDAL wants the real suffix while writing; the scratch name keeps it, then becomes the temporary name
        scratch = tmp.with_name(tmp.name + out.suffix)
        try:
            if driver is None:
                gdf.drop(columns=gdf.geometry.name).to_csv(scratch, index=False)
            else:
                frame = gdf.to_crs("EPSG:4326") if driver == "GeoJSON" and gdf.crs is not None else gdf
                layer = "points" if driver == "GPKG" else out.stem  # a GeoJSON's name: it had been the temporary file's
                frame.to_file(scratch, driver=driver, engine="pyogrio", layer=layer)
            os.replace(scratch, tmp)
        finally:
            with contextlib.suppress(OSError):
                scratch.unlink()
    return out


def _from_csv(path: Path, crs: Any) -> Any:
    import geopandas as gpd
    import pandas as pd

    df = pd.read_csv(path, dtype={"ref": str})
    for xs, ys, c in (("lon", "lat", "EPSG:4326"), ("x", "y", crs)):
        if xs in df and ys in df:
            return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df[xs], df[ys]), crs=c)
    raise InputFormatError(f"{path} has no lon/lat or x/y columns; give the points' coordinates (lon, lat in degrees)")


def read_points(path: str | os.PathLike, *, crs: Any = None) -> Any:
    """Read a points file (anything pyogrio reads, or a CSV with ``lon``/``lat`` or ``x``/``y`` columns).

    Args:
        path: the file.
        crs: the CRS of a CSV's ``x``/``y`` columns (the maps' CRS).

    Returns:
        A GeoDataFrame of points.

    Raises:
        InputFormatError: missing, unreadable, empty, or not points.
    """
    import geopandas as gpd

    p = Path(path)
    if not p.is_file():
        raise InputFormatError(f"points file {p} does not exist; draw one with 'geohsi sample MAP --n N --out {p.name}'")
    try:
        gdf = _from_csv(p, crs) if p.suffix.lower() == ".csv" else gpd.read_file(p, engine="pyogrio", layer=_first_layer(p))
    except InputFormatError:
        raise
    except Exception as e:  # pyogrio/pandas raise many types for unreadable files
        # GDAL's message without its advice (cut mid-way before); a ". " in the quoted path stays
        first = re.sub(r"[.;\s]*It might help.*$", "", " ".join(str(e).split())).rstrip(".; ")[:200]
        raise InputFormatError(
            f"cannot read points file {p}: {first}; give a GeoPackage, GeoJSON or CSV of points (e.g. from geohsi sample)"
        ) from e
    if len(gdf) == 0:
        raise InputFormatError(f"points file {p} has no points; draw a sample with 'geohsi sample'")
    if gdf.geometry is None or not (gdf.geometry.geom_type == "Point").all():
        raise InputFormatError(f"{p} holds geometries other than points; give the points file of 'geohsi sample'")
    return gdf


def _first_layer(path: Path) -> str | None:
    """The layer to read (GDAL's first), said in one warning when the file holds several: points saved again by
    geopandas under another layer name had been read from the untouched first layer, behind pyogrio's warning."""
    import warnings

    import pyogrio

    try:
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception:  # unreadable: read_file says why
        return None
    if len(names) > 1:
        warnings.warn(
            f"points file {path.name} holds {len(names)} layers ({', '.join(names[:5])}); reading '{names[0]}', the "
            "first: keep the labelled points alone in the file",
            GeohsiWarning,
            stacklevel=4,
        )
    return names[0] if names else None


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    try:
        import pandas as pd

        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return " ".join(str(value).split())


def class_positions(values: Sequence[Any], legend: Legend, *, field: str, source: Any) -> np.ndarray:
    """Legend positions of class names or ids (``-1`` where a value is empty).

    Ids are whole numbers (``3``, ``"3"``, ``3.0``); anything else is a name, matched without regard
    to case or repeated spaces.

    Raises:
        DataError: values that name no class of the legend (all of them listed, up to 8).
    """
    by_id = legend.positions()
    by_name = {" ".join(n.split()).casefold(): k for k, n in enumerate(legend.names)}
    out = np.full(len(values), -1, np.int64)
    unknown: dict[str, None] = {}
    seen: dict[Any, int] = {}  # a sample holds a handful of distinct values: each is resolved once
    for k, v in enumerate(values):
        if v not in seen:
            t = _text(v)
            pos = -1 if not t else by_id.get(int(float(t))) if _INT.match(t) else by_name.get(t.casefold())
            if pos is None:
                unknown[t], pos = None, -1
            seen[v] = pos
        out[k] = seen[v]
    if unknown:
        shown = ", ".join(f"'{u}'" for u in list(unknown)[:8])
        known = ", ".join(f"{c.id}={c.name}" for c in legend)
        raise DataError(
            f"field '{field}' of {source} holds {len(unknown)} value(s) that are not classes of the maps: {shown}; "
            f"use class names or ids of the maps ({known})"
        )
    return out


def field_values(gdf: Any, field: str, source: Any, *, what: str = "reference") -> list[Any]:
    """The values of one field.

    Raises:
        UsageError: the field is missing (the message lists the fields there are).
    """
    if field not in gdf.columns:
        fields = ", ".join(c for c in gdf.columns if c != gdf.geometry.name)
        flag = "--label-field" if what == "reference" else "--map-field"
        raise UsageError(f"{source} has no {what} field '{field}' (its fields: {fields}); pass {flag} NAME")
    return gdf[field].tolist()


def locate(gdf: Any, maps: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The map and pixel of each point: ``(map index, row, col)``, ``-1`` outside every map.

    A point is reprojected to each map's CRS in turn and belongs to the first map that contains it,
    except that a point whose ``map`` column (what ``geohsi sample`` writes) names a map containing
    it belongs to that map, where maps overlap; points on pixel grids (no CRS) are located by their
    ``map``/``row``/``col`` columns.
    """
    n = len(gdf)
    which, rows, cols = np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    if maps and maps[0].crs is None:
        return _locate_by_pixel(gdf, maps, which, rows, cols)
    xs, ys = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    named = gdf["map"].astype(str).to_numpy() if "map" in gdf.columns else np.full(n, None)
    for only_named in (True, False):
        for k, m in enumerate(maps):
            todo = np.flatnonzero((which < 0) & ((named == m.name) if only_named else True))
            if not todo.size:
                continue
            mx, my = _to_crs(xs[todo], ys[todo], gdf.crs, m.crs)
            c, r = ~m.transform @ (mx, my)
            r, c = np.floor(r).astype(np.int64), np.floor(c).astype(np.int64)
            inside = (r >= 0) & (r < m.shape[0]) & (c >= 0) & (c < m.shape[1]) & np.isfinite(mx)
            which[todo[inside]], rows[todo[inside]], cols[todo[inside]] = k, r[inside], c[inside]
    return which, rows, cols


def _to_crs(x: np.ndarray, y: np.ndarray, src: Any, dst: Any) -> tuple[np.ndarray, np.ndarray]:
    if src is None or dst is None or src == dst:
        return x, y
    from rasterio.warp import transform

    tx, ty = transform(src, dst, x, y)
    return np.asarray(tx, float), np.asarray(ty, float)


def _locate_by_pixel(gdf: Any, maps: Sequence[Any], which, rows, cols):
    if not {"map", "row", "col"} <= set(gdf.columns):
        raise DataError(
            "the maps are pixel grids (no CRS): the points need the map, row and col columns that geohsi sample writes"
        )
    index = {m.name: k for k, m in enumerate(maps)}
    for i, (name, r, c) in enumerate(zip(gdf["map"], gdf["row"], gdf["col"], strict=True)):
        k = index.get(str(name))
        if k is not None and 0 <= int(r) < maps[k].shape[0] and 0 <= int(c) < maps[k].shape[1]:
            which[i], rows[i], cols[i] = k, int(r), int(c)
    return which, rows, cols


__all__ = [
    "DESIGN_COLUMNS",
    "FORMATS",
    "class_positions",
    "field_values",
    "locate",
    "points_driver",
    "read_points",
    "write_points",
]
