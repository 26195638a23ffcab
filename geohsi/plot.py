"""Quicklook figures (matplotlib; the Agg backend unless one is already chosen).

* :func:`plot_scene` — true colour chosen by wavelength, or a PCA false colour, percentile-stretched,
  nodata transparent, on the scene's map coordinates;
* :func:`plot_classmap` — a class map in the bundle's colours (the same table the COG carries) with
  a legend of class names; draws over :func:`plot_scene` on the same axes;
* :func:`plot_spectra` — mean ± std spectrum per class against wavelength, bad bands masked;
* :func:`plot_confusion`, :func:`plot_training` — the figures written into bundles and metrics;
* :func:`open_classmap` / :func:`write_map_quicklook` — read a written map (COG or Zarr) with its
  legend, and the ``map.png`` that ``geohsi classify`` writes beside it.

Functions that draw on one image take ``ax=None`` and return the Axes (``ax.figure`` is the
figure); the whole-figure plots return the Figure. :func:`figure_png` takes either.

.. versionadded:: 0.1
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import DataError, UsageError
from geohsi.scene import ClassInfo, Legend, default_color, scene_legend

#: Default true-colour wavelengths (nm): red, green, blue.
RGB_NM: tuple[float, float, float] = (640.0, 550.0, 470.0)
#: How far (nm) the nearest good band may lie from a requested wavelength.
MAX_BAND_GAP_NM = 50.0
#: Longest image side drawn by default (pixels); larger scenes are decimated before computing.
MAX_SIZE = 1024


def have_matplotlib() -> bool:
    """Whether figures can be drawn here (matplotlib is a dependency, but a minimal install such as the
    offline GPU check's may lack it: training and classify then skip their figures and say so)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import sys

    import matplotlib

    # Scripts and the CLI render off-screen (Agg); a notebook (pyplot already imported, e.g. by
    # %matplotlib inline) or an explicit MPLBACKEND keeps its backend.
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _new_axes(ax: Any, figsize: tuple[float, float]):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize)
    return ax


def _hex_rgba(color: str) -> tuple[float, float, float, float]:
    from matplotlib.colors import to_rgba

    return to_rgba(color)


# -- grids ---------------------------------------------------------------------------------------


def _step(n: int, max_size: int | None) -> int:
    return 1 if not max_size or n <= max_size else math.ceil(n / max_size)


def _decimate(obj: Any, max_size: int | None):
    """Strided selection so the longest side is at most ``max_size`` (lazy; nearest sampling)."""
    s = max(_step(int(obj.sizes["y"]), max_size), _step(int(obj.sizes["x"]), max_size))
    return obj if s == 1 else obj.isel(y=slice(None, None, s), x=slice(None, None, s))


def _extent(arr: Any) -> tuple[float, float, float, float]:
    """``(left, right, bottom, top)`` of the pixel edges, from centre coordinates ``y``/``x``."""
    x = np.asarray(arr["x"].values, dtype=float)
    y = np.asarray(arr["y"].values, dtype=float)
    dx = x[1] - x[0] if x.size > 1 else 1.0
    dy = y[1] - y[0] if y.size > 1 else -1.0
    return x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2


def _crs_label(obj: Any) -> str | None:
    if int(obj.attrs.get("georeferenced", 1)) == 0:
        return None
    try:
        crs = obj.rio.crs
    except Exception:  # no spatial_ref: a plain array
        return None
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:40]


def _label_axes(ax: Any, crs: str | None) -> None:
    if crs:
        ax.set_xlabel(f"x (m, {crs})" if "EPSG" in crs else "x")
        ax.set_ylabel("y (m)")
    else:
        ax.set_xlabel("column (pixels)")
        ax.set_ylabel("row (pixels)")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=7)


# -- scene ---------------------------------------------------------------------------------------


