"""STAC items → scenes: band metadata from the STAC document, pixels read lazily straight from the asset hrefs.

Band metadata comes from STAC 1.1 ``bands`` (``eo:center_wavelength``, ``eo:full_width_half_max``,
``nodata``, ``data_type``, ``raster:scale``/``raster:offset``), or ``eo:bands`` (µm) +
``raster:bands`` (1.0 extensions). The grid comes from the projection extension (``proj:code``/
``proj:epsg``/``proj:wkt2``, ``proj:transform``, ``proj:shape``), else from the asset's header.
Pixels are read lazily with rasterio windowed reads from the asset hrefs (local paths,
``file://``, ``http(s)://`` through GDAL's /vsicurl/); several items (tiles of one product) are
mosaicked by :mod:`geohsi.io.mosaic`. Reading the files on their own grid (no warping) is what
makes the scene identical, value for value, to ``geohsi ingest`` of the same GeoTIFFs; odc-stac/
stackstac resample onto a GeoBox of their own choosing, which is the right tool for mixed grids
but not for an exact, reproducible ingest.

Finding items is :mod:`geohsi.catalog`'s job; this module only reads the items it is given.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np
import xarray as xr
from affine import Affine

from geohsi.bands import band_table_nm
from geohsi.errors import BandMismatchError, GeoreferenceError, InputFormatError, UsageError
from geohsi.io.mosaic import GridTile, TileMosaic, check_same_grid, gap_fill, union_grid
from geohsi.scene import DEFAULT_CHUNK, make_scene

_NETCDF_TYPES = ("application/x-netcdf", "application/netcdf", "application/x-hdf5", "application/x-hdf")


@dataclass(frozen=True)
class BandSource:
    """One scene band: where its pixels are and what they mean.

    Attributes:
        asset: the asset key. href: the asset's href. index: 1-based band within the asset file.
        name: band name. wavelength, fwhm: nm (NaN unknown). nodata/scale/offset/data_type: raster metadata.
    """

    asset: str
    href: str
    index: int
    name: str | None
    wavelength: float
    fwhm: float
    nodata: float | None
    scale: float | None
    offset: float | None
    data_type: str | None
    good: bool


def _number(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _asset_bands(item: Any, key: str, asset: Any) -> list[BandSource]:
    """Bands of one asset from STAC 1.1 ``bands`` or ``eo:bands`` + ``raster:bands``."""
    d = asset.to_dict() if hasattr(asset, "to_dict") else dict(asset)
    href = d["href"]
    if not urlparse(href).scheme and not os.path.isabs(href) and hasattr(asset, "get_absolute_href"):
        # only relative hrefs are resolved against the item; pystac would turn an absolute local path
        # into a path on the API's host
        href = asset.get_absolute_href() or href
    props = item.properties if hasattr(item, "properties") else item.get("properties", {})
    bands11 = d.get("bands")
    eo = d.get("eo:bands")
    raster = d.get("raster:bands")
    if bands11 is None and eo is None and raster is None:
        return []
    n = max(len(x) for x in (bands11, eo, raster) if x is not None)
    rows = [
        (
            bands11[i] if bands11 and i < len(bands11) else {},
            eo[i] if eo and i < len(eo) else {},
            raster[i] if raster and i < len(raster) else {},
        )
        for i in range(n)
    ]
    # the STAC eo extension gives centres and widths in µm
    nm = band_table_nm(
        [_number(b.get("eo:center_wavelength", e.get("center_wavelength"))) for b, e, _ in rows],
        [_number(b.get("eo:full_width_half_max", e.get("full_width_half_max"))) for b, e, _ in rows],
        units="um",
    )
    out = []
    for i, (b, e, r) in enumerate(rows):
        nodata = b.get("nodata", r.get("nodata", d.get("nodata", props.get("nodata"))))
        if isinstance(nodata, str):  # STAC allows "nan", "inf", "-inf"
            nodata = float(nodata)
        scale = b.get("raster:scale", r.get("scale"))
        offset = b.get("raster:offset", r.get("offset"))
        good = b.get("geohsi:good_band", e.get("geohsi:good_band", True))
        out.append(
            BandSource(
                asset=key,
                href=href,
                index=i + 1,
                name=b.get("name", e.get("name", r.get("name"))),
                wavelength=float(nm.wavelength[i]),
                fwhm=float(nm.fwhm[i]),
                nodata=None if nodata is None else float(nodata),
                scale=None if scale is None else float(scale),
                offset=None if offset is None else float(offset),
                data_type=b.get("data_type", r.get("data_type", d.get("data_type"))),
                good=bool(good),
            )
        )
    return out


def _item_level_bands(item: Any, asset: Any) -> dict[str, Any]:
    """An asset as a dict with the item's ``eo:bands`` (and the item's ``raster:bands`` where the asset has none),
    its href absolute (a relative href is relative to the item)."""
    d = {**asset.to_dict(), "eo:bands": item.properties["eo:bands"]}
    if "raster:bands" not in d and item.properties.get("raster:bands") is not None:
        d["raster:bands"] = item.properties["raster:bands"]
    if not urlparse(d["href"]).scheme and not os.path.isabs(d["href"]):
        d["href"] = asset.get_absolute_href() or d["href"]
    return d


def spectral_bands(item: Any, assets: Sequence[str] | None = None) -> list[BandSource]:
    """The spectral bands of an item in scene order (asset order, then band order within an asset).

    Args:
        item: a ``pystac.Item``.
        assets: asset keys to use; default: every asset whose bands carry a centre wavelength.

    Returns:
        One :class:`BandSource` per band.

    Raises:
        InputFormatError: no spectral metadata, a netCDF/HDF swath asset, or an unknown asset key.
    """
    for key, a in item.assets.items():
        mt = (a.media_type or "").lower()
        netcdf = any(t in mt for t in _NETCDF_TYPES) or a.href.lower().endswith((".nc", ".nc4", ".h5", ".he5"))
        if (
            (assets is None or key in assets)
            and netcdf
            and ("data" in (a.roles or []) or assets is not None or len(item.assets) == 1)
        ):
            raise InputFormatError(
                f"item {item.id} asset {key!r} is netCDF/HDF ({a.href.rsplit('/', 1)[-1]}), e.g. an EMIT swath that needs its GLT "
                "to be orthorectified; STAC ingest reads GeoTIFF/COG assets only — download and orthorectify it, then 'geohsi ingest FILE'"
            )
    keys = list(item.assets) if assets is None else list(assets)
    missing = [k for k in keys if k not in item.assets]
    if missing:
        raise InputFormatError(f"item {item.id} has no asset {missing[0]!r} (assets: {', '.join(item.assets)}); fix --assets")
    bands: list[BandSource] = []
    for k in keys:
        ab = _asset_bands(item, k, item.assets[k])
        if assets is None:
            ab = ab if ab and all(math.isfinite(b.wavelength) for b in ab) else []
        bands.extend(ab)
    if not any(math.isfinite(b.wavelength) for b in bands) and "eo:bands" in item.properties and len(keys) >= 1:
        # STAC 1.0 items may list eo:bands on the item for a single data asset (its raster:bands stay its own)
        data = [k for k in keys if "data" in (item.assets[k].roles or [])] or keys[:1]
        if len(data) == 1:
            bands = _asset_bands(item, data[0], _item_level_bands(item, item.assets[data[0]]))
    if not bands or not any(math.isfinite(b.wavelength) for b in bands):
        raise InputFormatError(
            f"item {item.id} has no spectral band metadata (no asset with bands/eo:bands giving center wavelengths); "
            "it cannot become a hyperspectral scene — pick a spectral item or ingest the file with --wavelengths"
        )
    return bands


# --------------------------------------------------------------------------- grid


@dataclass(frozen=True)
class _Tile:
    item_id: str
    crs: Any
    transform: Affine
    height: int
    width: int
    dtype: str
    bands: tuple[BandSource, ...]


def _gdal_path(href: str) -> str:
    u = urlparse(href)
    if u.scheme == "file":
        return u.path
    return href  # local path, or http(s)/s3 URLs that rasterio hands to GDAL's virtual file systems


def _tile(item: Any, bands: list[BandSource]) -> _Tile:
    import rasterio
    from rasterio.crs import CRS

    first = item.assets[bands[0].asset].to_dict()
    props = item.properties
    _check_asset_grids(item, bands)

    def get(key: str) -> Any:
        return first.get(key, props.get(key))

    code = get("proj:code") or (f"EPSG:{get('proj:epsg')}" if get("proj:epsg") else None)
    wkt = get("proj:wkt2") or get("proj:projjson")
    tf, shape = get("proj:transform"), get("proj:shape")
    dtypes = {b.data_type for b in bands}
    crs = None
    try:
        if code:
            crs = CRS.from_user_input(code)
        elif wkt:
            crs = CRS.from_user_input(wkt)
    except Exception as e:
        raise GeoreferenceError(
            f"item {item.id} has an unreadable proj CRS {code or 'wkt2'} ({e}); fix the item's projection fields"
        ) from e
    if crs is None or tf is None or shape is None or None in dtypes or len(dtypes) > 1:
        # the item does not say everything: read the asset's header (no pixels)
        try:
            with rasterio.open(_gdal_path(bands[0].href)) as src:
                crs = crs or src.crs
                tf = tf or list(src.transform)[:6]
                shape = shape or [src.height, src.width]
                header_dtype = src.dtypes[0]
        except Exception as e:
            raise InputFormatError(
                f"cannot read asset {bands[0].href} of item {item.id}: {' '.join(str(e).split())[:150]}; check the href"
            ) from e
        if None in dtypes:
            dtypes = {header_dtype}
    if crs is None:
        raise GeoreferenceError(
            f"item {item.id} has no CRS (no proj:code/proj:epsg and none in the asset); it cannot be placed on a map grid"
        )
    if len(dtypes) > 1:
        raise BandMismatchError(f"item {item.id} mixes band data types {sorted(dtypes)}; geohsi scenes hold one data type")
    t = Affine(*[float(v) for v in list(tf)[:6]])
    if t.b != 0 or t.d != 0:
        raise GeoreferenceError(f"item {item.id} has a rotated/sheared grid; warp it to north-up first (gdalwarp)")
    return _Tile(item.id, crs, t, int(shape[0]), int(shape[1]), str(dtypes.pop()), tuple(bands))


def _check_asset_grids(item: Any, bands: list[BandSource]) -> None:
    """Refuse assets whose declared grids (``proj:shape``/``proj:transform``) differ: one scene has one grid."""
    keys = list(dict.fromkeys(b.asset for b in bands))
    grids = {k: tuple(tuple(item.assets[k].to_dict().get(f) or ()) for f in ("proj:shape", "proj:transform")) for k in keys}
    declared = {k: g for k, g in grids.items() if all(g)}
    first = next(iter(declared), None)
    other = next((k for k in declared if declared[k] != declared[first]), None)
    if other is not None:
        raise GeoreferenceError(
            f"item {item.id}: assets {first!r} and {other!r} lie on different grids (proj:shape {list(declared[first][0])} vs "
            f"{list(declared[other][0])}); choose assets of one resolution with --assets"
        )


def _grid_tile(t: _Tile) -> GridTile:
    return GridTile(f"item {t.item_id}", t.transform, t.height, t.width, tuple((_gdal_path(b.href), b.index) for b in t.bands))


def _one(values: set, what: str, item_id: str, fix: str) -> Any:
    if len(values) > 1:
        raise BandMismatchError(f"item {item_id} has several {what} values {sorted(values, key=str)[:4]}; {fix}")
    return values.pop() if values else None


def _check_tiles(tiles: list[_Tile]) -> None:
    """Raise unless every tile shares the first tile's CRS, pixel grid, bands and dtype."""
    ref = tiles[0]
    for t in tiles[1:]:
        if t.crs != ref.crs:
            raise GeoreferenceError(
                f"item {t.item_id} is in {t.crs} but {ref.item_id} in {ref.crs}; ingest items of one CRS (one UTM zone)"
            )
        check_same_grid(_grid_tile(ref), _grid_tile(t))
        if len(t.bands) != len(ref.bands) or not np.allclose(
            [b.wavelength for b in t.bands], [b.wavelength for b in ref.bands], equal_nan=True
        ):
            raise BandMismatchError(f"item {t.item_id} has other bands than {ref.item_id}; mosaic items of one product")
        if t.dtype != ref.dtype:
            raise BandMismatchError(
                f"item {t.item_id} is {t.dtype} but {ref.item_id} is {ref.dtype}; mosaic items of one product"
            )


