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

from geohsi.errors import UsageError
from geohsi.scene import cube
from geohsi.spectral.normalize import physical_cube
from geohsi.spectral.pca import good_band_indices
from geohsi.spectral.sentinel2 import band_arrays, gaussian_weights


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
    good = np.zeros(ds.sizes["band"], bool)
    good[good_band_indices(ds)] = True
    wl, fw, good = band_arrays(ds["wavelength"].values, ds["fwhm"].values, good, src)
    w = gaussian_weights(wl, fw, good, tw, tf)  # [T, B]
    supplied = (np.abs(tw[:, None] - np.where(good, wl, np.inf)[None, :]) <= np.maximum(tf[:, None], fw[None, :])).any(1)
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


__all__ = ["simulate_sensor"]
