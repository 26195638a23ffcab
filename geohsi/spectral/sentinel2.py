"""Spectral resampling of a hyperspectral scene onto the 12 Sentinel-2 bands SpectralGPT saw.

SpectralGPT was pretrained on Sentinel-2 L2A stacks of 12 bands (B01–B12 without the cirrus
band B10), in that order. Resampling a hyperspectral cube onto those bands, instead of reducing it
by PCA, keeps the *spectral meaning* of each input channel that the pretrained tubelet embedding
learnt — a beyond-the-paper option.

Model (documented so a bundle can be checked against it):

* each Sentinel-2 band ``j`` has a Gaussian spectral response of peak 1, centre ``c_j`` and
  FWHM equal to its bandwidth ``w_j`` (σ = FWHM / (2·√(2 ln 2)));
* each scene band ``i`` is a Gaussian of peak 1, centre ``λ_i`` and FWHM ``f_i`` from the scene's
  ``fwhm`` coord; where that is unknown (NaN), ``f_i`` is the distance to the nearest good band
  (the local band spacing), i.e. adjacent bands meet at half maximum;
* weight ``W[j, i]`` = the overlap integral ``∫ R_j(λ) g_i(λ) dλ`` (closed form for two Gaussians)
  times the band's *footprint* ``Δ_i``, the stretch of the spectral axis it samples (the part of its
  half-maximum interval nearer to it than to any other good band), zero for bad bands, then each
  row normalised to sum 1 — a response-weighted average of the scene bands, so reflectance stays
  reflectance. The footprint keeps a stretch sampled twice (the overlap of two detectors, as in
  EnMAP's and PRISMA's VNIR/SWIR or AVIRIS's spectrometers) or more densely from counting twice.

A band is refused (:class:`~geohsi.errors.BandMismatchError`) when the scene's good bands do not
cover its half-maximum interval ``[c_j − w_j/2, c_j + w_j/2]``: every point of it must lie within
one FWHM of a good band's centre.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import dask.array as da
import numpy as np
import xarray as xr

from geohsi.errors import BandMismatchError, ModelError
from geohsi.spectral.pca import _frozen, _wl_array, _wl_list, good_band_indices, project_bands


class S2Band(NamedTuple):
    """One Sentinel-2 MSI band: name, centre wavelength (nm) and bandwidth (nm, used as FWHM)."""

    name: str
    centre: float
    width: float


# Sentinel-2A MSI central wavelengths and bandwidths (nm): ESA Sentinel-2 MSI User Guide / SentiWiki,
# spectral band table (S2A columns), computed from ESA's spectral response functions document
# "Sentinel-2 Spectral Response Functions (S2-SRF)", COPE-GSEG-EOPG-TN-15-0007. Order = SpectralGPT's
# input order (B10, cirrus, is not used by SpectralGPT). The bandwidth is used as the Gaussian FWHM.
S2_BANDS: tuple[S2Band, ...] = (
    S2Band("B01", 442.7, 21.0),
    S2Band("B02", 492.4, 66.0),
    S2Band("B03", 559.8, 36.0),
    S2Band("B04", 664.6, 31.0),
    S2Band("B05", 704.1, 15.0),
    S2Band("B06", 740.5, 15.0),
    S2Band("B07", 782.8, 20.0),
    S2Band("B08", 832.8, 106.0),
    S2Band("B8A", 864.7, 21.0),
    S2Band("B09", 945.1, 20.0),
    S2Band("B11", 1613.7, 91.0),
    S2Band("B12", 2202.4, 175.0),
)

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def band_arrays(
    wavelength: Sequence[float] | np.ndarray,
    fwhm: Sequence[float] | np.ndarray | None,
    good_band: Sequence[bool] | np.ndarray | None,
    source: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked ``(wavelength, fwhm, good)`` with unknown FWHM filled from the band spacing."""
    wl = np.asarray(wavelength, dtype="float64").reshape(-1)
    nb = wl.size
    good = np.ones(nb, bool) if good_band is None else np.asarray(good_band, bool).reshape(-1).copy()
    if not good.any():
        good[:] = True  # same rule as geohsi.scene.valid_mask: no flags means all usable
    fw = np.full(nb, np.nan) if fwhm is None else np.asarray(fwhm, dtype="float64").reshape(-1).copy()
    if not np.isfinite(wl[good]).any():
        raise BandMismatchError(
            f"{source} has no band wavelengths, so it cannot be resampled to Sentinel-2 bands; "
            "add wavelengths at ingest (e.g. a wavelength file) or use the PCA reduction"
        )
    missing = np.flatnonzero(good & ~np.isfinite(wl))
    if missing.size:
        raise BandMismatchError(
            f"{source} lacks wavelengths for good bands {(missing + 1).tolist()[:10]}; "
            "fix the metadata or flag those bands bad (good_band)"
        )
    if np.nanmax(wl[good]) < 100.0:
        raise BandMismatchError(
            f"{source} wavelengths {np.nanmin(wl[good]):g}–{np.nanmax(wl[good]):g} look like micrometres; "
            "store them in nm (multiply by 1000) at ingest"
        )
    gi = np.flatnonzero(good)
    if gi.size < 2 and not np.isfinite(fw[gi]).all():
        raise BandMismatchError(f"{source} has one good band and no FWHM; Sentinel-2 resampling needs a spectrum")
    # Unknown widths from the spacing of the good bands, in wavelength order.
    order = gi[np.argsort(wl[gi])]
    w_sorted = wl[order]
    if order.size >= 2:
        # Distance to the *nearest* neighbouring good band: a band next to a gap of bad bands must
        # not inherit the gap's width (which would hide the gap from the coverage check).
        d = np.diff(w_sorted)
        fill = np.minimum(np.r_[np.inf, d], np.r_[d, np.inf])
        if (fill <= 0).any() and (d > 0).any():  # duplicated centres (overlapping detectors)
            fill[fill <= 0] = np.median(d[d > 0])
        unknown = ~np.isfinite(fw[order]) | (fw[order] <= 0)
        fw[order[unknown]] = fill[unknown]
    return wl, fw, good


