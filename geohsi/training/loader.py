"""Feeding the training step: scenes in memory or streamed, and each epoch's batches, prefetched.

**In memory or streamed** (:func:`scene_arrays`, the ``loader`` option): when every scene's
transformed channels fit in :data:`IN_MEMORY_BYTES` together, they are computed once and held as
numpy arrays (the fast path every benchmark scene takes). Otherwise each scene stays lazy behind a
:class:`~geohsi.spectral.windows.CachedCube`: samples are read chunk by chunk from the scene's Zarr
store or source files, through the same readers ``geohsi classify`` uses, so memory is bounded by
the batch, the prefetch depth and the cached chunks — not by the number or size of the scenes.

**Batches** (:func:`epoch_batches`): batch ``k`` of an epoch is always
``samples.batch(epoch, order[k·B:(k+1)·B], generator(seed, epoch, k), augment)``, whoever computes
it. Streamed, a ``torch.utils.data.DataLoader`` with worker processes computes the next batches while
the step runs (:data:`STREAM_WORKERS` workers, :data:`PREFETCH` batches each); in memory the batches
are cut in the training process, as before. Either way a seed gives the same batches. A streamed
epoch's order is drawn chunk by chunk (:func:`chunk_grouped_order`): the chunks in random order, the
samples of a chunk in random order, so a chunk is decompressed once per epoch, not once per sample
(the batches of TorchGeo's ``RandomBatchGeoSampler`` are drawn from one tile for the same reason).

.. versionadded:: 0.2
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from geohsi.errors import UsageError

LOADERS: tuple[str, ...] = ("auto", "memory", "stream")
#: Transformed channels of all scenes together (float32) held in memory by ``loader="auto"``.
IN_MEMORY_BYTES = 512 * 1024**2
#: Data-loader worker processes of a streamed run, and batches each keeps ready.
STREAM_WORKERS = 2
PREFETCH = 2


def scene_arrays(
    transform: Any,
    scenes: list[Any],
    loader: str = "auto",
    log: Callable[[str], None] = print,
    projections: list[Any] | None = None,
) -> list[Any]:
    """The transformed scenes as the samples read them: numpy arrays in memory, or cached lazy cubes.

    Args:
        transform: the run's :class:`~geohsi.spectral.transform.SpectralTransform`.
        scenes: the scenes (lazy Datasets).
        loader: ``auto`` (memory when all fit in :data:`IN_MEMORY_BYTES`), ``memory`` or ``stream``.
        log: receives one line when streaming.
        projections: per scene, a band reduction to use instead of the transform's (sensor augmentation).

    Returns:
        One array per scene (numpy float32, or :class:`~geohsi.spectral.windows.CachedCube` over the raw
        bands with the scene's :class:`~geohsi.spectral.pixelmap.PixelMap`).

    Raises:
        UsageError: an unknown ``loader``.
    """
    from geohsi.scene import cube
    from geohsi.spectral.windows import CachedCube, ChunkCache

    if loader not in LOADERS:
        raise UsageError(f"unknown --loader {loader!r}; use one of {', '.join(LOADERS)}")
    projections = projections or [None] * len(scenes)
    total = sum(4 * transform.n_channels * int(ds.sizes["y"]) * int(ds.sizes["x"]) for ds in scenes)
    if loader == "memory" or (loader == "auto" and total <= IN_MEMORY_BYTES):
        return [
            np.asarray(transform.apply(ds, projection=p).values, dtype=np.float32)
            for ds, p in zip(scenes, projections, strict=True)
        ]
    log(
        f"streaming {len(scenes)} scene(s) ({total / 1024**3:.1f} GB of model input) chunk by chunk with {STREAM_WORKERS} loader workers"
    )
    cache, cubes = ChunkCache(), []  # one cache for every scene: memory does not grow with their number
    for ds, p in zip(scenes, projections, strict=True):
        pm = transform.pixel_map(ds, projection=p)
        cubes.append(CachedCube(cube(ds).data[pm.bands], pm, cache))
    return cubes


def streamed(arrays: list[Any]) -> bool:
    """Whether any scene is read lazily (the data-loader workers are then used)."""
    return any(not isinstance(a, np.ndarray) for a in arrays)


def chunk_grouped_order(keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of samples that visits them chunk by chunk (``keys``: the chunk of each sample).

    The chunks come in random order and the samples of each chunk in random order after one another.
    """
    perm = rng.permutation(len(keys))
    chunk_rank = np.argsort(rng.permutation(np.unique(keys)))
    rank = chunk_rank[np.searchsorted(np.unique(keys), keys[perm])]
    return perm[np.argsort(rank, kind="stable")]


def epoch_order(samples: Any, seed: int, epoch: int, stream: bool) -> np.ndarray:
    """The order an epoch visits its samples: a seeded permutation (grouped by chunk when streamed)."""
    rng = np.random.default_rng([seed, epoch])
    if not stream:
        return rng.permutation(samples.epoch_size(epoch))
    return chunk_grouped_order(samples.sample_keys(epoch), rng)


def step_generator(seed: int, epoch: int, step: int, rank: int = 0) -> torch.Generator:
    """The generator of one step's random draws (augmentation, sensor versions) on one rank."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch * 10_007 + step + rank * 7_919_993)


@dataclass
class EpochBatches(torch.utils.data.Dataset):
    """The batches of one epoch as a map-style dataset: item ``k`` is batch ``k`` (see the module doc)."""

    samples: Any
    epoch: int
    order: np.ndarray
    batch_size: int
    seed: int
    augment: bool
    rank: int = 0

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        sel = self.order[step * self.batch_size : (step + 1) * self.batch_size]
        return self.samples.batch(self.epoch, sel, step_generator(self.seed, self.epoch, step, self.rank), self.augment)


def _quiet_worker(worker_id: int) -> None:
    torch.set_num_threads(1)  # the training step keeps the cores; a worker only cuts samples


@dataclass
class TimedBatches:
    """Iterates an epoch's batches and counts the seconds the training loop waited for them.

    Attributes:
        batches: the batches (an iterable).
        wait: seconds spent waiting for the next batch so far.
    """

    batches: Any
    wait: float = 0.0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        it = iter(self.batches)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            self.wait += time.perf_counter() - t0
            yield item


def epoch_batches(
    samples: Any, epoch: int, order: np.ndarray, *, batch_size: int, seed: int, augment: bool, workers: int, rank: int = 0
) -> TimedBatches:
    """Batches of one epoch (this rank's share of it), cut in this process (``workers=0``) or prefetched by ``workers`` processes.

    Returns:
        A :class:`TimedBatches` (its :attr:`~TimedBatches.wait` is the time the loop waited for data).
    """
    data = EpochBatches(samples, epoch, order, batch_size, seed, augment, rank)
    if workers == 0:
        return TimedBatches(data[k] for k in range(len(data)))
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        prefetch_factor=PREFETCH,
        worker_init_fn=_quiet_worker,
        multiprocessing_context="fork",
    )
    return TimedBatches(loader)


__all__ = [
    "IN_MEMORY_BYTES",
    "LOADERS",
    "PREFETCH",
    "STREAM_WORKERS",
    "EpochBatches",
    "TimedBatches",
    "chunk_grouped_order",
    "epoch_batches",
    "epoch_order",
    "scene_arrays",
    "step_generator",
    "streamed",
]
