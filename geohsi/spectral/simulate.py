"""Simulate another sensor from a real scene: Gaussian spectral resampling onto a band table.

A labelled scene of one sensor becomes the same surface seen by another — e.g. Indian Pines (AVIRIS)
through the EnMAP band centres and FWHM, or EnMAP through AVIRIS-NG's — with the labels, geometry,
quantity and nodata kept. Each target band's value is the source spectrum weighted by the overlap
of the target's Gaussian response with each good source band's (the response model Sentinel-2
resampling uses, :mod:`geohsi.spectral.sentinel2`). A target band with no good source band within
its FWHM (outside the source's range, or inside its absorption gaps) is flagged bad.

.. versionadded:: 0.2
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from geohsi.errors import BandMismatchError, UsageError
from geohsi.scene import cube
from geohsi.spectral.normalize import physical_cube
from geohsi.spectral.pca import _frozen, good_band_indices
from geohsi.spectral.sentinel2 import S2Resampler, band_arrays, gaussian_weights, resampling_matrix


def scene_bands(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A scene's checked ``(wavelength, fwhm, good)``: unknown widths from the band spacing."""
    good = np.zeros(ds.sizes["band"], bool)
    good[good_band_indices(ds)] = True
    return band_arrays(ds["wavelength"].values, ds["fwhm"].values, good, str(ds.encoding.get("source", "the scene")))


