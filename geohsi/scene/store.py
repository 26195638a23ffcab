"""Scene stores: writing and opening a scene as Zarr v3 (local or object storage), damaged chunks named.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from geohsi.errors import InputFormatError
from geohsi.files import atomic_output, joined_dask_threads
from geohsi.scene.schema import DEFAULT_CHUNK, data_var_name, rechunk_scene, validate_scene


def cube_compressor() -> Any:
    """The codec of a scene store's cube: Blosc LZ4 over bit-shuffled values.

    On the shared real scenes it stores the cube smaller than zarr's default (zstd), or within 0.3 %
    of it (the EnMAP mosaic), and reads it 1.2–2.4× faster on one thread (``python -m benchmarks store-codecs``,
    docs/performance.md); every chunk a map or a training epoch reads is decompressed, so the read
    speed counts more than the last few percent of size. The other variables keep zarr's default.

    .. versionadded:: 0.3
    """
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")


def write_scene(ds: xr.Dataset, path: str | os.PathLike, *, chunks: int = DEFAULT_CHUNK, overwrite: bool = False) -> Path | str:
    """Write a scene to a Zarr v3 store atomically (temporary name, then rename).

    The cube streams chunk by chunk from its (lazy) source, so scenes larger than memory work, and
    is compressed with :func:`cube_compressor`.

    Args:
        ds: the scene.
        path: the output ``.zarr`` directory.
        chunks: spatial chunk edge in pixels.
        overwrite: replace an existing store.

    Returns:
        The store path.

    Raises:
        OutputError: the store exists without ``overwrite`` or cannot be written.
    """
    validate_scene(ds)
    ds = rechunk_scene(ds, chunks)
    for name in ds.variables:
        ds[name].encoding = {}
        if "_FillValue" not in ds[name].attrs:
            # without a nodata value, say so: xarray would otherwise write a NaN fill value that reads back as nodata
            ds[name].encoding["_FillValue"] = None
    ds[data_var_name(ds)].encoding["compressors"] = [cube_compressor()]
    from geohsi.storage import as_path

    with atomic_output(path, overwrite) as tmp, joined_dask_threads(), consolidated_quietly():
        # consolidated: a reader opens the store with one metadata request (one object on S3)
        ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=True, compute=True)
    return as_path(path)


@contextlib.contextmanager
def consolidated_quietly() -> Iterator[None]:
    """Write or open consolidated Zarr v3 metadata without zarr's note that the spec does not define it yet.

    zarr-python, xarray and every reader geohsi supports read it; readers that do not fall back to the
    per-array metadata, which is written too.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        yield


class _StoreBlocks:
    """Array-like over one Zarr array of a store: ``__getitem__`` reads a window with zarr.

    Wrapping the cube this way (instead of xarray's own reader) lets a damaged chunk (truncated by a
    copy, corrupted on disk) surface as an :class:`InputFormatError` naming the store and the window,
    wherever the block is computed (ingest, train, a Dask worker in classify), not as a codec error.
    Holds only the path (picklable, no open handles).
    """

    def __init__(self, store: str | os.PathLike, var: str, shape: tuple[int, ...], dtype: np.dtype, token: str = "") -> None:
        self.path, self.var, self.token = str(store), var, token
        self.shape, self.dtype, self.ndim = tuple(int(s) for s in shape), np.dtype(dtype), len(shape)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        try:
            return np.asarray(_open_array(self.path, self.var, self.token)[key])
        except Exception as e:  # zarr/numcodecs raise RuntimeError/ValueError/OSError for damaged chunks
            why = f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
        # outside the except block: read on a Dask worker, the error must unpickle on the client
        window = ", ".join(f"{k.start}:{k.stop}" for k in key)
        raise InputFormatError(
            f"cannot read chunk [{window}] of {self.var!r} in {self.path} ({why}); "
            "the store is truncated or corrupted, re-create it from its source"
        )


@functools.lru_cache(maxsize=32)
def _open_array(path: str, var: str, token: str) -> Any:
    """The zarr array ``path/var``, opened once per process (one metadata request on object storage, not one per
    chunk); ``token`` names the store's version, so a rewritten store is opened anew."""
    import zarr

    from geohsi.storage import is_url

    # a scene store in a bucket is Zarr v3: no probing for v2 metadata objects
    return zarr.open_array(f"{path}/{var}", mode="r", zarr_format=3 if is_url(path) else None)


def guarded_zarr_array(store: str | os.PathLike, var: str, chunks: Any, like: xr.DataArray | None = None) -> da.Array:
    """A Dask array over ``store/var`` whose damaged chunks raise :class:`InputFormatError`.

    Args:
        store: a Zarr (v2 or v3) directory store, or the URL of a v3 store.
        var: the array's name inside the store.
        chunks: Dask chunks (anything :func:`dask.array.from_array` accepts).
        like: the variable as xarray opened it (shape, dtype, encoding): on object storage it spares
            a request for the array's own metadata.

    Returns:
        The lazy array, named by the store's path and metadata so identical reads share graph keys.
    """
    import zarr
    from dask.base import tokenize

    from geohsi.storage import COMPLETE, is_url, join, stamp

    if is_url(store):
        # ``like`` comes from the consolidated metadata xarray has read: no request for the array's own zarr.json
        arr = like if like is not None else zarr.open_array(str(join(store, var)), mode="r", zarr_format=3)
        encoding = sorted(map(str, getattr(arr, "encoding", {}).items()))
        token = tokenize(str(store), var, arr.shape, str(arr.dtype), encoding, stamp(join(store, COMPLETE)))
    else:
        p = Path(store)
        arr = zarr.open_array(p / var, mode="r")
        meta_files = [f for f in (p / var / "zarr.json", p / var / ".zarray") if f.is_file()]
        token = tokenize(str(p.resolve()), var, [(f.read_bytes(), f.stat().st_mtime_ns) for f in meta_files])
    src = _StoreBlocks(store, var, arr.shape, arr.dtype, token)
    return da.from_array(
        src,
        chunks=chunks,
        name=f"zarr-{var}-{token}",
        lock=False,
        fancy=False,
        asarray=False,
        meta=np.empty((0,) * len(arr.shape), dtype=arr.dtype),
    )


