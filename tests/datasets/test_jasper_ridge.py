"""geohsi.datasets.jasper_ridge: the scene has the documented layout (MATLAB column-major pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geohsi.datasets.jasper_ridge import jasper_ridge_scene


def test_jasper_ridge_scene_matches_the_documented_layout(data_dir: Path) -> None:
    import scipy.io

    mat = data_dir / "jasper_ridge" / "jasperRidge2_R198.mat"
    ds = jasper_ridge_scene(mat)
    assert dict(ds.sizes) == {"band": 198, "y": 100, "x": 100}
    y = scipy.io.loadmat(mat)["Y"]
    cube = np.asarray(ds["reflectance"].values)
    # MATLAB column-major pixels: pixel k is at row k % 100, column k // 100
    for k in (0, 1, 99, 100, 4321, 9999):
        assert np.array_equal(cube[:, k % 100, k // 100], y[:, k])
