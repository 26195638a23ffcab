"""Tile mosaics: several rasters on one pixel grid read as one lazy cube (GeoTIFF tiles, STAC item tiles).

Tiles must share the CRS, pixel size and grid alignment (origins differ by whole pixels); the
mosaic covers the union of their bounds (:func:`union_grid`), later tiles win where they overlap,
and pixels no tile covers are nodata (:func:`gap_fill`). :class:`TileMosaic` is the array-like Dask
reads blocks from: each block reads only the windows of the tiles it overlaps, one rasterio read
per file, so a mosaic streams.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.errors import RasterioError

from geohsi.errors import GeoreferenceError, InputFormatError

#: Pixel-alignment tolerance, as a fraction of a pixel (float origins in headers are rounded).
ALIGN_TOL = 1e-3


@dataclass(frozen=True)
class GridTile:
    """One tile of a mosaic: its grid and where each band's pixels are.

    Attributes:
        name: the tile in messages (a file name, an item id).
        transform: north-up affine transform.
        height: rows.
        width: columns.
        sources: per band, ``(path, 1-based band index in that file)``.
    """

    name: str
    transform: Affine
    height: int
    width: int
    sources: tuple[tuple[str, int], ...]


def check_same_grid(ref: GridTile, tile: GridTile) -> None:
    """Refuse a tile whose pixel size or grid alignment differs from the reference tile's.

    Raises:
        GeoreferenceError: another pixel size, or an origin off the reference grid.
    """
    a, t = ref.transform, tile.transform
    if not (math.isclose(t.a, a.a, rel_tol=1e-9) and math.isclose(t.e, a.e, rel_tol=1e-9)):
        raise GeoreferenceError(
            f"tile {tile.name} has pixel size ({t.a}, {t.e}) but {ref.name} has ({a.a}, {a.e}); resample the tiles to one resolution"
        )
    col = (t.c - a.c) / a.a
    row = (t.f - a.f) / a.e
    if abs(col - round(col)) > ALIGN_TOL or abs(row - round(row)) > ALIGN_TOL:
        raise GeoreferenceError(
            f"tile {tile.name} is off {ref.name}'s pixel grid by ({col - round(col):.3f}, {row - round(row):.3f}) pixels; "
            "resample the tiles onto one grid (gdalwarp -tap)"
        )


def union_grid(tiles: Sequence[GridTile]) -> tuple[Affine, int, int]:
    """The grid covering every tile, in whole pixels of the first tile's grid.

    Returns:
        ``(transform, height, width)``.
    """
    ref = tiles[0].transform
    a, e = ref.a, ref.e
    left = min(t.transform.c for t in tiles)
    top = max(t.transform.f for t in tiles) if e < 0 else min(t.transform.f for t in tiles)
    transform = Affine(a, 0.0, left, 0.0, e, top)
    width = max(round((t.transform.c - left) / a) + t.width for t in tiles)
    height = max(round((t.transform.f - top) / e) + t.height for t in tiles)
    return transform, int(height), int(width)


def tile_offset(tile: GridTile, transform: Affine) -> tuple[int, int]:
    """``(row, col)`` of a tile's first pixel on a mosaic grid."""
    return (
        int(round((tile.transform.f - transform.f) / transform.e)),
        int(round((tile.transform.c - transform.c) / transform.a)),
    )


def gap_dtype(dtype: np.dtype) -> tuple[np.dtype, float]:
    """The mosaic's dtype and nodata value for the pixels no tile covers, when the tiles define no nodata: a value
    no tile can hold — NaN for floats, else the most negative value of the next wider signed type (the dtype's own
    extreme, 255 for uint8, had masked every real pixel of that value)."""
    if dtype.kind == "f":
        return dtype, float("nan")
    wide = np.dtype({1: "i2", 2: "i4", 4: "i8"}.get(dtype.itemsize, "f8"))  # 64-bit ids: NaN (exact up to 2**53)
    return wide, float("nan") if wide.kind == "f" else float(np.iinfo(wide).min)


def gap_fill(
    tiles: Sequence[GridTile], transform: Affine, height: int, width: int, dtype: np.dtype
) -> tuple[np.dtype, float | None]:
    """The mosaic's dtype and the nodata value its gaps need, for tiles that define none (``(dtype, None)`` when the
    tiles cover it; see :func:`gap_dtype`)."""
    if len(tiles) == 1 and tiles[0].height * tiles[0].width >= height * width:
        return np.dtype(dtype), None
    cover, _ = tile_cover(tiles, transform, height, width)
    return (np.dtype(dtype), None) if cover.all() else gap_dtype(np.dtype(dtype))


