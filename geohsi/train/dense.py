"""Dense-mode training data: tiles cut from the transformed scene, with the sparse labels as targets.

A dense model (:class:`~geohsi.models.dense.SpectralGPTSegmenter`) is trained on ``S × S`` tiles
(``S`` = the model input size, no resizing). The targets are the *sparse* label map: a tile pixel
carries its class index only if it is a **training** pixel of the split; every other pixel —
unlabelled, validation, test — is :data:`IGNORE_INDEX`, so cross-entropy sees training labels only
(test pixels may appear in a tile's *input*, as they appear in patch-mode windows of
``per-class``/``fraction`` splits, but never as a target).

For ``blocks:S`` splits the spatial protocol is kept strictly: no training tile contains a single
pixel of a held-out (validation or test) block, so neither their spectra nor their labels reach
training. :func:`held_out_mask` marks those blocks, and :class:`TileSampler` only draws tile origins
whose tile avoids them (a summed-area table makes the check O(1) per origin).

Each epoch draws a random **cover** of the training pixels: the training pixels are visited in a
seeded random order and each one not yet inside a tile of this epoch gets a tile at a random
allowed position containing it. Flips and 90° rotations are applied to tile and targets together.

.. versionadded:: 0.1
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from geohsi.errors import DataError

#: Target value of pixels the loss ignores (``torch.nn.CrossEntropyLoss``'s default ``ignore_index``).
IGNORE_INDEX = -100


def held_out_mask(split, shape: tuple[int, int]) -> np.ndarray | None:
    """``[H, W]`` bool mask of the pixels training tiles must not contain, or ``None``.

    For a ``blocks:S`` split: every pixel of each S×S block (anchored at (0, 0), as the split draws
    them) that holds a validation or test pixel. Other splits keep no pixel out of tile inputs.

    Args:
        split: a :class:`~geohsi.datasets.splits.Split`.
        shape: ``(H, W)`` of the scene.

    Returns:
        The mask, or ``None`` for ``per-class``/``fraction`` splits.

    .. versionadded:: 0.1
    """
    from geohsi.datasets.splits import parse_split

    spec = parse_split(split.spec)
    if spec.kind != "blocks":
        return None
    s = int(spec.value)
    h, w = shape
    held = np.concatenate([np.asarray(split.val, dtype=np.int64), np.asarray(split.test, dtype=np.int64)])
    rows, cols = np.divmod(held, w)
    blocks = np.zeros((-(-h // s), -(-w // s)), dtype=bool)
    blocks[rows // s, cols // s] = True
    return np.repeat(np.repeat(blocks, s, axis=0), s, axis=1)[:h, :w]


@dataclass
class TileSampler:
    """Seeded tile origins covering the training pixels, and their sparse targets.

    Attributes:
        shape: ``(H, W)`` of the scene.
        tile: tile edge S (pixels).
        train_idx: ``[n]`` flat (row-major) indices of the training pixels.
        train_targets: ``[n]`` class indices (logit order) of those pixels.
        forbidden: ``[H, W]`` pixels no tile may contain (:func:`held_out_mask`), or ``None``.

    Raises:
        DataError: the scene is smaller than a tile, or no allowed tile covers any training pixel.

    .. versionadded:: 0.1
    """

    shape: tuple[int, int]
    tile: int
    train_idx: np.ndarray
    train_targets: np.ndarray
    forbidden: np.ndarray | None = None
    _allowed: np.ndarray = field(init=False, repr=False)
    _target_map: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        h, w = self.shape
        t = self.tile
        if t > h or t > w:
            raise DataError(f"the scene is {h}×{w} pixels, smaller than the {t}-pixel training tile; use a smaller --tile")
        self.train_idx = np.asarray(self.train_idx, dtype=np.int64)
        self._target_map = np.full((h, w), IGNORE_INDEX, dtype=np.int64)
        self._target_map.reshape(-1)[self.train_idx] = np.asarray(self.train_targets, dtype=np.int64)
        # allowed[y, x]: the tile with top-left corner (y, x) contains no forbidden pixel.
        if self.forbidden is None:
            self._allowed = np.ones((h - t + 1, w - t + 1), dtype=bool)
        else:
            sat = np.pad(np.asarray(self.forbidden, dtype=np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
            inside = sat[t:, t:] - sat[:-t, t:] - sat[t:, :-t] + sat[:-t, :-t]
            self._allowed = inside == 0
        rows, cols = np.divmod(self.train_idx, w)
        self.coverable = np.array([self._candidates(r, c).size > 0 for r, c in zip(rows, cols, strict=True)], dtype=bool)
        if self.train_idx.size and not self.coverable.any():
            raise DataError(
                f"no {t}×{t} training tile fits between the held-out blocks; use a smaller --tile or larger split blocks"
            )

    def _candidates(self, r: int, c: int) -> np.ndarray:
        """Flat indices (into the origin grid) of allowed tiles containing pixel (r, c)."""
        t = self.tile
        y0, x0 = max(0, r - t + 1), max(0, c - t + 1)
        sub = self._allowed[y0: r + 1, x0: c + 1]
        yy, xx = np.nonzero(sub)
        return (yy + y0) * self._allowed.shape[1] + (xx + x0)

    def epoch_origins(self, seed: int, epoch: int) -> np.ndarray:
        """``[M, 2]`` tile origins (row, col) of one epoch: a random cover of the coverable training pixels.

        Args:
            seed: run seed.
            epoch: epoch number (0-based).

        Returns:
            Origins in the order they were drawn (the caller shuffles batches from it as it likes).
        """
        rng = np.random.default_rng([seed, epoch, 7])
        h, w = self.shape
        t = self.tile
        covered = np.zeros((h, w), dtype=bool)
        origins = []
        ow = self._allowed.shape[1]
        for k in rng.permutation(self.train_idx.size):
            if not self.coverable[k]:
                continue
            r, c = divmod(int(self.train_idx[k]), w)
            if covered[r, c]:
                continue
            cand = self._candidates(r, c)
            y, x = divmod(int(cand[rng.integers(cand.size)]), ow)
            covered[y: y + t, x: x + t] = True
            origins.append((y, x))
        return np.asarray(origins, dtype=np.int64).reshape(-1, 2)

    def targets(self, origins: np.ndarray) -> np.ndarray:
        """``[M, S, S]`` int64 targets of tiles at ``origins`` (class index or :data:`IGNORE_INDEX`)."""
        t = self.tile
        return np.stack([self._target_map[y: y + t, x: x + t] for y, x in origins]) if len(origins) else np.zeros((0, t, t), np.int64)


def cut_tiles(channels, origins: np.ndarray, tile: int) -> np.ndarray:
    """``[M, C, S, S]`` float32 tiles of a ``[C, H, W]`` scene (numpy or Dask); NaN → 0 as in patch mode.

    .. versionadded:: 0.1
    """
    if not len(origins):
        return np.zeros((0, channels.shape[0], tile, tile), np.float32)
    # np.asarray per tile: a lazy (Dask) scene reads only the tiles' pixels.
    x = np.stack([np.asarray(channels[:, y: y + tile, c: c + tile], dtype=np.float32) for y, c in origins])
    return np.nan_to_num(x, copy=False, nan=0.0)


def augment_pairs(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random dihedral transform (90° rotations, horizontal flip) on each tile and its targets.

    Args:
        x: ``[N, C, S, S]`` tiles.
        y: ``[N, S, S]`` targets.
        generator: seeded generator (one per step, so runs replay exactly).

    Returns:
        Transformed ``(x, y)``.

    .. versionadded:: 0.1
    """
    k = torch.randint(0, 4, (x.shape[0],), generator=generator).tolist()
    flip = torch.randint(0, 2, (x.shape[0],), generator=generator).tolist()
    xs, ys = [], []
    for i in range(x.shape[0]):
        xi, yi = torch.rot90(x[i], k[i], dims=(-2, -1)), torch.rot90(y[i], k[i], dims=(-2, -1))
        if flip[i]:
            xi, yi = torch.flip(xi, dims=(-1,)), torch.flip(yi, dims=(-1,))
        xs.append(xi)
        ys.append(yi)
    return torch.stack(xs), torch.stack(ys)


def dense_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled (non-ignored) pixels of a batch of tiles.

    Args:
        logits: ``[N, K, S, S]``.
        targets: ``[N, S, S]`` class indices, :data:`IGNORE_INDEX` elsewhere.

    Returns:
        Scalar loss (0 with a zero gradient when no pixel is labelled).

    .. versionadded:: 0.1
    """
    if not (targets != IGNORE_INDEX).any():
        return logits.float().sum() * 0.0
    return torch.nn.functional.cross_entropy(logits.float(), targets, ignore_index=IGNORE_INDEX)


__all__ = ["IGNORE_INDEX", "TileSampler", "augment_pairs", "cut_tiles", "dense_loss", "held_out_mask"]
