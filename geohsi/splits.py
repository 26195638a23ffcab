"""Train/validation/test splits of a scene's labelled pixels, seeded and storable.

Three protocols, written as a one-word *split string* (the ``--split`` flag of ``geohsi train``):

* ``per-class:N`` — N labelled pixels of every class form the training side (the few-shot
  protocol of HyperSIGMA and most SpectralGPT-style papers); every other labelled pixel is test.
  Each class needs **more than** N labelled pixels, so that it is scored as well as learned.
* ``fraction:F`` — a stratified fraction ``round(F * n_c)`` (at least 1, at most ``n_c - 1``) of
  each class ``c`` forms the training side; the rest is test.
* ``scenes:F`` — whole scenes held out (training on several scenes): each scene goes to train,
  validation or test as a whole, so that about a share F of the labelled pixels is on the training
  side — the honest test of a map of places the model never saw. Rare classes are placed first, as
  for blocks.
* ``blocks:S`` or ``blocks:S,F`` — spatially disjoint: the scene is cut into S×S-pixel blocks
  (anchored at pixel (0, 0)); whole blocks go to train, validation or test, so that about a share F
  (default 0.5) of the labelled pixels is on the training side. Then every training pixel closer
  than ``gap + 1`` pixels to a held-out (validation or test) pixel is **dropped**, distance measured
  as the Chebyshev distance ``max(|dr|, |dc|)`` because windows are square. With the default
  ``gap = window // 2`` (the window radius) no training window contains a held-out pixel; pass
  ``gap = 2 * (window // 2)`` to make training and held-out windows fully disjoint. Small classes
  that live in one block can only be on one side: such classes are reported with a warning and
  by :meth:`Split.missing_classes`.

The *validation* subset always comes out of the training side, so ``per-class:10`` spends its 10
labelled pixels per class on training *and* validation (9 + 1 with ``val_fraction=0.1``): the
few-shot budget stays honest. For ``per-class`` and ``fraction`` it is stratified (at least one
pixel per class when the class has at least two on the training side); for ``blocks`` whole blocks
are validation blocks. ``per-class`` and ``fraction`` splits are pixel-random: test pixels neighbour
training pixels and share window context with them, as in the published protocols; use ``blocks``
for a spatially honest estimate.

A :class:`Split` stores sorted flat pixel indices (row-major into the H×W grid) and the labels at
those pixels, so a model bundle can carry it and ``evaluate`` can check that a scene is the one it
was made from.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import DataError, GeohsiWarning, InputFormatError, UsageError
from geohsi.files import atomic_output

SUBSETS: tuple[str, ...] = ("train", "val", "test")

#: The accepted split strings, quoted in every error message about one.
SPLIT_FORMS = (
    "per-class:N (N >= 1 labelled pixels per class), fraction:F (0 < F < 1, stratified), "
    "blocks:S[,F] (S >= 1 pixel blocks, training share 0 < F < 1, default 0.5) or scenes:F (whole scenes held out, "
    "training share 0 < F < 1)"
)

DEFAULT_BLOCK_TRAIN_FRACTION = 0.5

_SPLIT_FILE_VERSION = 1
_TRAIN, _VAL, _TEST = 0, 1, 2


@dataclass(frozen=True)
class SplitSpec:
    """A parsed split string.

    Attributes:
        kind: ``"per-class"``, ``"fraction"``, ``"blocks"`` or ``"scenes"``.
        value: N (pixels per class) for ``per-class``, F for ``fraction`` and ``scenes`` (the
            training share), S (block side, pixels) for ``blocks``.
        train_fraction: for ``blocks`` only, the share of labelled pixels aimed at the training
            side (training + validation blocks).

    .. versionadded:: 0.1
    """

    kind: str
    value: int | float
    train_fraction: float = DEFAULT_BLOCK_TRAIN_FRACTION

    def __str__(self) -> str:
        if self.kind == "blocks" and self.train_fraction != DEFAULT_BLOCK_TRAIN_FRACTION:
            return f"blocks:{self.value},{self.train_fraction!r}"
        if self.kind in ("fraction", "scenes"):
            return f"{self.kind}:{float(self.value)!r}"
        return f"{self.kind}:{self.value}"

    @property
    def train_share(self) -> float:
        """The share of labelled pixels aimed at the training side (``blocks`` and ``scenes``)."""
        return float(self.value) if self.kind == "scenes" else self.train_fraction


@dataclass(frozen=True)
class SceneLayout:
    """Where the scenes of a training run sit in one virtual label grid, so one split covers them all.

    Scenes are stacked top to bottom, each starting at column 0 on a row that is a multiple of
    ``align`` (the block side of a ``blocks`` split, so blocks are anchored at each scene's top-left
    pixel) and at least ``pad`` rows below the previous one (the gap of a ``blocks`` split never
    reaches across scenes). A split's flat indices are row-major into this grid; one scene alone is
    its own grid (index = ``row * W + col``, as before there were several).

    Attributes:
        shapes: ``(H, W)`` of each scene.
        origins: the first virtual row of each scene.
        width: the virtual grid's width (the widest scene).

    .. versionadded:: 0.2
    """

    shapes: tuple[tuple[int, int], ...]
    origins: tuple[int, ...]
    width: int

    @classmethod
    def stacked(cls, shapes: Sequence[tuple[int, int]], *, align: int = 1, pad: int = 0) -> SceneLayout:
        """The layout of ``shapes`` stacked with rows aligned to ``align`` and ``pad`` rows between scenes."""
        shapes = tuple((int(h), int(w)) for h, w in shapes)
        if len(shapes) == 1:
            return cls(shapes, (0,), shapes[0][1])
        origins, row = [], 0
        for h, _ in shapes:
            origins.append(row)
            row = -(-(row + h + pad) // align) * align
        return cls(shapes, tuple(origins), max(w for _, w in shapes))

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the virtual grid."""
        return self.origins[-1] + self.shapes[-1][0], self.width

    def __len__(self) -> int:
        return len(self.shapes)

    def to_global(self, scene: int, local: np.ndarray) -> np.ndarray:
        """Virtual flat indices of a scene's flat (row-major) pixel indices."""
        rows, cols = np.divmod(np.asarray(local, dtype=np.int64), self.shapes[scene][1])
        return (rows + self.origins[scene]) * self.width + cols

    def to_local(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(scene, local flat index)`` of virtual flat indices."""
        rows, cols = np.divmod(np.asarray(index, dtype=np.int64), self.width)
        scene = np.searchsorted(np.asarray(self.origins), rows, side="right") - 1
        widths = np.asarray([w for _, w in self.shapes], dtype=np.int64)
        return scene, (rows - np.asarray(self.origins, dtype=np.int64)[scene]) * widths[scene] + cols

    def groups(self, index: np.ndarray):
        """Yield ``(scene, positions, local indices)`` for the virtual indices ``index``, scene by scene."""
        scene, local = self.to_local(index)
        for k in np.unique(scene):
            pos = np.flatnonzero(scene == k)
            yield int(k), pos, local[pos]

    def chunk_keys(self, index: np.ndarray, cubes: Sequence[Any]) -> np.ndarray:
        """One integer per virtual index naming its scene and the chunk of that scene's cube holding it.

        Cubes without chunks (in memory) count as one chunk.
        """
        scene, local = self.to_local(index)
        keys = np.zeros(len(index), dtype=np.int64)
        for k in np.unique(scene):
            pos = np.flatnonzero(scene == k)
            rows, cols = np.divmod(local[pos], self.shapes[k][1])
            chunk = cubes[k].chunk_of(rows, cols) if hasattr(cubes[k], "chunk_of") else np.zeros(pos.size, np.int64)
            keys[pos] = int(k) << 32 | chunk
        return keys

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (stored with a split)."""
        return {"shapes": [list(s) for s in self.shapes], "origins": list(self.origins), "width": self.width}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SceneLayout:
        """Rebuild from :meth:`to_dict` output."""
        return cls(tuple((int(h), int(w)) for h, w in d["shapes"]), tuple(int(o) for o in d["origins"]), int(d["width"]))


@dataclass(frozen=True)
class LabelledPixels:
    """The labelled, valid pixels of a (virtual) label grid, sparse: what a split is drawn from.

    Attributes:
        index: ``[n]`` sorted unique flat indices into the grid.
        labels: ``[n]`` class ids (≥ 1) of those pixels.
        layout: the grid (one scene, or several stacked).
        scene_of: ``[n]`` the scene each pixel belongs to.

    .. versionadded:: 0.2
    """

    index: np.ndarray
    labels: np.ndarray
    layout: SceneLayout

    @property
    def scene_of(self) -> np.ndarray:
        return self.layout.to_local(self.index)[0]


def _bad_split(spec: object, why: str) -> UsageError:
    return UsageError(f"invalid split {spec!r}: {why}; use {SPLIT_FORMS}")


def _parse_int(spec: str, text: str, what: str) -> int:
    if not re.fullmatch(r"\+?\d+", text):
        raise _bad_split(spec, f"{what} must be a whole number >= 1, got {text!r}")
    n = int(text)
    if n < 1:
        raise _bad_split(spec, f"{what} must be >= 1, got {n}")
    return n


def _parse_fraction(spec: str, text: str) -> float:
    try:
        f = float(text)
    except ValueError:
        raise _bad_split(spec, f"fraction must be a number between 0 and 1, got {text!r}") from None
    if not (0.0 < f < 1.0):  # also rejects nan
        raise _bad_split(spec, f"fraction must be strictly between 0 and 1, got {text}")
    return f


def parse_split(spec: str | SplitSpec) -> SplitSpec:
    """Parse a split string such as ``per-class:10``, ``fraction:0.1`` or ``blocks:32``.

    Args:
        spec: the split string (case and surrounding spaces ignored), or an already parsed
            :class:`SplitSpec` (returned unchanged).

    Returns:
        The parsed :class:`SplitSpec`; ``parse_split(str(s)) == s``.

    Raises:
        UsageError: the string is not one of the accepted forms (the message lists them).

    .. versionadded:: 0.1
    """
    if isinstance(spec, SplitSpec):
        return spec
    if not isinstance(spec, str):
        raise _bad_split(spec, f"expected a string, got {type(spec).__name__}")
    text = spec.strip().lower()
    kind, sep, arg = text.partition(":")
    arg = arg.strip()
    if not sep or not arg:
        raise _bad_split(spec, "missing ':' and a value")
    kind = kind.strip().replace("_", "-")
    if kind in ("per-class", "perclass"):
        return SplitSpec("per-class", _parse_int(spec, arg, "N"))
    if kind == "fraction":
        return SplitSpec("fraction", _parse_fraction(spec, arg))
    if kind == "scenes":
        return SplitSpec("scenes", _parse_fraction(spec, arg))
    if kind == "blocks":
        size, comma, frac = arg.partition(",")
        s = _parse_int(spec, size.strip(), "block size S")
        f = _parse_fraction(spec, frac.strip()) if comma else DEFAULT_BLOCK_TRAIN_FRACTION
        return SplitSpec("blocks", s, f)
    raise _bad_split(spec, f"unknown kind {kind!r}")


@dataclass(frozen=True, eq=False)
class Split:
    """Disjoint train/validation/test pixel sets of one H×W label grid.

    Index arrays are sorted, unique, int64 flat indices in row-major order (``row * W + col``);
    ``np.unravel_index(split.train, split.shape)`` gives rows and columns. The ``*_labels`` arrays
    hold the class id of each indexed pixel (same order). Arrays are read-only.

    Attributes:
        spec: the canonical split string (``str(SplitSpec)``).
        seed: the random seed the split was drawn with.
        shape: ``(H, W)`` of the label grid, pixels.
        train: training pixels, ``[n_train]`` int64.
        val: validation pixels, ``[n_val]`` int64 (taken from the training side).
        test: test pixels, ``[n_test]`` int64.
        train_labels: class ids of ``train``, ``[n_train]`` int64.
        val_labels: class ids of ``val``, ``[n_val]`` int64.
        test_labels: class ids of ``test``, ``[n_test]`` int64.
        window: the model window side (pixels) the split was made for.
        val_fraction: the share of the training side used for validation.
        gap: for ``blocks``, the Chebyshev gap (pixels) kept between training and held-out pixels;
            0 otherwise.
        classes: every class id labelled (inside the valid mask) in the grid the split was drawn
            from, including any class a ``blocks`` split left in no subset.
        layout: where several scenes sit in the grid (:class:`SceneLayout`); ``None`` for one scene.

    .. versionadded:: 0.1
    """

    spec: str
    seed: int
    shape: tuple[int, int]
    train: np.ndarray = field(repr=False)
    val: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)
    train_labels: np.ndarray = field(repr=False)
    val_labels: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)
    window: int = 15
    val_fraction: float = 0.1
    gap: int = 0
    classes: tuple[int, ...] = ()
    layout: SceneLayout | None = None

    def __post_init__(self) -> None:
        for name in (*SUBSETS, *(f"{s}_labels" for s in SUBSETS)):
            a = np.array(getattr(self, name), dtype=np.int64).reshape(-1)
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))
        present = {int(c) for s in SUBSETS for c in np.unique(self.labels_of(s))}
        object.__setattr__(self, "classes", tuple(sorted(present | {int(c) for c in self.classes})))

    # -- views ------------------------------------------------------------------------------
    @property
    def scenes(self) -> SceneLayout:
        """The layout of the split's scenes (one scene: its own grid)."""
        return self.layout if self.layout is not None else SceneLayout.stacked([self.shape])

    def indices(self, subset: str) -> np.ndarray:
        """Return the flat pixel indices of ``subset`` (``"train"``, ``"val"`` or ``"test"``)."""
        if subset not in SUBSETS:
            raise UsageError(f"unknown split subset {subset!r}; use one of {', '.join(SUBSETS)}")
        return getattr(self, subset)

    def labels_of(self, subset: str) -> np.ndarray:
        """Return the class ids of the pixels of ``subset``, aligned with :meth:`indices`."""
        self.indices(subset)
        return getattr(self, f"{subset}_labels")

    def counts(self) -> dict[str, dict[int, int]]:
        """Pixels per class per subset.

        Returns:
            ``{"train": {class_id: n, ...}, "val": {...}, "test": {...}}`` with every class of
            :attr:`classes` in every subset (zero where absent).
        """
        ids = self.classes
        out: dict[str, dict[int, int]] = {}
        for s in SUBSETS:
            u, n = np.unique(self.labels_of(s), return_counts=True)
            have = dict(zip(u.tolist(), n.tolist(), strict=True))
            out[s] = {c: int(have.get(c, 0)) for c in ids}
        return out

    def missing_classes(self) -> dict[str, list[int]]:
        """Classes of the split absent from a subset: ``{"train": [...], "val": [...], "test": [...]}``."""
        return {s: [c for c, n in per.items() if n == 0] for s, per in self.counts().items()}

    def verify(self, labels: np.ndarray, source: str = "labels") -> None:
        """Check that ``labels`` is the label grid this split was drawn from.

        Args:
            labels: ``[H, W]`` class ids (0 = unlabelled).
            source: how to name ``labels`` in the error message (e.g. the scene path).

        Raises:
            DataError: the shape differs or a split pixel carries another class id.
        """
        labels = np.asarray(labels)
        if labels.shape != self.shape:
            raise DataError(
                f"{source} has shape {labels.shape}, the split was made on {self.shape}; "
                "use the scene the model was trained on or evaluate on all its labelled pixels"
            )
        flat = labels.reshape(-1)
        for s in SUBSETS:
            bad = np.flatnonzero(flat[self.indices(s)] != self.labels_of(s))
            if bad.size:
                p = int(self.indices(s)[bad[0]])
                r, c = divmod(p, self.shape[1])
                raise DataError(
                    f"{source} differs from the split's labels at {bad.size} {s} pixel(s), first at "
                    f"row {r} col {c}; use the scene the model was trained on"
                )

    # -- serialisation ----------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "version": _SPLIT_FILE_VERSION,
            "spec": self.spec,
            "seed": self.seed,
            "shape": list(self.shape),
            "window": self.window,
            "val_fraction": self.val_fraction,
            "gap": self.gap,
            "classes": list(self.classes),
            **({"layout": self.layout.to_dict()} if self.layout is not None else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (indices and labels as lists of int)."""
        d = self._meta()
        for s in SUBSETS:
            d[s] = self.indices(s).tolist()
            d[f"{s}_labels"] = self.labels_of(s).tolist()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "split") -> Split:
        """Rebuild a split from :meth:`to_dict` output (lists or arrays).

        Args:
            d: the mapping.
            source: how to name the origin in error messages (e.g. a bundle path).

        Raises:
            InputFormatError: a key is missing or the content is inconsistent (unsorted or
                overlapping indices, out-of-range pixels, label arrays of the wrong length).
        """
        keys = ("spec", "seed", "shape", *SUBSETS, *(f"{s}_labels" for s in SUBSETS))
        missing = [k for k in keys if k not in d]
        if missing:
            raise InputFormatError(f"{source} lacks {', '.join(missing)}; re-create it with make_split/save")
        version = int(d.get("version", _SPLIT_FILE_VERSION))
        if version > _SPLIT_FILE_VERSION:
            raise InputFormatError(f"{source} is split format version {version}; upgrade geohsi to read it")
        try:
            parse_split(str(d["spec"]))
            split = cls(
                spec=str(d["spec"]),
                seed=int(d["seed"]),
                shape=tuple(int(v) for v in d["shape"]),  # type: ignore[arg-type]
                **{k: np.asarray(d[k], dtype=np.int64) for k in keys[3:]},
                window=int(d.get("window", 15)),
                val_fraction=float(d.get("val_fraction", 0.1)),
                gap=int(d.get("gap", 0)),
                classes=tuple(int(c) for c in d.get("classes", ())),
                layout=SceneLayout.from_dict(d["layout"]) if d.get("layout") else None,
            )
        except (TypeError, ValueError, KeyError, UsageError) as e:
            raise InputFormatError(f"{source} is not a valid split ({e}); re-create it with make_split/save") from e
        split._check(source)
        return split

    def _check(self, source: str) -> None:
        n_pix = self.shape[0] * self.shape[1]
        seen = []
        for s in SUBSETS:
            idx, lab = self.indices(s), self.labels_of(s)
            problem = None
            if idx.size != lab.size:
                problem = f"{s} has {idx.size} pixels but {lab.size} labels"
            elif idx.size and (np.any(np.diff(idx) <= 0) or idx[0] < 0 or idx[-1] >= n_pix):
                problem = f"{s} indices are not sorted, unique and inside the {self.shape} grid"
            elif lab.size and lab.min() < 1:
                problem = f"{s} contains unlabelled pixels (class 0)"
            if problem:
                raise InputFormatError(f"{source}: {problem}; re-create it with make_split/save")
            seen.append(idx)
        allidx = np.concatenate(seen)
        if np.unique(allidx).size != allidx.size:
            raise InputFormatError(f"{source}: train, val and test overlap; re-create it with make_split/save")

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the split to an ``.npz`` file, atomically.

        Args:
            path: destination file (conventionally ``split.npz``).
            overwrite: replace an existing file.

        Returns:
            The path written.

        Raises:
            OutputError: the file exists without ``overwrite`` or cannot be written.
        """
        arrays = {k: getattr(self, k) for k in (*SUBSETS, *(f"{s}_labels" for s in SUBSETS))}
        meta = np.array(json.dumps(self._meta()))
        # A file object, because np.savez appends ".npz" to names lacking it (the temp name does).
        with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, meta=meta, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Split:
        """Read a split written by :meth:`save`.

        Raises:
            InputFormatError: the file is missing, not an ``.npz`` split, or inconsistent.
        """
        p = Path(path)
        if not p.is_file():
            raise InputFormatError(f"split file {p} not found; pass the split.npz written with the bundle")
        try:
            with np.load(p, allow_pickle=False) as z:
                d: dict[str, Any] = json.loads(str(z["meta"]))
                d.update({k: z[k] for k in z.files if k != "meta"})
        except (OSError, ValueError, KeyError) as e:
            raise InputFormatError(f"{p} is not a geohsi split file ({e}); re-create it with Split.save") from e
        return cls.from_dict(d, source=str(p))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Split):
            return NotImplemented
        return self._meta() == other._meta() and all(
            np.array_equal(getattr(self, k), getattr(other, k)) for k in (*SUBSETS, *(f"{s}_labels" for s in SUBSETS))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-looking arrays: not hashable

    def __repr__(self) -> str:
        scenes = f", scenes={len(self.layout)}" if self.layout is not None else ""
        return (
            f"Split(spec={self.spec!r}, seed={self.seed}, shape={self.shape}{scenes}, "
            f"train={self.train.size}, val={self.val.size}, test={self.test.size})"
        )


# -- drawing splits -----------------------------------------------------------------------------


def _round_half_up(x: float) -> int:
    # Python's round() rounds half to even; a split should not depend on that subtlety.
    return int(math.floor(x + 0.5))


def _n_val(n_side: int, val_fraction: float) -> int:
    """Validation pixels taken from a class's ``n_side`` training-side pixels."""
    if val_fraction <= 0 or n_side < 2:
        return 0
    return min(n_side - 1, max(1, _round_half_up(val_fraction * n_side)))


def _class_label(c: int, class_names: Mapping[int, str] | None) -> str:
    name = (class_names or {}).get(c)
    return f"class {c} ({name})" if name else f"class {c}"


def _labelled_pixels(labels: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Return flat indices and class ids of the labelled (and valid) pixels."""
    if labels.ndim != 2:
        raise UsageError(f"labels must be a 2-D [H, W] grid, got shape {labels.shape}; pass the scene's labels(y, x)")
    if labels.dtype.kind == "f":
        lab = np.nan_to_num(labels, nan=0.0)
        if np.any(lab != np.round(lab)):
            raise DataError("labels contain non-integer values; class ids must be whole numbers (0 = unlabelled)")
        labels = lab.astype(np.int64)
    elif labels.dtype.kind not in "iub":
        raise DataError(f"labels have dtype {labels.dtype}; class ids must be integers (0 = unlabelled)")
    flat = labels.reshape(-1).astype(np.int64, copy=False)
    if flat.size and flat.min() < 0:
        raise DataError(f"labels contain negative class id {int(flat.min())}; use 0 for unlabelled pixels")
    mask = flat > 0
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != labels.shape:
            raise UsageError(f"valid mask has shape {valid.shape}, labels have {labels.shape}; pass a mask of the same grid")
        mask &= valid.reshape(-1)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        raise DataError(
            "the labels hold no labelled pixels"
            + (" inside the valid mask" if valid is not None else "")
            + "; ingest the scene with --labels (0 = unlabelled, classes 1..K)"
        )
    return idx, flat[idx]


def _by_class(idx: np.ndarray, lab: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(lab, kind="stable")  # stable: each class's indices stay sorted
    classes, starts = np.unique(lab[order], return_index=True)
    ends = np.append(starts[1:], order.size)
    return {int(c): idx[order[a:b]] for c, a, b in zip(classes, starts, ends, strict=True)}


def _stratified(
    groups: dict[int, np.ndarray], n_side: dict[int, int], val_fraction: float, rng: np.random.Generator
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = {}
    for c, pix in groups.items():  # ascending class id: the draw order is fixed by the seed alone
        perm = rng.permutation(pix)
        k = n_side[c]
        v = _n_val(k, val_fraction)
        out[c] = (perm[v:k], perm[:v], perm[k:])
    return out


def _chebyshev_near(points: np.ndarray, targets: np.ndarray, width: int, radius: int) -> np.ndarray:
    """Which ``points`` (flat indices of a grid ``width`` wide) lie within Chebyshev distance ``radius``
    of one of the ``targets``: a nearest-neighbour query over the labelled pixels alone, so memory
    follows the labels, not the grid."""
    if points.size == 0 or targets.size == 0:
        return np.zeros(points.size, dtype=bool)
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack(np.divmod(targets, width)))
    dist, _ = tree.query(np.column_stack(np.divmod(points, width)), k=1, p=np.inf, distance_upper_bound=radius + 0.5)
    return dist <= radius


def _block_ids(idx: np.ndarray, grid: LabelledPixels, spec: SplitSpec) -> np.ndarray:
    """The unit each labelled pixel is held out with: its S×S block, or (``scenes``) its scene."""
    if spec.kind == "scenes":
        return grid.layout.to_local(idx)[0]
    s, w = int(spec.value), grid.layout.width
    rows, cols = np.divmod(idx, w)
    return (rows // s) * -(-w // s) + cols // s


def _blocks(
    idx: np.ndarray,
    lab: np.ndarray,
    grid: LabelledPixels,
    spec: SplitSpec,
    val_fraction: float,
    gap: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Assign whole S×S blocks (or whole scenes) to train/val/test, then drop training pixels near held-out ones."""
    _, w = grid.layout.shape
    blocks, inv = np.unique(_block_ids(idx, grid, spec), return_inverse=True)
    classes, cinv = np.unique(lab, return_inverse=True)
    nb, k = blocks.size, classes.size
    counts = np.zeros((nb, k), dtype=np.int64)
    np.add.at(counts, (inv, cinv), 1)
    per_block = counts.sum(1)
    total = float(per_block.sum())

    side = np.full(nb, -1)
    order = rng.permutation(nb)
    # Cover rare classes first so that, where a class spans several blocks, it is both learned
    # and scored; a class inside one block can only be learned.
    for ci in np.lexsort((classes, counts.sum(0))):
        for target in (_TRAIN, _TEST):
            has = counts[:, ci] > 0
            if np.any(has & (side == target)):
                continue
            free = [b for b in order if side[b] < 0 and has[b]]
            if free:
                side[free[0]] = target

    f = spec.train_share
    goal = np.array([f * (1 - val_fraction), f * val_fraction, 1 - f]) * total
    got = np.array([per_block[side == t].sum() for t in (_TRAIN, _VAL, _TEST)], dtype=float)
    for b in order:
        if side[b] >= 0:
            continue
        # Give the block to the subset furthest (relatively) below its goal.
        need = np.where(goal > 0, (goal - got) / np.maximum(goal, 1e-12), -np.inf)
        t = int(np.argmax(need))
        side[b] = t
        got[t] += per_block[b]

    def resolve(assign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pix_side = assign[inv]
        if gap == 0:  # no pixel is dropped (whole scenes): no grid needed
            return pix_side, pix_side == _TRAIN
        train = pix_side == _TRAIN
        keep = train.copy()
        keep[train] = ~_chebyshev_near(idx[train], idx[~train], w, gap)
        return pix_side, keep

    # Repair: a class left without training pixels (its train blocks all lie within the gap of
    # held-out pixels, or it got none) gets one of its held-out blocks flipped to train, unless
    # that takes away another class's last test block. Learning a class beats scoring it.
    for _ in range(nb):
        pix_side, keep = resolve(side)
        trained = np.bincount(cinv[keep], minlength=k) > 0
        tested = counts[side == _TEST].sum(0) > 0
        flipped = False
        for ci in np.lexsort((classes, counts.sum(0))):
            if trained[ci]:
                continue
            cand = sorted((b for b in order if side[b] != _TRAIN and counts[b, ci] > 0), key=lambda b: -counts[b, ci])
            for b in cand:
                trial = side.copy()
                trial[b] = _TRAIN
                lost = tested & ~(counts[trial == _TEST].sum(0) > 0)
                lost[ci] = False
                if lost.any() or not np.any(cinv[resolve(trial)[1]] == ci):
                    continue
                side, flipped = trial, True
                break
            if flipped:
                break
        if not flipped:
            break
    pix_side, keep = resolve(side)
    return idx[keep], idx[pix_side == _VAL], idx[pix_side == _TEST]


def make_split(
    labels: np.ndarray | LabelledPixels,
    spec: str | SplitSpec,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    window: int = 15,
    valid: np.ndarray | None = None,
    class_names: Mapping[int, str] | None = None,
    gap: int | None = None,
) -> Split:
    """Draw a seeded train/validation/test split of the labelled pixels of a label grid.

    Args:
        labels: ``[H, W]`` class ids, 0 = unlabelled (integer, or float holding whole numbers;
            NaN counts as unlabelled), or the :class:`LabelledPixels` of one or several scenes
            (``valid`` is then already applied; the split records their :class:`SceneLayout`).
        spec: a split string (see the module docstring) or a :class:`SplitSpec`.
        seed: random seed (>= 0); the same inputs and seed always give the same split.
        val_fraction: share of the training side moved to validation, in ``[0, 1)``.
        window: the model window side in pixels (>= 1); its radius ``window // 2`` is the default
            ``gap`` of ``blocks`` splits.
        valid: optional ``[H, W]`` bool mask; pixels outside it (nodata) are never used.
        class_names: optional ``{class_id: name}`` used in error messages.
        gap: ``blocks`` only — drop training pixels within this Chebyshev distance (pixels) of a
            validation or test pixel; default ``window // 2``.

    Returns:
        The :class:`Split`.

    Raises:
        UsageError: invalid split string, ``val_fraction``, ``window``, ``gap``, ``seed`` or mask shape.
        DataError: no labelled pixels; no training or no test pixels; for ``per-class:N`` a class with N
            or fewer labelled pixels, for ``fraction:F`` a class with a single labelled pixel (all such
            classes are named).

    .. versionadded:: 0.1
    """
    sp = parse_split(spec)
    gap = _check_arguments(sp, val_fraction, window, gap, seed)
    grid = _labelled_grid(labels, valid, sp)
    idx, lab = np.asarray(grid.index, dtype=np.int64), np.asarray(grid.labels, dtype=np.int64)
    groups = _by_class(idx, lab)
    tr, va, te = _draw(sp, grid, groups, float(val_fraction), gap, np.random.default_rng(int(seed)), class_names)
    arrays: dict[str, np.ndarray] = {}
    for name, a in zip(SUBSETS, (tr, va, te), strict=True):
        a = np.sort(a.astype(np.int64))
        arrays[name] = a
        arrays[f"{name}_labels"] = lab[np.searchsorted(idx, a)]  # idx is sorted and holds every a
    split = Split(
        spec=str(sp),
        seed=int(seed),
        shape=grid.layout.shape,
        window=int(window),
        val_fraction=float(val_fraction),
        gap=int(gap) if sp.kind == "blocks" else 0,
        classes=tuple(groups),
        layout=grid.layout if len(grid.layout) > 1 else None,
        **arrays,
    )
    _refuse_empty(split, sp)
    if sp.kind in ("blocks", "scenes"):
        _warn_missing_classes(split, sp, class_names)
    return split


def _refuse_empty(split: Split, sp: SplitSpec) -> None:
    """Refuse a split without training or test pixels: a run would train (or fit) to the end and then
    have nothing to learn from or to score.

    Raises:
        DataError: naming the counts and the fix.
    """
    empty = [name for name, a in (("training", split.train), ("test", split.test)) if len(a) == 0]
    if empty:
        counts = f"{len(split.train)} train / {len(split.val)} val / {len(split.test)} test pixels"
        fix = {
            "blocks": "smaller blocks, another seed or fraction:F",
            # no seed helps: a scene that alone holds a class always trains (so the class is learnt)
            "scenes": "more scenes or fraction:F (a scene holding a class no other scene has always trains)",
        }.get(sp.kind, "another split, another seed or fraction:F")
        raise DataError(f"split {sp} leaves no {' and no '.join(empty)} pixels ({counts}); use {fix}")


def _check_arguments(sp: SplitSpec, val_fraction: float, window: int, gap: int | None, seed: int) -> int:
    """Refuse a bad ``val_fraction``, ``window``, ``gap`` or ``seed`` (and blocks smaller than the gap's span); the gap."""
    if not (0.0 <= float(val_fraction) < 1.0):
        raise UsageError(f"val_fraction={val_fraction} is outside [0, 1); use e.g. 0.1 (0 = no validation)")
    if int(window) != window or window < 1:
        raise UsageError(f"window={window} is not a positive whole number of pixels; use e.g. 15")
    if gap is None:
        gap = int(window) // 2
    if int(gap) != gap or gap < 0:
        raise UsageError(f"gap={gap} is not a whole number of pixels >= 0; use e.g. the window radius {window // 2}")
    if int(seed) != seed or seed < 0:
        raise UsageError(f"seed={seed} is not a whole number >= 0; use e.g. --seed 0")
    if sp.kind == "blocks" and int(sp.value) < 2 * gap + 1:
        raise UsageError(
            f"split {sp} has blocks smaller than the {2 * gap + 1}-pixel span of the gap {gap} around a pixel; "
            f"use blocks:S with S >= {2 * gap + 1} (e.g. blocks:{max(32, 2 * gap + 1)}) or a smaller window/gap"
        )
    return int(gap)


def _labelled_grid(labels: np.ndarray | LabelledPixels, valid: np.ndarray | None, sp: SplitSpec) -> LabelledPixels:
    """The labelled pixels to split (a label grid's, inside ``valid``); refuses none, and a scene split of one scene."""
    grid = labels if isinstance(labels, LabelledPixels) else None
    if grid is None:
        labels = np.asarray(labels)
        idx, lab = _labelled_pixels(labels, valid)
        grid = LabelledPixels(idx, lab, SceneLayout.stacked([labels.shape]))
    if grid.index.size == 0:
        raise DataError(
            "the scenes hold no labelled pixels inside their valid pixels; give labels (0 = unlabelled, classes 1..K)"
        )
    if sp.kind == "scenes" and len(grid.layout) < 2:
        raise UsageError(
            f"split {sp} holds out whole scenes but training has {len(grid.layout)}; give several scenes or use blocks:S"
        )
    return grid


def _draw(
    sp: SplitSpec,
    grid: LabelledPixels,
    groups: dict[int, np.ndarray],
    val_fraction: float,
    gap: int,
    rng: np.random.Generator,
    class_names: Mapping[int, str] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train, validation, test)`` pixel indices of the split kind ``sp``.

    Raises:
        DataError: a class too small for ``per-class:N`` or ``fraction:F`` (all such classes named).
    """
    sizes = {c: int(p.size) for c, p in groups.items()}

    def too_small(limit: int, why: str, fix: str) -> None:
        small = [c for c, n in sizes.items() if n < limit]
        if small:
            listed = ", ".join(f"{_class_label(c, class_names)} has {sizes[c]}" for c in small)
            raise DataError(f"split {sp} {why}, but {listed} labelled pixel(s); {fix}")

    if sp.kind == "per-class":
        n = int(sp.value)
        smallest = min(sizes.values())
        too_small(
            n + 1,
            f"needs more than {n} labelled pixels in every class ({n} to train, at least 1 to test)",
            f"use per-class:{smallest - 1} or smaller, or fraction:F"
            if smallest >= 2
            else "label more pixels of that class or remove it from the labels",
        )
        parts = _stratified(groups, {c: n for c in groups}, val_fraction, rng)
    elif sp.kind == "fraction":
        f = float(sp.value)
        too_small(
            2,
            "needs at least 2 labelled pixels in every class (1 to train, 1 to test)",
            "label more pixels of that class or remove it from the labels",
        )
        side = {c: min(m - 1, max(1, _round_half_up(f * m))) for c, m in sizes.items()}
        parts = _stratified(groups, side, val_fraction, rng)
    else:
        idx, lab = np.asarray(grid.index, dtype=np.int64), np.asarray(grid.labels, dtype=np.int64)
        return _blocks(idx, lab, grid, sp, val_fraction, gap if sp.kind == "blocks" else 0, rng)
    return tuple(np.concatenate([p[i] for p in parts.values()]) for i in range(3))  # type: ignore[return-value]


def _warn_missing_classes(split: Split, sp: SplitSpec, class_names: Mapping[int, str] | None) -> None:
    """A :class:`GeohsiWarning` naming the classes a block or scene split left without training or test pixels."""
    missing = split.missing_classes()
    if missing["train"] or missing["test"]:
        gaps = "; ".join(
            f"no {what} pixels for " + ", ".join(_class_label(c, class_names) for c in missing[sub])
            for sub, what in (("train", "training"), ("test", "test"))
            if missing[sub]
        )
        warnings.warn(
            f"split {sp}: {gaps} (classes confined to few {'scenes' if sp.kind == 'scenes' else 'blocks or within the gap'}); "
            f"use {'other scenes' if sp.kind == 'scenes' else 'smaller blocks'}, another seed or fraction:F",
            GeohsiWarning,
            stacklevel=3,
        )


__all__ = ["SPLIT_FORMS", "SUBSETS", "LabelledPixels", "SceneLayout", "Split", "SplitSpec", "make_split", "parse_split"]