def rgb_band_indices(ds: Any, rgb: Sequence[float] = RGB_NM) -> np.ndarray:
    """Indices of the good bands nearest to the requested wavelengths.

    Args:
        ds: a scene.
        rgb: three wavelengths in nm (red, green, blue).

    Returns:
        ``[3]`` positional band indices.

    Raises:
        DataError: the scene has no wavelengths, or no good band within :data:`MAX_BAND_GAP_NM`.
        UsageError: ``rgb`` is not three numbers.
    """
    try:
        want = [float(v) for v in rgb]
    except (TypeError, ValueError):
        want = []
    if len(want) != 3:
        raise UsageError(f"rgb={rgb!r} must be three wavelengths in nm (red, green, blue) or 'pca'")
    wl = np.asarray(ds["wavelength"].values, dtype=float)
    good = np.asarray(ds["good_band"].values, bool) & np.isfinite(wl)
    src = ds.encoding.get("source", "the scene")
    if not good.any():
        raise DataError(f"{src} has no band wavelengths, so a true-colour view cannot be chosen; use rgb='pca'")
    cand = np.flatnonzero(good)
    out = []
    for w in want:
        k = cand[np.argmin(np.abs(wl[cand] - w))]
        if abs(wl[k] - w) > MAX_BAND_GAP_NM:
            raise DataError(
                f"{src} has no good band within {MAX_BAND_GAP_NM:g} nm of {w:g} nm (nearest {wl[k]:.1f} nm); "
                "choose other wavelengths or rgb='pca'"
            )
        out.append(k)
    return np.asarray(out)


