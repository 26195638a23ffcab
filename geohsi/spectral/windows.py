"""Per-pixel windows: the patch around each pixel, resized to the model's input size.

The paper classifies a pixel from the ``w × w`` window centred on it (``w`` odd, e.g. 15), resized to
32 × 32. One function, :func:`windows_for_block`, cuts and resizes windows from a block that carries
a halo of ``r = w // 2`` pixels on each side; every caller feeds it such blocks:

* in memory, :func:`extract_windows` pads the whole scene (:func:`pad_reflect_halo`) and calls it once;
* from a Dask/Zarr scene, :func:`overlap_reflect` turns each chunk into chunk + halo (read from the
  neighbouring chunks, reflected at the scene edges) for ``map_blocks`` inference, and
  :func:`windows_at` fetches only the chunks holding the requested pixels (training batches).

Conventions (one place, so training and inference agree):

* **Edges**: reflect padding *without* repeating the edge pixel (``numpy.pad(mode="reflect")``:
  ``d c b | a b c d``). Note that ``dask.array.overlap``'s ``boundary="reflect"`` *does* repeat it
  (numpy's ``"symmetric"``), which is why :func:`overlap_reflect` pads with ``dask.array.pad`` instead.
* **Invalid pixels** (NaN) inside a window are replaced by 0 before resizing — 0 is the channel
  mean after standard normalisation, the least informative value. Windows centred on an invalid
  pixel are produced too (all callers mask those outputs by the pixel's validity).
* **Resize**: bilinear, ``align_corners=False`` (``torch.nn.functional.interpolate``, no antialias).
  Windows are upsampled (15 → 32), and bilinear gives the smooth texture of the natural imagery the
  backbone was pretrained on, where nearest would turn each source pixel into a 2–3 px block whose
  artificial edges the 8 × 8 tubelets would read as structure. ``align_corners=False`` treats pixels
  as areas (as rasters are), so the window's centre maps to the output's centre. A window already of
  the output size is returned unchanged.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from numpy.lib.stride_tricks import sliding_window_view

from geohsi.errors import UsageError

DEFAULT_WINDOW = 15
DEFAULT_OUT_SIZE = 32


def check_window(window: int, height: int | None = None, width: int | None = None) -> int:
    """Validate a window size and return its radius ``window // 2``.

    Args:
        window: odd window edge in pixels, ≥ 1.
        height: scene height (pixels) the window must fit in, if known.
        width: scene width (pixels), if known.

    Returns:
        The halo radius ``r``.

    Raises:
        UsageError: even, non-positive or non-integer window, or larger than the scene.

    .. versionadded:: 0.1
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1 or window % 2 == 0:
        raise UsageError(f"window size {window!r} must be an odd integer >= 1 (e.g. 15) so the pixel sits at its centre")
    for name, size in (("height", height), ("width", width)):
        if size is not None and window > size:
            raise UsageError(
                f"window size {window} is larger than the scene's {name} of {size} pixels; use --window {max(1, size - (1 - size % 2))} or less"
            )
    return int(window) // 2


def pad_reflect_halo(block: np.ndarray, radius: int) -> np.ndarray:
    """Pad ``[C, H, W]`` by ``radius`` on both spatial sides, reflecting without edge repeat.

    Raises:
        UsageError: ``radius`` ≥ the block's height or width (nothing left to reflect).
    """
    h, w = block.shape[-2:]
    if radius >= h or radius >= w:
        raise UsageError(f"halo of {radius} pixels does not fit a {h}×{w} block; use a smaller window")
    return np.pad(block, ((0, 0), (radius, radius), (radius, radius)), mode="reflect")


def resize_windows(windows: np.ndarray, out_size: int = DEFAULT_OUT_SIZE) -> np.ndarray:
    """Resize ``[N, C, w, w]`` windows to ``[N, C, out_size, out_size]`` float32 (bilinear, see module doc)."""
    import torch  # deferred: importing geohsi.spectral for a PCA fit should not load torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.ascontiguousarray(windows, dtype="float32"))
    if t.shape[-1] == out_size and t.shape[-2] == out_size:
        return t.numpy()
    if t.shape[0] == 0:
        return np.zeros((0, t.shape[1], out_size, out_size), dtype="float32")
    with torch.no_grad():
        out = F.interpolate(t, size=(out_size, out_size), mode="bilinear", align_corners=False, antialias=False)
    return out.numpy()


