"""Scene images: true colour chosen by wavelength or a PCA false colour, percentile-stretched (:func:`plot_scene`).

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from geohsi.errors import DataError, UsageError
from geohsi.plot.common import MAX_SIZE, _crs_label, _decimate, _extent, _label_axes, _new_axes

#: Default true-colour wavelengths (nm): red, green, blue.
RGB_NM: tuple[float, float, float] = (640.0, 550.0, 470.0)


#: How far (nm) the nearest good band may lie from a requested wavelength.
MAX_BAND_GAP_NM = 50.0


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
