"""Scene values in physical units, and per-channel normalisation with stored statistics.

Two steps of the spectral front end live here because both are about *values*, not bands:

* :func:`physical_cube` turns a scene's raw cube (integer DN, CF ``scale_factor``/``add_offset``,
  ``_FillValue`` nodata) into physical values with NaN at every invalid pixel — the only form the
  later stages accept, so a nodata value is never fed to a fit or a model as a number;
* :class:`Normalizer` standardises (or min–max scales) the reduced channels with statistics fitted
  on valid pixels and stored, so inference replays exactly what training saw.

.. versionadded:: 0.1
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from geohsi.errors import DataError, ModelError, UsageError
from geohsi.scene import cube, valid_mask

NORM_METHODS: tuple[str, ...] = ("standard", "minmax", "none")
#: histogram bins used for robust (percentile) min–max on Dask arrays; the percentile error is at
#: most (max − min) / HIST_BINS per channel.
HIST_BINS = 16384


def physical_cube(ds: xr.Dataset, *, dtype: Any = "float64") -> xr.DataArray:
    """The scene cube in physical units, NaN wherever the pixel is invalid.

    ``value = raw × scale_factor + add_offset`` (CF attrs, identity when absent); a pixel is invalid
    when any good band is nodata or non-finite (:func:`geohsi.scene.valid_mask`), and then *every*
    band of it is NaN, so downstream code detects it with ``isnan`` on any channel. Bad bands keep
    their values at valid pixels (stages ignore them by band index). Lazy where the scene is.

    Args:
        ds: a scene.
        dtype: float dtype of the result (float64 for fitting, float32 suffices for applying).

    Returns:
        DataArray ``(band, y, x)`` ``[B, H, W]`` of ``dtype`` with the scene's coords.

    .. versionadded:: 0.1
    """
    raw = cube(ds)
    scale = float(raw.attrs.get("scale_factor", 1.0))
    offset = float(raw.attrs.get("add_offset", 0.0))
    data = raw.data.astype(dtype)
    if scale != 1.0 or offset != 0.0:
        data = data * np.asarray(scale, dtype) + np.asarray(offset, dtype)
    ok = valid_mask(ds).data
    data = (da if isinstance(data, da.Array) else np).where(ok[None], data, np.asarray(np.nan, dtype))
    out = xr.DataArray(data, dims=raw.dims, coords=raw.coords, name=raw.name)
    out.attrs = {k: v for k, v in raw.attrs.items() if k not in ("scale_factor", "add_offset", "_FillValue")}
    return out


def _xp(a: Any) -> Any:
    return da if isinstance(a, da.Array) else np


def _hist_percentiles(x: da.Array, lo: np.ndarray, hi: np.ndarray, q: tuple[float, float]) -> np.ndarray:
    """Per-channel percentiles ``q`` of ``x [C, …]`` (NaN ignored) from a fine histogram."""
    out = np.empty((2, x.shape[0]))
    hists = []
    for c in range(x.shape[0]):
        span = hi[c] - lo[c]
        if not np.isfinite(span) or span == 0:
            hists.append(None)
            continue
        # NaN falls outside any explicit range, so np.histogram skips invalid pixels by itself.
        hists.append(da.histogram(x[c], bins=HIST_BINS, range=(lo[c], hi[c]))[0])
    computed = da.compute(*[h for h in hists if h is not None])
    it = iter(computed)
    for c, h in enumerate(hists):
        if h is None:
            out[:, c] = lo[c]
            continue
        counts = next(it).astype("float64")
        edges = np.linspace(lo[c], hi[c], HIST_BINS + 1)
        cdf = np.concatenate([[0.0], np.cumsum(counts)]) / counts.sum()
        # Linear interpolation inside the bin: exact for uniformly spread values in the bin.
        out[:, c] = np.interp(np.asarray(q) / 100.0, cdf, edges)
    return out


@dataclass(frozen=True)
class Normalizer:
    """Per-channel affine normalisation ``(x − shift) / scale`` with fitted, stored statistics.

    Attributes:
        method: ``"standard"`` (shift = mean, scale = std over valid pixels), ``"minmax"``
            (shift = low, scale = high − low; low/high = min/max or the ``percentiles``), or
            ``"none"`` (identity).
        shift: per-channel shift ``[C]``.
        scale: per-channel scale ``[C]`` (a constant channel gets scale 1, not a division by 0).
        percentiles: ``(low, high)`` percentiles of the robust min–max, or ``None`` for min/max.

    Values are not clipped: a robust min–max maps outliers outside ``[0, 1]``, which keeps the map
    affine and exactly invertible (:meth:`inverse`).

    .. versionadded:: 0.1
    """

    method: str
    shift: tuple[float, ...]
    scale: tuple[float, ...]
    percentiles: tuple[float, float] | None = None

    @classmethod
    def fit(
        cls,
        channels: xr.DataArray | np.ndarray | da.Array,
        method: str = "standard",
        *,
        percentiles: tuple[float, float] | None = None,
    ) -> Normalizer:
        """Fit the statistics on the valid (non-NaN) pixels of ``channels``.

        Args:
            channels: ``[C, H, W]`` (or ``[C, N]``) values, NaN at invalid pixels; lazy is fine
                (one pass for standard/min–max, two for percentiles).
            method: ``"standard"``, ``"minmax"`` or ``"none"``.
            percentiles: robust min–max bounds in percent, e.g. ``(2, 98)``; only for ``"minmax"``.
                On Dask input they come from a 16,384-bin histogram (the inverse empirical CDF,
                interpolated in the bin: within range / 16,384 of ``numpy.nanpercentile`` plus one
                gap between order statistics); numpy input uses ``numpy.nanpercentile`` exactly.

        Returns:
            The fitted normaliser.

        Raises:
            UsageError: unknown method or invalid percentiles.
            DataError: a channel has no valid pixel.
        """
        if method not in NORM_METHODS:
            raise UsageError(f"unknown normalisation {method!r}; use one of {', '.join(NORM_METHODS)}")
        if percentiles is not None:
            if method != "minmax":
                raise UsageError(f"percentiles={percentiles} only apply to --norm minmax, not {method!r}")
            lo_q, hi_q = (float(p) for p in percentiles)
            if not 0 <= lo_q < hi_q <= 100:
                raise UsageError(f"percentiles {percentiles} must satisfy 0 <= low < high <= 100, e.g. (2, 98)")
            percentiles = (lo_q, hi_q)
        data = channels.data if isinstance(channels, xr.DataArray) else channels
        c = int(data.shape[0])
        if method == "none":
            return cls("none", (0.0,) * c, (1.0,) * c)
        x = data.astype("float64")
        xp = _xp(x)
        axes = tuple(range(1, x.ndim))
        with warnings.catch_warnings():
            # An all-NaN channel is reported below as a DataError, not as numpy's warning.
            warnings.simplefilter("ignore", RuntimeWarning)
            n = (~xp.isnan(x)).sum(axis=axes)
            if method == "standard":
                stats = (n, xp.nanmean(x, axis=axes), xp.nanstd(x, axis=axes))
            else:
                stats = (n, xp.nanmin(x, axis=axes), xp.nanmax(x, axis=axes))
            n, a, b = (np.asarray(s, dtype="float64") for s in (da.compute(*stats) if xp is da else stats))
        if np.any(n == 0):
            raise DataError(
                f"channels {np.flatnonzero(n == 0).tolist()} have no valid pixel to fit the normalisation; "
                "check the scene's nodata value and mask"
            )
        if method == "standard":
            shift, scale = a, b
        else:
            if percentiles is not None:
                if xp is da:
                    a, b = _hist_percentiles(x, a, b, percentiles)
                else:
                    a, b = np.nanpercentile(x.reshape(c, -1), percentiles, axis=1)
            shift, scale = a, b - a
        scale = np.where(scale > 0, scale, 1.0)
        return cls(method, tuple(map(float, shift)), tuple(map(float, scale)), percentiles)

    @property
    def n_channels(self) -> int:
        """Number of channels the statistics were fitted on."""
        return len(self.shift)

    def _coeffs(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        c = int(x.shape[0])
        if c != self.n_channels:
            raise UsageError(f"normaliser fitted on {self.n_channels} channels was given {c}; refit it on these channels")
        extra = (1,) * (x.ndim - 1)
        return np.asarray(self.shift).reshape(c, *extra), np.asarray(self.scale).reshape(c, *extra)

    def apply(self, channels: xr.DataArray | np.ndarray | da.Array) -> Any:
        """Normalise ``channels`` ``[C, …]`` (float32 out, NaN stays NaN); same container type as given.

        Raises:
            UsageError: the channel count differs from the fitted one.
        """
        data = channels.data if isinstance(channels, xr.DataArray) else channels
        shift, scale = self._coeffs(data)
        out = ((data.astype("float64") - shift) / scale).astype("float32")
        if isinstance(channels, xr.DataArray):
            return channels.copy(data=out)
        return out

    def inverse(self, channels: xr.DataArray | np.ndarray | da.Array) -> Any:
        """Undo :meth:`apply` (float64 out); same container type as given."""
        data = channels.data if isinstance(channels, xr.DataArray) else channels
        shift, scale = self._coeffs(data)
        out = data.astype("float64") * scale + shift
        if isinstance(channels, xr.DataArray):
            return channels.copy(data=out)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (floats round-trip exactly through :mod:`json`)."""
        return {
            "method": self.method,
            "shift": list(self.shift),
            "scale": list(self.scale),
            "percentiles": None if self.percentiles is None else list(self.percentiles),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalizer:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ModelError: the dict is malformed (a damaged bundle).
        """
        try:
            p = d.get("percentiles")
            out = cls(
                str(d["method"]),
                tuple(float(v) for v in d["shift"]),
                tuple(float(v) for v in d["scale"]),
                None if p is None else (float(p[0]), float(p[1])),
            )
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ModelError(f"invalid normaliser record ({type(e).__name__}: {e}); re-create the bundle") from e
        if out.method not in NORM_METHODS or len(out.shift) != len(out.scale):
            raise ModelError(
                f"invalid normaliser record (method {out.method!r}, {len(out.shift)} shifts, "
                f"{len(out.scale)} scales); re-create the bundle"
            )
        return out


__all__ = ["NORM_METHODS", "Normalizer", "physical_cube"]
