"""Written maps read back for figures (:func:`open_classmap`, COG overviews or Zarr) and the quicklook PNG beside each map.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.plot.classmap import add_map_furniture, plot_classmap
from geohsi.plot.common import MAX_SIZE, _decimate, _step, figure_png
from geohsi.scene import Legend, colormap_hex, filled_colors

#: what a written map records of its making and :func:`open_classmap` reads back (``GEOHSI_<KEY>`` COG tags, Zarr attributes).
_MADE_FROM = ("scene", "bundle")


def open_classmap(path: str | os.PathLike, *, max_size: int | None = None) -> Any:
    """Read a map written by ``geohsi classify`` (COG or Zarr) with its legend.

    For a COG, the legend comes from :meth:`~geohsi.scene.Legend.from_geotiff` (its ``GEOHSI_CLASSES`` tag,
    else ``CLASS_<id>`` band tags; colours from the legend, else the colour table, else
    :func:`~geohsi.scene.filled_colors`); a decimated read uses the COG's overviews.

    Args:
        path: ``map.tif`` or ``map.zarr``.
        max_size: longest side to read, in pixels (``None`` = full resolution).

    Returns:
        DataArray ``(y, x)`` of class ids (0 = nodata) with map coordinates, ``spatial_ref``, and
        attrs ``class_ids``, ``class_names``, ``class_colors`` and, where the map records them, the
        ``scene`` and ``bundle`` it was made from.

    Raises:
        InputFormatError: not a readable map.
    """
    import xarray as xr

    from geohsi.errors import InputFormatError

    path = Path(path)
    if path.suffix.lower() == ".zarr":
        try:
            m = xr.open_zarr(path, decode_coords="all", mask_and_scale=False, consolidated=False)["classes"]
        except (OSError, KeyError, ValueError) as e:
            raise InputFormatError(
                f"{path} is not a geohsi map store ({type(e).__name__}); write one with 'geohsi classify'"
            ) from e
        m = _decimate(m, max_size).load()
        m.attrs.update({k: m.attrs.get(k) or v for k, v in _zarr_root_attrs(path).items()})
        return m
    import rasterio
    import rioxarray  # noqa: F401
    from affine import Affine
    from rasterio.enums import Resampling

    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as e:
        raise InputFormatError(f"{path} cannot be read as a GeoTIFF ({' '.join(str(e).split())[:120]}); check the path") from e
    with src:
        s = max(_step(src.height, max_size), _step(src.width, max_size))
        h, w = math.ceil(src.height / s), math.ceil(src.width / s)
        ids = src.read(1, out_shape=(h, w), resampling=Resampling.nearest)
        t = src.transform @ Affine.scale(src.width / w, src.height / h)
        try:
            cmap = src.colormap(1)
        except ValueError:
            cmap = {}
        tags = src.tags()
        btags = src.tags(1)
        crs = src.crs
    named = {c.id: c for c in Legend.from_geotiff(tags, btags, cmap) or ()}
    ids_in = sorted(named or {int(i) for i in np.unique(ids) if i != 0})
    colors = filled_colors([named[i].color if i in named else colormap_hex(cmap, i) for i in ids_in], ids_in)
    x = t.c + t.a * (np.arange(w) + 0.5)
    y = t.f + t.e * (np.arange(h) + 0.5)
    m = xr.DataArray(ids, dims=("y", "x"), coords={"y": y, "x": x}, name="classes")
    m.attrs.update(
        class_ids=ids_in, class_names=[named[i].name if i in named else f"class_{i}" for i in ids_in], class_colors=colors
    )
    m.attrs.update({k: tags[f"GEOHSI_{k.upper()}"] for k in _MADE_FROM if f"GEOHSI_{k.upper()}" in tags})
    if crs is not None:
        m = m.rio.write_crs(crs).rio.write_transform(t)
    return m


def _zarr_root_attrs(path: Path) -> dict[str, Any]:
    import zarr

    a = dict(zarr.open_group(str(path), mode="r").attrs)
    return {k: a[k] for k in ("class_ids", "class_names", "class_colors", "georeferenced", *_MADE_FROM) if k in a}


def map_quicklook_path(out: str | os.PathLike) -> Path:
    """Where :func:`write_map_quicklook` puts the PNG of a map: ``map.tif``/``map.zarr`` → ``map.png``."""
    return Path(out).with_suffix(".png")


def quicklook_title(out: str | os.PathLike, made_from: Mapping[str, Any]) -> str:
    """``map.tif`` over ``scene ip.zarr · bundle runs/latest`` (what the map records of its making).

    Args:
        out: the map file.
        made_from: the map's ``scene`` and ``bundle`` paths, where recorded (:func:`open_classmap`'s attrs).
    """

    def short(path: str, parts: int) -> str:
        return "/".join(Path(str(path)).parts[-parts:])

    source = [f"{k} {short(made_from[k], n)}" for k, n in (("scene", 1), ("bundle", 2)) if made_from.get(k)]
    return "\n".join([Path(out).name, " · ".join(source)]) if source else Path(out).name


def write_map_quicklook(
    out: str | os.PathLike, *, overwrite: bool = False, max_size: int = MAX_SIZE, log: Callable[[str], None] | None = None
) -> Path | None:
    """Write ``map.png`` beside a map: the class map in its colour table with a legend of class names.

    Reads the written file itself (:func:`open_classmap`), so the PNG shows what the COG/Zarr holds.
    The title names the map, the scene and the bundle it was made from; the legend lists nodata
    when the map has any; a georeferenced map gets a scale bar and a north arrow (:func:`add_map_furniture`).

    Args:
        out: the map (``.tif`` or ``.zarr``).
        overwrite: replace an existing PNG; otherwise an existing one is kept (and ``log`` says so).
        max_size: longest side drawn, in pixels (COG overviews are used for large maps).
        log: receives a one-line note when an existing PNG is kept.

    Returns:
        The PNG path, or ``None`` when an existing PNG was kept.
    """
    from geohsi.files import atomic_output

    png = map_quicklook_path(out)
    if png.exists() and not overwrite:
        if log:
            log(f"kept the existing quicklook {png} (pass --overwrite to replace it)")
        return None
    m = open_classmap(out, max_size=max_size)
    h, w = m.shape
    aspect = h / max(w, 1)
    ax = plot_classmap(m, title=quicklook_title(out, m.attrs), nodata="nodata")
    add_map_furniture(ax, m)
    ax.figure.set_size_inches(7.5, max(3.0, min(9.0, 5.5 * aspect + 0.8)))
    with atomic_output(png, overwrite=True) as tmp:
        tmp.write_bytes(figure_png(ax.figure, bbox_inches="tight"))
    return png
