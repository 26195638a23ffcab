"""MATLAB reader: Indian Pines (v5), synthetic v7.3 (HDF5, transposed axes), variable detection."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io as sio

from geohsi.errors import InputFormatError, UsageError
from geohsi.io import detect_format, read, read_labels
from geohsi.io.matlab import list_variables, mat_version
from geohsi.scene import scene_crs


def write_mat73(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A MATLAB v7.3 file: 512-byte MATLAB header user block + HDF5 with MATLAB's reversed axes."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, a in arrays.items():
            # MATLAB writes column-major, so h5py sees the axes reversed.
            f.create_dataset(name, data=np.ascontiguousarray(a.T))
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM"
    with open(path, "r+b") as f:
        f.write(header.ljust(512, b"\0"))
    return path


def test_indian_pines_cube_and_labels(data_dir: Path) -> None:
    cube_path = data_dir / "indian_pines" / "Indian_pines_corrected.mat"
    assert detect_format(cube_path) == "matlab" and mat_version(cube_path) == 5
    ds = read(cube_path)
    v = ds["reflectance"]
    assert v.shape == (200, 145, 145) and v.dtype == np.uint16
    raw = sio.loadmat(cube_path)["indian_pines_corrected"]
    np.testing.assert_array_equal(v.values, np.transpose(raw, (2, 0, 1)))
    assert scene_crs(ds) is None and ds.attrs["georeferenced"] == 0
    lab = read_labels(data_dir / "indian_pines" / "Indian_pines_gt.mat")
    values = lab["reflectance"].values[0]
    assert values.shape == (145, 145)
    ids, counts = np.unique(values, return_counts=True)
    assert ids.tolist() == list(range(17)) and counts[1:].sum() == 10_249


def test_mat73_transposed_axes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    cube_hwb = rng.random((6, 9, 4)).astype("float32")  # MATLAB rows × cols × bands
    gt = rng.integers(0, 3, size=(6, 9)).astype("uint8")
    path = write_mat73(tmp_path / "c73.mat", {"cube": cube_hwb, "gt": gt, "small": np.ones((2, 2, 2))})
    assert mat_version(path) == 73
    assert list_variables(path)["cube"][0] == (6, 9, 4)
    ds = read(path, chunks=4)  # largest 3-D array wins over "small"
    np.testing.assert_array_equal(ds["reflectance"].values, np.transpose(cube_hwb, (2, 0, 1)))
    np.testing.assert_array_equal(read_labels(path)["reflectance"].values[0], gt)
    # band_axis override: read the same file as if bands were the first MATLAB axis.
    alt = read(path, band_axis=0)
    np.testing.assert_array_equal(alt["reflectance"].values, cube_hwb)


def test_v5_var_and_band_axis(tmp_path: Path) -> None:
    bhw = np.arange(3 * 4 * 5, dtype="int16").reshape(3, 4, 5)
    path = tmp_path / "two.mat"
    sio.savemat(path, {"big": np.zeros((8, 8, 8), "int16"), "bands_first": bhw})
    assert read(path)["reflectance"].shape == (8, 8, 8)
    ds = read(path, var="bands_first", band_axis=0)
    np.testing.assert_array_equal(ds["reflectance"].values, bhw)
    with pytest.raises(InputFormatError, match="no numeric variable 'nope'"):
        read(path, var="nope")
    with pytest.raises(UsageError, match="band_axis"):
        read(path, band_axis=5)


def test_no_3d_array(data_dir: Path, tmp_path: Path) -> None:
    # Jasper Ridge stores pixels as a 2-D (bands, pixels) matrix.
    with pytest.raises(InputFormatError, match=r"no 3-D numeric array.*Y \(198, 10000\)"):
        read(data_dir / "jasper_ridge" / "jasperRidge2_R198.mat")
    flat = tmp_path / "flat.mat"
    sio.savemat(flat, {"x": np.ones((4, 4))})
    with pytest.raises(InputFormatError, match="no 3-D numeric array"):
        read(flat)


def test_not_a_mat_file(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mat"
    bogus.write_bytes(b"hello world" * 20)
    with pytest.raises(InputFormatError, match="bogus.mat"):
        read(bogus)
