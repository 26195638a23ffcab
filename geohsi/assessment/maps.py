"""Class maps read chunk by chunk: pixel counts per class, class ids at given pixels, and random
candidate pixels per class — all in one pass over the chunks.

Maps open lazily through :func:`geohsi.export.class_maps.open_map` (a GeoTIFF/COG or Zarr map of
``geohsi classify``, or any single-band integer GeoTIFF). A batch's ``catalog.json`` names its maps
through the items' ``map`` assets.

One pass of :func:`scan_map` reads every chunk once, on local Dask threads; a chunk is dropped as
soon as its small summary is made, so a map larger than memory is read in constant memory.

.. versionadded:: 0.3
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geohsi.errors import DataError, GeoreferenceError, InputFormatError, UsageError
from geohsi.export.class_maps import CHUNK, ClassMap, open_map
from geohsi.export.maps import NODATA
from geohsi.scene import ClassInfo, Legend, default_colors

#: above this many classes a chunk is counted with one ``bincount`` instead of one comparison per class.
_COMPARE_MAX = 12
#: the largest class id counted with ``bincount`` (its table has one entry per id up to the largest).
_BINCOUNT_MAX = 1 << 16
#: pixels compared at a time when counting a chunk: each comparison's bool temporary stays in the CPU cache.
_COUNT_SLICE = 1 << 18
#: a class is found by random probes when it holds this many pixels per wanted candidate (the probes
#: then number at most 1/256 of the chunk, ≈ 60 ns each, cheaper than listing the chunk's pixels); else listed.
_PROBE_PIXELS = 512


def _beside(doc: Path, href: str) -> Path:
    """The local file an href of ``doc`` names: relative to it, or for a URL (a batch written to a bucket, then
    copied here) the file of that name beside it."""
    from geohsi.storage import is_url, name

    return (doc.parent / (name(href) if is_url(href) else href)).resolve()


def catalog_maps(catalog: str | os.PathLike) -> list[Path]:
    """The map files of a batch's STAC catalogue (``catalog.json`` of ``geohsi classify --out-dir``).

    Raises:
        InputFormatError: the file is missing, not JSON, or lists no item with a ``map`` asset.
    """
    cat = Path(catalog)
    try:
        doc = json.loads(cat.read_text())
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise InputFormatError(
            f"cannot read catalogue {cat} ({type(e).__name__}); give the catalog.json of 'geohsi classify --out-dir'"
        ) from e
    from geohsi.export.stac import item_members, member_file

    out = []
    for member in item_members(doc):
        if not member:
            raise InputFormatError(f"catalogue {cat} has an item link without href; give the catalog.json a batch wrote")
        item_path = _beside(cat, member)
        try:
            href = member_file(json.loads(item_path.read_text())["assets"]["map"]["href"])
        except FileNotFoundError as e:
            raise InputFormatError(f"catalogue {cat} lists item {member}, which is missing; keep a batch's files together") from e
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputFormatError(
                f"catalogue item {item_path} is not JSON or has no 'map' asset; give a batch's catalogue"
            ) from e
        out.append(_beside(item_path, href))
    if not out:
        raise InputFormatError(f"catalogue {cat} lists no map items; give the catalog.json a batch wrote")
    return out


def open_maps(
    maps: Sequence[str | os.PathLike] = (), catalog: str | os.PathLike | None = None, *, chunks: int = CHUNK
) -> list[ClassMap]:
    """Open the maps given one by one and/or through a catalogue; file names name them unless two collide.

    Raises:
        UsageError: no map at all, or one map given twice.
        GeoreferenceError: some maps have a CRS and others do not.
    """
    paths = [Path(m) for m in maps] + (catalog_maps(catalog) if catalog is not None else [])
    if not paths:
        raise UsageError("no map given; pass MAP [MAP ...] or --catalog maps/catalog.json")
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise UsageError("a map is given twice; give each map once (a catalogue already names all of its maps)")
    out = [open_map(p, chunks=chunks) for p in paths]
    if len({m.crs is None for m in out}) > 1:
        raise GeoreferenceError(
            "some maps have a CRS and others are pixel grids; assess georeferenced maps and pixel grids separately"
        )
    _check_pixel_areas(out)
    if len({m.name for m in out}) < len(out):
        for m in out:
            m.name = str(m.path)
    return out


def _check_pixel_areas(maps: Sequence[ClassMap], tolerance: float = 0.01) -> None:
    """Refuse maps whose pixels differ in ground area by more than ``tolerance``: the sampling units
    are pixels, so one stratum's pixels must stand for equal areas."""
    sized = [m for m in maps if m.pixel_area_m2 is not None]
    if len(sized) < 2:
        return
    small, large = min(sized, key=lambda m: m.pixel_area_m2), max(sized, key=lambda m: m.pixel_area_m2)
    if large.pixel_area_m2 > (1 + tolerance) * small.pixel_area_m2:  # type: ignore[operator]
        raise DataError(
            f"maps {small.path.name} ({small.pixel_area_m2:,.6g} m² pixels) and {large.path.name} "
            f"({large.pixel_area_m2:,.6g} m²) differ in pixel area; pixels are the sampling units, so sample and "
            "assess maps of one pixel size together (or resample them to one grid)"
        )


