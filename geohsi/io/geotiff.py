"""GeoTIFF reader: one file, or many tiles mosaicked onto one grid.

Tiles must share CRS, pixel size, band count, dtype and grid alignment (their origins differ by
whole pixels); the mosaic (:mod:`geohsi.io.mosaic`) covers the union of their bounds and pixels
no tile covers are nodata. Where tiles overlap, the later tile in the given order wins. Each Dask
block reads only the windows of the tiles it overlaps (rasterio windowed reads), so the mosaic streams.

Band metadata follows EnMAP/GDAL: per-band tags ``wavelength``, ``fwhm``, ``bbl`` and
``wavelength_units`` (default domain), else GDAL's ``IMAGERY`` domain (``CENTRAL_WAVELENGTH_UM``,
``FWHM_UM``); otherwise wavelengths are parsed from band descriptions such as "band 1 (418.24 Nanometers)". Dataset tags ``start_time`` or ``TIFFTAG_DATETIME`` give
the acquisition time.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError

from geohsi.bands import band_table_nm
from geohsi.errors import BandMismatchError, GeoreferenceError, InputFormatError
from geohsi.io.envi import band_names_unit, wavelengths_from_band_names
from geohsi.io.lazy import file_token, lazy_cube
from geohsi.io.mosaic import GridTile, TileMosaic, check_same_grid, gap_fill, union_grid
from geohsi.scene import chosen_nodata, make_scene


@dataclass(frozen=True)
class TileInfo:
    """What the mosaic needs to know about one GeoTIFF."""

    path: str
    crs: CRS | None
    transform: Affine
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    wavelength: np.ndarray | None
    fwhm: np.ndarray | None
    good_band: np.ndarray | None
    band_names: tuple[str, ...] | None
    scale: float | None
    offset: float | None
    tags: dict[str, str]


def _band_floats(tags: list[dict[str, str]], key: str) -> np.ndarray | None:
    if not all(key in t for t in tags):
        return None
    try:
        return np.asarray([float(t[key]) for t in tags], dtype="float64")
    except ValueError:
        return None


def _band_table(
    tags: list[dict[str, str]], descriptions: list[str], units: str | None, imagery: list[dict[str, str]] | None = None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(centres, widths)`` in nm (``None`` where the file gives none) from per-band ``wavelength``/``fwhm``
    tags, else GDAL's ``IMAGERY`` domain (``CENTRAL_WAVELENGTH_UM``/``FWHM_UM``: what GDAL ≥ 3.10 writes,
    e.g. converting ENVI, which had lost the widths or the whole table), else centres from band
    descriptions such as "band 1 (418.24 Nanometers)" (widths then in the descriptions' unit unless a
    ``wavelength_units`` tag states one)."""
    wl, fwhm, fwhm_units = _band_floats(tags, "wavelength"), _band_floats(tags, "fwhm"), units
    im_wl, im_fwhm = _band_floats(imagery or [{}], "CENTRAL_WAVELENGTH_UM"), _band_floats(imagery or [{}], "FWHM_UM")
    if fwhm is None and im_fwhm is not None:
        fwhm, fwhm_units = im_fwhm, "um"
    if wl is None and im_wl is not None:
        table = band_table_nm(im_wl, fwhm, units="um", fwhm_units=fwhm_units or "um")
    elif wl is None and all(descriptions) and (wl := wavelengths_from_band_names(descriptions)) is not None:
        table = band_table_nm(wl, fwhm, units="nm", fwhm_units=fwhm_units or band_names_unit(descriptions))
    else:
        table = band_table_nm(wl, fwhm, units=units, fwhm_units=fwhm_units)
    return table.wavelength, table.fwhm


def inspect(path: str | os.PathLike) -> TileInfo:
    """Read a GeoTIFF's header (grid, CRS, bands, nodata, band tags) without its pixels.

    Raises:
        InputFormatError: the file is missing or not a readable raster.
    """
    from geohsi.storage import as_path, display, exists, open_raster, redact

    p = as_path(path)
    if not exists(p):
        raise InputFormatError(f"input {display(p)} does not exist; check the path")
    try:
        with open_raster(p) as src:
            tags = [src.tags(i) for i in range(1, src.count + 1)]
            units = next((t.get("wavelength_units") for t in tags if t.get("wavelength_units")), None)
            descr = tuple(d or "" for d in src.descriptions)
            imagery = [src.tags(i, ns="IMAGERY") for i in range(1, src.count + 1)]
            wl, fwhm = _band_table(tags, list(descr), units, imagery)
            bbl = _band_floats(tags, "bbl")
            scales, offsets = set(src.scales), set(src.offsets)
            if len(scales) > 1 or len(offsets) > 1:
                raise InputFormatError(
                    f"{display(p)} has a scale or offset per band; geohsi applies one to the whole cube: unscale it first "
                    "(gdal_translate -unscale -ot Float32)"
                )
            if len(set(src.dtypes)) != 1:
                raise InputFormatError(f"{display(p)} mixes band data types {sorted(set(src.dtypes))}; convert it to one type")
            return TileInfo(
                path=str(p),
                crs=src.crs,
                transform=src.transform,
                width=src.width,
                height=src.height,
                count=src.count,
                dtype=src.dtypes[0],
                nodata=src.nodata,
                wavelength=wl,
                fwhm=fwhm,
                good_band=None if bbl is None else bbl != 0,
                band_names=descr if all(descr) else None,
                scale=scales.pop() if len(scales) == 1 else None,
                offset=offsets.pop() if len(offsets) == 1 else None,
                tags=dict(src.tags()),
            )
    except RasterioError as e:
        raise InputFormatError(f"cannot read {display(p)} as a GeoTIFF: {redact(str(e))}; check the file") from e


