"""The ``dense`` head: segmentation of whole tiles, Hann-blended on a scene-anchored grid.

Model: :class:`~geohsi.models.decoder.SpectralGPTSegmenter` (encoder + :class:`~geohsi.models.decoder.DenseDecoder`),
``[N, C, S, S]`` → ``[N, K, S, S]``. Inference: :mod:`geohsi.prediction.tiles` (a block needs a halo
of ``S − 1`` pixels and its position in the scene). Training data, below.

A dense model (:class:`~geohsi.models.decoder.SpectralGPTSegmenter`) is trained on ``S × S`` tiles
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

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from geohsi.errors import DataError, UsageError
from geohsi.heads.augment import dihedral
from geohsi.heads.base import CHUNK_BUDGET_BYTES, Head, image_batch, register_head
from geohsi.prediction import (
    ForwardTimer,
    default_overlap,
    dense_block_accumulate,
    dense_block_probabilities,
    dense_halo,
    predict_dense_classes,
    summed_area_table,
)
from geohsi.splits import SceneLayout

#: Target value of pixels the loss ignores (``torch.nn.CrossEntropyLoss``'s default ``ignore_index``).
IGNORE_INDEX = -100


def held_out_mask(split, scene: int = 0) -> np.ndarray | None:
    """``[H, W]`` bool mask of the pixels of one scene that training tiles must not contain, or ``None``.

    For a ``blocks:S`` split: every pixel of each S×S block (anchored at the scene's pixel (0, 0), as
    the split draws them) that holds a validation or test pixel. Other splits keep no pixel out of
    tile inputs (``scenes:F`` holds out whole scenes, which no tile crosses).

    Args:
        split: a :class:`~geohsi.splits.Split`.
        scene: which of the split's scenes.

    Returns:
        The mask, or ``None`` for ``per-class``/``fraction``/``scenes`` splits.

    .. versionadded:: 0.1
    """
    from geohsi.splits import parse_split

    spec = parse_split(split.spec)
    if spec.kind != "blocks":
        return None
    s = int(spec.value)
    layout = split.scenes
    h, w = layout.shapes[scene]
    held = np.concatenate([np.asarray(split.val, dtype=np.int64), np.asarray(split.test, dtype=np.int64)])
    k, local = layout.to_local(held)
    rows, cols = np.divmod(local[k == scene], w)
    blocks = np.zeros((-(-h // s), -(-w // s)), dtype=bool)
    blocks[rows // s, cols // s] = True
    return np.repeat(np.repeat(blocks, s, axis=0), s, axis=1)[:h, :w]


def _allowed_origins(forbidden: np.ndarray, tile: int) -> np.ndarray:
    """``[H − S + 1, W − S + 1]`` bool: the tile with top-left corner ``(y, x)`` holds no forbidden pixel (a summed-area table)."""
    sat = summed_area_table(forbidden)
    t = tile
    inside = sat[t:, t:] - sat[:-t, t:] - sat[t:, :-t] + sat[:-t, :-t]
    return inside == 0


@dataclass
class TileSampler:
    """Seeded tile origins covering the training pixels, and their sparse targets.

    Attributes:
        shape: ``(H, W)`` of the scene.
        tile: tile edge S (pixels).
        train_idx: ``[n]`` flat (row-major) indices of the training pixels.
        train_targets: ``[n]`` class indices (logit order) of those pixels.
        forbidden: ``[H, W]`` pixels no tile may contain (:func:`held_out_mask`), or ``None`` (an
            argument only: the sampler keeps the allowed tile origins as bits, none when all are).
        stream: which scene of a run this is (0 for the first): seeds its epochs' draws apart.

    Raises:
        DataError: the scene is smaller than a tile, or no allowed tile covers any training pixel.

    .. versionadded:: 0.1
    """

    shape: tuple[int, int]
    tile: int
    train_idx: np.ndarray
    train_targets: np.ndarray
    forbidden: InitVar[np.ndarray | None] = None
    stream: int = 0
    _allowed: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self, forbidden: np.ndarray | None) -> None:
        h, w = self.shape
        t = self.tile
        if t > h or t > w:
            raise DataError(f"the scene is {h}×{w} pixels, smaller than the {t}-pixel training tile; use a smaller --input-size")
        order = np.argsort(np.asarray(self.train_idx, dtype=np.int64), kind="stable")
        self.train_idx = np.asarray(self.train_idx, dtype=np.int64)[order]
        self.train_targets = np.asarray(self.train_targets, dtype=np.int64)[order]
        # allowed[y, x]: the tile with top-left corner (y, x) contains no forbidden pixel; kept as bits
        # along x (an eighth of a bool grid), and not at all when every origin is allowed.
        self._allowed = None if forbidden is None else np.packbits(_allowed_origins(forbidden, t), axis=1)
        rows, cols = np.divmod(self.train_idx, w)
        self.coverable = np.array([self._candidates(r, c).size > 0 for r, c in zip(rows, cols, strict=True)], dtype=bool)
        if self.train_idx.size and not self.coverable.any():
            raise DataError(
                f"no {t}×{t} training tile fits between the held-out blocks; use a smaller --input-size or larger split blocks"
            )

    @property
    def origin_shape(self) -> tuple[int, int]:
        """``(H − S + 1, W − S + 1)``: the grid of tile origins whose tile lies inside the scene."""
        return self.shape[0] - self.tile + 1, self.shape[1] - self.tile + 1

    def _candidates(self, r: int, c: int) -> np.ndarray:
        """Flat indices (into the origin grid) of allowed tiles containing pixel (r, c)."""
        t = self.tile
        oh, ow = self.origin_shape
        y0, x0 = max(0, r - t + 1), max(0, c - t + 1)
        y1, x1 = min(r + 1, oh), min(c + 1, ow)
        if self._allowed is None:
            yy, xx = np.mgrid[y0:y1, x0:x1]
        else:
            bits = np.unpackbits(self._allowed[y0:y1, x0 // 8 : -(-x1 // 8)], axis=1)
            yy, xx = np.nonzero(bits[:, x0 % 8 : x0 % 8 + x1 - x0])
            yy, xx = yy + y0, xx + x0
        return (yy * ow + xx).reshape(-1)

    def epoch_origins(self, seed: int, epoch: int) -> np.ndarray:
        """``[M, 2]`` tile origins (row, col) of one epoch: a random cover of the coverable training pixels.

        Args:
            seed: run seed.
            epoch: epoch number (0-based).

        Returns:
            Origins in the order they were drawn (the caller shuffles batches from it as it likes).
        """
        rng = np.random.default_rng([seed, epoch, 7, *([self.stream] if self.stream else [])])
        h, w = self.shape
        t = self.tile
        covered = np.zeros((h, w), dtype=bool)
        origins = []
        ow = self.origin_shape[1]
        for k in rng.permutation(self.train_idx.size):
            if not self.coverable[k]:
                continue
            r, c = divmod(int(self.train_idx[k]), w)
            if covered[r, c]:
                continue
            cand = self._candidates(r, c)
            y, x = divmod(int(cand[rng.integers(cand.size)]), ow)
            covered[y : y + t, x : x + t] = True
            origins.append((y, x))
        return np.asarray(origins, dtype=np.int64).reshape(-1, 2)

    def targets(self, origins: np.ndarray) -> np.ndarray:
        """``[M, S, S]`` int64 targets of tiles at ``origins`` (class index or :data:`IGNORE_INDEX`).

        Looked up in the sorted training pixels row by row (no per-scene target raster is held).
        """
        t, w = self.tile, self.shape[1]
        out = np.full((len(origins), t, t), IGNORE_INDEX, dtype=np.int64)
        rows = np.arange(t)
        for m, (y, x) in enumerate(origins):
            starts = (y + rows) * w + x
            lo, hi = np.searchsorted(self.train_idx, starts), np.searchsorted(self.train_idx, starts + t)
            for r in np.flatnonzero(hi > lo):
                idx = self.train_idx[lo[r] : hi[r]]
                out[m, r, idx - starts[r]] = self.train_targets[lo[r] : hi[r]]
        return out


def _epoch_origins(samplers: list[TileSampler | None], seed: int, epoch: int) -> np.ndarray:
    """``[M, 3]`` ``(scene, row, col)`` origins of one epoch over every scene, scene by scene."""
    parts = [
        np.column_stack([np.full(len(o), k), o])
        for k, s in enumerate(samplers)
        if s is not None
        for o in [s.epoch_origins(seed, epoch)]
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 3), np.int64)


def cut_tiles(channels, origins: np.ndarray, tile: int) -> np.ndarray:
    """``[M, C, S, S]`` float32 tiles of a ``[C, H, W]`` scene (numpy or Dask); NaN → 0 as in patch mode.

    .. versionadded:: 0.1
    """
    if not len(origins):
        return np.zeros((0, channels.shape[0], tile, tile), np.float32)
    # np.asarray per tile: a lazy (Dask) scene reads only the tiles' pixels.
    x = np.stack([np.asarray(channels[:, y : y + tile, c : c + tile], dtype=np.float32) for y, c in origins])
    return np.nan_to_num(x, copy=False, nan=0.0)


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


#: dense mode: 256² chunks. The tiles covering a chunk reach ``tile − 1`` px beyond it, so bigger
#: chunks waste fewer tiles (32 px tiles, stride 24: 1.36× fewer forwards per pixel than 128²).
DEFAULT_CHUNK = 256


@dataclass
class DenseSamples:
    """The training tiles of a run: each epoch's random cover of the training pixels of every scene.

    Attributes:
        scenes: ``[C, H, W]`` transformed scenes (numpy in memory, or :class:`~geohsi.spectral.windows.CachedCube`).
        samplers: the tile sampler of each scene (``None`` for a scene without training pixels).
        origins: ``[M_e, 3]`` ``(scene, row, col)`` tile origins of each epoch.
        tile: tile edge.
        overlap: inference tile overlap (validation/test scoring).
        layout: where the scenes sit in the split's grid.
    """

    scenes: list[Any]
    samplers: list[TileSampler | None]
    origins: list[np.ndarray]
    tile: int
    overlap: int
    layout: SceneLayout

    def epoch_size(self, epoch: int) -> int:
        return len(self.origins[epoch])

    def batch(self, epoch: int, sel: np.ndarray, generator: torch.Generator, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.origins[epoch][sel]
        x = np.empty((len(o), self.scenes[0].shape[0], self.tile, self.tile), dtype=np.float32)
        y = np.empty((len(o), self.tile, self.tile), dtype=np.int64)
        for k in np.unique(o[:, 0]):
            pos = np.flatnonzero(o[:, 0] == k)
            x[pos] = cut_tiles(self.scenes[k], o[pos, 1:], self.tile)
            y[pos] = self.samplers[k].targets(o[pos, 1:])
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        if augment:
            x, y = dihedral(x, generator, y)
        return x, y

    def sample_keys(self, epoch: int) -> np.ndarray:
        """``[M_e]`` the (scene, chunk) each tile's origin lies in, as one integer (streamed training)."""
        o = self.origins[epoch]
        keys = np.zeros(len(o), dtype=np.int64)
        for k in np.unique(o[:, 0]):
            pos = np.flatnonzero(o[:, 0] == k)
            cube = self.scenes[k]
            chunk = cube.chunk_of(o[pos, 1], o[pos, 2]) if hasattr(cube, "chunk_of") else 0
            keys[pos] = int(k) << 32 | chunk
        return keys

    def predict(self, model: nn.Module, idx: np.ndarray, *, batch_size: int, device: Any, precision: str) -> np.ndarray:
        out = np.zeros(len(idx), dtype=np.int64)
        for k, pos, local in self.layout.groups(idx):
            scene = self.scenes[k]
            out[pos] = predict_dense_classes(
                model,
                getattr(scene, "lazy", scene),
                local,
                tile=self.tile,
                overlap=self.overlap,
                batch_size=batch_size,
                device=device,
                precision=precision,
            )
        return out

    def with_channels(self, channels: Any) -> DenseSamples:
        return dataclasses.replace(self, scenes=channels if isinstance(channels, list) else [channels])


