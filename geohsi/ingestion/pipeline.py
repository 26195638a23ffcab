"""The ingest pipeline: sources (files, stores, URLs, STAC items) opened lazily → a checked scene → a Zarr store written atomically.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from geohsi.errors import GeohsiError, InputFormatError, OutputError, UsageError
from geohsi.files import check_not_an_input, check_output
from geohsi.ingestion.assembly import PathLike, build_scene, source_paths
from geohsi.scene import DEFAULT_CHUNK, check_bands, chosen_nodata, flag_empty_bands, write_scene
from geohsi.storage import as_path, display, is_url, local_copy


def _is_scene_store(p: Path) -> bool:
    """Whether ``p`` is a geohsi scene store (a Zarr v3 group written by :func:`geohsi.scene.write_scene`)."""
    import json

    meta = p / "zarr.json"
    if not (p.is_dir() and meta.is_file()):
        return False
    try:
        return "geohsi_scene_version" in json.loads(meta.read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False


def open_source(src: PathLike | Any, *, chunks: int = DEFAULT_CHUNK) -> xr.Dataset:
    """A scene to classify, read lazily in place: a scene store, any file :func:`ingest` reads, or a STAC item.

    No copy is made: a geohsi scene store is opened (:func:`geohsi.scene.open_scene`), a GeoTIFF /
    ENVI / NetCDF / MATLAB file or a foreign Zarr store is read by :func:`geohsi.io.read` (a source
    without CRS is a pixel grid), and a ``pystac.Item`` is read from its asset hrefs by
    :func:`geohsi.io.stac.build_item_scene`, as ``geohsi ingest --from-stac`` does.

    Args:
        src: a path, or a ``pystac.Item``.
        chunks: spatial chunk edge of the lazy read (pixels).

    Returns:
        The scene Dataset, cube lazy; ``encoding["source"]`` names it in messages (the path, or the
        item's self href or ``stac:ID``).

    Raises:
        InputFormatError: missing, unknown or unreadable source.
        GeoreferenceError / BandMismatchError: a STAC item that cannot be read as one scene.
    """
    from geohsi.scene import open_scene

    if hasattr(src, "assets") and hasattr(src, "properties"):  # a pystac.Item
        from geohsi.io.stac import build_item_scene

        ds = build_item_scene([src], chunks=chunks)
        self_href = src.get_self_href()  # without any token in its query: it names the scene in tags and items
        ds.encoding["source"] = display(self_href) if self_href else f"stac:{src.id}"
        return check_bands(ds)
    if is_url(src):
        return _open_url_source(str(src), chunks)
    p = Path(src)
    if not p.exists():
        raise InputFormatError(f"scene {p} does not exist; check the path (a scene store, or any file 'geohsi ingest' reads)")
    if _is_scene_store(p):
        return open_scene(p)
    return _read_in_place([p], str(p), chunks)


def _read_in_place(files: Sequence[Path], source: str, chunks: int) -> xr.Dataset:
    """Local files read lazily by :func:`geohsi.io.read` (tiles mosaicked), validated, ``source`` naming them."""
    from geohsi import io as gio
    from geohsi.scene import validate_scene

    ds = gio.read(list(files), chunks=chunks)
    validate_scene(ds)
    ds.encoding["source"] = source
    return check_bands(flag_empty_bands(ds, source))


def open_tiles(paths: Sequence[PathLike], *, chunks: int = DEFAULT_CHUNK) -> xr.Dataset:
    """GeoTIFF tiles of one grid read in place as one lazy mosaic (:mod:`geohsi.io.mosaic`), as ``geohsi ingest`` reads them.

    Args:
        paths: the tiles (local GeoTIFF files).
        chunks: spatial chunk edge of the lazy read (pixels).

    Returns:
        The mosaic scene; ``encoding["source"]`` names the tiles' directory (or their common parent).

    Raises:
        InputFormatError / GeoreferenceError: a tile cannot be read, or the tiles are not on one grid.
    """
    files = [Path(p) for p in paths]
    return _read_in_place(files, os.path.commonpath([str(f.resolve().parent) for f in files]), chunks)


def _open_url_source(url: str, chunks: int) -> xr.Dataset:
    """:func:`open_source` of a URL: a scene store or a GeoTIFF/COG read in place, other formats from a local copy.

    Scene stores are read chunk by chunk through fsspec and GeoTIFFs window by window through GDAL's
    virtual file systems, wherever the graph runs; ENVI, NetCDF and MATLAB files are downloaded once
    into the cache (:func:`geohsi.storage.local_copy`).
    """
    from geohsi import io as gio
    from geohsi.scene import open_scene, validate_scene
    from geohsi.storage import COMPLETE, display, exists, join

    if not exists(url):
        raise InputFormatError(
            f"scene {display(url)} does not exist; check the URL (a scene store, or any file 'geohsi ingest' reads)"
        )
    geotiff = url.split("?", 1)[0].lower().endswith((".tif", ".tiff"))
    if not geotiff and exists(join(url, COMPLETE)):
        return open_scene(url)  # a store geohsi uploaded whole
    if not geotiff and (exists(join(url, "zarr.json")) or exists(join(url, ".zgroup"))):
        raise InputFormatError(
            f"{display(url)} is a Zarr store without geohsi's {COMPLETE} marker: an upload that was interrupted "
            "(write it again with --overwrite) or a store another tool wrote (ingest a local copy with 'geohsi ingest')"
        )
    ds = gio.read([url if geotiff else local_copy(url, "scene")], chunks=chunks)
    validate_scene(ds)
    ds.encoding["source"] = display(url)
    return check_bands(ds)


def ingest(
    srcs: PathLike | Sequence[PathLike],
    out: PathLike,
    *,
    labels: PathLike | None = None,
    class_names: str | os.PathLike | Sequence[str] | None = None,
    class_colors: Sequence[str] | None = None,
    crs: Any = None,
    transform: Any = None,
    chunks: int = DEFAULT_CHUNK,
    overwrite: bool = False,
    var: str | None = None,
    label_var: str | None = None,
    sensor: str | None = None,
    wavelengths: Any = None,
    fwhm: Sequence[float] | None = None,
    units: str | None = None,
    band_axis: int | None = None,
    from_stac: str | None = None,
    collection: str | None = None,
    label_field: str | None = None,
    layer: str | None = None,
    all_touched: bool = False,
    nodata: float | str | None = None,
) -> Path:
    """Ingest source files, or STAC items, into a scene store (Zarr v3), atomically: what ``geohsi ingest`` runs.

    Args:
        srcs: one file/store, or several GeoTIFF tiles to mosaic; with ``from_stac``: item ids (or URLs), of one product.
        out: the output ``.zarr`` directory.
        labels: a class-id raster (``.mat``, GeoTIFF, ENVI; 0 and its nodata = unlabelled), cropped onto a georeferenced
            scene's grid (same CRS and pixel size), else of the scene's shape; or a vector file of polygons/points in any
            CRS (GeoPackage, GeoJSON, Shapefile, FlatGeobuf), rasterised from ``label_field`` (:mod:`geohsi.io.vector`).
        class_names: a file (one name per line, or CSV ``id,name[,#rrggbb]``) or a comma list / sequence.
        class_colors: ``#rrggbb`` per class (overrides colours from the file).
        crs: ``None`` keeps the source's CRS (a source without one is refused), ``"none"`` makes an explicit pixel
            grid, ``"EPSG:XXXX"`` (with ``transform``) georeferences a bare array.
        transform: ``"a,b,c,d,e,f"`` in affine order or ``"gdal:c,a,b,f,d,e"`` (see :func:`parse_transform`).
        chunks: spatial chunk edge in pixels (all bands are one chunk).
        overwrite: replace an existing store.
        var: the cube variable (MATLAB/NetCDF/Zarr).
        label_var: the label variable in a ``.mat`` labels file.
        sensor: sensor name stored in the scene attrs.
        wavelengths: band centres (nm) as a list, a comma string or a file (see :func:`parse_wavelengths`).
        fwhm: band widths (nm), same forms as ``wavelengths`` (overrides FWHM from a wavelength file).
        units: unit of the cube's values, stored in the scene attrs (e.g. "reflectance × 10000").
        band_axis: MATLAB axis holding the bands (default: last).
        from_stac: a STAC API URL or catalogue preset: ``srcs`` are items of it (:func:`ingest_item`).
        collection: the STAC collection holding the item ids.
        label_field: vector ``labels``: the attribute holding the class (names or integer ids).
        layer: vector ``labels``: the layer, when the file has several.
        all_touched: vector ``labels``: label every pixel a polygon touches (default: pixel centres inside).
        nodata: the stored value marking pixels without data, replacing the files' own (GeoTIFF tiles: also their
            transparent and gap value): a number, or ``"none"`` when a file's declared value is data; ``None``: theirs.

    Returns:
        The store path.

    Raises:
        InputFormatError: missing/unknown/unreadable inputs.
        GeoreferenceError: no CRS without ``crs``, mixed-CRS tiles, labels off the grid or of another shape.
        BandMismatchError: tiles with other band counts; wavelength count ≠ band count.
        OutputError: ``out`` exists without ``overwrite`` or cannot be written.
        UsageError: bad option values.
    """
    given = [srcs] if isinstance(srcs, (str, os.PathLike)) else list(srcs)
    if from_stac is not None or collection is not None:
        _refuse_for_stac(labels=labels, class_names=class_names, class_colors=class_colors, crs=crs, transform=transform,
                         wavelengths=wavelengths, fwhm=fwhm, units=units, var=var, label_var=label_var, band_axis=band_axis,
                         label_field=label_field, layer=layer, all_touched=all_touched or None, nodata=nodata)  # fmt: skip
        ids = [str(s) for s in given]
        return ingest_item(ids, out, url=from_stac, collection=collection, chunks=chunks, overwrite=overwrite, sensor=sensor)
    chosen_nodata(None, nodata)  # a bad --nodata is said before anything is read or downloaded
    check_not_an_input([as_path(out)], given)  # first: "pass --overwrite" must not be said of an input
    out_p = check_scene_out(out, overwrite)  # before reading anything (a URL source is downloaded below)
    paths = source_paths(srcs)
    ds = build_scene(paths, labels=labels, class_names=class_names, class_colors=class_colors, crs=crs, transform=transform,
                     chunks=chunks, var=var, label_var=label_var, sensor=sensor, wavelengths=wavelengths, fwhm=fwhm, units=units,
                     band_axis=band_axis, label_field=label_field, layer=layer, all_touched=all_touched, nodata=nodata)  # fmt: skip
    return _write_ingested(ds, out_p, chunks, overwrite)


def _write_ingested(ds: xr.Dataset, out: Path | str, chunks: int, overwrite: bool) -> Path:
    """Write the scene store; an OS error names the side that failed: reading an input or writing ``out``."""
    try:
        return write_scene(ds, out, chunks=chunks, overwrite=overwrite)
    except OSError as e:
        # write_scene has already removed its temporary store; say which side failed and why.
        fname = str(getattr(e, "filename", "") or "")
        if fname and isinstance(out, Path) and not fname.startswith(str(out.absolute().parent)):
            raise InputFormatError(f"cannot read {fname}: {e.strerror or e}; check the input") from e
        raise OutputError(f"cannot write {out}: {e.strerror or e}; choose a writable --out with free space") from e


def _refuse_for_stac(**options: Any) -> None:
    """Refuse the options a STAC item's own metadata replaces (``labels=...`` → ``--labels``)."""
    given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
    if given:
        raise UsageError(f"{', '.join(given)} do not apply to STAC items (their metadata comes from the item); drop them")


#: Suffixes of single files: a scene store (a Zarr directory) named so would look like one.
_FILE_SUFFIXES = (".tif", ".tiff", ".nc", ".h5", ".mat", ".img", ".hdr", ".json", ".png")


def check_scene_out(out: PathLike, overwrite: bool) -> Path | str:
    """``out`` of a scene store as a path (or URL), before any work.

    Raises:
        UsageError: it is named like a single file (``--out scene.tif`` had written a Zarr directory
            called ``scene.tif``).
        OutputError: a parent is a file, it exists without ``overwrite``, or it is a folder of other
            files (:func:`geohsi.files.check_output`).
    """
    suffix = os.path.splitext(str(out).rstrip("/"))[1].lower()
    if suffix in _FILE_SUFFIXES:
        raise UsageError(f"--out {display(out)} names a {suffix} file, but a scene is a Zarr store; name it SCENE.zarr")
    out_p = as_path(out)
    check_output(out_p, overwrite, directory=True)
    return out_p


def ingest_item(
    items: str | Any | Sequence[str | Any],
    out: PathLike,
    *,
    url: str | None = None,
    collection: str | None = None,
    assets: Sequence[str] | None = None,
    chunks: int = DEFAULT_CHUNK,
    overwrite: bool = False,
    sensor: str | None = None,
    quantity: str = "reflectance",
    timeout: float = 20.0,
) -> Path:
    """Ingest one or more STAC items (tiles of one product) into a scene store (Zarr v3), atomically.

    Args:
        items: item ids (with ``url``/``collection``), item URLs/files, or ``pystac.Item`` objects.
        out: the output ``.zarr`` directory.
        url: STAC API root URL or catalogue preset.
        collection: the collection holding the ids.
        assets: asset keys holding the bands (default: every spectral asset).
        chunks: spatial chunk edge in pixels.
        overwrite: replace an existing store.
        sensor: sensor name stored in the scene (default: the item's ``instruments``/``platform``).
        quantity: ``"reflectance"`` or ``"radiance"``.
        timeout: seconds per API request.

    Returns:
        The store path.

    Raises:
        InputFormatError / GeoreferenceError / BandMismatchError: see :func:`build_item_scene`.
        OutputError: ``out`` exists without ``overwrite`` or cannot be written.
    """
    from geohsi.catalog import DEFAULT_TIMEOUT as _  # noqa: F401  (pystac-client is importable)
    from geohsi.catalog import fetch_items
    from geohsi.io.stac import build_item_scene

    out_p = check_scene_out(out, overwrite)
    seq = [items] if isinstance(items, str) or not isinstance(items, (list, tuple)) else list(items)
    refs = [i for i in seq if isinstance(i, str)]
    fetched = iter(fetch_items(refs, url=url, collection=collection, timeout=timeout)) if refs else iter(())
    objs = [next(fetched) if isinstance(i, str) else i for i in seq]
    ds = check_bands(build_item_scene(objs, assets=assets, chunks=chunks, quantity=quantity), f"STAC item {objs[0].id}")
    if sensor:
        ds.attrs["sensor"] = sensor
    try:
        return write_scene(ds, out_p, chunks=chunks, overwrite=overwrite)
    except GeohsiError:
        raise
    except OSError as e:
        raise OutputError(f"cannot write {out_p}: {e.strerror or e}; choose a writable --out with free space") from e
