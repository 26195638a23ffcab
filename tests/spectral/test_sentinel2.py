"""Sentinel-2 resampling against an independent numerical integration of the response functions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio

from geohsi.errors import BandMismatchError, ModelError
from geohsi.scene import make_scene, open_scene, write_scene
from geohsi.spectral.normalize import physical_cube
from geohsi.spectral.sentinel2 import S2_BANDS, S2Resampler, resampling_matrix
from geohsi.spectral.transform import SpectralTransform

# Written out again here (not imported) so a typo in the library table fails the test:
# Sentinel-2A centre / bandwidth in nm, ESA MSI spectral band table.
S2A = {
    "B01": (442.7, 21),
    "B02": (492.4, 66),
    "B03": (559.8, 36),
    "B04": (664.6, 31),
    "B05": (704.1, 15),
    "B06": (740.5, 15),
    "B07": (782.8, 20),
    "B08": (832.8, 106),
    "B8A": (864.7, 21),
    "B09": (945.1, 20),
    "B11": (1613.7, 91),
    "B12": (2202.4, 175),
}


def _gauss(lam: np.ndarray, centre: float, fwhm: float) -> np.ndarray:
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    return np.exp(-0.5 * ((lam - centre) / sigma) ** 2)


def _reference_weights(wl: np.ndarray, fwhm: np.ndarray, good: np.ndarray) -> np.ndarray:
    """W[j, i] ∝ Δ_i ∫ S2_j(λ)·band_i(λ) dλ by the trapezoidal rule on a 0.05 nm grid, rows → sum 1,
    with the footprint Δ_i counted on the grid: the points within half its FWHM that are nearer to
    band i than to any other good band."""
    lam = np.arange(250.0, 2800.0, 0.05)
    gi = np.flatnonzero(good)
    footprint = np.zeros(wl.size)
    for i in gi:
        fine = np.arange(wl[i] - fwhm[i] / 2, wl[i] + fwhm[i] / 2, 1e-4)  # a 0.1 pm grid over its interval
        others = np.delete(wl[gi], np.flatnonzero(gi == i))
        others = others[np.abs(others - wl[i]) <= fwhm[i]]  # the only ones that can be nearer
        nearer = np.abs(fine - wl[i]) < np.abs(fine[:, None] - others[None, :]).min(axis=1, initial=np.inf)
        footprint[i] = 1e-4 * np.count_nonzero(nearer)
    w = np.zeros((12, wl.size))
    for j, (centre, width) in enumerate(S2A.values()):
        s2 = _gauss(lam, centre, width)
        for i in gi:
            w[j, i] = footprint[i] * np.trapezoid(s2 * _gauss(lam, wl[i], fwhm[i]), lam)
    return w / w.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def enmap(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The 18 EnMAP Potsdam tiles mosaicked (missing tiles = nodata) into one Zarr scene."""
    files = sorted((data_dir / "enmap_potsdam" / "images").glob("enmap_potsdam_tile_*.tif"))
    offs = [tuple(int(v) for v in f.stem.split("_")[-2:]) for f in files]  # (col X, row Y)
    x0, y0 = min(o[0] for o in offs), min(o[1] for o in offs)
    width, height = max(o[0] for o in offs) + 32 - x0, max(o[1] for o in offs) + 32 - y0
    with rasterio.open(files[0]) as src:
        nb, nodata, crs = src.count, src.nodata, src.crs
        tags = [src.tags(b + 1) for b in range(nb)]
        t0 = src.transform
    mosaic = np.full((nb, height, width), nodata, dtype="float32")
    for f, (x, y) in zip(files, offs, strict=True):
        with rasterio.open(f) as src:
            mosaic[:, y - y0 : y - y0 + 32, x - x0 : x - x0 + 32] = src.read()
    wl = np.array([float(t["wavelength"]) for t in tags])
    fw = np.array([float(t["fwhm"]) for t in tags])
    good = np.array([t["bbl"] == "1" for t in tags])
    transform = rasterio.Affine(30, 0, t0.c - 30 * (offs[0][0] - x0), 0, -30, t0.f + 30 * (offs[0][1] - y0))
    ds = make_scene(
        mosaic, wavelength=wl, fwhm=fw, good_band=good, crs=crs, transform=transform, nodata=nodata, scale_factor=1e-4
    )
    path = write_scene(ds, tmp_path_factory.mktemp("enmap") / "enmap.zarr", chunks=64)
    valid = (mosaic[good] != nodata).all(axis=0)
    return open_scene(path), mosaic, wl, fw, good, valid


def test_enmap_resampling_matches_independent_integration(enmap) -> None:
    ds, mosaic, wl, fw, good, valid = enmap
    assert 0 < valid.mean() < 1  # the mosaic has holes, so nodata handling is exercised
    r = S2Resampler.from_scene(ds)
    out = r.apply(physical_cube(ds))
    assert isinstance(out.data, da.Array)
    assert list(out.channel.values) == list(S2A)
    values = out.values
    assert values.shape == (12, *mosaic.shape[1:]) and values.dtype == np.float32

    w_ref = _reference_weights(wl, fw, good)
    np.testing.assert_allclose(r.weights, w_ref, rtol=1e-4, atol=1e-12)  # the footprint grid: 0.1 pm
    refl = mosaic[good][:, valid].astype("float64") * 1e-4  # reflectance (scale_factor applied)
    expected = w_ref[:, good] @ refl
    np.testing.assert_allclose(values[:, valid], expected, rtol=1e-4, atol=1e-6)
    assert np.isnan(values[:, ~valid]).all()
    # Plausible vegetation/urban reflectance: the red edge rises from B04 to B08 on average.
    assert np.nanmean(values[7]) > np.nanmean(values[3])