def windows_for_block(
    block_with_halo: np.ndarray,
    core_rows: Sequence[int] | np.ndarray | None,
    core_cols: Sequence[int] | np.ndarray | None,
    window: int,
    out_size: int = DEFAULT_OUT_SIZE,
    *,
    halo: int | None = None,
) -> np.ndarray:
    """Windows of some pixels of a block that carries a halo — the one extraction code path.

    Vectorised: a strided view of all windows (no copy), one fancy-index gather of the N requested
    ones, one batched resize. Memory is ``N·C·(w² + out²)·4`` bytes; batch N accordingly (65,536
    windows of 12 × 32 × 32 are 3.2 GB).

    Args:
        block_with_halo: ``[C, h + 2·halo, w + 2·halo]`` values (NaN = invalid).
        core_rows: ``[N]`` rows of the centre pixels in *core* coordinates (0 = first row after
            the halo); ``None`` with ``core_cols=None`` means every core pixel, row-major.
        core_cols: ``[N]`` columns, likewise.
        window: odd window edge (pixels).
        out_size: output edge (pixels).
        halo: the halo the block carries (default ``window // 2``); may exceed ``window // 2``.

    Returns:
        ``[N, C, out_size, out_size]`` float32; NaN replaced by 0 before resizing.

    Raises:
        UsageError: bad window, halo smaller than ``window // 2``, or pixels outside the core.

    .. versionadded:: 0.1
    """
    r = check_window(window)
    halo = r if halo is None else int(halo)
    if halo < r:
        raise UsageError(f"block halo {halo} is smaller than the window radius {r}; fetch blocks with halo >= window // 2")
    if out_size < 1:
        raise UsageError(f"output size {out_size} must be a positive pixel count (e.g. 32)")
    blk = np.asarray(block_with_halo)
    if blk.ndim != 3:
        raise UsageError(f"expected a [C, H, W] block, got shape {blk.shape}")
    core_h, core_w = blk.shape[1] - 2 * halo, blk.shape[2] - 2 * halo
    if core_rows is None and core_cols is None:
        rr, cc = np.meshgrid(np.arange(core_h), np.arange(core_w), indexing="ij")
        rows, cols = rr.ravel(), cc.ravel()
    else:
        rows = np.asarray(core_rows, dtype="int64").reshape(-1)
        cols = np.asarray(core_cols, dtype="int64").reshape(-1)
        if rows.shape != cols.shape:
            raise UsageError(f"got {rows.size} rows but {cols.size} columns; give one (row, col) per pixel")
    if rows.size and (rows.min() < 0 or cols.min() < 0 or rows.max() >= core_h or cols.max() >= core_w):
        raise UsageError(
            f"pixel rows {rows.min()}..{rows.max()} / cols {cols.min()}..{cols.max()} fall outside the "
            f"{core_h}×{core_w} block; pass core coordinates"
        )
    off = halo - r  # first window row for core row 0
    view = sliding_window_view(blk, (window, window), axis=(1, 2))  # [C, H', W', w, w], no copy
    win = np.moveaxis(view[:, rows + off, cols + off], 0, 1).astype("float32")  # gather: [N, C, w, w]
    np.nan_to_num(win, copy=False, nan=0.0)
    return resize_windows(win, out_size)


def extract_windows(
    channels: np.ndarray,
    rows: Sequence[int] | np.ndarray,
    cols: Sequence[int] | np.ndarray,
    window: int = DEFAULT_WINDOW,
    out_size: int = DEFAULT_OUT_SIZE,
) -> np.ndarray:
    """Windows around pixels of an in-memory scene.

    Args:
        channels: ``[C, H, W]`` values (NaN = invalid).
        rows: ``[N]`` pixel rows.
        cols: ``[N]`` pixel columns.
        window: odd window edge (pixels), ≤ min(H, W).
        out_size: output edge (pixels).

    Returns:
        ``[N, C, out_size, out_size]`` float32.

    Raises:
        UsageError: bad window or pixels outside the scene.

    .. versionadded:: 0.1
    """
    arr = np.asarray(channels)
    r = check_window(window, arr.shape[1], arr.shape[2])
    return windows_for_block(pad_reflect_halo(arr, r), rows, cols, window, out_size)


#: Scenes whose transformed channels (float32) fit in this many bytes are held in memory whole.
MAX_IN_MEMORY_BYTES = 2 * 1024**3
#: Block edge of :attr:`CachedCube.lazy` (the sparse-prediction block of geohsi.prediction.tiles).
LAZY_BLOCK = 64
#: Bytes of chunks the cubes of one process keep together (a raw chunk of 224 bands × 256² is 29 MB).
CACHE_BYTES = 256 * 1024**2


