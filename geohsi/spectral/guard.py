"""Input guards of a spectral transform: does a scene look like what the model was trained on?

Two checks, both on a small sample of the scene and both warnings (a scene can be right and still
differ):

* **value range** (:func:`value_range`, :func:`range_warning`): the scene's physical values are
  10× or more off the training scene's (a missing or wrong scale factor shifts them by 10⁴);
* **channel distribution** (:class:`ChannelStats`, :func:`distribution_warning`): after the band
  reduction and normalisation, a model channel whose mean sits more than 3 training standard
  deviations from the training mean, or whose spread is under ¼ or over 4× the training spread.
  That is what band widths read in the wrong unit, another quantity or a wrong scale factor do to
  the model's input, whatever the sensor.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from geohsi.scene import cube
from geohsi.spectral.normalize import Normalizer, physical_cube

#: Pixels (per axis) of the strided grid a value range is taken from (the fitting scene; a scene being
#: checked gives its :func:`window_sample`, which is smaller and taken whole).
RANGE_SAMPLE = 128
#: A scene whose typical values differ from the training scene's by this factor or more gets a
#: warning: a missing or wrong scale factor (reflectance × 10000 vs 0–1) shifts them by 10⁴.
RANGE_RATIO_WARN = 10.0
#: Channel distribution guard: a channel mean this many training standard deviations off ...
MEAN_SDS_WARN = 3.0
#: ... or a spread outside [1/SPREAD_RATIO_WARN, SPREAD_RATIO_WARN] × the training spread is flagged.
SPREAD_RATIO_WARN = 4.0
#: Channels named in the warning (the worst first).
SHOWN_CHANNELS = 4
#: The checked sample: a 3 × 3 grid of windows of this edge (pixels), each kept inside one chunk.
WINDOW = 32
WINDOWS_PER_AXIS = 3


def strided_sample(ds: xr.Dataset) -> xr.Dataset:
    """About ``RANGE_SAMPLE``² pixels on a regular grid over the whole scene (what a fit records)."""
    h, w = int(ds.sizes["y"]), int(ds.sizes["x"])
    return ds.isel(y=slice(None, None, max(1, h // RANGE_SAMPLE)), x=slice(None, None, max(1, w // RANGE_SAMPLE)))


def _window_starts(n: int, chunk: int) -> np.ndarray:
    """Pixel indices of ``WINDOWS_PER_AXIS`` windows spread over an axis of ``n``, each inside one chunk."""
    if n <= WINDOW * WINDOWS_PER_AXIS:
        return np.arange(n)
    out = []
    for f in (np.arange(WINDOWS_PER_AXIS) + 0.5) / WINDOWS_PER_AXIS:
        start = int(np.clip(round(f * n - WINDOW / 2), 0, n - WINDOW))
        if chunk >= WINDOW and start // chunk != (start + WINDOW - 1) // chunk:
            edge = (start // chunk + 1) * chunk  # the chunk border the window straddles: move to either side of it
            start = min((s for s in (edge - WINDOW, edge) if 0 <= s <= n - WINDOW), key=lambda s: abs(s - start))
        out.append(np.arange(start, start + WINDOW))
    return np.unique(np.concatenate(out))


def window_sample(ds: xr.Dataset) -> xr.Dataset:
    """A 3 × 3 grid of ``WINDOW``² windows spread over the scene (reads at most nine chunks).

    Spread, not central: a central window can be one field or a lake, whose spread is not the scene's.
    """
    data = cube(ds).data
    chunks = getattr(data, "chunks", None)
    cy = int(chunks[1][0]) if chunks else int(ds.sizes["y"])
    cx = int(chunks[2][0]) if chunks else int(ds.sizes["x"])
    return ds.isel(y=_window_starts(int(ds.sizes["y"]), cy), x=_window_starts(int(ds.sizes["x"]), cx))


def value_range(ds: xr.Dataset, bands: np.ndarray) -> tuple[float, float] | None:
    """1st and 99th percentile of a scene's physical values over ``bands`` at valid pixels, from a sample.

    Args:
        ds: a scene, or a sample of one (:func:`window_sample`); sampled on a strided grid of
            about ``RANGE_SAMPLE``² pixels (a sample smaller than that is taken whole).
        bands: 0-based bands to look at (the ones a reduction reads).

    Returns:
        ``(low, high)`` in physical units, or ``None`` when the sample has no valid pixel.
    """
    vals = np.asarray(physical_cube(strided_sample(ds)).isel(band=np.asarray(bands)).values, dtype="float64")
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return None
    lo, hi = np.percentile(vals, [1.0, 99.0])
    return float(lo), float(hi)


def range_warning(
    sample: xr.Dataset, bands: np.ndarray, trained: tuple[float, float], source: str, quantity: str, scaled: bool
) -> str | None:
    """A warning when a scene's typical values are ``RANGE_RATIO_WARN``× off the training range, else ``None``.

    Args:
        sample: the scene's :func:`window_sample`, in memory (the channel guard reads the same one).
        bands, trained: the bands the reduction reads and the training scene's :func:`value_range`.
        source, quantity, scaled: the scene's name, quantity and whether it declares a scale factor.
    """
    got = value_range(sample, bands)
    ref_hi = abs(trained[1])
    if got is None or ref_hi == 0 or got[1] == 0:
        return None
    ratio = abs(got[1]) / ref_hi
    if 1 / RANGE_RATIO_WARN < ratio < RANGE_RATIO_WARN:
        return None
    return (
        f"{source} {quantity} values span {got[0]:.4g}–{got[1]:.4g} (1st–99th percentile of nine windows spread over it) but the model "
        f"was trained on {trained[0]:.4g}–{trained[1]:.4g}, ~{ratio:.3g}× apart; its scale_factor is "
        f"probably {'wrong' if scaled else 'missing'}: set it at ingest (e.g. 1e-4 for reflectance × 10000)"
    )


@dataclass(frozen=True, eq=False)
class ChannelStats:
    """Mean and standard deviation of each model channel (normalised) over a scene's valid pixels.

    Attributes:
        mean: ``[C]`` channel means.
        std: ``[C]`` channel standard deviations.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, channels: np.ndarray) -> ChannelStats | None:
        """Statistics of ``channels [C, …]`` (NaN = invalid pixel); ``None`` without a valid pixel."""
        flat = np.asarray(channels, dtype="float64").reshape(channels.shape[0], -1)
        flat = flat[:, np.isfinite(flat).all(axis=0)]
        if flat.shape[1] < 2:
            return None
        return cls(flat.mean(axis=1), flat.std(axis=1))

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-able record (``{"mean": [...], "std": [...]}``)."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict[str, Sequence[float]]) -> ChannelStats:
        """Rebuild from :meth:`to_dict` output."""
        return cls(np.asarray(d["mean"], dtype="float64"), np.asarray(d["std"], dtype="float64"))