def sensor_weights(
    wl: np.ndarray, fw: np.ndarray, good: np.ndarray, tw: np.ndarray, tf: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(W [T, B], supplied [T])``: the Gaussian resampling of source bands onto target bands, and
    which target bands a good source band lies within one FWHM of (the others cannot be made)."""
    w = gaussian_weights(wl, fw, good, tw, tf)
    supplied = (np.abs(tw[:, None] - np.where(good, wl, np.inf)[None, :]) <= np.maximum(tf[:, None], fw[None, :])).any(1)
    return w, supplied


def simulate_sensor(
    ds: xr.Dataset,
    wavelength: Sequence[float] | np.ndarray,
    fwhm: Sequence[float] | np.ndarray | None,
    *,
    good_band: Sequence[bool] | np.ndarray | None = None,
    sensor: str = "simulated",
) -> xr.Dataset:
    """The scene as a sensor with the given band table would see it (lazy, chunked like the scene).

    Args:
        ds: a scene with wavelengths (and FWHM; missing widths come from the band spacing).
        wavelength: ``[T]`` target band centres (nm).
        fwhm: ``[T]`` target band FWHM (nm; NaN or ``None``: the band spacing, as for scenes).
        good_band: ``[T]`` the target sensor's own good-band flags (default all good); bands the
            source cannot supply are flagged bad on top.
        sensor: the ``sensor`` attribute of the result.

    Returns:
        A scene with ``T`` float32 bands of the same quantity in physical units (``scale_factor = 1``),
        NaN at the source's invalid pixels, and every other variable (labels) and attribute kept.

    Raises:
        UsageError: mismatched target arrays.
        BandMismatchError: the source has no usable wavelengths.
    """
    src = str(ds.encoding.get("source", "the scene"))
    tw = np.asarray(wavelength, dtype="float64").reshape(-1)
    tf = np.full(tw.shape, np.nan) if fwhm is None else np.asarray(fwhm, dtype="float64").reshape(-1)
    if tw.shape != tf.shape or tw.size == 0 or not np.isfinite(tw).all():
        raise UsageError(f"target band table needs one finite centre per band (and as many FWHM); got {tw.size} / {tf.size}")
    tw, tf, _ = band_arrays(tw, tf, None, "the target band table")  # unknown widths from the band spacing
    wl, fw, good = scene_bands(ds)
    w, supplied = sensor_weights(wl, fw, good, tw, tf)
    tgood = supplied & (np.ones(tw.size, bool) if good_band is None else np.asarray(good_band, bool).reshape(-1))
    phys = physical_cube(ds, dtype="float32")
    gi = np.flatnonzero(good)
    import dask.array as da

    data = phys.data[gi] if isinstance(phys.data, da.Array) else np.asarray(phys.data)[gi]
    wt = w[:, gi].astype("float32")
    if isinstance(data, da.Array):
        out = da.einsum("tb,byx->tyx", wt, data.rechunk({0: -1}), dtype="float32")
    else:
        out = np.einsum("tb,byx->tyx", wt, data).astype("float32")
    var = cube(ds)
    from geohsi.scene import make_scene, scene_crs

    attrs = {**ds.attrs, "sensor": sensor, "simulated_from": str(ds.attrs.get("sensor", src))}
    attrs.pop("georeferenced", None)
    attrs.pop("geohsi_scene_version", None)
    crs = scene_crs(ds)
    out_ds = make_scene(
        out, var=str(var.name), wavelength=tw, fwhm=tf, good_band=tgood, crs=crs, transform=ds.rio.transform() if crs else None,
        nodata=float("nan"), scale_factor=1.0, attrs=attrs,
    )  # fmt: skip
    if "units" in var.attrs:
        out_ds[str(var.name)].attrs["units"] = var.attrs["units"]
    for k, v in ds.data_vars.items():
        if k != var.name and "band" not in v.dims:
            out_ds[k] = v.reset_coords(drop=True).assign_coords(y=out_ds.y, x=out_ds.x)
    return out_ds


#: band spacing (nm) and FWHM ÷ spacing of the random sensors of :func:`random_sensor_resamplers`:
#: the range of today's imaging spectrometers (AVIRIS-NG ~5 nm, EnMAP 6.5/10 nm, EMIT 7.4 nm,
#: AVIRIS 10 nm, PRISMA ~12 nm; FWHM 0.9–1.3× the spacing).
RANDOM_SPACING_NM = (5.0, 12.0)
RANDOM_FWHM_RATIO = (0.9, 1.3)


def random_band_table(rng: np.random.Generator, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """``(centres, fwhm)`` of a random imaging spectrometer over ``[lo, hi]`` nm: a uniform spacing
    drawn from :data:`RANDOM_SPACING_NM`, a random first-band offset, and each band's FWHM that
    spacing times a ratio drawn per band from :data:`RANDOM_FWHM_RATIO`."""
    d = rng.uniform(*RANDOM_SPACING_NM)
    centres = np.arange(lo + rng.uniform(0.0, d), hi, d)
    return centres, d * rng.uniform(*RANDOM_FWHM_RATIO, size=centres.size)


def random_sensor_resamplers(ds: xr.Dataset, n: int, *, seed: int = 0) -> list[S2Resampler]:
    """Sentinel-2 resamplings of a scene *as ``n`` random sensors would see it* (sensor augmentation).

    Each is the scene's spectrum simulated through a random band table (:func:`random_band_table`
    over the scene's good range, as :func:`simulate_sensor` does) and then resampled onto the 12
    Sentinel-2 bands, folded into one ``[12, B]`` matrix (both steps are linear). Training on these
    as well as on the scene teaches a model the small channel differences that another sensor's
    sampling of absorption features and the red edge makes, which an ``s2`` bundle meets when it maps
    another sensor.

    Args:
        ds: a scene with wavelengths covering the Sentinel-2 bands.
        n: number of random sensors.
        seed: seed of the band tables.

    Returns:
        ``n`` resamplings of the scene's bands (its band table, read through a random sensor); a
        draw whose table does not cover every Sentinel-2 band is drawn again.

    Raises:
        BandMismatchError: the scene itself does not cover the Sentinel-2 bands.
    """
    wl, fw, good = scene_bands(ds)
    S2Resampler.from_bands(wl, fw, good)  # the scene's own coverage refusal first
    rng = np.random.default_rng([seed, 0x5E])
    lo, hi = float(wl[good].min()), float(wl[good].max())
    out: list[S2Resampler] = []
    for _ in range(20 * n):
        if len(out) == n:
            break
        tw, tf = random_band_table(rng, lo, hi)
        w, supplied = sensor_weights(wl, fw, good, tw, tf)
        try:
            s2 = resampling_matrix(tw, tf, supplied)
        except BandMismatchError:
            continue
        out.append(S2Resampler(_frozen(s2 @ w), _frozen(np.flatnonzero(good), "int64"), _frozen(wl), _frozen(fw)))
    return out


__all__ = ["RANDOM_FWHM_RATIO", "RANDOM_SPACING_NM", "random_band_table", "random_sensor_resamplers", "scene_bands",
           "sensor_weights", "simulate_sensor"]  # fmt: skip