def _check_tiles(tiles: list[TileInfo]) -> None:
    """Refuse tiles that cannot share one grid, naming the first offending tile."""
    ref = tiles[0]
    name0 = Path(ref.path).name
    for t in tiles:
        tf = t.transform
        if tf.b != 0 or tf.d != 0:
            raise GeoreferenceError(f"{t.path} has a rotated/sheared grid; warp it to north-up first (gdalwarp)")
    for t in tiles[1:]:
        if (ref.crs is None) != (t.crs is None) or (ref.crs is not None and ref.crs != t.crs):
            raise GeoreferenceError(
                f"tile {t.path} has CRS {t.crs.to_string() if t.crs else None} but {name0} has "
                f"{ref.crs.to_string() if ref.crs else None}; reproject the tiles to one CRS (gdalwarp -t_srs)"
            )
        check_same_grid(_grid_tile(ref), _grid_tile(t))
        if t.count != ref.count:
            raise BandMismatchError(f"tile {t.path} has {t.count} bands but {name0} has {ref.count}; mosaic tiles of one product")
        if t.dtype != ref.dtype:
            raise BandMismatchError(f"tile {t.path} is {t.dtype} but {name0} is {ref.dtype}; convert the tiles to one data type")
        if (ref.wavelength is None) != (t.wavelength is None) or (
            ref.wavelength is not None and not np.allclose(ref.wavelength, t.wavelength, equal_nan=True)
        ):
            raise BandMismatchError(f"tile {t.path} has other band wavelengths than {name0}; mosaic tiles of one product")
        if (t.scale, t.offset) != (ref.scale, ref.offset):
            raise BandMismatchError(
                f"tile {t.path} has scale/offset {t.scale}/{t.offset} but {name0} has {ref.scale}/{ref.offset}; "
                "unscale the tiles first (gdal_translate -unscale -ot Float32)"
            )
        if t.nodata != ref.nodata and not (
            t.nodata is not None and ref.nodata is not None and np.isnan(t.nodata) and np.isnan(ref.nodata)
        ):
            raise BandMismatchError(
                f"tile {t.path} has nodata {t.nodata} but {name0} has {ref.nodata}; give the tiles one nodata value"
            )


def _grid_tile(t: TileInfo) -> GridTile:
    return GridTile(t.path, t.transform, t.height, t.width, tuple((t.path, i) for i in range(1, t.count + 1)))


def read(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    chunks: int = 256,
    quantity: str = "reflectance",
    nodata: float | str | None = None,
) -> xr.Dataset:
    """Read one GeoTIFF, or mosaic several tiles onto the union of their bounds, lazily.

    Args:
        paths: one file or a list of tiles.
        chunks: spatial chunk edge in pixels of the lazy cube.
        quantity: ``"reflectance"`` or ``"radiance"``.
        nodata: the value marking pixels without data, replacing the tiles' (where a tile holds it, an overlapped
            tile shows, and gaps hold it): a number, or ``"none"`` for none (``None``: the tiles' own;
            :func:`geohsi.scene.chosen_nodata`).

    Returns:
        The scene Dataset ``[B, H, W]`` in the tiles' dtype (one wider where tiles that define no
        nodata leave gaps: :func:`~geohsi.io.mosaic.gap_dtype`); wavelengths/FWHM (nm) and ``good_band``
        from band tags; nodata from the tiles (or the gaps' value); acquisition time from dataset tags.

    Raises:
        InputFormatError: a file is missing or unreadable.
        GeoreferenceError: tiles differ in CRS or pixel size, are off one grid, or are rotated.
        BandMismatchError: tiles differ in band count, dtype, wavelengths or nodata.
    """
    from geohsi.storage import absolute, as_path

    plist = [as_path(paths)] if isinstance(paths, (str, os.PathLike)) else [as_path(p) for p in paths]
    tiles = [inspect(p) for p in plist]
    if nodata is not None:  # the user's value replaces each tile's, so tiles that disagreed agree
        tiles = [replace(t, nodata=chosen_nodata(t.nodata, nodata)) for t in tiles]
    _check_tiles(tiles)
    ref = tiles[0]
    grid = [_grid_tile(t) for t in tiles]
    transform, height, width = union_grid(grid)
    dtype, fill = (np.dtype(ref.dtype), ref.nodata)
    if fill is None:  # gaps get a value no tile holds (the mosaic widened where needed)
        dtype, fill = gap_fill(grid, transform, height, width, dtype)
    mosaic = TileMosaic(grid, transform, height, width, dtype, fill)
    arr = lazy_cube(mosaic, (-1, chunks, chunks), f"geotiff-{file_token(*plist, extra=(chunks,))}")
    attrs: dict[str, Any] = {"source_files": [absolute(p) for p in plist], "source_format": "geotiff"}
    when = ref.tags.get("start_time") or ref.tags.get("TIFFTAG_DATETIME") or ref.tags.get("acquisition_time")
    if when:
        attrs["acquisition_time"] = when
    if ref.tags.get("sensor"):
        attrs["sensor"] = ref.tags["sensor"]
    return make_scene(
        arr,
        var=quantity,
        wavelength=ref.wavelength,
        fwhm=ref.fwhm,
        good_band=ref.good_band,
        crs=ref.crs,
        transform=transform if ref.crs is not None else None,
        nodata=fill,
        scale_factor=ref.scale if ref.scale not in (None, 1.0) else None,
        add_offset=ref.offset if ref.offset not in (None, 0.0) else None,
        band_names=ref.band_names,
        attrs=attrs,
    )


__all__ = ["TileInfo", "inspect", "read"]
