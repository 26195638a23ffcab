"""Physical values with NaN at invalid pixels; per-channel normalisation fit/apply/inverse/replay."""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from geohsi.errors import DataError, ModelError, UsageError
from geohsi.scene import make_scene, open_scene, write_scene
from geohsi.spectral.normalize import HIST_BINS, Normalizer, physical_cube


def _channels(seed: int = 0, shape=(4, 40, 30)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=[[[3.0]], [[-1.0]], [[100.0]], [[0.0]]], scale=[[[2.0]], [[0.1]], [[30.0]], [[1.0]]], size=shape)
    x[:, rng.random(shape[1:]) < 0.1] = np.nan  # invalid pixels: NaN on every channel
    return x


def test_physical_cube_scales_and_masks(tmp_path: Path) -> None:
    raw = np.arange(3 * 5 * 4, dtype="int16").reshape(3, 5, 4) + 10
    raw[:, 0, 0] = -999
    raw[2, 4, 3] = -999  # nodata in one good band → whole pixel invalid
    raw[1, 2, 2] = -999  # …but not when that band is bad
    ds = make_scene(raw, nodata=-999, scale_factor=0.5, add_offset=1.0, good_band=[1, 0, 1])
    ds = open_scene(write_scene(ds, tmp_path / "s.zarr", chunks=3))
    phys = physical_cube(ds)
    assert isinstance(phys.data, da.Array)
    v = phys.values
    assert np.isnan(v[:, 0, 0]).all() and np.isnan(v[:, 4, 3]).all()
    assert v[1, 2, 2] == -999 * 0.5 + 1.0
    np.testing.assert_array_equal(v[:, 1, 1], raw[:, 1, 1] * 0.5 + 1.0)
    assert np.isfinite(v).sum() == 3 * (20 - 2)
    assert "scale_factor" not in phys.attrs and "_FillValue" not in phys.attrs


@pytest.mark.parametrize("lazy", [False, True])
def test_standard_fit_apply_inverse(lazy: bool) -> None:
    x = _channels()
    data = da.from_array(x, chunks=(4, 13, 7)) if lazy else x
    n = Normalizer.fit(data, "standard")
    np.testing.assert_allclose(n.shift, np.nanmean(x, axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(n.scale, np.nanstd(x, axis=(1, 2)), rtol=1e-12)
    y = n.apply(data)
    assert isinstance(y, da.Array) == lazy
    y = np.asarray(y)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
    np.testing.assert_allclose(np.nanmean(y, axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(np.nanstd(y, axis=(1, 2)), 1, atol=1e-5)
    back = np.asarray(n.inverse(y))
    np.testing.assert_allclose(back, x, rtol=1e-6, atol=1e-5 * np.nanmax(np.abs(x)))


def test_minmax_and_robust_percentiles() -> None:
    x = _channels(1)
    n = Normalizer.fit(x, "minmax")
    y = n.apply(x)
    np.testing.assert_allclose(np.nanmin(y, axis=(1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(np.nanmax(y, axis=(1, 2)), 1, atol=1e-6)
    exact = Normalizer.fit(x, "minmax", percentiles=(2, 98))
    lo, hi = np.nanpercentile(x.reshape(4, -1), [2, 98], axis=1)
    np.testing.assert_allclose(exact.shift, lo, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(exact.shift) + exact.scale, hi, rtol=1e-12)
    # Dask: from a histogram. Many pixels, so order statistics are denser than the bins.
    big = _channels(4, shape=(4, 300, 270))
    approx = Normalizer.fit(da.from_array(big, chunks=(4, 70, 64)), "minmax", percentiles=(2, 98))
    lo_b, hi_b = np.nanpercentile(big.reshape(4, -1), [2, 98], axis=1)
    tol = 3 * (np.nanmax(big, axis=(1, 2)) - np.nanmin(big, axis=(1, 2))) / HIST_BINS
    assert (np.abs(np.asarray(approx.shift) - lo_b) <= tol).all()
    assert (np.abs(np.asarray(approx.shift) + approx.scale - hi_b) <= tol).all()
    y = exact.apply(x)
    assert np.nanmin(y) < 0 and np.nanmax(y) > 1  # outliers are not clipped (exactly invertible)


def test_round_trip_through_json_replays_exactly() -> None:
    x = _channels(2)
    for n in (Normalizer.fit(x), Normalizer.fit(x, "minmax", percentiles=(1, 99)), Normalizer.fit(x, "none")):
        m = Normalizer.from_dict(json.loads(json.dumps(n.to_dict(), allow_nan=False)))
        assert m == n
        assert np.array_equal(m.apply(x), n.apply(x), equal_nan=True)


def test_edge_cases_and_errors() -> None:
    x = _channels(3)
    x[3] = np.where(np.isnan(x[3]), np.nan, 5.0)  # a constant channel: scale 1, not ÷0
    n = Normalizer.fit(x)
    assert n.scale[3] == 1.0 and np.nanmax(np.abs(n.apply(x)[3])) == 0
    with pytest.raises(UsageError, match="unknown normalisation 'zscore'"):
        Normalizer.fit(x, "zscore")
    with pytest.raises(UsageError, match="only apply to --norm minmax"):
        Normalizer.fit(x, "standard", percentiles=(2, 98))
    with pytest.raises(UsageError, match="0 <= low < high <= 100"):
        Normalizer.fit(x, "minmax", percentiles=(98, 2))
    with pytest.raises(UsageError, match="fitted on 4 channels was given 2"):
        n.apply(x[:2])
    empty = x.copy()
    empty[1] = np.nan
    with pytest.raises(DataError, match=r"channels \[1\] have no valid pixel"):
        Normalizer.fit(empty)
    with pytest.raises(ModelError, match="invalid normaliser record"):
        Normalizer.from_dict({"method": "standard", "shift": [0.0]})
