"""Label rasters on a scene's grid: read in place when the grids agree, reprojected (nearest) when not.

A label raster that shares the scene's CRS, transform and size is read window by window as it is.
Any other georeferenced label raster — another CRS, pixel size or extent — is warped onto the scene's
grid with nearest-neighbour resampling (``rasterio.warp.reproject``), window by window, so class ids
are never blended; :attr:`RasterLabels.reprojected` says whether that happened (the log says so).
A raster without a CRS labels a pixel-grid scene of the same size only.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from geohsi.errors import DataError, GeoreferenceError, InputFormatError
from geohsi.io.vector import MAX_CLASS_ID


def _as_class_ids(values: np.ndarray, nodata: float | None, source: str) -> np.ndarray:
    """uint16 class ids of a label window (nodata and NaN → 0)."""
    v = np.asarray(values)
    if nodata is not None:
        v = np.where(v == np.asarray(nodata, v.dtype), 0, v)
    if v.dtype.kind == "f":
        v = np.nan_to_num(v, nan=0.0)
        if np.any(v != np.round(v)):
            raise DataError(f"labels {source} hold values that are not whole class ids; give a class-id raster")
    if v.size and (v.min() < 0 or v.max() > MAX_CLASS_ID):
        raise DataError(f"labels {source} hold ids outside 0..{MAX_CLASS_ID}; use 0 for unlabelled, classes 1..K")
    return v.astype(np.uint16)


@dataclass(frozen=True)
class RasterLabels:
    """One label raster, placed on one scene's grid.

    Attributes:
        path: the label file.
        crs: the scene's CRS (``None``: a pixel grid).
        transform: the scene's affine transform.
        shape: ``(H, W)`` of the scene.
        reprojected: the label raster's grid differs from the scene's (warped with nearest neighbour).
    """

    path: str
    crs: Any
    transform: Any
    shape: tuple[int, int]
    reprojected: bool

    @classmethod
    def on_grid(cls, path: str | os.PathLike, crs: Any, transform: Any, shape: tuple[int, int], scene: str) -> RasterLabels:
        """Check a label raster against a scene grid.

        Raises:
            InputFormatError: the file is missing or not a one-band raster.
            GeoreferenceError: a raster without a CRS for a georeferenced scene, or of another size
                for a pixel-grid scene.
        """
        from rasterio.errors import RasterioError

        from geohsi.storage import as_path, open_raster

        p = as_path(path)
        try:
            with open_raster(p) as src:
                lcrs, ltf, lshape, count = src.crs, src.transform, (src.height, src.width), src.count
        except RasterioError as e:
            raise InputFormatError(f"cannot read labels {p} as a raster ({e}); give a one-band class-id GeoTIFF") from e
        if count != 1:
            raise InputFormatError(f"labels {p} have {count} bands; give a single-band class-id raster")
        if crs is None:
            if lshape != tuple(shape):
                raise GeoreferenceError(
                    f"labels {p} have shape {lshape} but the pixel-grid scene {scene} is {shape[0]}×{shape[1]}"
                )
            return cls(str(p), None, ltf, tuple(shape), False)
        if lcrs is None:
            raise GeoreferenceError(
                f"labels {p} have no CRS but scene {scene} is in {crs.to_string()}; georeference the labels "
                "(gdal_edit.py -a_srs/-a_ullr) so they can be placed on the scene"
            )
        same = lcrs == crs and ltf.almost_equals(transform) and lshape == tuple(shape)
        return cls(str(p), crs, transform, tuple(shape), not same)

    def read(self, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """``[h, w]`` uint16 class ids of a window ``(row, col, height, width)`` of the scene grid (0 = unlabelled)."""
        import rasterio
        from rasterio.enums import Resampling
        from rasterio.warp import reproject
        from rasterio.windows import Window
        from rasterio.windows import transform as window_transform

        from geohsi.storage import open_raster

        row, col, h, w = window if window is not None else (0, 0, *self.shape)
        win = Window(col, row, w, h)
        with open_raster(self.path) as src:
            if not self.reprojected:
                return _as_class_ids(src.read(1, window=win), src.nodata, self.path)
            out = np.zeros((h, w), dtype=np.float64)
            reproject(
                rasterio.band(src, 1),
                out,
                src_nodata=src.nodata,
                dst_transform=window_transform(win, self.transform),
                dst_crs=self.crs,
                dst_nodata=0,
                resampling=Resampling.nearest,
            )
            return _as_class_ids(out, None, self.path)


__all__ = ["RasterLabels"]