def test_weights_properties_and_bad_bands(enmap) -> None:
    ds, _, wl, fw, good, _ = enmap
    w = resampling_matrix(wl, fw, good)
    assert w.shape == (12, wl.size)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)
    assert (w[:, ~good] == 0).all() and (w >= 0).all()
    # Each S2 band's weight peaks at the scene band nearest its centre.
    for j, (centre, _) in enumerate(S2A.values()):
        assert abs(wl[np.argmax(w[j])] - centre) <= 15


def test_indian_pines_wavelengths_cover_all_bands(data_dir: Path) -> None:
    with open(data_dir / "indian_pines" / "wavelengths.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["band_200"]]
    wl = np.array([float(r["wavelength_nm"]) for r in rows])
    fw = np.array([float(r["fwhm_nm"]) for r in rows])
    w = resampling_matrix(wl, fw)
    np.testing.assert_allclose(w, _reference_weights(wl, fw, np.ones(wl.size, bool)), rtol=1e-4, atol=1e-12)


def test_overlapping_detectors_are_not_counted_twice() -> None:
    """Two detectors sampling 900–1000 nm both (as EnMAP's VNIR and SWIR do) give the same Sentinel-2
    values as one detector sampling it once: the stretch sampled twice must not weigh double."""
    one = np.arange(400.0, 2500.0, 8.0)
    two = np.sort(np.r_[one, np.arange(904.0, 1000.0, 8.0)])  # a second detector, offset by half a band

    def vegetation(wl: np.ndarray) -> np.ndarray:  # red edge at 720 nm, NIR plateau, water-vapour dip at 945 nm
        return 0.05 + 0.4 / (1 + np.exp(-(wl - 720.0) / 15.0)) - 0.25 * np.exp(-0.5 * ((wl - 945.0) / 25.0) ** 2)

    a = resampling_matrix(one, np.full(one.size, 8.0)) @ vegetation(one)
    b = resampling_matrix(two, np.full(two.size, 8.0)) @ vegetation(two)
    np.testing.assert_allclose(b, a, rtol=1e-4)  # counting each band once, B08 (its tail reaches 960 nm) read 1.7 % low


def test_unknown_fwhm_comes_from_band_spacing() -> None:
    wl = np.arange(400.0, 2500.0, 10.0)
    np.testing.assert_allclose(resampling_matrix(wl, None), resampling_matrix(wl, np.full(wl.size, 10.0)), rtol=1e-12)
    partly = np.full(wl.size, 10.0)
    partly[::3] = np.nan
    np.testing.assert_allclose(resampling_matrix(wl, partly), resampling_matrix(wl, None), rtol=1e-12)


def test_scene_without_wavelengths_fails_clearly(tmp_path: Path) -> None:
    path = write_scene(make_scene(np.ones((30, 8, 8), "float32")), tmp_path / "nowl.zarr")
    ds = open_scene(path)
    with pytest.raises(BandMismatchError, match=r"nowl.zarr has no band wavelengths.*PCA") as e:
        S2Resampler.from_scene(ds)
    assert "\n" not in str(e.value)
    with pytest.raises(BandMismatchError, match="no band wavelengths"):
        SpectralTransform.fit(ds, "s2")


def test_uncovered_band_is_named() -> None:
    vnir = np.arange(400.0, 1000.0, 5.0)
    with pytest.raises(
        BandMismatchError,
        match=r"bands B11 \(1568–1659 nm\), B12 \(2115–2290 nm\) are not covered .*\(400.0–995.0 nm; uncovered 1568–1659, 2115–2290 nm\)",
    ):
        resampling_matrix(vnir, np.full(vnir.size, 5.0))
    full = np.arange(400.0, 2500.0, 10.0)
    good = ~((full > 1540) & (full < 1700))  # a gap of bad bands across B11
    with pytest.raises(BandMismatchError, match=r"B11.*uncovered"):
        resampling_matrix(full, None, good)
    with pytest.raises(BandMismatchError, match="micrometres"):
        resampling_matrix(full / 1000.0)


def test_table_and_round_trip(enmap) -> None:
    ds = enmap[0]
    assert {b.name: (b.centre, b.width) for b in S2_BANDS} == S2A
    r = S2Resampler.from_scene(ds)
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert S2Resampler.from_dict(d) == r
    d["bands"][0][1] = 443.0
    with pytest.raises(ModelError, match="band table"):
        S2Resampler.from_dict(d)
    with pytest.raises(BandMismatchError, match="built for 224 bands but the input has 3"):
        r.apply(np.zeros((3, 2, 2)))
