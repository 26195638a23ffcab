"""SpectralTransform: fit → apply on a Zarr scene, scene checks, exact replay from the bundle record."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import scipy.io

from geohsi.errors import BandMismatchError, ModelError, UsageError
from geohsi.scene import make_scene, open_scene, write_scene
from geohsi.spectral.transform import SpectralTransform


@pytest.fixture(scope="module")
def ip_parts(data_dir: Path):
    d = data_dir / "indian_pines"
    cube = scipy.io.loadmat(d / "Indian_pines_corrected.mat")["indian_pines_corrected"]
    cube = np.ascontiguousarray(cube.transpose(2, 0, 1))[:, :96, :80].copy()  # a corner keeps it quick
    cube[:, 40:44, 30:50] = 0  # nodata stripe across chunk borders
    with open(d / "wavelengths.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["band_200"]]
    wl = np.array([float(r["wavelength_nm"]) for r in rows])
    fw = np.array([float(r["fwhm_nm"]) for r in rows])
    return cube, wl, fw


@pytest.fixture(scope="module")
def ip(ip_parts, tmp_path_factory: pytest.TempPathFactory):
    cube, wl, fw = ip_parts
    path = write_scene(
        make_scene(cube, wavelength=wl, fwhm=fw, nodata=0, scale_factor=1e-4),
        tmp_path_factory.mktemp("ipt") / "ip.zarr",
        chunks=32,
    )
    return open_scene(path), (cube != 0).all(axis=0)


@pytest.mark.parametrize(("method", "names"), [("pca", ["PC1", "PC2"]), ("s2", ["B01", "B02"])])
def test_fit_apply(ip, method: str, names: list[str]) -> None:
    ds, valid = ip
    t = SpectralTransform.fit(ds, method)
    out = t.apply(ds)
    assert isinstance(out.data, da.Array) and out.dims == ("channel", "y", "x")
    assert out.shape == (12, 96, 80) and out.dtype == np.float32
    assert list(out.channel.values[:2]) == names
    v = out.values
    assert np.isnan(v[:, ~valid]).all() and np.isfinite(v[:, valid]).all()
    np.testing.assert_allclose(v[:, valid].mean(axis=1), 0, atol=1e-4)  # standardised on valid pixels
    np.testing.assert_allclose(v[:, valid].std(axis=1), 1, atol=1e-4)
    np.testing.assert_array_equal(out.x.values, ds.x.values)


def test_replay_from_json_is_exact(ip) -> None:
    ds, _ = ip
    t = SpectralTransform.fit(ds, "pca", n_components=12, norm="minmax", percentiles=(1, 99))
    record = json.dumps(t.to_dict(), allow_nan=False)
    u = SpectralTransform.from_dict(json.loads(record))
    assert u == t and u.to_dict() == t.to_dict()
    assert np.array_equal(u.apply(ds).values, t.apply(ds).values, equal_nan=True)


def test_chunked_apply_equals_in_memory(ip) -> None:
    ds, _ = ip
    t = SpectralTransform.fit(ds, "s2", norm="standard")
    lazy = t.apply(ds).values
    eager = t.apply(ds.load())
    assert isinstance(eager.data, np.ndarray)
    np.testing.assert_allclose(lazy, eager.values, rtol=1e-6, atol=1e-6)


def test_check_scene(ip, ip_parts, tmp_path: Path) -> None:
    ds, _ = ip
    cube, wl, fw = ip_parts
    t = SpectralTransform.fit(ds, "pca", n_components=4, norm="none")
    fewer = open_scene(write_scene(make_scene(cube[:150], wavelength=wl[:150]), tmp_path / "fewer.zarr"))
    with pytest.raises(BandMismatchError, match=r"fewer.zarr has 150 bands but .* fitted on 200 \(400.0–2489.1 nm\)") as e:
        t.apply(fewer)
    assert "\n" not in str(e.value)
    with pytest.raises(BandMismatchError, match=r"band 1 is at 405.02 nm but .* expects 400.02 nm"):
        t.check_scene(make_scene(cube, wavelength=wl + 5.0))
    t.check_scene(make_scene(cube, wavelength=wl + 0.3))  # calibration-level shifts pass
    t.check_scene(make_scene(cube))  # no wavelengths: judged on the band count
    good = np.ones(200, bool)
    good[17] = False
    with pytest.raises(BandMismatchError, match=r"flags bands \[18\] as bad"):
        t.check_scene(make_scene(cube, wavelength=wl, good_band=good))


def test_fit_errors_and_bad_records(ip) -> None:
    ds, _ = ip
    with pytest.raises(UsageError, match="always gives 12 channels, not 8"):
        SpectralTransform.fit(ds, "s2", n_components=8)
    with pytest.raises(UsageError, match="unknown spectral reduction 'ica'"):
        SpectralTransform.fit(ds, "ica")
    d = SpectralTransform.fit(ds, "pca", n_components=3).to_dict()
    with pytest.raises(ModelError, match="format 2 is not supported"):
        SpectralTransform.from_dict({**d, "format_version": 2})
    with pytest.raises(ModelError, match="inconsistent spectral transform record"):
        SpectralTransform.from_dict({**d, "normalizer": {**d["normalizer"], "shift": [0.0], "scale": [1.0]}})
    with pytest.raises(ModelError, match="invalid spectral transform record"):
        SpectralTransform.from_dict({k: v for k, v in d.items() if k != "projection"})