@register_head
@dataclass(frozen=True)
class DenseHead(Head):
    """Dense segmentation of ``input_size`` tiles.

    Attributes:
        window: the run's window edge (recorded; it sets the gap of ``blocks`` splits).
        input_size: tile edge S in pixels (the model input, no resizing).
        overlap: pixels shared by neighbouring inference tiles (default ``S // 4``).
        widths: :class:`~geohsi.models.decoder.DenseDecoder` widths (``None``: its defaults).
        context_dropout: training only: the decoder's context dropout (not recorded in the head:
            the run's config records it, inference never drops).
    """

    name: ClassVar[str] = "dense"
    default_batch: ClassVar[Mapping[str, int]] = {"cpu": 16}

    window: int = 15
    input_size: int = 32
    overlap: int | None = None
    widths: tuple[tuple[str, int], ...] | None = None
    context_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.overlap is None:
            object.__setattr__(self, "overlap", default_overlap(self.input_size))
        if isinstance(self.widths, Mapping):
            object.__setattr__(self, "widths", tuple(sorted(self.widths.items())))

    @property
    def tile(self) -> int:
        """Tile edge in pixels (= :attr:`input_size`)."""
        return self.input_size

    @classmethod
    def from_options(
        cls, *, window: int, input_size: int, head_hidden: int = 0, tile_overlap: int | None = None, context_dropout: float = 0.0
    ) -> DenseHead:
        return cls(window=int(window), input_size=int(input_size), overlap=tile_overlap, context_dropout=float(context_dropout))

    @classmethod
    def from_record(cls, model: Mapping[str, Any], window: Mapping[str, Any]) -> DenseHead:
        dense = model.get("dense", {})
        tile = int(dense.get("tile", window["input_size"]))
        ov = dense.get("overlap")
        return cls(
            window=int(window["size"]), input_size=tile, overlap=None if ov is None else int(ov), widths=dense.get("head_options")
        )

    @classmethod
    def training_defaults(cls, adapter: str) -> dict[str, Any]:
        """The protocol of the results table (docs/results.md): 150 epochs of 8 tiles, lr 2e-3 for the
        adapters and the linear probe, 5e-4 when every weight trains (``full``)."""
        return {"epochs": 150, "batch_size": 8, "lr": 5e-4 if adapter == "full" else 2e-3}

    def record(self) -> dict[str, Any]:
        return {
            "head": self.name,
            "head_hidden": 0,
            "dense": {"tile": self.tile, "overlap": self.overlap, "head_options": dict(self.widths) if self.widths else None},
        }

    def resolved(self, model: nn.Module) -> DenseHead:
        return dataclasses.replace(self, widths=model.head.widths)

    def build_model(self, config: Any, num_classes: int) -> nn.Module:
        from geohsi.models.decoder import build_segmenter

        options = {**dict(self.widths or ()), "context_dropout": self.context_dropout}
        return build_segmenter(config, num_classes, head_options=options)

    def load_pretrained(self, model: nn.Module, path: str | os.PathLike) -> None:
        from geohsi.models import load_backbone

        load_backbone(path, model.encoder)  # only the encoder has a counterpart in a checkpoint

    def training_samples(
        self, channels: Any, split: Any, targets: np.ndarray, *, seed: int, epochs: int, log: Callable[[str], None]
    ) -> DenseSamples:
        scenes = channels if isinstance(channels, list) else [channels]
        layout = split.scenes
        targets = np.asarray(targets, dtype=np.int64)
        samplers: list[TileSampler | None] = [None] * len(layout)  # None: a scene without training pixels
        for k, pos, local in layout.groups(split.train):
            samplers[k] = TileSampler(layout.shapes[k], self.tile, local, targets[pos], held_out_mask(split, k), stream=k)
        lost = sum(int((~s.coverable).sum()) for s in samplers if s is not None)
        if lost:
            log(
                f"[yellow]{lost} training pixels fit in no {self.tile}-px tile clear of held-out blocks; they are not trained on[/]"
            )
        origins = [_epoch_origins(samplers, seed, e) for e in range(epochs)]
        return DenseSamples(scenes, samplers, origins, self.tile, self.overlap, layout)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return dense_loss(logits, targets)

    def predict_pixels(
        self, model: nn.Module, channels: Any, idx: np.ndarray, *, batch_size: int, device: Any, precision: str
    ) -> np.ndarray:
        return predict_dense_classes(
            model, channels, idx, tile=self.tile, overlap=self.overlap, batch_size=batch_size, device=device, precision=precision
        )

    @property
    def halo(self) -> int:
        return dense_halo(self.tile)

    def default_chunk(self, height: int, width: int, n_bands: int, *, budget_bytes: int = CHUNK_BUDGET_BYTES) -> int:
        """:data:`DEFAULT_CHUNK`, shrunk while ``B·c²·8·3`` exceeds twice the budget (the spectral
        transform runs before the halo is added, and the halo'd block holds only the 12 channels);
        never below 32, never above the scene."""
        c = DEFAULT_CHUNK
        while c > 32 and 3 * 8 * n_bands * c**2 > 2 * budget_bytes:
            c //= 2
        return max(1, min(c, max(height, width)))

    def check_scene(self, height: int, width: int, source: str, model_name: str) -> None:
        if self.tile > height or self.tile > width:
            raise UsageError(
                f"{source} is {height}×{width} pixels, smaller than the {self.tile}-pixel tiles of dense bundle {model_name}; "
                "give a scene at least one tile high and wide, or use a patch-mode bundle"
            )

    def predict_block(
        self,
        block: np.ndarray,
        model: nn.Module,
        *,
        halo: int,
        origin: tuple[int, int],
        batch_size: int,
        device: Any,
        precision: str,
        timer: ForwardTimer | None = None,
    ) -> np.ndarray:
        return dense_block_probabilities(
            block,
            model,
            halo=halo,
            tile=self.tile,
            overlap=self.overlap,
            origin=origin,
            batch_size=batch_size,
            device=device,
            precision=precision,
            timer=timer,
        )

    @property
    def reach(self) -> int:
        """``tile − 1``: a tile starting in a block's core reaches that far past it."""
        return self.tile - 1

    def accumulate_block(
        self,
        block: np.ndarray,
        model: nn.Module,
        *,
        halo: int,
        origin: tuple[int, int],
        scene_shape: tuple[int, int],
        batch_size: int,
        device: Any,
        precision: str,
        timer: ForwardTimer | None = None,
    ) -> np.ndarray:
        """The block's tile sums over its core and :attr:`reach` margin (:func:`~geohsi.prediction.dense_block_accumulate`)."""
        return dense_block_accumulate(
            block,
            model,
            halo=halo,
            scene_shape=scene_shape,
            tile=self.tile,
            overlap=self.overlap,
            origin=origin,
            batch_size=batch_size,
            device=device,
            precision=precision,
            timer=timer,
        )

    def describe(self) -> str:
        return f"dense ({self.tile} px tiles, overlap {self.overlap} px)"

    @property
    def mlm_tasks(self) -> list[str]:
        return ["semantic-segmentation"]

    def mlm_input(self, n_channels: int) -> dict[str, Any]:
        s = self.tile
        return {
            "name": "spectral tiles",
            "description": (
                f"tiles of {s}×{s} pixels (no resizing) on a grid anchored to the scene, stride {s - self.overlap} px; "
                "overlapping tiles' logits are blended with a separable Hann weight before the softmax"
            ),
            "input": image_batch(n_channels, s),
            "resize_type": None,
        }

    def mlm_output(self, n_classes: int) -> dict[str, Any]:
        s = self.tile
        return {
            "name": "per-pixel class logits",
            "description": "class logits of every pixel of the tile",
            "tasks": ["semantic-segmentation"],
            "result": {
                "shape": [-1, n_classes, s, s],
                "dim_order": ["batch", "class", "height", "width"],
                "data_type": "float32",
            },
        }


__all__ = [
    "DEFAULT_CHUNK",
    "IGNORE_INDEX",
    "DenseHead",
    "DenseSamples",
    "TileSampler",
    "cut_tiles",
    "dense_loss",
    "held_out_mask",
]