def channel_stats(sample: xr.Dataset, projection: Any, normalizer: Normalizer) -> ChannelStats | None:
    """:class:`ChannelStats` of the model's input channels on a (small, in-memory) scene sample."""
    channels = normalizer.apply(projection.apply(physical_cube(sample)))
    return ChannelStats.of(np.asarray(channels.values))


def distribution_warning(
    got: ChannelStats, trained: ChannelStats, names: Sequence[str], source: str, quantity: str
) -> str | None:
    """A warning naming the model channels that sit far from their training distribution, else ``None``.

    A channel is flagged when its mean is more than :data:`MEAN_SDS_WARN` training standard deviations
    off the training mean, or its spread is under ``1/SPREAD_RATIO_WARN`` or over
    :data:`SPREAD_RATIO_WARN` × the training spread.
    """
    sd = np.where(trained.std > 0, trained.std, np.nan)
    shift = np.abs(got.mean - trained.mean) / sd
    spread = got.std / sd
    off = np.isfinite(shift) & ((shift > MEAN_SDS_WARN) | (spread < 1 / SPREAD_RATIO_WARN) | (spread > SPREAD_RATIO_WARN))
    if not off.any():
        return None
    badness = np.maximum(shift / MEAN_SDS_WARN, np.abs(np.log(np.where(spread > 0, spread, 1e-9))) / np.log(SPREAD_RATIO_WARN))
    worst = [int(c) for c in np.argsort(-np.where(off, badness, -np.inf))[: min(SHOWN_CHANNELS, int(off.sum()))]]
    detail = ", ".join(f"{names[c]} mean {shift[c]:.1f} SD off, spread {spread[c]:.2g}×" for c in worst)
    detail += ", …" if off.sum() > len(worst) else ""
    return (
        f"{source} does not look like the model's training data in {int(off.sum())} of {len(names)} input channels "
        f"({detail}); likely causes: band widths or wavelengths in the wrong unit (see 'geohsi info {source}'), "
        f"a scene that is not {quantity}, or a wrong scale factor; the map may be wrong"
    )


__all__ = [
    "ChannelStats",
    "RANGE_RATIO_WARN",
    "RANGE_SAMPLE",
    "channel_stats",
    "distribution_warning",
    "range_warning",
    "strided_sample",
    "value_range",
    "window_sample",
]