def overlaps(maps: Sequence[ClassMap]) -> list[tuple[int, int, float]]:
    """Pairs of maps of one CRS whose footprints overlap (:func:`geohsi.scene.grid_overlaps`)."""
    from geohsi.scene import grid_overlaps

    return grid_overlaps([(m.crs, m.transform, m.shape) for m in maps])


def pooled_legend(maps: Sequence[ClassMap], found: Sequence[int] = ()) -> Legend:
    """One legend for several maps: the classes they declare (names must agree) plus ids ``found`` in them.

    Raises:
        DataError: two maps give one class id different names.
    """
    named: dict[int, ClassInfo] = {}
    for m in maps:
        for c in m.legend or ():
            if c.id in named and named[c.id].name != c.name:
                raise DataError(
                    f"maps disagree on class {c.id}: '{named[c.id].name}' vs '{c.name}' in {m.path}; "
                    "assess maps made with one legend together"
                )
            named.setdefault(c.id, c)
    bare = sorted({int(i) for i in found} - set(named))
    for i, colour in zip(bare, default_colors(bare, taken=[c.color for c in named.values()]), strict=True):
        named[i] = ClassInfo(i, f"class_{i}", colour)
    return Legend(tuple(named[i] for i in sorted(named)))


# --------------------------------------------------------------------------- one pass over the chunks


@dataclass
class MapScan:
    """What one pass over a map found.

    Attributes:
        ids: the class ids counted (the legend's, plus any found undeclared).
        counts: ``[K]`` pixels of each id.
        values: class id at each requested pixel (0 = nodata).
        block_counts: ``[B, K]`` pixels of each id per chunk (when candidates were drawn).
        candidates: per chunk and id, flat pixel indices (row · W + col) in random order, at most
            ``draw`` of them: the first ``s`` form a simple random sample of ``s`` of the id's pixels in the chunk.
    """

    ids: np.ndarray
    counts: np.ndarray
    values: np.ndarray
    block_counts: np.ndarray | None = None
    candidates: list[list[np.ndarray]] = field(default_factory=list)


def _count_ids(flat: np.ndarray, ids: list[int]) -> np.ndarray:
    """``[len(ids)]`` pixels of ``flat`` equal to each id, compared slice by slice (:data:`_COUNT_SLICE`)."""
    counts = np.zeros(len(ids), np.int64)
    for start in range(0, flat.size, _COUNT_SLICE):
        part = flat[start : start + _COUNT_SLICE]
        counts += np.array([np.count_nonzero(part == i) for i in ids], np.int64)
    return counts