def _stretch(img: np.ndarray, valid: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """Per-channel linear stretch of ``[H, W, C]`` between percentiles of the valid pixels → [0, 1]."""
    out = np.zeros(img.shape, dtype=float)
    for c in range(img.shape[-1]):
        v = img[..., c][valid]
        if v.size == 0:
            continue
        lo, hi = np.percentile(v, percentiles)
        out[..., c] = np.clip((img[..., c] - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    return out


def _pca3(cube: np.ndarray, valid: np.ndarray, good: np.ndarray, seed: int = 0) -> np.ndarray:
    """First three principal components ``[H, W, 3]`` of the good bands (fit on ≤ 20,000 valid pixels)."""
    x = cube[good][:, valid].T  # [N, B_good]
    if x.shape[0] < 3:
        raise DataError(f"only {x.shape[0]} valid pixels: too few for a PCA false colour; use rgb=(r, g, b) wavelengths")
    rng = np.random.default_rng(seed)
    fit = x if x.shape[0] <= 20000 else x[rng.choice(x.shape[0], 20000, replace=False)]
    mean = fit.mean(axis=0)
    # eigenvectors of the B×B covariance: far cheaper than an SVD of the N×B pixel matrix
    _, vecs = np.linalg.eigh(np.cov(fit - mean, rowvar=False))
    comps = vecs[:, ::-1][:, :3].T
    # a deterministic sign: the largest loading of each component positive
    comps = comps * np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])[:, None]
    out = np.zeros(valid.shape + (3,))
    out[valid] = (x - mean) @ comps.T
    return out


def scene_rgb(
    ds: Any,
    rgb: Sequence[float] | str = RGB_NM,
    *,
    percentiles: tuple[float, float] = (2.0, 98.0),
    max_size: int | None = MAX_SIZE,
) -> Any:
    """The stretched RGBA image of a scene, as drawn by :func:`plot_scene`.

    Args:
        ds: a scene (lazy is fine: only the three bands, or the decimated cube for PCA, are read).
        rgb: three wavelengths in nm, or ``"pca"`` for the first three principal components.
        percentiles: low/high percentiles of the valid pixels mapped to 0 and 1, per channel.
        max_size: longest side in pixels (strided decimation before computing); ``None`` = full size.

    Returns:
        DataArray ``(y, x, rgba)`` ``[H', W', 4]`` float in [0, 1]; alpha 0 at nodata pixels.

    Raises:
        DataError: no wavelengths / no good band near a requested wavelength / no valid pixels.
        UsageError: bad ``rgb``.
    """
    import xarray as xr

    from geohsi.scene import valid_mask
    from geohsi.spectral.normalize import physical_cube

    small = _decimate(ds, max_size)
    valid = np.asarray(valid_mask(small).values, bool)
    if isinstance(rgb, str):
        if rgb.lower() != "pca":
            raise UsageError(f"rgb={rgb!r} is not understood; give three wavelengths in nm or 'pca'")
        cube = np.asarray(physical_cube(small).values)
        good = np.asarray(small["good_band"].values, bool)
        img = _pca3(cube, valid, good if good.any() else np.ones_like(good))
        bands = "PC1, PC2, PC3"
    else:
        idx = rgb_band_indices(small, rgb)
        cube = np.asarray(physical_cube(small.isel(band=idx)).values)  # valid mask uses all good bands
        img = np.moveaxis(cube, 0, -1)
        wl = small["wavelength"].values[idx]
        bands = " / ".join(f"{w:.0f}" for w in wl) + " nm"
    if not valid.any():
        raise DataError(f"{ds.encoding.get('source', 'the scene')} has no valid pixels to show")
    img = np.where(valid[..., None], img, 0.0)
    rgba = np.concatenate([_stretch(img, valid, percentiles), valid[..., None].astype(float)], axis=-1)
    out = xr.DataArray(rgba, dims=("y", "x", "rgba"), coords={"y": small["y"], "x": small["x"]})
    out.attrs.update(bands=bands, georeferenced=int(ds.attrs.get("georeferenced", 1)))
    return out


def plot_scene(
    ds: Any,
    rgb: Sequence[float] | str = RGB_NM,
    *,
    ax: Any = None,
    percentiles: tuple[float, float] = (2.0, 98.0),
    max_size: int | None = MAX_SIZE,
    title: str | None = None,
):
    """Show a scene as true colour (bands nearest to ``rgb`` nm) or PCA false colour.

    Args:
        ds: a scene (:func:`geohsi.open_scene`).
        rgb: three wavelengths in nm (default 640/550/470), or ``"pca"``.
        ax: axes to draw on (a new figure otherwise).
        percentiles: per-channel stretch between these percentiles of the valid pixels.
        max_size: longest side drawn, in pixels (larger scenes are decimated lazily).
        title: axes title (default: the sensor and the bands shown).

    Returns:
        The matplotlib Axes; the image is drawn in map coordinates (pixel edges), nodata transparent.

    Raises:
        DataError: see :func:`scene_rgb`.
        UsageError: bad ``rgb``.
    """
    img = scene_rgb(ds, rgb, percentiles=percentiles, max_size=max_size)
    ax = _new_axes(ax, (6, 6))
    ax.imshow(img.values, extent=_extent(img), interpolation="nearest", origin="upper")
    _label_axes(ax, _crs_label(ds))
    sensor = ds.attrs.get("sensor")
    ax.set_title(title if title is not None else f"{sensor + ': ' if sensor else ''}{img.attrs['bands']}", fontsize=9)
    return ax


# -- colour differences --------------------------------------------------------------------------

#: CIE D65 reference white in XYZ (Y = 1), the white point of sRGB.
_D65 = np.array([0.95047, 1.0, 1.08883])
#: linear sRGB → XYZ (IEC 61966-2-1).
_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])


