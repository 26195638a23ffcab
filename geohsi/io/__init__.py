"""Readers: files → the scene Dataset form of :func:`geohsi.scene.make_scene`.

One module per format, each with ``read(path, ...) -> xr.Dataset``:

* :mod:`geohsi.io.envi` — ENVI ``.hdr`` + BSQ/BIL/BIP raw data (memory-mapped);
* :mod:`geohsi.io.geotiff` — one GeoTIFF or many tiles mosaicked onto one grid (windowed reads);
* :mod:`geohsi.io.matlab` — MATLAB ``.mat`` v5 (scipy) and v7.3 (h5py);
* :mod:`geohsi.io.netcdf` — NetCDF and existing Zarr stores (xarray);
* :mod:`geohsi.io.lazy` — what they share: the lazy Dask cube over a windowed reader.

:func:`read` picks the reader from the extension and, where the extension says nothing, from the
file's first bytes. Every reader is lazy: the cube is a Dask array whose blocks read their window
of the file on demand, so a scene larger than memory streams into Zarr chunk by chunk.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from geohsi.bands import wavelength_to_nm
from geohsi.errors import InputFormatError, UsageError
from geohsi.io.lazy import file_token, lazy_cube

#: format name → reader module under geohsi.io
FORMATS: dict[str, str] = {
    "envi": "geohsi.io.envi",
    "geotiff": "geohsi.io.geotiff",
    "matlab": "geohsi.io.matlab",
    "netcdf": "geohsi.io.netcdf",
    "zarr": "geohsi.io.netcdf",
}

_EXTENSIONS: dict[str, str] = {
    ".hdr": "envi",
    ".tif": "geotiff",
    ".tiff": "geotiff",
    ".gtif": "geotiff",
    ".mat": "matlab",
    ".nc": "netcdf",
    ".nc4": "netcdf",
    ".cdf": "netcdf",
    ".h5": "netcdf",
    ".he5": "netcdf",
    ".zarr": "zarr",
}


def _sniff(path: Path) -> str | None:
    """Guess a format from a file's first bytes (``None`` when unknown)."""
    if path.is_dir():
        if (path / "zarr.json").is_file() or (path / ".zgroup").is_file() or (path / ".zarray").is_file():
            return "zarr"
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except OSError as e:
        raise InputFormatError(f"cannot read {path}: {e.strerror}; check the path and its permissions") from e
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "geotiff"
    if head.startswith(b"MATLAB"):
        return "matlab"
    if head.startswith(b"ENVI"):
        return "envi"
    if head[:3] == b"CDF" or head[:8] == b"\x89HDF\r\n\x1a\n":
        return "netcdf"
    return None


def detect_format(path: str | os.PathLike) -> str:
    """Name the reader for ``path``: extension first, then an ENVI header beside it, then magic bytes.

    Args:
        path: a file, or a directory holding a Zarr store.

    Returns:
        One of :data:`FORMATS`.

    Raises:
        InputFormatError: the file is missing or its format is not recognised.
    """
    from geohsi.storage import display, exists, is_url

    if is_url(path):
        if not exists(path):
            raise InputFormatError(f"input {display(path)} does not exist; check the URL")
        if str(path).split("?", 1)[0].lower().endswith((".tif", ".tiff")):
            return "geotiff"
        raise InputFormatError(f"{display(path)}: only GeoTIFF/COG URLs are read in place; read other formats from a local copy")
    p = Path(path)
    if not p.exists():
        raise InputFormatError(f"input {p} does not exist; check the path")
    ext = p.suffix.lower()
    if ext in _EXTENSIONS and (ext != ".zarr" or p.is_dir()):
        fmt = _EXTENSIONS[ext]
        # A .mat that is really HDF5 etc. is still MATLAB (v7.3); trust the extension otherwise.
        return fmt
    if p.is_file():
        # ENVI raw data: "X.hdr" or "X.ext → X.hdr" beside it.
        from geohsi.io.envi import find_header

        if find_header(p, required=False) is not None:
            return "envi"
    fmt = _sniff(p)
    if fmt is None:
        known = ", ".join(sorted(_EXTENSIONS))
        raise InputFormatError(
            f"unknown format for {p}; give an ENVI header/raw pair, GeoTIFF, NetCDF, Zarr or MATLAB file "
            f"({known}) or name the format with fmt="
        )
    return fmt


