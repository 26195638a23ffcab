"""PCA of a Zarr-backed scene against scikit-learn, chunked vs in-memory replay, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import scipy.io
from sklearn.decomposition import PCA

from geohsi.errors import BandMismatchError, DataError, UsageError
from geohsi.scene import make_scene, open_scene, write_scene
from geohsi.spectral.normalize import physical_cube
from geohsi.spectral.pca import PCAParams, fit_pca, subsample_mask


def _indian_pines(data_dir: Path) -> tuple[np.ndarray, list[float], list[float]]:
    d = data_dir / "indian_pines"
    cube = scipy.io.loadmat(d / "Indian_pines_corrected.mat")["indian_pines_corrected"]
    cube = np.ascontiguousarray(cube.transpose(2, 0, 1))  # (H, W, B) → (B, H, W)
    with open(d / "wavelengths.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["band_200"]]
    return cube, [float(r["wavelength_nm"]) for r in rows], [float(r["fwhm_nm"]) for r in rows]


@pytest.fixture(scope="module")
def ip(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Indian Pines as a Zarr scene (48-px chunks) with a nodata block and scattered nodata pixels."""
    cube, wl, fw = _indian_pines(data_dir)
    cube = cube.copy()
    rng = np.random.default_rng(1)
    cube[:, :9, :13] = 0  # a nodata corner spanning a chunk edge…
    cube[:, rng.integers(0, 145, 300), rng.integers(0, 145, 300)] = 0  # …and scattered holes
    cube[7, 100, 100] = 0  # one band nodata is enough to invalidate a pixel
    path = write_scene(make_scene(cube, wavelength=wl, fwhm=fw, nodata=0), tmp_path_factory.mktemp("ip") / "ip.zarr", chunks=48)
    ds = open_scene(path)
    valid = (cube != 0).all(axis=0)
    return ds, cube, valid


def test_explained_variance_matches_sklearn(ip) -> None:
    ds, cube, valid = ip
    p = fit_pca(ds, 12)
    x = cube.reshape(cube.shape[0], -1).T[valid.ravel()].astype("float64")
    sk = PCA(n_components=12, svd_solver="full").fit(x)
    assert p.n_samples == int(valid.sum())
    np.testing.assert_allclose(p.explained_variance_ratio, sk.explained_variance_ratio_, rtol=0, atol=1e-4)
    np.testing.assert_allclose(p.explained_variance, sk.explained_variance_, rtol=1e-6)
    np.testing.assert_allclose(p.mean, sk.mean_, rtol=1e-9)
    # Same axes up to sign; our sign rule: the largest-|loading| entry of every axis is positive.
    np.testing.assert_allclose(np.abs(p.components), np.abs(sk.components_), atol=1e-6)
    top = p.components[np.arange(12), np.abs(p.components).argmax(axis=1)]
    assert (top > 0).all()


def test_chunked_transform_equals_in_memory(ip) -> None:
    ds, cube, valid = ip
    p = fit_pca(ds, 12)
    lazy = p.apply(physical_cube(ds))
    assert isinstance(lazy.data, da.Array) and lazy.dims == ("channel", "y", "x")
    assert lazy.data.chunks[1] == ds["reflectance"].data.chunks[1]  # chunkwise, no rechunk to memory
    chunked = lazy.values
    phys = np.where(valid[None], cube.astype("float64"), np.nan)
    in_memory = p.apply(phys)
    assert isinstance(in_memory, np.ndarray) and in_memory.dtype == np.float32
    np.testing.assert_allclose(chunked, in_memory, rtol=1e-6, atol=1e-3)
    # And both equal the textbook projection (x − mean) · Vᵀ on the valid pixels.
    ref = (cube.reshape(200, -1).T[valid.ravel()] - p.mean) @ p.components.T
    np.testing.assert_allclose(chunked.reshape(12, -1).T[valid.ravel()], ref, rtol=1e-5, atol=1e-2)
    assert np.isnan(chunked[:, ~valid]).all()
    assert np.isfinite(chunked[:, valid]).all()