def _check_coverage(wl: np.ndarray, fw: np.ndarray, good: np.ndarray, source: str) -> None:
    """Refuse, in one line naming every uncovered Sentinel-2 band, a scene that does not cover them all."""
    gi = np.flatnonzero(good)
    centres, widths = wl[gi], fw[gi]
    missing, gaps = [], []
    for band in S2_BANDS:
        t = np.linspace(band.centre - band.width / 2, band.centre + band.width / 2, int(band.width * 2) + 1)
        dist = np.abs(t[:, None] - centres[None, :])
        covered = (dist <= widths[None, :]).any(axis=1)
        if not covered.all():
            missing.append(f"{band.name} ({band.centre - band.width / 2:.0f}–{band.centre + band.width / 2:.0f} nm)")
            gaps.append(f"{t[~covered].min():.0f}–{t[~covered].max():.0f}")
    if missing:
        bands = f"band {missing[0]} is" if len(missing) == 1 else f"bands {', '.join(missing)} are"
        raise BandMismatchError(
            f"Sentinel-2 {bands} not covered by the good bands of {source} ({centres.min():.1f}–{centres.max():.1f} nm; "
            f"uncovered {', '.join(gaps)} nm); use the PCA reduction for this sensor"
        )


def resampling_matrix(
    wavelength: Sequence[float] | np.ndarray,
    fwhm: Sequence[float] | np.ndarray | None = None,
    good_band: Sequence[bool] | np.ndarray | None = None,
    *,
    source: str = "the scene",
) -> np.ndarray:
    """The ``[12, B]`` matrix taking a scene spectrum to the 12 Sentinel-2 bands.

    Args:
        wavelength: ``[B]`` band centres (nm).
        fwhm: ``[B]`` band FWHM (nm, NaN = unknown → band spacing), or ``None``.
        good_band: ``[B]`` usable-band flags (bad bands get weight 0), or ``None`` (all good).
        source: what to call the scene in error messages (its path, say).

    Returns:
        ``W`` float64 ``[12, B]``, rows summing to 1, rows in :data:`S2_BANDS` order.

    Raises:
        BandMismatchError: no (or micrometre) wavelengths, or an S2 band is not covered.

    .. versionadded:: 0.1
    """
    wl, fw, good = band_arrays(wavelength, fwhm, good_band, source)
    _check_coverage(wl, fw, good, source)
    return gaussian_weights(wl, fw, good)