def _raster_values(ref: _Tile) -> tuple[Any, Any, Any]:
    """``(nodata, scale, offset)`` shared by the bands of a tile (None where unset)."""
    bands = ref.bands
    nodata = _one({b.nodata for b in bands if b.nodata is not None}, "nodata", ref.item_id, "geohsi scenes take one nodata value")
    for what, values in (("raster scale", [b.scale for b in bands]), ("raster offset", [b.offset for b in bands])):
        if any(v is None for v in values) and any(v is not None for v in values):
            raise BandMismatchError(
                f"item {ref.item_id} gives a {what} for some bands only; rescale the product first or fix its raster:bands"
            )
    scale = _one(
        {b.scale for b in bands if b.scale is not None},
        "raster scale",
        ref.item_id,
        "per-band scales are not supported; rescale the product first",
    )
    offset = _one(
        {b.offset for b in bands if b.offset is not None},
        "raster offset",
        ref.item_id,
        "per-band offsets are not supported; rescale the product first",
    )
    return nodata, scale, offset


def _item_attrs(items: list[Any], tiles: list[_Tile]) -> dict[str, Any]:
    """Scene attributes from the items: source files, item ids, acquisition time and sensor."""
    first = items[0]
    attrs: dict[str, Any] = {
        "source_files": sorted({b.href for t in tiles for b in t.bands}),
        "source_format": "stac",
        "stac_items": [it.id for it in items],
    }
    when = first.datetime or first.common_metadata.start_datetime
    if when is not None:
        attrs["acquisition_time"] = when.isoformat()
    sensor = first.properties.get("instruments") or first.properties.get("platform")
    if sensor:
        attrs["sensor"] = sensor if isinstance(sensor, str) else ",".join(sensor)
    return attrs