def _block_counts(block: np.ndarray, ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, counts)`` of a chunk's non-nodata pixels: one comparison per declared id, or a bincount.

    A map whose legend is ``1..K`` (what ``geohsi classify`` writes) and whose chunk holds no value
    above ``K`` needs no comparison for its last class: it holds the mapped pixels the others leave.
    """
    flat = block.reshape(-1)
    if ids is not None and ids.size <= _COMPARE_MAX:
        mapped = np.count_nonzero(flat)  # pixels other than NODATA (= 0)
        listed = ids.tolist()  # Python ints compare without upcasting the chunk to int64
        if flat.dtype.kind == "u" and listed == list(range(1, len(listed) + 1)) and flat.size and flat.max() <= len(listed):
            counts = np.append(_count_ids(flat, listed[:-1]), 0)
            counts[-1] = mapped - counts.sum()
            return ids, counts
        counts = _count_ids(flat, listed)
        if counts.sum() == mapped:
            return ids, counts
    if flat.dtype.kind == "i" and flat.size and flat.min() < 0:
        raise DataError(
            f"a map holds the negative class id {int(flat.min())}; class ids start at 1 (0 = nodata): "
            "declare the map's nodata value in the file or rewrite its classes"
        )
    if flat.size and flat.max() > _BINCOUNT_MAX:
        present, counts = np.unique(flat, return_counts=True)
        return present[present != NODATA].astype(np.int64), counts[present != NODATA]
    found = np.bincount(flat.astype(np.int64, copy=False)) if flat.size else np.zeros(1, np.int64)
    present = np.flatnonzero(found)
    present = present[present != NODATA]
    return present.astype(np.int64), found[present]


def _random_positions(
    flat: np.ndarray, found: np.ndarray, counts: np.ndarray, draw: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per class of ``found``: ``min(draw, count)`` distinct flat positions in random order, a simple
    random sample of its ``count`` pixels in ``flat``.

    Classes common in the chunk (:data:`_PROBE_PIXELS`) share one stream of uniform random probes (no
    full mask): the probes that hit a class are uniform over its pixels and independent of the other
    classes' hits, and its first distinct hits are a simple random sample. A rarer class is listed
    and subsampled.
    """
    m = np.minimum(draw, counts)
    common = (counts > 0) & (m * _PROBE_PIXELS <= counts)
    out = [np.empty(0, np.int64)] * len(found)
    picked, values = np.empty(0, np.int64), np.empty(0, flat.dtype)
    have, short = np.zeros_like(m), common
    while short.any():
        want = max(64, int(np.max(2 * (m - have)[short] * flat.size // counts[short])))
        hits = np.concatenate([picked, rng.integers(0, flat.size, size=want)])
        _, first = np.unique(hits, return_index=True)
        picked = hits[np.sort(first)]  # distinct, in order of first appearance: still uniformly random
        values = flat[picked]
        have = np.array([np.count_nonzero(values == i) for i in found.tolist()])
        short = common & (have < m)
    for k, i in enumerate(found.tolist()):
        if common[k]:
            out[k] = picked[values == i][: m[k]]
        elif m[k]:
            pos = np.flatnonzero(flat == i)
            out[k] = pos[rng.choice(pos.size, size=m[k], replace=False)]
    return out


def _scan_block(
    block: np.ndarray, r0: int, c0: int, width: int, ids: np.ndarray | None, count: bool,
    points: tuple[np.ndarray, np.ndarray, np.ndarray] | None, draw: int, seed: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[np.ndarray]]:  # fmt: skip
    """A chunk's ``(ids, counts, values at its points, candidates per id)``."""
    block = np.asarray(block)
    found, counts = _block_counts(block, ids) if (count or draw) else (np.empty(0, np.int64), np.empty(0, np.int64))
    values = None if points is None else block[points[1] - r0, points[2] - c0]
    cands = []
    if draw:
        rng = np.random.default_rng(list(seed))
        for local in _random_positions(block.reshape(-1), found, counts, draw, rng):
            cands.append((local // block.shape[1] + r0) * width + local % block.shape[1] + c0)
    return found, counts, values, cands


def _chunk_tasks(cmap: ClassMap, rows: np.ndarray | None, cols: np.ndarray | None, need_all: bool, only: set[int] | None):
    """``(block index, delayed block, r0, c0, point indices in it)`` for the chunks to read."""
    blocks = cmap.data.to_delayed()
    r_edges = np.cumsum((0, *cmap.data.chunks[0]))
    c_edges = np.cumsum((0, *cmap.data.chunks[1]))
    if rows is not None:
        br = np.searchsorted(r_edges, rows, side="right") - 1
        bc = np.searchsorted(c_edges, cols, side="right") - 1
    for bi in range(blocks.shape[0]):
        for bj in range(blocks.shape[1]):
            b = bi * blocks.shape[1] + bj
            sel = np.flatnonzero((br == bi) & (bc == bj)) if rows is not None else np.empty(0, np.int64)
            if (need_all or sel.size) and (only is None or b in only):
                yield b, blocks[bi, bj], int(r_edges[bi]), int(c_edges[bj]), sel


def scan_map(
    cmap: ClassMap,
    *,
    count: bool = True,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
    draw: int = 0,
    seed: Sequence[int] = (0,),
    blocks: set[int] | None = None,
) -> MapScan:
    """One chunked pass over a map: class counts, class ids at pixels, candidate pixels per class.

    Args:
        cmap: the map.
        count: count the pixels of each class (reads every chunk).
        rows, cols: pixels whose class id is wanted (only their chunks are read when ``count`` is off).
        draw: per chunk and class, keep this many random candidate pixels (reads every chunk).
        seed: seeds the candidates; each chunk gets its own stream (``seed + (chunk index,)``), so
            the result does not depend on the order the threads finish.
        blocks: read only these chunks (row-major chunk indices); the others count as empty.

    Returns:
        The :class:`MapScan`.

    Raises:
        DataError: the map holds class ids its legend does not declare.
    """
    import dask

    from geohsi.files import joined_dask_threads

    ids = None if cmap.legend is None else cmap.legend.ids
    tasks = list(_chunk_tasks(cmap, rows, cols, count or bool(draw), blocks))
    width = cmap.shape[1]
    delayed = [
        dask.delayed(_scan_block)(blk, r0, c0, width, ids, count, (sel, rows[sel], cols[sel]) if sel.size else None, draw, (*seed, b))
        for b, blk, r0, c0, sel in tasks
    ]  # fmt: skip
    with joined_dask_threads():
        results = dask.compute(*delayed)
    return _merge_scan(cmap, ids, tasks, results, rows, draw)


def _merge_scan(
    cmap: ClassMap, ids: np.ndarray | None, tasks: list, results: Sequence, rows: np.ndarray | None, draw: int
) -> MapScan:
    all_ids = sorted(set(ids.tolist() if ids is not None else []).union(*(r[0].tolist() for r in results)))
    undeclared = sorted(set(all_ids) - set(ids.tolist())) if ids is not None else []
    if undeclared:
        raise DataError(
            f"map {cmap.path} holds class ids {undeclared[:10]} that its legend does not list; give maps written by geohsi classify"
        )
    pos = {i: k for k, i in enumerate(all_ids)}
    n_blocks = int(np.prod(cmap.data.numblocks))
    per_block = np.zeros((n_blocks, len(all_ids)), np.int64)
    cands: list[list[np.ndarray]] = [[np.empty(0, np.int64)] * len(all_ids) for _ in range(n_blocks)] if draw else []
    values = np.zeros(0 if rows is None else rows.size, np.int64)
    for (b, _, _, _, sel), (found, counts, vals, cand) in zip(tasks, results, strict=True):
        for k, (i, c) in enumerate(zip(found, counts, strict=True)):
            per_block[b, pos[int(i)]] = c
            if draw:
                cands[b][pos[int(i)]] = cand[k]
        if vals is not None:
            values[sel] = vals
    return MapScan(np.asarray(all_ids, np.int64), per_block.sum(axis=0), values, per_block if draw else None, cands)


__all__ = [
    "CHUNK",
    "NODATA",
    "ClassMap",
    "MapScan",
    "catalog_maps",
    "open_map",
    "open_maps",
    "overlaps",
    "pooled_legend",
    "scan_map",
]