def gaussian_weights(
    wl: np.ndarray, fw: np.ndarray, good: np.ndarray, centres: np.ndarray | None = None, widths: np.ndarray | None = None
) -> np.ndarray:
    """``[T, B]`` weights of Gaussian band responses: target bands (default the 12 S2 bands; centre,
    FWHM) over source bands (centre, FWHM) times each source band's :func:`band_footprint`, bad
    source bands 0, rows summing to 1."""
    if centres is None or widths is None:
        centres, widths = np.array([b.centre for b in S2_BANDS]), np.array([b.width for b in S2_BANDS])
    c = np.asarray(centres, dtype="float64")[:, None]
    s = (np.asarray(widths, dtype="float64") * FWHM_TO_SIGMA)[:, None]
    sig = np.where(good, fw, 1.0)[None, :] * FWHM_TO_SIGMA
    var = s**2 + sig**2
    # ∫ exp(−(λ−c)²/2s²)·exp(−(λ−μ)²/2σ²) dλ = √(2π)·sσ/√(s²+σ²)·exp(−(μ−c)²/2(s²+σ²))
    w = np.sqrt(2 * np.pi) * s * sig / np.sqrt(var) * np.exp(-((np.where(good, wl, 0.0)[None, :] - c) ** 2) / (2 * var))
    w *= band_footprint(wl, fw, good)[None, :]
    w[:, ~good] = 0.0
    return w / w.sum(axis=1, keepdims=True)


def band_footprint(wl: np.ndarray, fw: np.ndarray, good: np.ndarray) -> np.ndarray:
    """``[B]`` the stretch of the spectral axis (nm) each good band samples, 0 for bad bands.

    The part of ``[λ − FWHM/2, λ + FWHM/2]`` that is nearer to the band than to any other good
    band: the band spacing inside a band sequence, about half of it where two detectors' bands
    interleave, and at most half the FWHM on the side of an absorption gap or the range's end.

    .. versionadded:: 0.2
    """
    out = np.zeros(wl.shape, dtype="float64")
    gi = np.flatnonzero(good)
    order = gi[np.argsort(wl[gi], kind="stable")]
    x, half = wl[order], fw[order] / 2
    mid = (x[1:] + x[:-1]) / 2
    lo = np.maximum(np.r_[-np.inf, mid], x - half)
    hi = np.minimum(np.r_[mid, np.inf], x + half)
    out[order] = np.clip(hi - lo, 0.0, None)
    return out