def read(
    path_or_paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    fmt: str | None = None,
    var: str | None = None,
    chunks: int = 256,
    **kwargs: Any,
) -> xr.Dataset:
    """Read one scene (several GeoTIFF tiles are mosaicked onto one grid).

    Args:
        path_or_paths: a file/store, or a list of files (GeoTIFF tiles only).
        fmt: force a format (``envi``, ``geotiff``, ``matlab``, ``netcdf``, ``zarr``); detected when ``None``.
        var: the variable holding the cube (MATLAB, NetCDF, Zarr); auto-detected when ``None``.
        chunks: spatial chunk edge in pixels of the lazy cube (all bands are one chunk).
        **kwargs: passed to the reader (e.g. ``band_axis`` for MATLAB/NetCDF, ``quantity``, ``nodata``).

    Returns:
        The scene Dataset (lazy, Dask-backed).

    Raises:
        InputFormatError: missing file, unknown format, or unreadable content.
        UsageError: several inputs of a format that cannot be mosaicked, or an unknown ``fmt``.
    """
    import importlib

    from geohsi.storage import as_path

    single = isinstance(path_or_paths, (str, os.PathLike))
    paths = [as_path(path_or_paths)] if single else [as_path(p) for p in path_or_paths]
    if not paths:
        raise UsageError("no input files given; pass at least one SRC")
    if fmt is not None and fmt.lower() not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {sorted(FORMATS)}")
    fmts = [fmt.lower() if fmt else detect_format(p) for p in paths]
    if len(set(fmts)) > 1:
        mixed = ", ".join(f"{Path(str(p)).name} ({f})" for p, f in zip(paths, fmts, strict=True))
        raise UsageError(f"inputs mix formats: {mixed}; ingest one format at a time")
    kind = fmts[0]
    if kwargs.get("band_axis") is not None and kind not in ("matlab", "netcdf", "zarr"):
        raise UsageError(f"--band-axis orders the axes of MATLAB/NetCDF/Zarr arrays; {paths[0]} is {kind}: drop it")
    if chunks <= 0:
        raise UsageError(f"--chunks must be a positive pixel count, got {chunks}")
    module = importlib.import_module(FORMATS[kind])
    if kind == "geotiff":
        return module.read(paths, chunks=chunks, **kwargs)
    if len(paths) > 1:
        raise UsageError(
            f"{len(paths)} {kind} inputs given; only GeoTIFF tiles can be mosaicked, ingest the others one per scene"
        )
    if kind in ("matlab", "netcdf", "zarr"):
        kwargs["var"] = var
    elif var is not None:
        raise UsageError(f"--var names a variable inside MATLAB/NetCDF/Zarr files; {paths[0]} is {kind}")
    return module.read(paths[0], chunks=chunks, **kwargs)


def read_labels(path: str | os.PathLike, *, var: str | None = None, fmt: str | None = None) -> xr.Dataset:
    """Read a class-id raster as a one-band scene (its grid and CRS kept for alignment).

    Args:
        path: a ``.mat`` (2-D variable), GeoTIFF or ENVI file of integer class ids (0 = unlabelled).
        var: the MATLAB/NetCDF variable holding the labels; auto-detected when ``None``.
        fmt: force a format.

    Returns:
        A scene Dataset whose cube has one band ``[1, H, W]``.

    Raises:
        InputFormatError: missing/unknown file, or no 2-D label variable / more than one band.
    """
    p = Path(path)
    kind = fmt.lower() if fmt else detect_format(p)
    if kind == "matlab":
        from geohsi.io.matlab import read_labels as read_mat_labels

        return read_mat_labels(p, var=var)
    ds = read(p, fmt=kind, var=var) if kind in ("netcdf", "zarr") else read(p, fmt=kind)
    from geohsi.scene import cube

    nb = cube(ds).sizes["band"]
    if nb != 1:
        raise InputFormatError(f"labels {p} have {nb} bands; give a single-band class-id raster")
    return ds


__all__ = ["FORMATS", "detect_format", "file_token", "lazy_cube", "read", "read_labels", "wavelength_to_nm"]