class ChunkCache:
    """Recently used chunks of several :class:`CachedCube` s, least recently used dropped first beyond a byte budget.

    One cache serves every scene of a run, so the memory it holds does not grow with the number of scenes.
    It pickles empty: each data-loader worker keeps its own.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._items: dict[Any, np.ndarray] = {}
        self._bytes = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes, "_items": {}, "_bytes": 0}

    def get(self, key: Any, compute: Any) -> np.ndarray:
        """The item under ``key``, computed by ``compute()`` when absent."""
        if key in self._items:
            self._items[key] = self._items.pop(key)  # most recently used last
            return self._items[key]
        value = compute()
        self._items[key] = value
        self._bytes += value.nbytes
        while self._bytes > self.max_bytes and len(self._items) > 1:
            self._bytes -= self._items.pop(next(iter(self._items))).nbytes
        return value


class CachedCube:
    """A lazy ``[C, H, W]`` channel cube read chunk by chunk, with the last chunks computed kept.

    Indexing with slices (``cube[:, y0:y1, x0:x1]``) computes only the chunks the window touches, each
    once while it stays in the :class:`ChunkCache` (shared by a run's cubes): training samples drawn
    chunk by chunk (:func:`chunk_grouped_order`) decompress every chunk once per epoch, not once per
    sample. Given a :class:`~geohsi.spectral.pixelmap.PixelMap`, ``data`` holds the raw bands it reads
    and a chunk's channels are the map of its raw block (a few times faster than the lazy graph of
    the transform, equal to it within 1e-6). Pickles without its cache, so data-loader workers each
    keep their own.

    Attributes:
        data: the Dask array (one chunk along the first axis): channels, or the raw bands of ``pixel_map``.
        pixel_map: turns a raw block into channels, or ``None`` when ``data`` holds channels.
        cache: the chunk cache (shared with the run's other cubes; a cube of its own by default).
    """

    def __init__(self, data: da.Array, pixel_map: Any = None, cache: ChunkCache | None = None) -> None:
        self.data = data if data.numblocks[0] == 1 else data.rechunk({0: -1})
        self.pixel_map = pixel_map
        self.cache = cache if cache is not None else ChunkCache()
        c = len(pixel_map.shift) if pixel_map is not None else int(self.data.shape[0])
        self.shape = (c, *(int(s) for s in self.data.shape[1:]))
        self.dtype = np.dtype("float32")
        self.ndim = 3
        self._ys = np.concatenate([[0], np.cumsum(self.data.chunks[1])])
        self._xs = np.concatenate([[0], np.cumsum(self.data.chunks[2])])
        self._key = self.data.name  # Dask's token: one cube's chunks, whichever object reads them

    @property
    def lazy(self) -> da.Array:
        """The channels as a lazy ``[C, H, W]`` Dask array of :data:`LAZY_BLOCK` ² blocks read through this cube
        (validation and test scoring: only the blocks near the scored pixels are read, each chunk decompressed
        once while cached, only the block's pixels transformed)."""
        if self.pixel_map is None:
            return self.data
        return da.from_array(
            self,
            chunks=(self.shape[0], LAZY_BLOCK, LAZY_BLOCK),
            name=f"cached-cube-{self._key}",
            asarray=False,
            fancy=False,
            meta=np.empty((0, 0, 0), np.float32),
        )

    def _channels(self, block: np.ndarray) -> np.ndarray:
        """Channels of a block: the block itself (float32), or the pixel map of its raw bands."""
        if self.pixel_map is None:
            return np.asarray(block, dtype=np.float32)
        import torch

        raw = torch.from_numpy(np.asarray(block).astype(np.float64 if block.dtype.kind == "f" else np.int64, copy=False))
        return self.pixel_map.apply(raw).numpy().astype(np.float32, copy=False)

    def chunk_of(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The chunk (flat id) holding each pixel."""
        bi = np.searchsorted(self._ys, rows, side="right") - 1
        bj = np.searchsorted(self._xs, cols, side="right") - 1
        return bi * (len(self._xs) - 1) + bj

    def _chunk(self, i: int, j: int) -> np.ndarray:
        """Chunk ``(i, j)`` as the cache keeps it: channels, or the raw bands of the pixel map."""

        def compute() -> np.ndarray:
            block = np.asarray(self.data.blocks[0, i, j].compute(scheduler="synchronous"))
            return self._channels(block) if self.pixel_map is None else block

        return self.cache.get((self._key, i, j), compute)

    def __getitem__(self, key: tuple[Any, slice, slice]) -> np.ndarray:
        """A window, assembled from its cached chunks; with a pixel map only the window's pixels are transformed."""
        cs, ys, xs = key
        y0, y1, _ = ys.indices(self.shape[1])
        x0, x1, _ = xs.indices(self.shape[2])
        out = None
        for i in range(np.searchsorted(self._ys, y0, side="right") - 1, np.searchsorted(self._ys, y1 - 1, side="right")):
            for j in range(np.searchsorted(self._xs, x0, side="right") - 1, np.searchsorted(self._xs, x1 - 1, side="right")):
                a, b = max(y0, self._ys[i]), min(y1, self._ys[i + 1])
                c, d = max(x0, self._xs[j]), min(x1, self._xs[j + 1])
                part = self._chunk(i, j)[:, a - self._ys[i] : b - self._ys[i], c - self._xs[j] : d - self._xs[j]]
                if out is None:
                    out = np.empty((part.shape[0], y1 - y0, x1 - x0), dtype=part.dtype)
                out[:, a - y0 : b - y0, c - x0 : d - x0] = part
        return self._channels(out)[cs]


def reflect_window(cube: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``cube[:, rows][:, :, cols]`` with out-of-scene indices reflected (``numpy.pad(mode="reflect")``)."""
    h, w = cube.shape[1], cube.shape[2]
    rr = np.abs(rows)
    rr = np.where(rr >= h, 2 * (h - 1) - rr, rr)
    cc = np.abs(cols)
    cc = np.where(cc >= w, 2 * (w - 1) - cc, cc)
    region = cube[:, int(rr.min()) : int(rr.max()) + 1, int(cc.min()) : int(cc.max()) + 1]
    return region[:, rr - rr.min()][:, :, cc - cc.min()]


@dataclass
class WindowSource:
    """Windows around pixels of one scene, after its spectral transform (training and evaluation).

    The channels come in three forms: in memory (numpy, or a DataArray small enough —
    ≤ ``max_in_memory_bytes``, all the benchmark scenes — transformed once and padded once), a
    :class:`CachedCube` (streamed training: each window read from its cached chunks), or lazy
    (a larger DataArray, read chunk by chunk with halos by :func:`windows_at`, the same code path as
    distributed inference).

    Attributes:
        channels: the transformed scene ``(channel, y, x)``.
        window: window edge (odd, pixels).
        input_size: model input edge (pixels).
    """

    channels: Any
    window: int
    input_size: int
    max_in_memory_bytes: int = MAX_IN_MEMORY_BYTES
    _padded: np.ndarray | None = None

    def __post_init__(self) -> None:
        c, h, w = self.channels.shape
        check_window(self.window, h, w)
        if isinstance(self.channels, np.ndarray) or (
            isinstance(self.channels, xr.DataArray) and c * h * w * 4 <= self.max_in_memory_bytes
        ):
            arr = np.asarray(getattr(self.channels, "values", self.channels), dtype=np.float32)
            self._padded = pad_reflect_halo(arr, self.window // 2)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.channels.shape[1]), int(self.channels.shape[2])

    def windows(self, flat_idx: np.ndarray) -> np.ndarray:
        """``[N, C, S, S]`` float32 windows centred on row-major pixel indices ``flat_idx``."""
        rows, cols = np.divmod(np.asarray(flat_idx, dtype=np.int64), self.shape[1])
        if self._padded is not None:
            return windows_for_block(self._padded, rows, cols, self.window, self.input_size)
        if isinstance(self.channels, CachedCube):
            r = self.window // 2
            span = np.arange(-r, r + 1)
            wins = [reflect_window(self.channels, y + span, x + span) for y, x in zip(rows, cols, strict=True)]
            block = np.stack(wins) if wins else np.zeros((0, self.channels.shape[0], self.window, self.window), np.float32)
            np.nan_to_num(block, copy=False, nan=0.0)
            return resize_windows(block, self.input_size)
        return windows_at(self.channels, rows, cols, self.window, self.input_size)


def _dask_cube(channels: Any) -> da.Array:
    data = channels.data if isinstance(channels, xr.DataArray) else channels
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(-1, 256, 256))
    if data.numblocks[0] != 1:
        data = data.rechunk({0: -1})
    return data


def overlap_reflect(channels: da.Array | xr.DataArray, radius: int) -> da.Array:
    """Give every spatial chunk a halo of ``radius`` pixels: neighbours inside, reflection at the edges.

    Block ``(i, j)`` of the result is chunk ``(i, j)`` of the input grown by ``radius`` on each side,
    so ``result.map_blocks(fn, chunks=…)`` sees exactly what :func:`windows_for_block` needs, and
    chunk borders give the same windows as the whole in-memory scene. Works for any chunk size
    (a halo may span several neighbouring chunks).

    Args:
        channels: ``[C, H, W]`` Dask array or Dask-backed DataArray.
        radius: halo width (``window // 2``), < H and < W.

    Returns:
        Dask array ``[C, H + 2·r·n_y, W + 2·r·n_x]`` with chunks ``(C,), (c_y + 2r, …), (c_x + 2r, …)``.

    Raises:
        UsageError: the halo does not fit the scene.

    .. versionadded:: 0.1
    """
    x = _dask_cube(channels)
    h, w = x.shape[1:]
    if radius >= h or radius >= w:
        raise UsageError(f"halo of {radius} pixels does not fit a {h}×{w} scene; use a smaller window")
    if radius == 0:
        return x
    padded = da.pad(x, ((0, 0), (radius, radius), (radius, radius)), mode="reflect")
    ys = np.concatenate([[0], np.cumsum(x.chunks[1])])
    xs = np.concatenate([[0], np.cumsum(x.chunks[2])])
    # Core [y0, y1) sits at [y0 + r, y1 + r) in the padded array, so core + halo is [y0, y1 + 2r).
    rows = [
        [padded[:, ys[i] : ys[i + 1] + 2 * radius, xs[j] : xs[j + 1] + 2 * radius].rechunk(-1) for j in range(len(xs) - 1)]
        for i in range(len(ys) - 1)
    ]
    return da.block(rows)


def windows_at(
    channels: da.Array | xr.DataArray | np.ndarray,
    rows: Sequence[int] | np.ndarray,
    cols: Sequence[int] | np.ndarray,
    window: int = DEFAULT_WINDOW,
    out_size: int = DEFAULT_OUT_SIZE,
) -> np.ndarray:
    """Windows around pixels of a chunked (Zarr/Dask) scene, reading only the chunks involved.

    Pixels are grouped by the chunk holding them; each such chunk is read once with its halo and
    handed to :func:`windows_for_block`. Results come back in the order of ``rows``/``cols``.

    Args:
        channels: ``[C, H, W]`` Dask array or DataArray (numpy is accepted and chunked 256²).
        rows: ``[N]`` pixel rows (scene coordinates).
        cols: ``[N]`` pixel columns.
        window: odd window edge (pixels).
        out_size: output edge (pixels).

    Returns:
        ``[N, C, out_size, out_size]`` float32, equal to :func:`extract_windows` on the whole scene.

    Raises:
        UsageError: bad window or pixels outside the scene.

    .. versionadded:: 0.1
    """
    x = _dask_cube(channels)
    c, h, w = x.shape
    r = check_window(window, h, w)
    rows = np.asarray(rows, dtype="int64").reshape(-1)
    cols = np.asarray(cols, dtype="int64").reshape(-1)
    if rows.shape != cols.shape:
        raise UsageError(f"got {rows.size} rows but {cols.size} columns; give one (row, col) per pixel")
    if rows.size and (rows.min() < 0 or cols.min() < 0 or rows.max() >= h or cols.max() >= w):
        raise UsageError(f"pixels outside the {h}×{w} scene (rows {rows.min()}..{rows.max()}, cols {cols.min()}..{cols.max()})")
    out = np.zeros((rows.size, c, out_size, out_size), dtype="float32")
    if rows.size == 0:
        return out
    padded = da.pad(x, ((0, 0), (r, r), (r, r)), mode="reflect") if r else x
    ys = np.concatenate([[0], np.cumsum(x.chunks[1])])
    xs = np.concatenate([[0], np.cumsum(x.chunks[2])])
    bi = np.searchsorted(ys, rows, side="right") - 1
    bj = np.searchsorted(xs, cols, side="right") - 1
    key = bi * (len(xs) - 1) + bj
    order = np.argsort(key, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(key[order])) + 1)
    tasks, picks = [], []
    for g in groups:
        i, j = bi[g[0]], bj[g[0]]
        blk = padded[:, ys[i] : ys[i + 1] + 2 * r, xs[j] : xs[j + 1] + 2 * r]
        tasks.append(dask.delayed(windows_for_block)(blk, rows[g] - ys[i], cols[g] - xs[j], window, out_size))
        picks.append(g)
    for g, res in zip(picks, dask.compute(*tasks), strict=True):
        out[g] = res
    return out


__all__ = [
    "DEFAULT_OUT_SIZE",
    "DEFAULT_WINDOW",
    "CACHE_BYTES",
    "MAX_IN_MEMORY_BYTES",
    "CachedCube",
    "ChunkCache",
    "WindowSource",
    "reflect_window",
    "check_window",
    "extract_windows",
    "overlap_reflect",
    "pad_reflect_halo",
    "resize_windows",
    "windows_at",
    "windows_for_block",
]
