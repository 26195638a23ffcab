"""PixelMap (the spectral transform as torch ops on raw bands, what a GPU worker runs; and its numpy
twin, the fused per-chunk step of CPU mapping) gives exactly what SpectralTransform.apply gives, on real scenes: Indian Pines (uint16, no scale; a nodata corner),
the EnMAP Potsdam mosaic (scaled int16 with −32768 nodata outside the tiles) and an s2 transform on
another sensor's band table."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import torch

from geohsi.scene import cube, make_scene, open_scene, write_scene
from geohsi.spectral.transform import SpectralTransform


def _both(t: SpectralTransform, ds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with dask.config.set(scheduler="synchronous"):
        ref = np.asarray(t.apply(ds).values)
        pm = t.pixel_map(ds)
        raw = np.asarray(cube(ds).data[pm.bands].compute())
    got = pm.apply(pm.raw_from_numpy(raw)).numpy()
    _same(ref, pm.apply_numpy(raw, slice_pixels=1000))  # several slices, one of them partial
    return ref, got, pm.bands


def _same(ref: np.ndarray, got: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.array_equal(np.isnan(ref), np.isnan(got))
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def ip_nodata(ip_scene, tmp_path_factory):
    """Indian Pines with a zero (nodata) corner: the validity test must find it."""
    ds = open_scene(ip_scene)
    c = np.asarray(cube(ds).values).copy()
    c[:, :9, :13] = 0
    out = make_scene(c, wavelength=ds["wavelength"].values, fwhm=ds["fwhm"].values, good_band=ds["good_band"].values, nodata=0)
    return open_scene(write_scene(out, tmp_path_factory.mktemp("pm") / "ip0.zarr", chunks=64))


@pytest.mark.parametrize("reduction", ["pca", "s2"])
def test_indian_pines_uint16_with_nodata(ip_nodata, reduction: str) -> None:
    t = SpectralTransform.fit(ip_nodata, reduction)
    ref, got, _ = _both(t, ip_nodata)
    assert np.isnan(ref[:, :9, :13]).all() and not np.isnan(ref[:, 20:, 20:]).any()
    _same(ref, got)


@pytest.mark.parametrize("reduction", ["pca", "s2"])
def test_enmap_scaled_with_nodata_outside_the_tiles(enmap_scene, reduction: str) -> None:
    ds = open_scene(enmap_scene)
    assert float(cube(ds).attrs["scale_factor"]) == pytest.approx(1e-4)
    t = SpectralTransform.fit(ds, reduction)
    ref, got, bands = _both(t, ds)
    assert 0.1 < np.isnan(ref[0]).mean() < 0.9  # the mosaic's gaps are nodata
    assert len(bands) < int(ds.sizes["band"])  # only the good bands are read
    _same(ref, got)


def test_s2_transform_on_another_sensor(enmap_scene, tmp_path) -> None:
    """An s2 transform fitted on EnMAP, applied to the mosaic simulated on AVIRIS-NG's band table."""
    from geohsi.spectral.simulate import simulate_sensor

    ds = open_scene(enmap_scene)
    t = SpectralTransform.fit(ds, "s2")
    wl = np.linspace(380.0, 2500.0, 300)
    with dask.config.set(scheduler="synchronous"):
        sim = simulate_sensor(ds, wl, np.full(300, 7.5))
    sim = open_scene(write_scene(sim, tmp_path / "sim.zarr", chunks=64))
    assert not t.same_sensor(sim)
    ref, got, _ = _both(t, sim)
    _same(ref, got)


def test_a_block_of_the_wrong_band_count_is_refused(ip_nodata) -> None:
    pm = SpectralTransform.fit(ip_nodata, "s2").pixel_map(ip_nodata)
    with pytest.raises(ValueError, match=f"expected a \\[{len(pm.bands)}, H, W\\] raw block"):
        pm.apply(torch.zeros((3, 4, 4)))