def tile_cover(tiles: Sequence[GridTile], transform: Affine, height: int, width: int) -> tuple[np.ndarray, bool]:
    """``([H, W] bool: pixels some tile covers, whether any pixel lies in two tiles)`` on a mosaic grid."""
    cover = np.zeros((height, width), bool)
    overlap = False
    for t in tiles:
        r0, c0 = tile_offset(t, transform)
        window = cover[r0 : r0 + t.height, c0 : c0 + t.width]
        overlap = overlap or bool(window.any())
        window[...] = True
    return cover, overlap


class TileMosaic:
    """Array-like ``[B, H, W]`` over aligned tiles; ``__getitem__`` reads one window, one read per file.

    Holds only paths and offsets (picklable, no open handles), so Dask workers can read from it.

    Args:
        tiles: the tiles, in priority order (later tiles win where they overlap).
        transform: the mosaic grid (:func:`union_grid`).
        height: mosaic rows.
        width: mosaic columns.
        dtype: the tiles' data type.
        fill: the value of pixels no tile covers (``None``: 0; only used where there are gaps).
        hint: the end of the one-line message of a failed read (what to check).
    """

    def __init__(
        self,
        tiles: Sequence[GridTile],
        transform: Affine,
        height: int,
        width: int,
        dtype: np.dtype,
        fill: float | None,
        hint: str = "the file may be truncated",
    ) -> None:
        self.tiles = [(t.sources, *tile_offset(t, transform), t.height, t.width) for t in tiles]
        self.dtype = np.dtype(dtype)
        self.shape = (len(tiles[0].sources), height, width)
        self.ndim = 3
        self.fill = fill
        self.hint = hint

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        b, ys, xs = (k.indices(n) for k, n in zip(key, self.shape, strict=True))
        y0, y1, x0, x1 = ys[0], ys[1], xs[0], xs[1]
        wanted = list(range(*b))
        if len(self.tiles) == 1:
            sources, r0, c0, h, w = self.tiles[0]
            paths = {sources[i][0] for i in wanted}
            if len(paths) == 1 and r0 <= y0 and c0 <= x0 and y1 <= r0 + h and x1 <= c0 + w:
                # One file covering the block: read straight into the result (no fill buffer, no copy but a widening).
                block = self._read(paths.pop(), [sources[i][1] for i in wanted], x0 - c0, y0 - r0, x1 - x0, y1 - y0)
                return block.astype(self.dtype, copy=False)
        out = np.full((len(wanted), y1 - y0, x1 - x0), self.fill if self.fill is not None else 0, dtype=self.dtype)
        for sources, r0, c0, h, w in self.tiles:
            ry0, ry1 = max(y0, r0), min(y1, r0 + h)
            cx0, cx1 = max(x0, c0), min(x1, c0 + w)
            if ry0 >= ry1 or cx0 >= cx1:
                continue
            groups: dict[str, tuple[list[int], list[int]]] = {}  # path → (output slots, band indices)
            for slot, band in enumerate(wanted):
                path, idx = sources[band]
                g = groups.setdefault(path, ([], []))
                g[0].append(slot)
                g[1].append(idx)
            for path, (slots, idxs) in groups.items():
                block = self._read(path, idxs, cx0 - c0, ry0 - r0, cx1 - cx0, ry1 - ry0)
                where = (slots, slice(ry0 - y0, ry1 - y0), slice(cx0 - x0, cx1 - x0))
                out[where] = block if self.fill is None else np.where(self._is_fill(block), out[where], block)
        return out

    def _is_fill(self, block: np.ndarray) -> np.ndarray:
        """Where a tile holds its nodata value: transparent, so an overlapped tile's data shows (as gdalbuildvrt does)."""
        fill = self.fill
        return np.isnan(block) if isinstance(fill, float) and np.isnan(fill) else block == fill

    def _read(self, path: str, bands: list[int], col: int, row: int, width: int, height: int) -> np.ndarray:
        from rasterio.windows import Window

        from geohsi.storage import display, open_raster, redact

        win = Window(col, row, width, height)
        try:
            with open_raster(path) as src:
                return src.read(bands, window=win)
        except (RasterioError, OSError) as e:
            # rasterio's own message is often "Read failed. See previous exception"; GDAL's is in the chain
            causes = [e]
            while causes[-1].__cause__ is not None and len(causes) < 5:
                causes.append(causes[-1].__cause__)
            why = next((str(c) for c in causes if "previous exception" not in str(c)), str(e))
            why = " ".join(why.split())[:150]
        # Raised outside the except block, with no chained cause: read on a Dask worker, the error
        # travels to the client, and GDAL's chained errors do not unpickle there (tblib).
        raise InputFormatError(f"cannot read {display(path)} window {win}: {redact(why)}; {self.hint}")


__all__ = [
    "ALIGN_TOL",
    "GridTile",
    "TileMosaic",
    "check_same_grid",
    "gap_dtype",
    "gap_fill",
    "tile_cover",
    "tile_offset",
    "union_grid",
]
