"""Training data: scenes + their labels → the labelled pixels a split is drawn from, and their channels.

A training run takes one or many scenes, as ``geohsi classify`` does (stores or files read in place,
globs, list files, STAC items), each bringing its labels one of three ways (:class:`LabelSource`):

* ``store`` — the ``labels`` variable of a scene store (the one-scene way);
* ``rasters`` — label rasters paired with the scenes by file stem (``--labels 'labels/*.tif'``),
  warped onto each scene's grid with nearest neighbour where the grids differ
  (:class:`geohsi.io.labels.RasterLabels`);
* ``vector`` — one vector file for every scene (``--labels fields.gpkg --label-field crop``),
  rasterised onto each scene's grid (:class:`geohsi.io.vector.VectorLabels`).

Labels are read window by window and kept sparse (the flat index and class of each labelled pixel
that is also a valid pixel of its scene), so memory follows the labelled pixels, not the scenes'
size. :meth:`TrainingData.labelled` places every scene in one virtual grid
(:class:`~geohsi.splits.SceneLayout`) for :func:`~geohsi.splits.make_split`;
one scene alone is its own grid, as before.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from geohsi.errors import DataError, GeohsiWarning, GeoreferenceError, UsageError
from geohsi.scene import (
    DEFAULT_CHUNK,
    ClassInfo,
    Legend,
    check_names_cover,
    default_colors,
    scene_crs,
    scene_identity,
    scene_legend,
    scene_transform,
    sparse_labels_digest,
    valid_mask,
)
from geohsi.splits import LabelledPixels, SceneLayout, Split, make_split, parse_split

#: Label windows are read this many pixels on a side at a time.
LABEL_WINDOW = 2048
#: training pixels whose spectra fit the ``lda`` reduction (a seeded uniform draw when there are more).
SPECTRA_PIXELS = 100_000


def pixel_values(cubes: Sequence[Any], layout: SceneLayout, idx: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """``[N, F]`` values of ``[F, H, W]`` cubes (one per scene of ``layout``) at its virtual indices
    ``idx``, reading only the chunks that hold them."""
    out = np.zeros((len(idx), int(cubes[0].shape[0])), dtype=dtype)
    for k, pos, local in layout.groups(idx):
        rows, cols = np.divmod(local, layout.shapes[k][1])
        data = cubes[k].data
        if hasattr(data, "vindex"):  # Dask puts the picked pixels first: [N, F], reading only their chunks
            out[pos] = np.asarray(data.vindex[:, rows, cols], dtype=dtype)
        else:
            out[pos] = np.asarray(data, dtype=dtype)[:, rows, cols].T
    return out


@dataclass(frozen=True)
class LabelSource:
    """How the scenes of a run bring their labels.

    Attributes:
        kind: ``store`` (each store's ``labels``), ``rasters`` (files paired by stem) or ``vector``.
        path: the vector file, or the label rasters' glob pattern (``None`` for ``store``).
        label_field: the vector attribute holding the class.
        layer: the vector layer (``None``: the file's only one).
        all_touched: rasterise every pixel a polygon touches (default: pixel centres inside).
        class_names: names of classes 1..K (rasters, integer vector ids), or the order of string classes.
    """

    kind: str = "store"
    path: str | None = None
    label_field: str | None = None
    layer: str | None = None
    all_touched: bool = False
    class_names: tuple[str, ...] | None = None

    @classmethod
    def from_options(
        cls,
        labels: str | os.PathLike | None = None,
        *,
        label_field: str | None = None,
        layer: str | None = None,
        all_touched: bool = False,
        class_names: Sequence[str] | None = None,
    ) -> LabelSource:
        """The label source the ``--labels``/``--label-field``/``--layer``/``--all-touched`` options describe.

        Raises:
            UsageError: vector options without a vector file, or a vector file without ``--label-field``.
        """
        from geohsi.io.vector import is_vector

        names = tuple(class_names) if class_names else None
        if labels is None:
            if label_field or layer or all_touched:
                raise UsageError("--label-field/--layer/--all-touched describe vector labels; add --labels FILE.gpkg")
            return cls("store", class_names=names)
        if is_vector(labels):
            if not label_field:
                raise UsageError(f"vector labels {labels} need --label-field NAME (the attribute holding the class)")
            return cls("vector", str(labels), label_field, layer, bool(all_touched), names)
        if label_field or layer or all_touched:
            raise UsageError(f"--label-field/--layer/--all-touched apply to vector labels, but {labels} is a raster")
        return cls("rasters", str(labels), class_names=names)


@dataclass
class TrainingScene:
    """One scene of a training run with its labels.

    Attributes:
        name: the scene's name (file or store stem, STAC item id).
        source: the path or URL it was read from.
        ds: the scene (lazy).
        index: ``[n]`` sorted flat indices of its labelled valid pixels.
        labels: ``[n]`` class ids of those pixels.
        note: how its labels were placed (e.g. reprojected), for the log.
        labels_sha256: digest of its whole label grid (:func:`geohsi.scene.labels_digest`): how
            ``geohsi evaluate`` recognises a training scene; for tiles joined into one scene
            (:mod:`geohsi.training.grid_tiles`), a digest of the tiles' digests and offsets.
        tiles: the scenes it was joined from (empty for a scene as given).
    """

    name: str
    source: str
    ds: xr.Dataset = field(repr=False)
    index: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    note: str = ""
    labels_sha256: str = ""
    tiles: list[TrainingScene] = field(default_factory=list, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.ds.sizes["y"]), int(self.ds.sizes["x"])

    def record(self) -> dict[str, Any]:
        """What a bundle records of the scene: name, source, grid and identity."""
        crs = scene_crs(self.ds)
        return {
            "name": self.name,
            "source": self.source,
            "shape": list(self.shape),
            "crs": None if crs is None else crs.to_string(),
            "identity": scene_identity(self.ds),
            "labelled_pixels": int(self.index.size),
            **({"tiles": [{**t.record(), "labels_sha256": t.labels_sha256} for t in self.tiles]} if self.tiles else {}),
        }


def _windows(shape: tuple[int, int], size: int = LABEL_WINDOW):
    h, w = shape
    for r in range(0, h, size):
        for c in range(0, w, size):
            yield r, c, min(size, h - r), min(size, w - c)


def sparse_labels(
    read: Callable[[tuple[int, int, int, int]], np.ndarray], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """``(flat index, class id)`` of the labelled pixels of a grid, read window by window."""
    idx, lab = [], []
    w = shape[1]
    for win in _windows(shape):
        r, c, _, _ = win
        block = np.asarray(read(win))
        rr, cc = np.nonzero(block)
        idx.append((rr + r) * w + cc + c)
        lab.append(block[rr, cc].astype(np.int64))
    index, labels = np.concatenate(idx).astype(np.int64), np.concatenate(lab)
    order = np.argsort(index, kind="stable")
    return index[order], labels[order]


def valid_at(ds: xr.Dataset, index: np.ndarray) -> np.ndarray:
    """Whether each flat pixel of ``index`` is valid (reads only the chunks holding them)."""
    if index.size == 0:
        return np.zeros(0, dtype=bool)
    rows, cols = np.divmod(index, int(ds.sizes["x"]))
    mask = valid_mask(ds).data
    if hasattr(mask, "vindex"):
        return np.asarray(mask.vindex[rows, cols].compute(), dtype=bool)
    return np.asarray(mask, dtype=bool)[rows, cols]


def merge_legends(legends: Sequence[tuple[str, Legend]]) -> Legend:
    """One legend from every scene's: the union by id; an id named differently by two scenes is refused.

    Raises:
        DataError: two scenes give one class id different names.
    """
    named: dict[int, tuple[ClassInfo, str]] = {}
    for scene, legend in legends:
        for c in legend:
            if c.id in named and named[c.id][0].name != c.name:
                other = named[c.id][1]
                raise DataError(
                    f"class {c.id} is {named[c.id][0].name!r} in {other} but {c.name!r} in {scene}; give the scenes one legend "
                    "(the same name for an id everywhere)"
                )
            named.setdefault(c.id, (c, scene))
    return Legend(tuple(named[i][0] for i in sorted(named)))


def _store_legend(legend: Legend, class_names: Sequence[str] | None) -> Legend:
    """A scene store's legend, its names replaced by ``--class-names`` for classes 1..K (they had been ignored)."""
    if not class_names:
        return legend
    check_names_cover({c.id for c in legend}, class_names)
    return Legend(tuple(ClassInfo(c.id, class_names[c.id - 1], c.color) for c in legend))


def _ids_legend(ids: set[int], class_names: Sequence[str] | None) -> Legend:
    """The legend of bare class ids (label rasters): ``--class-names`` or ``class_<id>``."""
    check_names_cover(ids, class_names)
    named = set(range(1, len(class_names) + 1)) if class_names else set()
    every = sorted(ids | named)
    return Legend(
        tuple(
            ClassInfo(i, class_names[i - 1] if class_names and i <= len(class_names) else f"class_{i}", colour)
            for i, colour in zip(every, default_colors(every), strict=True)
        )
    )


def _scene(name: str, source: str, ds: xr.Dataset, placed: tuple[np.ndarray, np.ndarray], note: str = "") -> TrainingScene:
    """A training scene from its sparse placed labels: the digest of all of them, then only the valid ones."""
    index, labels = placed
    scene = TrainingScene(name, source, ds, index, labels, note)
    scene.labels_sha256 = sparse_labels_digest(index, labels, scene.shape)
    keep = valid_at(ds, index)
    scene.index, scene.labels = index[keep], labels[keep]
    return scene


def _store_scenes(opened: list[tuple[str, str, xr.Dataset]]) -> tuple[list[TrainingScene], Legend]:
    scenes, legends = [], []
    for name, source, ds in opened:
        if "labels" not in ds:
            raise DataError(
                f"scene {source} has no labels variable; give --labels FILE (label rasters or a vector file), "
                "or ingest it with --labels"
            )
        shape = (int(ds.sizes["y"]), int(ds.sizes["x"]))
        placed = sparse_labels(
            lambda w, d=ds: d["labels"].isel(y=slice(w[0], w[0] + w[2]), x=slice(w[1], w[1] + w[3])).values, shape
        )
        scenes.append(_scene(name, source, ds, placed))
        legends.append((source, scene_legend(ds, present=np.unique(placed[1]).tolist())))
    return scenes, merge_legends(legends)


def _raster_scenes(
    opened: list[tuple[str, str, xr.Dataset]], src: LabelSource, log: Callable[[str], None]
) -> tuple[list[TrainingScene], Legend]:
    from geohsi.io.labels import RasterLabels
    from geohsi.io.sources import expand_scenes, scene_name

    files = {scene_name(p): p for p in expand_scenes([src.path])}
    missing = [name for name, _, _ in opened if name not in files]
    if missing:
        raise UsageError(
            f"no label raster named like scene(s) {', '.join(missing[:5])} among --labels {src.path}; "
            "name each label file after its scene (same stem)"
        )
    scenes, ids = [], set()
    for name, source, ds in opened:
        crs = scene_crs(ds)
        grid = RasterLabels.on_grid(files[name], crs, scene_transform(ds), (int(ds.sizes["y"]), int(ds.sizes["x"])), source)
        note = f"labels {files[name]} reprojected onto the grid of {name} (nearest neighbour)" if grid.reprojected else ""
        if note:
            log(note)
        scene = _scene(name, source, ds, sparse_labels(grid.read, grid.shape), note)
        ids |= {int(i) for i in np.unique(scene.labels)}
        scenes.append(scene)
    return scenes, _ids_legend(ids, src.class_names)


def _vector_scenes(
    opened: list[tuple[str, str, xr.Dataset]], src: LabelSource, log: Callable[[str], None]
) -> tuple[list[TrainingScene], Legend]:
    from geohsi.io.vector import read_vector_labels

    vec = read_vector_labels(src.path, src.label_field, layer=src.layer, all_touched=src.all_touched, class_names=src.class_names)
    scenes = []
    for name, source, ds in opened:
        crs = scene_crs(ds)
        if crs is None:
            raise GeoreferenceError(
                f"vector labels need georeferenced scenes, but {source} is a pixel grid; ingest it with --crs"
            )
        shape = (int(ds.sizes["y"]), int(ds.sizes["x"]))
        tf = scene_transform(ds)
        scenes.append(_scene(name, source, ds, sparse_labels(lambda w, c=crs, t=tf, s=shape: vec.rasterize(c, t, s, w), shape)))
    if not any(s.index.size for s in scenes):
        bounds = "; ".join(f"{s.name}: {_scene_bounds(s.ds)}" for s in scenes[:5])
        if vec.used.any():
            raise DataError(
                f"the features of {src.path} reach the scenes ({bounds}) but label no valid pixel: they lie on nodata "
                "pixels or cover no pixel centre; check the scenes' nodata value, or pass --all-touched"
            )
        raise DataError(
            f"no feature of {src.path} ({vec.describe_bounds()}) falls on a valid pixel of the scenes ({bounds}); check the file and the scenes' CRS"
        )
    _log_unlabelled(scenes, vec, src.path, log)
    return scenes, vec.legend


def _log_unlabelled(scenes: list[TrainingScene], vec: Any, path: str, log: Callable[[str], None]) -> None:
    """Say which features, scenes and classes the vector labels leave without a labelled pixel."""
    outside = int((~vec.used).sum())
    if outside:
        log(f"[yellow]{outside} of {len(vec.used)} features of {path} lie outside every scene (not used)[/]")
    bare = [s.name for s in scenes if not s.index.size]
    if bare:
        log(
            f"[yellow]{len(bare)} scene(s) get no labelled pixel from {path}: {', '.join(bare[:5])} (read, but no training pixel)[/]"
        )
    placed = set().union(*(np.unique(s.labels).tolist() for s in scenes))
    reached = set(np.asarray(vec.frame["class_id"])[vec.used].tolist())
    away = [c.name for c in vec.legend if c.id not in placed and c.id not in reached]
    if away:  # every feature of the class outside the scenes: no pixel-size advice (it had been given, to points too)
        log(f"[yellow]class(es) {', '.join(away[:5])} of {path} label no pixel: all their features lie outside every scene[/]")
    missing = [c.name for c in vec.legend if c.id not in placed and c.id in reached]
    if missing:
        log(
            f"[yellow]class(es) {', '.join(missing[:5])} of {path} label no valid pixel: their features cover no pixel "
            "centre (smaller than a pixel; --all-touched labels every pixel a polygon touches) or lie on nodata[/]"
        )


def _scene_bounds(ds: xr.Dataset) -> str:
    tf, h, w = scene_transform(ds), int(ds.sizes["y"]), int(ds.sizes["x"])
    xs, ys = sorted([tf.c, tf.c + tf.a * w]), sorted([tf.f, tf.f + tf.e * h])
    crs = scene_crs(ds)
    return f"{xs[0]:.6g}, {ys[0]:.6g}, {xs[1]:.6g}, {ys[1]:.6g} in {crs.to_string() if crs else 'pixels'}"


@dataclass
class TrainingData:
    """The scenes of a training run, their labels, one legend, and where the labels came from.

    Attributes:
        scenes: the scenes, in the order given.
        legend: the classes of every scene (logit ``k`` is ``legend[k]``).
        source: how the labels came (:class:`LabelSource`).
    """

    scenes: list[TrainingScene]
    legend: Legend
    source: LabelSource

    def layout(self, split: str, window: int) -> SceneLayout:
        """The scenes' :class:`~geohsi.splits.SceneLayout` for a split (blocks anchored per scene)."""
        spec = parse_split(split)
        blocks = spec.kind == "blocks"
        return SceneLayout.stacked(
            [s.shape for s in self.scenes], align=int(spec.value) if blocks else 1, pad=window if blocks else 0
        )

    def labelled(self, layout: SceneLayout) -> LabelledPixels:
        """Every scene's labelled valid pixels as virtual indices of ``layout``."""
        index = np.concatenate([layout.to_global(k, s.index) for k, s in enumerate(self.scenes)])
        labels = np.concatenate([s.labels for s in self.scenes])
        order = np.argsort(index, kind="stable")
        return LabelledPixels(index[order], labels[order], layout)

    def spectra(self, split: Split, *, max_pixels: int = SPECTRA_PIXELS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Physical spectra of a split's training pixels: ``(values [n, B], class ids [n])``.

        At most ``max_pixels`` of them (a seeded uniform draw), read from the chunks that hold them;
        the validation and test pixels are never read.

        Raises:
            BandMismatchError: the scenes have different band tables.
        """
        from geohsi.spectral.normalize import physical_cube
        from geohsi.spectral.transform import _check_poolable

        _check_poolable([s.ds for s in self.scenes], "lda")
        index, labels = split.train, split.train_labels
        if index.size > max_pixels:
            pick = np.sort(np.random.default_rng(seed).choice(index.size, max_pixels, replace=False))
            index, labels = index[pick], labels[pick]
        cubes = [physical_cube(s.ds).transpose("band", "y", "x") for s in self.scenes]
        return pixel_values(cubes, split.scenes, index, dtype=np.float64), np.asarray(labels)

    def split(self, spec: str, *, seed: int = 0, val_fraction: float = 0.1, window: int = 15) -> Split:
        """The seeded split of every scene's labelled pixels (:func:`~geohsi.splits.make_split`).

        A spatial split (``blocks``, ``scenes``) of scenes that overlap on the ground warns: it keeps
        the scenes' pixels apart, not the places, so one place can be in training and in test.
        """
        if parse_split(spec).kind in ("blocks", "scenes"):
            self._warn_overlaps(spec)
        return make_split(
            self.labelled(self.layout(spec, window)),
            spec,
            seed=seed,
            val_fraction=val_fraction,
            window=window,
            class_names={c.id: c.name for c in self.legend},
        )

    def _warn_overlaps(self, spec: str) -> None:
        from geohsi.scene import grid_overlaps

        pairs = grid_overlaps([(scene_crs(s.ds), scene_transform(s.ds), s.shape) for s in self.scenes])
        if pairs:
            a, b = self.scenes[pairs[0][0]].name, self.scenes[pairs[0][1]].name
            warnings.warn(
                f"{len(pairs)} pair(s) of scenes overlap on the ground (first: {a} and {b}); split {spec} keeps their pixels "
                "apart, not their places, so one place can be in training and in test: use scenes that do not overlap "
                "(or a mosaic of them)",
                GeohsiWarning,
                stacklevel=3,
            )

    def record(self) -> dict[str, Any]:
        """What a bundle records: every scene (source, grid, identity) and the label source (file digest, field, rule)."""
        from geohsi.files import file_sha256
        from geohsi.storage import absolute, local_copy

        src = self.source
        label: dict[str, Any] = {"kind": src.kind}
        if src.kind == "vector":
            label.update(
                path=absolute(src.path),
                sha256=file_sha256(local_copy(src.path, "label file")),
                field=src.label_field,
                layer=src.layer,
                rule="all touched" if src.all_touched else "pixel centre",
            )
        elif src.kind == "rasters":
            label["path"] = src.path
        return {"scenes": [{**s.record(), "labels_sha256": s.labels_sha256} for s in self.scenes], "labels": label}


def load_training_data(
    scenes: Sequence[Any], labels: LabelSource | None = None, *, chunks: int = DEFAULT_CHUNK, log: Callable[[str], None] = print
) -> TrainingData:
    """Open the scenes of a training run and place their labels (read in place, window by window).

    Args:
        scenes: scene stores, files ``geohsi ingest`` reads, or ``pystac.Item`` objects.
        labels: how they bring their labels (default: each store's ``labels``).
        chunks: spatial chunk edge of files read in place.
        log: receives one-line notes (labels reprojected, features outside every scene).

    Returns:
        The :class:`TrainingData`.

    Raises:
        UsageError: no scene, two scenes of one name, label rasters not paired with a scene.
        DataError: a scene without labels, no labelled pixel at all, legends that disagree.
        GeoreferenceError: vector labels for a pixel-grid scene, a label raster without a CRS.
    """
    from geohsi.ingestion import open_source
    from geohsi.io.sources import scene_name

    if not scenes:
        raise UsageError("no scene given; pass SCENE [SCENE ...], --from-list FILE or --stac URL -c COLLECTION")
    src = labels or LabelSource()
    opened, seen = [], {}
    for s in scenes:
        name = scene_name(s)
        if name in seen:
            raise UsageError(f"scenes {seen[name]} and {s} have one name {name!r}; rename one (labels are paired by name)")
        ds = open_source(s, chunks=chunks)
        seen[name] = s
        opened.append((name, str(ds.encoding.get("source", s)), ds))
    if src.kind == "store":
        placed, legend = _store_scenes(opened)
        legend = _store_legend(legend, src.class_names)
    elif src.kind == "rasters":
        placed, legend = _raster_scenes(opened, src, log)
    else:
        placed, legend = _vector_scenes(opened, src, log)
    if not any(s.index.size for s in placed):
        what = placed[0].source if len(placed) == 1 else f"none of the {len(placed)} scenes"
        raise DataError(
            f"{what} has no valid pixels where it is labelled (every labelled pixel is nodata or non-finite); check its nodata value and labels"
        )
    _check_distinct_names(legend)
    return TrainingData(placed, legend, src)


def _check_distinct_names(legend: Legend) -> None:
    """Refuse a legend that names two classes alike before any training (the report would refuse it after)."""
    seen: dict[str, int] = {}
    for c in legend:
        key = c.name
        if key in seen:
            raise DataError(
                f"classes {seen[key]} and {c.id} are both named {c.name!r}; give every class its own name "
                "(the scene's class names, or --class-names)"
            )
        seen[key] = c.id


__all__ = [
    "LABEL_WINDOW",
    "LabelSource",
    "TrainingData",
    "TrainingScene",
    "load_training_data",
    "merge_legends",
    "pixel_values",
    "sparse_labels",
    "valid_at",
]
