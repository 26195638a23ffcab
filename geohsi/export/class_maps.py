"""Class maps read back: the lazy opener of the maps ``geohsi classify`` writes.

A map is a GeoTIFF/COG or a Zarr store written by :mod:`geohsi.export.maps` (class ids, 0 = nodata,
the legend in its tags or attributes), or any single-band integer GeoTIFF (its classes are then the
ids found). :func:`open_map` reads its metadata only; the pixels are a Dask array read chunk by chunk
(:mod:`geohsi.assessment.maps` counts and samples them, ``geohsi info`` describes them).

.. versionadded:: 0.3
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import DataError, InputFormatError
from geohsi.export.maps import NODATA
from geohsi.scene import Legend

#: chunk edge (pixels) of the reads: 4 MiB of uint8, a whole number of 512-pixel COG tiles.
CHUNK = 2048


@dataclass
class ClassMap:
    """A class map opened lazily.

    Attributes:
        path: the file or store.
        name: how points files name it (the file name; the path where two maps share a name).
        data: ``[H, W]`` Dask array of class ids (0 = nodata).
        transform: pixel → map coordinates.
        crs: the CRS (a :class:`rasterio.crs.CRS`), or ``None`` for a pixel grid.
        legend: the classes its tags/attributes declare (``None``: none declared, ids are discovered).
        pixel_area_m2: ground area of one pixel (the mean over rows for a geographic CRS), ``None`` without CRS.
        area_note: how the pixel area was found.
    """

    path: Path
    name: str
    data: Any
    transform: Any
    crs: Any
    legend: Legend | None
    pixel_area_m2: float | None
    area_note: str

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]


class _RasterBlocks:
    """Windowed reads of band 1 of a GeoTIFF, one open dataset per thread (rasterio handles are not thread-safe).

    A map that declares another nodata value than 0 (a GeoTIFF not written by geohsi: nodata 255,
    −1 or −9999) reads with its nodata pixels as 0, geohsi's nodata; such a map must not use 0 as a class.
    """

    def __init__(self, path: Path, shape: tuple[int, int], dtype: np.dtype, nodata: float | None = None) -> None:
        self.path, self.shape, self.dtype, self.ndim = path, shape, dtype, 2
        self.nodata = None if nodata is None or nodata == NODATA or not np.isfinite(nodata) else nodata
        self._local = threading.local()

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        from rasterio.windows import Window

        ds = getattr(self._local, "ds", None)
        if ds is None:
            import rasterio

            ds = self._local.ds = rasterio.open(self.path)
        rows, cols = key
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        block = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
        if self.nodata is None:
            return block
        if (block == NODATA).any():
            raise DataError(
                f"map {self.path} declares nodata {self.nodata:g} but also holds class id 0, which geohsi reads as "
                "nodata; write its classes as ids from 1 (0 = nodata)"
            )
        return np.where(block == self.nodata, NODATA, block).astype(block.dtype, copy=False)


def _pixel_area(crs: Any, transform: Any, shape: tuple[int, int]) -> tuple[float | None, str]:
    """One pixel's ground area (mean over rows for a geographic CRS) through :func:`geohsi.scene.grid_pixel_areas`."""
    from geohsi.scene import grid_pixel_areas

    areas, note = grid_pixel_areas(crs, transform, shape)
    return (None if areas is None else float(np.mean(areas))), note


def _open_tif(path: Path, chunks: int) -> tuple[Any, Any, Any, Legend | None]:
    import dask.array as da
    import rasterio

    try:
        with rasterio.open(path) as src:
            if src.count != 1 or np.dtype(src.dtypes[0]).kind not in "ui":
                raise InputFormatError(
                    f"{path} is not a class map (one band of integer class ids); give a map written by geohsi classify"
                )
            try:
                cmap = src.colormap(1)
            except ValueError:
                cmap = {}
            legend = Legend.from_geotiff(src.tags(), src.tags(1), cmap)
            shape, dtype, tf, crs, nodata = src.shape, np.dtype(src.dtypes[0]), src.transform, src.crs, src.nodata
    except rasterio.errors.RasterioIOError as e:
        raise InputFormatError(f"cannot read map {path} ({' '.join(str(e).split())[:120]}); check the path") from e
    data = da.from_array(
        _RasterBlocks(path, shape, dtype, nodata),
        chunks=(chunks, chunks),
        asarray=False,
        lock=False,
        meta=np.empty((0, 0), dtype),
    )
    return data, tf, crs, legend


def _open_zarr(path: Path, chunks: int) -> tuple[Any, Any, Any, Legend | None]:
    import xarray as xr

    from geohsi.scene import scene_crs, scene_transform

    try:
        ds = xr.open_zarr(path, decode_coords="all", mask_and_scale=False, consolidated=False)
        var = ds["classes"]
    except (OSError, KeyError, ValueError) as e:
        raise InputFormatError(f"{path} is not a geohsi map store ({type(e).__name__}); write one with 'geohsi classify'") from e
    legend = Legend.from_attrs(ds.attrs) or Legend.from_attrs(var.attrs)
    return var.data.rechunk((chunks, chunks)), scene_transform(ds), scene_crs(ds), legend


def open_map(path: str | os.PathLike, *, chunks: int = CHUNK) -> ClassMap:
    """Open a class map lazily (nothing but its metadata is read).

    Args:
        path: ``map.tif`` (GeoTIFF/COG) or ``map.zarr``.
        chunks: chunk edge of the reads, in pixels.

    Returns:
        The :class:`ClassMap`.

    Raises:
        InputFormatError: the path is missing or is not a single-band integer map.
    """
    p = Path(path)
    if not p.exists():
        raise InputFormatError(f"map {p} does not exist; give maps written by 'geohsi classify' (or --catalog maps/catalog.json)")
    data, tf, crs, legend = (_open_zarr if p.suffix.lower() == ".zarr" else _open_tif)(p, chunks)
    area, note = _pixel_area(crs, tf, tuple(data.shape))
    return ClassMap(p, p.name, data, tf, crs, legend, area, note)


__all__ = ["CHUNK", "ClassMap", "open_map"]