def build_item_scene(
    items: Any | Sequence[Any], *, assets: Sequence[str] | None = None, chunks: int = DEFAULT_CHUNK, quantity: str = "reflectance"
) -> xr.Dataset:
    """One or more STAC items (tiles of one product) → a lazy scene Dataset.

    Args:
        items: ``pystac.Item`` objects; several are mosaicked onto the union of their grids
            (later items win where tiles overlap), uncovered pixels are nodata.
        assets: asset keys holding the bands (default: every asset with spectral band metadata);
            one multi-band asset or one asset per band.
        chunks: spatial chunk edge in pixels of the lazy cube.
        quantity: ``"reflectance"`` or ``"radiance"``.

    Returns:
        The scene ``[B, H, W]`` in the assets' dtype (one wider where assets without nodata leave gaps:
        :func:`~geohsi.io.mosaic.gap_dtype`) with wavelength/fwhm (nm), nodata, scale/offset,
        CRS and transform from the items.

    Raises:
        InputFormatError: no spectral metadata, netCDF swath assets, unreadable assets.
        GeoreferenceError: tiles in different CRSs, resolutions or off one pixel grid; no CRS.
        BandMismatchError: tiles with other bands; several nodata/scale values in one item.
    """
    from dask.base import tokenize

    from geohsi.io.lazy import lazy_cube

    items = [items] if not isinstance(items, (list, tuple)) else list(items)
    if not items:
        raise UsageError("no STAC items given; pass at least one item id or URL")
    tiles = [_tile(it, spectral_bands(it, assets)) for it in items]
    ref = tiles[0]
    _check_tiles(tiles)
    bands = ref.bands
    nodata, scale, offset = _raster_values(ref)
    grid = [_grid_tile(t) for t in tiles]
    transform, height, width = union_grid(grid)
    dtype = np.dtype(ref.dtype)
    if nodata is None:  # gaps get a value no tile holds (the mosaic widened where needed)
        dtype, nodata = gap_fill(grid, transform, height, width, dtype)
    mosaic = TileMosaic(grid, transform, height, width, dtype, nodata, hint="check the href")
    token = tokenize(
        [(it.id, it.properties.get("updated"), [(b.href, b.index) for b in t.bands]) for it, t in zip(items, tiles, strict=True)],
        chunks,
    )
    arr = lazy_cube(mosaic, (-1, chunks, chunks), f"stac-{token}")
    attrs = _item_attrs(items, tiles)
    names = [b.name for b in bands]
    return make_scene(
        arr,
        var=quantity,
        wavelength=[b.wavelength for b in bands],
        fwhm=[b.fwhm for b in bands],
        good_band=[b.good for b in bands],
        crs=ref.crs,
        transform=transform,
        nodata=nodata,
        scale_factor=scale if scale not in (None, 1.0) else None,
        add_offset=offset if offset not in (None, 0.0) else None,
        band_names=names if all(names) else None,
        attrs=attrs,
    )


__all__ = ["BandSource", "build_item_scene", "spectral_bands"]