@dataclass(frozen=True, eq=False)
class S2Resampler:
    """A fitted Sentinel-2 resampling: the weight matrix and the input it expects.

    Attributes:
        weights: ``[12, B_in]`` resampling matrix (rows sum to 1, zero on bad bands).
        band_indices: ``[B_used]`` 0-based good input bands (the only ones read).
        input_wavelengths: ``[B_in]`` band centres (nm) of the cube it was built for.
        input_fwhm: ``[B_in]`` FWHM (nm) as used (spacing-filled where the scene had none).

    .. versionadded:: 0.1
    """

    weights: np.ndarray
    band_indices: np.ndarray
    input_wavelengths: np.ndarray
    input_fwhm: np.ndarray

    @classmethod
    def from_bands(
        cls,
        wavelength: Sequence[float] | np.ndarray,
        fwhm: Sequence[float] | np.ndarray | None = None,
        good_band: Sequence[bool] | np.ndarray | None = None,
        *,
        source: str = "the scene",
    ) -> S2Resampler:
        """Build from band metadata (see :func:`resampling_matrix` for the arguments and errors)."""
        wl, fw, good = band_arrays(wavelength, fwhm, good_band, source)
        _check_coverage(wl, fw, good, source)
        return cls(_frozen(gaussian_weights(wl, fw, good)), _frozen(np.flatnonzero(good), "int64"), _frozen(wl), _frozen(fw))

    @classmethod
    def from_scene(cls, ds: xr.Dataset) -> S2Resampler:
        """Build from a scene's ``wavelength``, ``fwhm`` and ``good_band`` coords.

        Raises:
            BandMismatchError: the scene has no wavelengths or does not cover an S2 band.
        """
        src = str(ds.encoding.get("source", "the scene"))
        good = np.zeros(ds.sizes["band"], bool)
        good[good_band_indices(ds)] = True
        return cls.from_bands(ds["wavelength"].values, ds["fwhm"].values, good, source=src)

    @property
    def channel_names(self) -> list[str]:
        """``["B01", …, "B12"]`` in SpectralGPT order."""
        return [b.name for b in S2_BANDS]

    @property
    def n_input_bands(self) -> int:
        """B_in."""
        return int(self.weights.shape[1])

    def apply(self, values: xr.DataArray | np.ndarray | da.Array) -> Any:
        """Resample physical values ``[B_in, H, W]`` (NaN at invalid pixels) to ``[12, H, W]`` float32.

        Raises:
            BandMismatchError: the band count differs from the one the matrix was built for.
        """
        nb = int(values.shape[0])
        if nb != self.n_input_bands:
            raise BandMismatchError(
                f"Sentinel-2 resampling was built for {self.n_input_bands} bands but the input has {nb}; "
                "use a scene from the same sensor or refit the transform"
            )
        matrix, idx, _ = self.affine()
        return project_bands(values, matrix, idx, names=self.channel_names)

    def affine(self) -> tuple[np.ndarray, np.ndarray, None]:
        """The resampling as ``(matrix [12, B_used], band_indices [B_used], None)``: ``matrix @ values[band_indices]``."""
        return self.weights[:, self.band_indices], self.band_indices, None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the band table is recorded too, so a changed table is detected)."""
        return {
            "kind": "s2",
            "bands": [list(b) for b in S2_BANDS],
            "weights": self.weights.tolist(),
            "band_indices": self.band_indices.tolist(),
            "input_wavelengths": _wl_list(self.input_wavelengths),
            "input_fwhm": _wl_list(self.input_fwhm),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> S2Resampler:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ModelError: malformed record, or one made with a different Sentinel-2 band table.
        """
        try:
            r = cls(
                _frozen(d["weights"]),
                _frozen(d["band_indices"], "int64"),
                _frozen(_wl_array(d["input_wavelengths"])),
                _frozen(_wl_array(d["input_fwhm"])),
            )
            bands = [S2Band(str(n), float(c), float(w)) for n, c, w in d["bands"]]
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"invalid Sentinel-2 resampling record ({type(e).__name__}: {e}); re-create the bundle") from e
        if tuple(bands) != S2_BANDS:
            raise ModelError(
                f"the bundle's Sentinel-2 band table {[b.name for b in bands]} differs from this geohsi's; "
                "use the geohsi version that made the bundle"
            )
        if r.weights.shape != (len(S2_BANDS), r.input_wavelengths.size):
            raise ModelError(f"invalid Sentinel-2 resampling record: weights {r.weights.shape}; re-create the bundle")
        return r

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S2Resampler) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


__all__ = [
    "FWHM_TO_SIGMA",
    "S2Band",
    "S2_BANDS",
    "S2Resampler",
    "band_arrays",
    "band_footprint",
    "gaussian_weights",
    "resampling_matrix",
]
