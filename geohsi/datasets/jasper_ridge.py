"""The Jasper Ridge scene (``geohsi datasets fetch jasper_ridge``), whose ``.mat`` layout the generic reader refuses.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import xarray as xr

from geohsi.errors import InputFormatError


def jasper_ridge_scene(mat_path: str | os.PathLike) -> xr.Dataset:
    """Build the Jasper Ridge scene from ``jasperRidge2_R198.mat``, which the generic reader refuses.

    The file stores the cube as a 2-D ``Y`` ``[198, 10000]`` (bands × pixels, MATLAB column-major
    pixel order), so it is reshaped with ``Y.T.reshape(100, 100, 198, order="F")``. The scene is an
    explicit pixel grid (no CRS), raw uint16 values (``maxValue`` 5000), no wavelengths (the file
    lists only band indices), so only the PCA front end applies to it.

    Args:
        mat_path: the ``.mat`` file.

    Returns:
        A scene Dataset ``(band 198, y 100, x 100)``.

    Raises:
        InputFormatError: the file is not the expected Jasper Ridge layout.

    .. versionadded:: 0.1
    """
    import scipy.io

    from geohsi.scene import make_scene

    try:
        m = scipy.io.loadmat(mat_path)
        y = np.asarray(m["Y"])
        rows, cols = int(np.asarray(m["nRow"]).item()), int(np.asarray(m["nCol"]).item())
    except (OSError, ValueError, KeyError) as e:
        raise InputFormatError(
            f"{mat_path} is not the Jasper Ridge .mat (Y, nRow, nCol): {e}; fetch it with 'geohsi datasets fetch jasper_ridge'"
        ) from e
    if y.ndim != 2 or y.shape[1] != rows * cols:
        raise InputFormatError(
            f"{mat_path}: Y has shape {y.shape}, expected (bands, {rows}·{cols}); fetch the original jasperRidge2_R198.mat"
        )
    cube = y.T.reshape(rows, cols, y.shape[0], order="F").transpose(2, 0, 1)
    return make_scene(
        np.ascontiguousarray(cube),
        attrs={"sensor": "AVIRIS", "units": "DN (reflectance × 10000)", "source_files": json.dumps([Path(mat_path).name])},
    )


__all__ = ["jasper_ridge_scene"]
