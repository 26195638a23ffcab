"""Class maps: the legend's colours, a legend of class names, a scale bar and north arrow (:func:`plot_classmap`).

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from geohsi.errors import UsageError
from geohsi.plot.common import _crs_label, _decimate, _extent, _hex_rgba, _label_axes, _new_axes
from geohsi.scene import Legend


def class_lookup(classes: Legend | Sequence[Mapping[str, Any]]) -> np.ndarray:
    """RGBA lookup table ``[max_id + 1, 4]`` (floats in [0, 1]); id 0 (nodata) and gaps are transparent.

    Args:
        classes: a :class:`~geohsi.scene.Legend` or ``[{id, name, color}]``.

    Raises:
        UsageError: a class without a colour or with a negative id.
    """
    legend = Legend.coerce(classes)
    ids = [c.id for c in legend]
    if any(i < 0 for i in ids):
        raise UsageError(f"class ids must be non-negative, got {ids}")
    lut = np.zeros((max(ids, default=0) + 1, 4))
    for c in legend:
        if not c.color:
            raise UsageError(f"class {c.id} ({c.name}) has no colour; give '#rrggbb' colours for every class")
        lut[c.id] = _hex_rgba(c.color)
    return lut


def plot_classmap(
    classmap: Any,
    classes: Legend | Sequence[Mapping[str, Any]] | None = None,
    *,
    ax: Any = None,
    legend: bool = True,
    alpha: float = 1.0,
    max_size: int | None = 2048,
    title: str | None = None,
    nodata: str | None = None,
):
    """Draw a class-id map in its class colours with a legend of class names.

    Args:
        classmap: class ids ``(y, x)`` (0 = nodata, transparent): the DataArray from
            :func:`geohsi.predict_map`, a Zarr map's ``classes``, :func:`open_classmap`, a COG
            opened with rioxarray (a single ``band`` is squeezed), or a numpy array with ``classes``.
        classes: a :class:`~geohsi.scene.Legend` (a bundle's ``classes``) or ``[{id, name, color}]``; default: the map's attrs
            (``class_ids``/``class_names``/``class_colors`` or the COG's ``GEOHSI_CLASSES`` tag).
        ax: axes to draw on, e.g. the one returned by :func:`plot_scene` to overlay the map.
        legend: add a legend (every class of ``classes``, in their order) right of the axes.
        alpha: opacity of the classified pixels.
        max_size: longest side drawn, in pixels (decimated by striding, so classes stay exact).
        title: axes title.
        nodata: legend label of the nodata pixels (transparent), listed last when the map has any;
            ``None`` leaves them out of the legend.

    Returns:
        The matplotlib Axes. The image's RGBA data are exactly the class colours (nearest
        interpolation), so ``ax.images[-1].get_array()`` can be checked against the colour table.

    Raises:
        UsageError: no class legend given or found; map ids missing from ``classes``.
    """
    import xarray as xr

    da_ = classmap
    if isinstance(da_, xr.DataArray) and "band" in da_.dims:
        da_ = da_.squeeze("band", drop=True)
    if classes is None:
        classes = Legend.from_attrs(da_.attrs) if isinstance(da_, xr.DataArray) else None
        if classes is None:
            raise UsageError("the map carries no class legend; pass classes=bundle.classes ([{id, name, color}, …])")
    classes = Legend.coerce(classes)
    if isinstance(da_, xr.DataArray):
        da_ = _decimate(da_, max_size)
        ids = np.asarray(da_.values)
        extent, crs = _extent(da_), _crs_label(da_)
    else:
        ids = np.asarray(da_)
        extent, crs = None, None
    ids = np.where(np.isfinite(ids), ids, 0).astype(np.int64) if ids.dtype.kind == "f" else ids.astype(np.int64)
    lut = class_lookup(classes)
    known = {c.id for c in classes} | {0}
    unknown = sorted(set(np.unique(ids).tolist()) - known)
    if unknown:
        raise UsageError(f"the map holds class ids {unknown[:10]} that the legend does not list; pass the bundle's classes")
    rgba = lut[ids]
    if alpha < 1.0:
        rgba[..., 3] *= alpha
    ax = _new_axes(ax, (7, 6))
    ax.imshow(rgba, extent=extent, interpolation="nearest", origin="upper")
    if extent is not None:
        _label_axes(ax, crs)
    if title is not None:
        ax.set_title(title, fontsize=9)
    if legend:
        _class_legend(ax, classes, nodata if (ids == 0).any() else None)
    return ax


def _class_legend(ax: Any, classes: Legend, nodata: str | None) -> None:
    """A legend right of the axes: one patch per class, then the nodata entry (the white background, outlined)."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=c.color, edgecolor="0.3", linewidth=0.4, label=c.name) for c in classes]
    if nodata is not None:
        handles.append(Patch(facecolor="white", edgecolor="0.3", linewidth=0.4, label=nodata))
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=7,
        frameon=False,
        title="classes",
        title_fontsize=8,
        borderaxespad=0.0,
    )


