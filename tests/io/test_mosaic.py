"""Tile mosaics (io/mosaic.py), the grid union and reader the GeoTIFF and STAC readers share."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from geohsi.errors import GeoreferenceError
from geohsi.io.mosaic import GridTile, TileMosaic, check_same_grid, gap_fill, union_grid


def _tif(path, data: np.ndarray, x0: float, y0: float) -> GridTile:
    t = Affine(10.0, 0.0, x0, 0.0, -10.0, y0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        transform=t,
        crs="EPSG:32633",
    ) as dst:
        dst.write(data)
    return GridTile(str(path), t, data.shape[1], data.shape[2], tuple((str(path), i + 1) for i in range(data.shape[0])))


def test_union_grid_reads_the_later_tile_where_tiles_overlap_and_fills_gaps(tmp_path) -> None:
    a = np.arange(2 * 4 * 4, dtype="int16").reshape(2, 4, 4)
    b = -np.ones((2, 3, 3), "int16")
    ta = _tif(tmp_path / "a.tif", a, 0.0, 0.0)
    tb = _tif(tmp_path / "b.tif", b, 20.0, -20.0)  # 2 px right and down of a: overlaps a's last 2×2, sticks out by 1
    transform, h, w = union_grid([ta, tb])
    assert (transform.c, transform.f, h, w) == (0.0, 0.0, 5, 5)
    dtype, fill = gap_fill([ta, tb], transform, h, w, np.dtype("int16"))
    assert (dtype, fill) == (np.dtype("int32"), -(2.0**31))  # a value no int16 tile holds (-32768 is one)
    m = TileMosaic([ta, tb], transform, h, w, dtype, fill)
    out = m[slice(0, 2), slice(0, 5), slice(0, 5)]
    assert out.dtype == np.int32 and m[slice(1, 2), slice(0, 2), slice(0, 2)].dtype == np.int32
    want = np.full((2, 5, 5), -(2**31), "int32")
    want[:, :4, :4] = a
    want[:, 2:5, 2:5] = b
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(m[slice(1, 2), slice(0, 2), slice(0, 2)], a[1:2, :2, :2])  # one file covers: direct read


def test_one_tile_covering_the_grid_needs_no_fill(tmp_path) -> None:
    t = _tif(tmp_path / "a.tif", np.zeros((1, 3, 3), "float32"), 0.0, 0.0)
    assert gap_fill([t], *union_grid([t]), np.dtype("float32")) == (np.dtype("float32"), None)


def test_gaps_get_a_value_no_tile_can_hold(tmp_path) -> None:
    """uint8 tiles without nodata had their gaps filled with 255, so every real 255 pixel was masked as nodata."""
    from geohsi.io.mosaic import gap_dtype

    assert gap_dtype(np.dtype("uint8")) == (np.dtype("int16"), -32768.0)
    assert gap_dtype(np.dtype("uint16")) == (np.dtype("int32"), -(2.0**31))
    assert gap_dtype(np.dtype("int32"))[0] == np.dtype("int64") and np.isnan(gap_dtype(np.dtype("uint64"))[1])
    assert np.isnan(gap_dtype(np.dtype("float32"))[1]) and gap_dtype(np.dtype("float32"))[0] == np.float32
    ta = _tif(tmp_path / "a.tif", np.full((1, 2, 2), 1, "uint8"), 0.0, 0.0)
    tb = _tif(tmp_path / "b.tif", np.full((1, 2, 2), 255, "uint8"), 40.0, 0.0)  # a gap of 2 columns between them
    transform, h, w = union_grid([ta, tb])
    dtype, fill = gap_fill([ta, tb], transform, h, w, np.dtype("uint8"))
    out = TileMosaic([ta, tb], transform, h, w, dtype, fill)[slice(0, 1), slice(0, 2), slice(0, 6)]
    np.testing.assert_array_equal(out[0, 0], [1, 1, -32768, -32768, 255, 255])


def test_tiles_off_the_grid_or_of_another_resolution_are_refused(tmp_path) -> None:
    ref = GridTile("a", Affine(10, 0, 0, 0, -10, 0), 4, 4, (("a", 1),))
    with pytest.raises(GeoreferenceError, match="off a's pixel grid"):
        check_same_grid(ref, GridTile("b", Affine(10, 0, 5, 0, -10, 0), 4, 4, (("b", 1),)))
    with pytest.raises(GeoreferenceError, match="pixel size"):
        check_same_grid(ref, GridTile("c", Affine(20, 0, 0, 0, -20, 0), 4, 4, (("c", 1),)))