def test_fit_is_independent_of_chunking(ip) -> None:
    ds, _, _ = ip
    a = fit_pca(ds, 5)
    b = fit_pca(ds.chunk({"y": 31, "x": 70}), 5)
    np.testing.assert_allclose(a.components, b.components, atol=1e-9)  # signs fixed, not left to LAPACK
    np.testing.assert_allclose(a.explained_variance, b.explained_variance, rtol=1e-10)


def test_randomized_matches_exact(ip) -> None:
    ds, _, _ = ip
    exact = fit_pca(ds, 12)
    rand = fit_pca(ds, 12, method="randomized", seed=3)
    assert rand.method == "randomized"
    np.testing.assert_allclose(rand.explained_variance_ratio, exact.explained_variance_ratio, atol=1e-5)
    np.testing.assert_allclose(np.abs(rand.components[:3]), np.abs(exact.components[:3]), atol=1e-3)


def test_subsample_is_seeded_and_chunk_independent(ip) -> None:
    ds, _, valid = ip
    a = fit_pca(ds, 12, subsample=4000, seed=7)
    b = fit_pca(ds.chunk({"y": 17, "x": 145}), 12, subsample=4000, seed=7)
    c = fit_pca(ds, 12, subsample=4000, seed=8)
    assert a.n_samples == b.n_samples
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
    assert a.n_samples != c.n_samples or not np.allclose(a.mean, c.mean)
    expected = 4000 * valid.mean()
    assert abs(a.n_samples - expected) < 5 * np.sqrt(expected)
    mask = subsample_mask(np.zeros((50, 40)), 500, seed=0)
    assert 350 < mask.sum() < 650


def test_scale_factor_is_applied_before_fitting() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(100, 5000, size=(6, 20, 20)).astype("int16")
    p_raw = fit_pca(make_scene(raw), 3)
    p_phys = fit_pca(make_scene(raw, scale_factor=1e-4, add_offset=0.5), 3)
    np.testing.assert_allclose(p_phys.mean, raw.reshape(6, -1).mean(axis=1) * 1e-4 + 0.5)
    np.testing.assert_allclose(p_phys.explained_variance, p_raw.explained_variance * 1e-8, rtol=1e-9)
    np.testing.assert_allclose(p_phys.explained_variance_ratio, p_raw.explained_variance_ratio, rtol=1e-9)


def test_bad_bands_are_left_out() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(5, 10, 10))
    raw[2] = np.nan  # a dead band, flagged bad, must neither mask pixels nor reach the output
    p = fit_pca(make_scene(raw, good_band=[1, 1, 0, 1, 1]), 2)
    assert p.band_indices.tolist() == [0, 1, 3, 4]
    out = p.apply(raw)
    assert np.isfinite(out).all()


def test_to_dict_round_trip_is_exact(ip) -> None:
    ds, _, _ = ip
    p = fit_pca(ds, 4)
    q = PCAParams.from_dict(json.loads(json.dumps(p.to_dict(), allow_nan=False)))
    assert q == p
    x = physical_cube(ds).values
    assert np.array_equal(p.apply(x), q.apply(x), equal_nan=True)


def test_errors(ip) -> None:
    ds, _, _ = ip
    with pytest.raises(UsageError, match=r"has 200 good bands, too few for 201 principal components; .*--spectral s2"):
        fit_pca(ds, 201)
    with pytest.raises(UsageError, match="n_components=0 must be at least 1"):
        fit_pca(ds, 0)
    with pytest.raises(UsageError, match="unknown PCA method"):
        fit_pca(ds, 3, method="svd")
    with pytest.raises(BandMismatchError, match="fitted on 200 bands but the input has 3"):
        fit_pca(ds, 2).apply(np.zeros((3, 4, 4)))
    nodata_only = make_scene(np.zeros((4, 6, 6), "uint16"), nodata=0)
    with pytest.raises(DataError, match="only 0 valid pixels"):
        fit_pca(nodata_only, 2)
    nodata_only.encoding["source"] = "clouds.zarr"  # the scene is named (one of several a run fits)
    with pytest.raises(DataError, match=r"^clouds\.zarr: only 0 valid pixels .*or leave the scene out"):
        fit_pca(nodata_only, 2)