def srgb_to_lab(colors: Sequence[str] | np.ndarray) -> np.ndarray:
    """CIELAB (D65) coordinates of sRGB colours.

    Args:
        colors: ``#rrggbb`` strings, or ``[N, 3]`` sRGB values in [0, 1].

    Returns:
        ``[N, 3]`` float64: L* (0–100), a*, b*.
    """
    rgb = np.array([_hex_rgba(c)[:3] for c in colors]) if len(colors) and isinstance(colors[0], str) else np.asarray(colors)
    rgb = np.asarray(rgb, dtype=float).reshape(-1, 3)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=-1)


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference ΔE₀₀ (Sharma, Wu & Dalal 2005; kL = kC = kH = 1), broadcast.

    About 1 is a just-noticeable difference side by side; map classes need tens to be told apart
    from a legend.

    Args:
        lab1: ``[..., 3]`` CIELAB colours.
        lab2: ``[..., 3]`` CIELAB colours (broadcast against ``lab1``).

    Returns:
        ``[...]`` ΔE₀₀.
    """
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=float), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=float), -1, 0)
    c_mean7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c_mean7 / (c_mean7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    chroma0 = (c1p * c2p) == 0
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma0, 0.0, dh)
    d_l, d_c = L2 - L1, c2p - c1p
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    l_mean, c_mean = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(np.abs(h1p - h2p) > 180, np.where(h_sum < 360, h_sum + 360, h_sum - 360), h_sum) / 2
    h_mean = np.where(chroma0, h_sum, h_mean)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    c_mean7p = c_mean**7
    r_t = -2 * np.sqrt(c_mean7p / (c_mean7p + 25.0**7)) * np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2))))
    return np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h))


def palette_distances(colors: Sequence[str]) -> np.ndarray:
    """``[N, N]`` pairwise CIEDE2000 differences of ``#rrggbb`` colours (0 on the diagonal)."""
    lab = srgb_to_lab(colors)
    return delta_e2000(lab[:, None, :], lab[None, :, :])


def closest_colors(colors: Sequence[str]) -> tuple[float, int, int]:
    """The least distinguishable pair of a palette: ``(ΔE₀₀, i, j)`` with ``i < j`` (``inf`` below two colours)."""
    if len(colors) < 2:
        return float("inf"), 0, 0
    d = palette_distances(colors)
    d[np.tril_indices(len(colors))] = np.inf
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return float(d[i, j]), int(i), int(j)


# -- class maps ----------------------------------------------------------------------------------


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


# -- map furniture: scale bar and north arrow ---------------------------------------------------


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


