"""Scenes that are tiles of one grid, joined into one training scene so that samples cross tile borders.

A product delivered as tiles (the 18 EnMAP Potsdam GeoTIFFs, a Sentinel-2 granule cut into 512-px
pieces) is one scene cut up for transport. Trained tile by tile, a dense crop or a patch window
never sees across a tile edge, and pixels near an edge are predicted without their neighbours; read
as a mosaic — what TorchGeo's raster datasets do when a sample spans several files — they are not.

:func:`join_grid_tiles` joins the scenes of a run that are

* GeoTIFF files read in place (what :func:`geohsi.io.read` mosaics), georeferenced, north-up;
* of one CRS, pixel size, band table (count, wavelengths) and data type;
* on one pixel grid (origins a whole number of pixels apart) and disjoint (no pixel in two tiles);
* compact: their union grid holds at most :data:`MAX_UNION_RATIO` times their pixels — scenes
  scattered over a region stay apart.

All scenes sharing CRS, pixel size, bands and type form one candidate group, joined only if the
whole group passes. The joined scene is the lazy mosaic (:class:`geohsi.io.mosaic.TileMosaic`, read
window by window like any scene), its labels the tiles' labels placed at their offsets. A split that
holds out whole scenes (``scenes:F``) keeps the tiles apart: the tiles are what it holds out.

.. versionadded:: 0.3
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import GeoreferenceError
from geohsi.scene import DEFAULT_CHUNK, cube, scene_crs, scene_transform
from geohsi.training.data import TrainingData, TrainingScene

#: tiles are joined only when their union grid holds at most this many times their pixels.
MAX_UNION_RATIO = 2.0
#: file suffixes of the tiles :func:`geohsi.io.read` mosaics.
TILE_SUFFIXES = (".tif", ".tiff")


def _group_key(scene: TrainingScene) -> tuple | None:
    """What tiles of one grid share; ``None`` for a scene that is never joined."""
    from geohsi.storage import is_url

    crs, tf = scene_crs(scene.ds), scene_transform(scene.ds)
    if is_url(scene.source) or Path(scene.source).suffix.lower() not in TILE_SUFFIXES or crs is None or tf.b or tf.d:
        return None
    values = np.asarray(scene.ds["wavelength"].values, float) if "wavelength" in scene.ds else np.empty(0)
    wavelengths = tuple("unknown" if np.isnan(w) else round(float(w), 6) for w in values)  # NaN ≠ NaN: spelled out
    v = cube(scene.ds)
    return crs.to_wkt(), tf.a, tf.e, int(v.shape[0]), wavelengths, str(v.dtype)


def _tile_layout(group: Sequence[TrainingScene]) -> tuple[list[tuple[int, int]], tuple[int, int]] | None:
    """``(each tile's (row, col) on the union grid, the union's (H, W))``, or ``None`` when the group is not tiles of one grid."""
    from geohsi.io.mosaic import GridTile, check_same_grid, tile_cover, tile_offset, union_grid

    tiles = [GridTile(s.name, scene_transform(s.ds), *s.shape, ()) for s in group]
    try:
        for t in tiles[1:]:
            check_same_grid(tiles[0], t)
    except GeoreferenceError:
        return None
    transform, height, width = union_grid(tiles)
    pixels = sum(t.height * t.width for t in tiles)
    if height * width > MAX_UNION_RATIO * pixels or tile_cover(tiles, transform, height, width)[1]:
        return None
    return [tile_offset(t, transform) for t in tiles], (height, width)


def _joined_scene(
    group: Sequence[TrainingScene], offsets: Sequence[tuple[int, int]], shape: tuple[int, int], chunks: int
) -> TrainingScene:
    """One scene over the tiles: their mosaic, their labels at their offsets, a digest of the members' digests.

    Raises:
        GeoreferenceError: the mosaic's grid is not the union the offsets were computed on.
    """
    from geohsi.ingestion import open_tiles

    ds = open_tiles([s.source for s in group], chunks=chunks)
    if (int(ds.sizes["y"]), int(ds.sizes["x"])) != shape:
        raise GeoreferenceError(
            f"the mosaic of {group[0].name} and its neighbours is {dict(ds.sizes)}, not {shape}; pass the tiles as one scene to 'geohsi ingest'"
        )
    width = shape[1]
    index = np.concatenate(
        [(r + s.index // s.shape[1]) * width + c + s.index % s.shape[1] for s, (r, c) in zip(group, offsets, strict=True)]
    )
    labels = np.concatenate([s.labels for s in group])
    order = np.argsort(index, kind="stable")
    members = [(s.labels_sha256, r, c) for s, (r, c) in zip(group, offsets, strict=True)]
    digest = hashlib.sha256(json.dumps(members).encode()).hexdigest()
    name = f"{group[0].name} + {len(group) - 1} tiles"
    source = str(ds.encoding["source"])
    return TrainingScene(name, source, ds, index[order], labels[order], labels_sha256=digest, tiles=list(group))


def join_grid_tiles(data: TrainingData, *, chunks: int = DEFAULT_CHUNK, log: Callable[[str], None] = print) -> TrainingData:
    """The run's scenes with every group of tiles of one grid joined into one scene (see the module docstring).

    Args:
        data: the run's scenes and labels (:func:`geohsi.training.data.load_training_data`).
        chunks: spatial chunk edge of the joined mosaics' lazy reads.
        log: receives one line per joined group.

    Returns:
        ``data`` itself when nothing is joined, else a :class:`TrainingData` in which each joined
        scene takes the place of its first tile (the other scenes keep their order).
    """
    groups: dict[tuple, list[int]] = {}
    for k, s in enumerate(data.scenes):
        key = _group_key(s)
        if key is not None:
            groups.setdefault(key, []).append(k)
    joined: dict[int, TrainingScene] = {}
    absorbed: set[int] = set()
    for members in groups.values():
        layout = _tile_layout([data.scenes[k] for k in members]) if len(members) > 1 else None
        if layout is None:
            continue
        scene = _joined_scene([data.scenes[k] for k in members], *layout, chunks)
        joined[members[0]] = scene
        absorbed.update(members)
        h, w = scene.shape
        log(f"{len(members)} scenes are tiles of one grid: trained as one {h} × {w} mosaic, so samples cross tile borders")
    if not joined:
        return data
    scenes = [joined.get(k, s) for k, s in enumerate(data.scenes) if k in joined or k not in absorbed]
    return replace(data, scenes=scenes)


def join_for_split(data: TrainingData, split: str, *, log: Callable[[str], None] = print) -> TrainingData:
    """The scenes a split is drawn over: tiles of one grid joined, unless the split holds out whole scenes."""
    from geohsi.splits import parse_split

    if parse_split(split).kind == "scenes":
        return data
    return join_grid_tiles(data, log=log)


def tiles_joined_in(train_config: dict[str, Any]) -> bool:
    """Whether a bundle's training record holds a scene joined from tiles (``geohsi evaluate`` joins them alike)."""
    return any(s.get("tiles") for s in train_config.get("scenes") or [])


__all__ = ["MAX_UNION_RATIO", "TILE_SUFFIXES", "join_for_split", "join_grid_tiles", "tiles_joined_in"]