def check_bands(ds: xr.Dataset, source: str | None = None, *, stored: bool = False) -> xr.Dataset:
    """Refuse a scene whose band table cannot be right; warn about one that looks odd.

    See :func:`geohsi.bands.check_band_table` (centres outside 300–15,000 nm, widths not positive or
    wider than half the covered range are refused; widths over 4× the band spacing are warned about).

    Args:
        ds: the scene.
        source: the file or store named in messages (default: ``ds.encoding["source"]``).
        stored: ``ds`` is a scene store (a bad table is then fixed by re-ingesting its source).

    Returns:
        ``ds`` itself, for chaining.

    Raises:
        InputFormatError: one line naming the source and the fix.
    """
    from geohsi.bands import check_band_table

    where = source or str(ds.encoding.get("source", "the scene"))
    check_band_table(ds["wavelength"].values, ds["fwhm"].values, where, stored=stored)
    return ds


def flag_empty_bands(ds: xr.Dataset, source: str | None = None) -> xr.Dataset:
    """``ds`` with the good bands that hold no data (:func:`~geohsi.scene.masks.empty_bands`) flagged bad, with a warning.

    Without it one such band (absorption bands written as nodata, no bad-band list in the file)
    makes every pixel of the scene invalid, and maps and training see nothing.
    """
    import warnings

    from geohsi.errors import GeohsiWarning
    from geohsi.scene.masks import empty_bands

    empty = empty_bands(ds)
    if not empty.size:
        return ds
    where = source or str(ds.encoding.get("source", "the scene"))
    warnings.warn(
        f"{where}: band(s) {', '.join(str(int(b) + 1) for b in empty[:12])}{' …' if empty.size > 12 else ''} hold no data "
        "where the other bands do; flagged bad so that pixels stay valid (list them as bad bands in the file to silence this)",
        GeohsiWarning,
        stacklevel=3,
    )
    good = np.asarray(ds["good_band"].values, bool).copy()
    good[empty] = False
    out = ds.assign_coords(good_band=("band", good, ds["good_band"].attrs))
    out.encoding = dict(ds.encoding)
    return out


def _open_store(p: Path | str) -> xr.Dataset:
    """``xr.open_zarr`` of a scene store: its consolidated metadata (one request), else the per-array metadata
    of stores written before geohsi consolidated them."""
    options = {"mask_and_scale": False, "decode_coords": "all", "zarr_format": 3}
    with consolidated_quietly():
        try:
            return xr.open_zarr(p, consolidated=True, **options)
        except ValueError as e:
            if "consolidated metadata" not in str(e).lower():
                raise
            return xr.open_zarr(p, consolidated=False, **options)


def open_scene(path: str | os.PathLike, *, check_band_table: bool = True) -> xr.Dataset:
    """Open a scene store lazily (raw values; nodata and scale kept as attributes).

    Args:
        path: a ``.zarr`` store written by :func:`write_scene`.
        check_band_table: refuse an implausible band table (:func:`check_bands`); ``geohsi info``
            opens without, to show what is wrong.

    Returns:
        The scene Dataset backed by Dask.

    Raises:
        InputFormatError: the path is missing or not a geohsi scene, or its band table is implausible.
    """
    from geohsi.storage import check_complete, display, is_url

    p = str(path) if is_url(path) else Path(path)
    if is_url(p):
        check_complete(p, "scene store")
    elif not p.exists():
        raise InputFormatError(f"scene {p} does not exist; create it with 'geohsi ingest SRC --out {p}'")
    elif not (p / "zarr.json").is_file():
        raise InputFormatError(f"{p} is not a Zarr v3 store; create a scene with 'geohsi ingest SRC --out SCENE.zarr'")
    try:
        ds = _open_store(p)
    except Exception as e:  # zarr/xarray raise many types for broken stores
        why = f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
        raise InputFormatError(f"cannot open scene {display(p)}: {why}; re-create it with 'geohsi ingest'") from e
    validate_scene(ds)
    # Band metadata is tiny: load it now, in this process. Left lazy, every later `.values` would be
    # a Dask computation on whatever cluster is current (and wait forever on paused workers).
    band_coords = [c for c in ("wavelength", "fwhm", "good_band", "band_name") if c in ds.coords]
    ds = ds.assign_coords({c: ds[c].variable.compute(scheduler="sync") for c in band_coords})
    var = data_var_name(ds)
    ds[var] = ds[var].copy(data=guarded_zarr_array(p, var, ds[var].data.chunks, like=ds[var]))
    ds.encoding["source"] = display(p)
    return check_bands(ds, stored=True) if check_band_table else ds