def open_classmap(path: str | os.PathLike, *, max_size: int | None = None) -> Any:
    """Read a map written by ``geohsi classify`` (COG or Zarr) with its legend.

    For a COG, colours come from the file's colour table and names from its ``GEOHSI_CLASSES``
    tag (``CLASS_<id>`` band tags otherwise); a decimated read uses the COG's overviews.

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
    if "GEOHSI_CLASSES" in tags:
        named = {c.id: c.name for c in Legend.from_list(json.loads(tags["GEOHSI_CLASSES"]))}
    else:
        named = {int(k[6:]): v for k, v in btags.items() if k.startswith("CLASS_") and k[6:].isdigit() and k != "CLASS_0"}
    ids_in = sorted(named or {int(i) for i in np.unique(ids) if i != 0})
    colors = ["#{:02x}{:02x}{:02x}".format(*cmap[i][:3]) if i in cmap else None for i in ids_in]
    x = t.c + t.a * (np.arange(w) + 0.5)
    y = t.f + t.e * (np.arange(h) + 0.5)
    m = xr.DataArray(ids, dims=("y", "x"), coords={"y": y, "x": x}, name="classes")
    m.attrs.update(class_ids=ids_in, class_names=[named.get(i, f"class_{i}") for i in ids_in], class_colors=colors)
    m.attrs.update({k: tags[f"GEOHSI_{k.upper()}"] for k in _MADE_FROM if f"GEOHSI_{k.upper()}" in tags})
    if crs is not None:
        m = m.rio.write_crs(crs).rio.write_transform(t)
    return m


def _zarr_root_attrs(path: Path) -> dict[str, Any]:
    import zarr

    a = dict(zarr.open_group(str(path), mode="r").attrs)
    return {k: a[k] for k in ("class_ids", "class_names", "class_colors", "georeferenced", *_MADE_FROM) if k in a}


#: what a written map records of its making and :func:`open_classmap` reads back (``GEOHSI_<KEY>`` COG tags, Zarr attributes).
_MADE_FROM = ("scene", "bundle")


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


# -- spectra -------------------------------------------------------------------------------------


def class_spectra(
    scene: Any, labels: Any = None, classes: Legend | Sequence[Mapping[str, Any]] | None = None
) -> dict[int, tuple[np.ndarray, np.ndarray, int]]:
    """Mean and standard deviation of the physical spectrum of each class's valid pixels.

    Args:
        scene: a scene.
        labels: class ids ``[H, W]`` on the scene grid (default: the scene's ``labels``).
        classes: restrict to these ``[{id, …}]`` (default: every non-zero id present).

    Returns:
        ``{id: (mean [B], std [B], n_pixels)}``; bad bands are NaN.

    Raises:
        DataError: no labels, or a label grid of another shape.
    """
    from geohsi.scene import valid_mask
    from geohsi.spectral.normalize import physical_cube

    if labels is None:
        if "labels" not in scene:
            raise DataError(f"{scene.encoding.get('source', 'the scene')} has no labels; pass labels=[H, W] class ids")
        labels = scene["labels"]
    lab = np.asarray(getattr(labels, "values", labels))
    if lab.shape != (scene.sizes["y"], scene.sizes["x"]):
        raise DataError(
            f"labels have shape {lab.shape} but the scene is {scene.sizes['y']}×{scene.sizes['x']}; give labels on its grid"
        )
    ok = np.asarray(valid_mask(scene).values, bool) & (lab > 0)
    ids = [c.id for c in Legend.coerce(classes)] if classes is not None else [int(i) for i in np.unique(lab[ok])]
    cube = physical_cube(scene, dtype="float32")
    good = np.asarray(scene["good_band"].values, bool)
    rows, cols = np.nonzero(ok)
    # one vectorised gather of only the labelled pixels (cheap even for lazy scenes of modest size)
    import xarray as xr

    pix = np.asarray(
        cube.isel(y=xr.DataArray(rows, dims="pixel"), x=xr.DataArray(cols, dims="pixel")).transpose("band", "pixel").values
    )
    out = {}
    for i in ids:
        sel = lab[rows, cols] == i
        v = pix[:, sel].astype(float)
        mean = v.mean(axis=1) if sel.any() else np.full(good.size, np.nan)
        std = v.std(axis=1) if sel.any() else np.full(good.size, np.nan)
        out[i] = (np.where(good, mean, np.nan), np.where(good, std, np.nan), int(sel.sum()))
    return out


def plot_spectra(
    scene: Any,
    labels: Any = None,
    *,
    classes: Legend | Sequence[Mapping[str, Any]] | None = None,
    ax: Any = None,
    std: bool = True,
):
    """Mean ± std spectrum per class against wavelength; bad bands are gaps in the lines.

    Args:
        scene: a scene with wavelengths (band numbers are used where wavelengths are unknown).
        labels: class ids ``[H, W]`` (default: the scene's ``labels``).
        classes: ``[{id, name, color}]`` to show (default: the scene's label legend).
        ax: axes to draw on.
        std: shade ± one standard deviation.

    Returns:
        The matplotlib Axes; one line per class (label = class name, colour = class colour).

    Raises:
        DataError: no labels / a label grid of another shape.
    """
    if classes is None and "labels" in scene:
        classes = scene_legend(scene)
    stats = class_spectra(scene, labels, classes)
    legend = (
        Legend.coerce(classes)
        if classes is not None
        else Legend(tuple(ClassInfo(i, f"class_{i}", default_color(i)) for i in stats))
    )
    wl = np.asarray(scene["wavelength"].values, dtype=float)
    use_wl = np.isfinite(wl).any()
    x = wl if use_wl else np.asarray(scene["band"].values, dtype=float)
    order = np.argsort(x)
    # break the lines across removed bands (e.g. Indian Pines' water-absorption gaps): a NaN where the
    # spacing jumps to more than 3× its median
    xs = x[order]
    gaps = np.flatnonzero(np.diff(xs) > 3 * np.median(np.diff(xs))) + 1 if xs.size > 2 else np.array([], int)
    scale = scene[next(v for v in ("reflectance", "radiance") if v in scene)].attrs.get("scale_factor")
    units = scene.attrs.get("units", "")
    ax = _new_axes(ax, (7, 4))
    for c in legend:
        mean, sd, n = stats[c.id]
        if n == 0:
            continue
        m, s, xx = (np.insert(a[order].astype(float), gaps, np.nan) for a in (mean, sd, x))
        ax.plot(xx, m, color=c.color, lw=1.2, label=f"{c.name} ({n})")
        if std:
            ax.fill_between(xx, m - s, m + s, color=c.color, alpha=0.15, lw=0)
    ax.set_xlabel("wavelength (nm)" if use_wl else "band")
    ax.set_ylabel(f"{'reflectance' if 'reflectance' in scene else 'radiance'}{f' ({units})' if units and not scale else ''}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False, borderaxespad=0.0)
    ax.tick_params(labelsize=7)
    return ax


# -- metrics and training (written into bundles and metrics files) -------------------------------


def plot_confusion(report: Mapping[str, Any], *, normalize: bool = True):
    """Heatmap of a metrics report's confusion matrix (rows = truth), recall-normalised by default.

    Args:
        report: a :func:`geohsi.metrics.classification_report` dict.
        normalize: divide each row by its support.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    cm = np.asarray(report["confusion_matrix"], dtype=float)
    names = list(report.get("class_names") or range(1, len(cm) + 1))
    show = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    n = len(cm)
    fig, ax = plt.subplots(figsize=(1.6 + 0.45 * n, 1.2 + 0.45 * n))
    im = ax.imshow(show, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    oa = report.get("overall_accuracy")
    ax.set_title(
        f"OA {oa:.3f}, AA {report.get('average_accuracy', 0):.3f}, κ {report.get('kappa', 0):.3f}" if oa is not None else ""
    )
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_training(history: Sequence[Mapping[str, Any]]):
    """Loss and validation OA per epoch from a training log.

    Args:
        history: rows with ``epoch``, ``train_loss`` and optionally ``val_oa``.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    ep = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(ep, [r["train_loss"] for r in history], "o-", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if any(r.get("val_oa") is not None for r in history):
        ax2 = ax.twinx()
        ax2.plot(ep, [r.get("val_oa") for r in history], "s-", color="tab:orange", label="val OA")
        ax2.set_ylabel("val OA")
    fig.tight_layout()
    return fig


def figure_png(fig, *, dpi: int = 110, **savefig: Any) -> bytes:
    """PNG bytes of a figure (or of an Axes' figure), and close it.

    Args:
        fig: a Figure or an Axes.
        dpi: resolution.
        **savefig: more :meth:`matplotlib.figure.Figure.savefig` options (e.g. ``bbox_inches="tight"``).

    Returns:
        The PNG file content.
    """
    plt = _pyplot()
    fig = fig.get_figure() if hasattr(fig, "get_figure") and not hasattr(fig, "savefig") else fig
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, **savefig)
    plt.close(fig)
    return buf.getvalue()


__all__ = [
    "MAX_SIZE",
    "RGB_NM",
    "add_map_furniture",
    "class_lookup",
    "class_spectra",
    "closest_colors",
    "delta_e2000",
    "figure_png",
    "ground_geometry",
    "map_quicklook_path",
    "open_classmap",
    "palette_distances",
    "plot_classmap",
    "plot_confusion",
    "plot_scene",
    "plot_spectra",
    "plot_training",
    "quicklook_title",
    "rgb_band_indices",
    "scene_rgb",
    "srgb_to_lab",
    "write_map_quicklook",
]
