"""Per-pixel windows: chunk borders equal the whole scene, reflect edges, NaN → 0, bilinear resize."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geohsi.errors import UsageError
from geohsi.spectral.windows import (
    check_window,
    extract_windows,
    overlap_reflect,
    pad_reflect_halo,
    windows_at,
    windows_for_block,
)


@st.composite
def chunked_scenes(draw):
    """A small random scene with NaN holes, a random spatial chunking and a window that fits."""
    c = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 18)), draw(st.integers(1, 18))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(c, h, w)).astype("float32")
    x[:, rng.random((h, w)) < 0.15] = np.nan

    def split(n: int) -> tuple[int, ...]:
        cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=min(4, n - 1)))) if n > 1 else []
        return tuple(np.diff([0, *cuts, n]).tolist())

    chunks = (c, split(h), split(w))
    window = 2 * draw(st.integers(0, (min(h, w) - 1) // 2)) + 1
    out = draw(st.sampled_from([window, 5, 8, 32]))
    return x, chunks, window, out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked_scenes())
def test_block_windows_equal_whole_scene(case) -> None:
    x, chunks, window, out = case
    c, h, w = x.shape
    r = window // 2
    whole = extract_windows(x, *np.divmod(np.arange(h * w), w), window, out)  # every pixel, row-major
    halo = overlap_reflect(da.from_array(x, chunks=chunks), r)
    ys, xs = np.cumsum((0, *chunks[1])), np.cumsum((0, *chunks[2]))
    assert halo.chunks[1] == tuple(n + 2 * r for n in chunks[1])
    for i in range(len(chunks[1])):
        for j in range(len(chunks[2])):
            blk = halo.blocks[0, i, j].compute()
            got = windows_for_block(blk, None, None, window, out)
            rr, cc = np.meshgrid(np.arange(ys[i], ys[i + 1]), np.arange(xs[j], xs[j + 1]), indexing="ij")
            np.testing.assert_array_equal(got, whole[(rr * w + cc).ravel()])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked_scenes(), st.integers(0, 2**32 - 1))
def test_windows_at_equals_in_memory(case, seed) -> None:
    x, chunks, window, out = case
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 25))
    rows, cols = rng.integers(0, x.shape[1], n), rng.integers(0, x.shape[2], n)
    got = windows_at(da.from_array(x, chunks=chunks), rows, cols, window, out)
    assert got.shape == (n, x.shape[0], out, out) and got.dtype == np.float32
    np.testing.assert_array_equal(got, extract_windows(x, rows, cols, window, out))


def test_reflect_does_not_repeat_the_edge_pixel() -> None:
    x = np.arange(20, dtype="float32").reshape(1, 4, 5)
    got = extract_windows(x, [0], [0], window=3, out_size=3)[0, 0]
    # numpy "reflect": row −1 is row 1, column −1 is column 1.
    np.testing.assert_array_equal(got, [[6, 5, 6], [1, 0, 1], [6, 5, 6]])
    np.testing.assert_array_equal(pad_reflect_halo(x, 2)[0, 2:-2, 2:-2], x[0])
    y = np.arange(25, dtype="float32").reshape(1, 5, 5)
    got = extract_windows(y, [4], [4], window=5, out_size=5)[0, 0]
    np.testing.assert_array_equal(got[2], [22, 23, 24, 23, 22])  # centre row, mirrored about the last column
    np.testing.assert_array_equal(got[:, 2], [14, 19, 24, 19, 14])  # centre column, mirrored about the last row


def test_invalid_neighbours_become_zero() -> None:
    x = np.ones((2, 5, 5), dtype="float32")
    x[:, 1, 2] = np.nan
    got = extract_windows(x, [2], [2], window=3, out_size=3)
    assert got[0, :, 0, 1].tolist() == [0.0, 0.0]
    assert np.isfinite(got).all() and got.sum() == 2 * 8


def test_resize_is_bilinear_half_pixel() -> None:
    ramp = np.tile(np.array([0.0, 1.0, 2.0], dtype="float32"), (1, 3, 1))  # [1, 3, 3], x-ramp
    got = extract_windows(ramp, [1], [1], window=3, out_size=6)[0, 0]
    # align_corners=False: output column i samples source x = (i + 0.5)·3/6 − 0.5, clamped to [0, 2].
    np.testing.assert_allclose(got[0], [0.0, 0.25, 0.75, 1.25, 1.75, 2.0], atol=1e-6)
    np.testing.assert_allclose(got, np.broadcast_to(got[0], (6, 6)))
    const = np.full((3, 9, 9), 4.5, dtype="float32")
    np.testing.assert_allclose(extract_windows(const, [4, 0], [4, 8], 7, 32), 4.5, atol=1e-6)


def test_many_windows_one_call() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 64, 64)).astype("float32")
    rows, cols = np.divmod(np.arange(64 * 64), 64)
    got = extract_windows(x, rows, cols, window=15, out_size=32)
    assert got.shape == (4096, 12, 32, 32)
    centre = extract_windows(x, rows[:50], cols[:50], window=15, out_size=15)[:, :, 7, 7]
    np.testing.assert_array_equal(centre, x[:, rows[:50], cols[:50]].T)


def test_window_validation() -> None:
    assert check_window(15, 145, 145) == 7
    for bad in (0, -3, 4, 2.0, True):
        with pytest.raises(UsageError, match="odd integer"):
            check_window(bad)
    with pytest.raises(UsageError, match="larger than the scene's height of 10 pixels; use --window 9"):
        extract_windows(np.zeros((1, 10, 30)), [0], [0], window=11)
    with pytest.raises(UsageError, match="outside"):
        extract_windows(np.zeros((1, 10, 10)), [10], [0], window=3)
    with pytest.raises(UsageError, match="halo 1 is smaller than the window radius 2"):
        windows_for_block(np.zeros((1, 6, 6)), [0], [0], 5, 8, halo=1)
    with pytest.raises(UsageError, match="outside the 4×4 scene"):
        windows_at(da.zeros((1, 4, 4), chunks=2), [0], [4], window=3)