def _nice_length(target: float) -> float:
    """The largest 1, 2 or 5 × 10ⁿ not above ``target`` (> 0)."""
    base = 10.0 ** math.floor(math.log10(target))
    return max(m * base for m in (1, 2, 5) if m * base <= target)


def ground_geometry(crs: Any, x: float, y: float) -> tuple[float, float]:
    """Metres on the ground per map x-unit at a point, and the direction of true north there.

    Args:
        crs: the map's CRS (rasterio, pyproj or anything ``pyproj.CRS`` reads).
        x: map x of the point (the map centre, for a quicklook).
        y: map y of the point.

    Returns:
        ``(metres per x-unit, north)``: the geodesic length of a small step along x, per unit, and the
        angle of true north from map up in degrees, clockwise (the meridian convergence; 0 for a
        geographic CRS).
    """
    from pyproj import CRS, Geod, Transformer

    crs = CRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
    to_geo = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    from_geo = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    step = 1.0 if crs.is_projected else 1e-3
    lon0, lat0 = to_geo.transform(x, y)
    lon1, lat1 = to_geo.transform(x + step, y)
    metres = Geod(ellps="WGS84").inv(lon0, lat0, lon1, lat1)[2] / step
    sign = 1.0 if lat0 < 89.0 else -1.0  # beside the pole: a step south, turned round
    xn, yn = from_geo.transform(lon0, lat0 + sign * 1e-3)
    return metres, math.degrees(math.atan2(sign * (xn - x), sign * (yn - y)))


def _scale_bar(ax: Any, length: float, label: str) -> Any:
    """A scale bar of ``length`` map units (drawn in data units, so it keeps the map's scale) over its label."""
    from matplotlib.lines import Line2D
    from matplotlib.offsetbox import AuxTransformBox, TextArea, VPacker

    bar = AuxTransformBox(ax.transData)
    bar.add_artist(Line2D([0, length], [0, 0], color="black", lw=5.5, solid_capstyle="butt"))  # the outline
    for k, color in enumerate(("black", "white", "black", "white")):  # alternating quarters
        bar.add_artist(Line2D([k * length / 4, (k + 1) * length / 4], [0, 0], color=color, lw=4, solid_capstyle="butt"))
    text = TextArea(label, textprops={"fontsize": 7})
    return VPacker(children=[bar, text], align="center", pad=0, sep=3)


def _north_arrow(north: float) -> Any:
    """An arrow pointing ``north`` degrees clockwise from up, with an N at its tip."""
    from matplotlib.offsetbox import DrawingArea
    from matplotlib.patches import FancyArrow
    from matplotlib.text import Text

    size = 30.0
    area = DrawingArea(size, size)
    dx, dy = math.sin(math.radians(north)), math.cos(math.radians(north))
    c, half = size / 2, 0.32 * size
    area.add_artist(
        FancyArrow(
            c - half * dx,
            c - half * dy,
            2 * half * dx,
            2 * half * dy,
            width=1.2,
            head_width=7,
            head_length=8,
            length_includes_head=True,
            color="black",
        )
    )
    area.add_artist(Text(c + 0.47 * size * dx, c + 0.47 * size * dy, "N", ha="center", va="center", fontsize=7, weight="bold"))
    return area


def add_map_furniture(ax: Any, classmap: Any) -> bool:
    """Draw a scale bar and a north arrow under the map's axes (outside the image: they hide no pixel).

    The scale bar is about a quarter of the map's width in round metres or kilometres, measured on
    the ground at the map centre; the arrow points to true north there (grid north turned by the
    meridian convergence).

    Args:
        ax: the axes of :func:`plot_classmap` (or :func:`plot_scene`).
        classmap: the map drawn, a DataArray with ``x``/``y`` map coordinates and a CRS.

    Returns:
        Whether anything was drawn: a pixel grid (no CRS) has no ground scale and no north.
    """
    from matplotlib.offsetbox import AnnotationBbox, HPacker

    crs = classmap.rio.crs if _crs_label(classmap) else None
    if crs is None:
        return False
    left, right, bottom, top = _extent(classmap)
    metres, north = ground_geometry(crs, (left + right) / 2, (bottom + top) / 2)
    length_m = _nice_length(abs(right - left) * metres / 4)
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    box = HPacker(children=[_scale_bar(ax, length_m / metres, label), _north_arrow(north)], align="center", pad=0, sep=14)
    # under the tick labels and the axis label, right-aligned with the map
    ax.add_artist(
        AnnotationBbox(
            box,
            (1.0, 0.0),
            xycoords="axes fraction",
            xybox=(0, -34),
            boxcoords="offset points",
            box_alignment=(1.0, 1.0),
            frameon=False,
            annotation_clip=False,
        )
    )
    return True
