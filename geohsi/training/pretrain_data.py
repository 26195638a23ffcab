"""Pretraining's data: the scenes (stores or registered datasets), the pooled centre pixels of all
scenes with a few held out per scene, and each step's batch of windows as a pure function of
``(seed, step, rank)`` (so a resumed or multi-GPU run draws the same data).

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from geohsi.errors import DataError, InputFormatError, UsageError
from geohsi.training.config import PretrainConfig
from geohsi.training.distributed import Ranks, local_batch_size


def _dataset_scene(name: str, cache: Path) -> tuple[Path, dict[str, Any]]:
    """Ingest a registered dataset into ``cache`` (once) and describe where it came from."""
    from geohsi.datasets.registry import get, ingest_dataset

    info = get(name)
    store = cache / f"{info.name}.zarr"
    if not store.exists():
        cache.mkdir(parents=True, exist_ok=True)
        ingest_dataset(info.name, store)
    files = {f.path: f.sha256 for f in info.files if f.path in info.images}
    return store, {"dataset": info.name, "files_sha256": files}


def resolve_scenes(scenes: Sequence[str | os.PathLike], cache: Path) -> list[tuple[xr.Dataset, dict[str, Any]]]:
    """Open each scene: a ``.zarr`` store, or a registered dataset name ingested into ``cache``.

    Raises:
        UsageError: no scenes.
        InputFormatError: a path that does not exist and is not a dataset name.
    """
    from geohsi.datasets.registry import DATASETS
    from geohsi.scene import open_scene

    if not scenes:
        raise UsageError("no scenes given; pass at least one SCENE.zarr (or a dataset name such as indian_pines)")
    from geohsi.storage import as_path, display, is_url

    out = []
    for item in scenes:
        p = as_path(item)
        key = str(item).strip().lower().replace("-", "_")
        if is_url(p):
            record: dict[str, Any] = {"source": display(p)}  # a scene store in a bucket (open_scene checks it)
        elif p.exists():
            record = {"source": str(p.resolve())}
        elif key in DATASETS:
            p, record = _dataset_scene(key, cache)
        else:
            raise InputFormatError(
                f"scene {item} does not exist and is not a dataset name ({', '.join(DATASETS)}); "
                "pass a store made by 'geohsi ingest' or a dataset name"
            )
        which = record.get("source") or record.get("dataset")  # a store, or a dataset by name
        if any((r.get("source") or r.get("dataset")) == which for _, r in out):  # its held-out centres would train the copy
            raise UsageError(f"scene {which} is given twice; give each scene once")
        out.append((open_scene(p), record))
    return out


@dataclass
class WindowPool:
    """The window sources of all scenes and the pooled training / held-out centre pixels."""

    sources: list[Any]
    train_scene: np.ndarray  # [P] scene index of each training centre
    train_pixel: np.ndarray  # [P] row-major pixel index in its scene
    held_scene: np.ndarray
    held_pixel: np.ndarray

    def windows(self, scene_idx: np.ndarray, pixel_idx: np.ndarray) -> np.ndarray:
        """``[N, C, S, S]`` windows in the given order."""
        first = self.sources[0]
        out = np.empty((len(scene_idx), first.channels.shape[0], first.input_size, first.input_size), np.float32)
        for k in np.unique(scene_idx):
            sel = np.flatnonzero(scene_idx == k)
            out[sel] = self.sources[k].windows(pixel_idx[sel])
        return out


def build_pool(
    scenes: list[tuple[xr.Dataset, dict[str, Any]]], cfg: PretrainConfig, log: Callable[[str], None]
) -> tuple[WindowPool, list[dict[str, Any]]]:
    """Fit each scene's spectral transform, hold out ``holdout_per_scene`` valid centre pixels per scene, pool the rest."""
    from geohsi.scene import valid_mask
    from geohsi.spectral.transform import SpectralTransform
    from geohsi.spectral.windows import WindowSource

    sources, records = [], []
    tr_s, tr_p, ho_s, ho_p = [], [], [], []
    for k, (ds, record) in enumerate(scenes):
        src = ds.encoding.get("source", f"scene {k}")
        transform = SpectralTransform.fit(ds, cfg.run.spectral, cfg.run.n_components, cfg.run.norm, seed=cfg.run.seed)
        source = WindowSource(transform.apply(ds), cfg.run.window, cfg.run.input_size)
        valid = np.flatnonzero(np.asarray(valid_mask(ds).values, bool).ravel())
        if valid.size <= cfg.holdout_per_scene:
            raise DataError(
                f"{src} has {valid.size} valid pixels, too few to hold out {cfg.holdout_per_scene} for validation and "
                "still train; leave the scene out (or, in Python, lower geohsi.pretrain(..., holdout_per_scene=N))"
            )
        rng = np.random.default_rng([cfg.run.seed, 7919, k])
        held = np.sort(rng.choice(valid, cfg.holdout_per_scene, replace=False))
        train = np.setdiff1d(valid, held, assume_unique=True)
        sources.append(source)
        tr_s.append(np.full(train.size, k, np.int64))
        tr_p.append(train)
        ho_s.append(np.full(held.size, k, np.int64))
        ho_p.append(held)
        h, w = source.shape
        records.append(
            {
                **record,
                "store": str(src),
                "height": h,
                "width": w,
                "valid_pixels": int(valid.size),
                "held_out_pixels": held.tolist(),
                "spectral_transform": transform.to_dict(),
            }
        )
        log(f"{src}: {h}×{w} px, {valid.size} valid, {cfg.run.spectral} → {transform.n_channels} channels")
    pool = WindowPool(sources, np.concatenate(tr_s), np.concatenate(tr_p), np.concatenate(ho_s), np.concatenate(ho_p))
    return pool, records


def step_batch(pool: WindowPool, cfg: PretrainConfig, step: int, ranks: Ranks = Ranks()) -> tuple[torch.Tensor, torch.Generator]:
    """This rank's windows and mask generator of step ``step`` — a pure function of ``(seed, step, rank)``.

    Every rank draws the step's global batch; rank ``r`` takes its ``r``-th share (one process: all of it).
    """
    from geohsi.heads.augment import dihedral

    rng = np.random.default_rng([cfg.run.seed, step])
    pick = rng.integers(0, len(pool.train_pixel), cfg.run.batch_size)
    b = local_batch_size(cfg.run.batch_size, ranks)
    pick = pick[ranks.rank * b : (ranks.rank + 1) * b]
    x = torch.from_numpy(pool.windows(pool.train_scene[pick], pool.train_pixel[pick]))
    base = cfg.run.seed * 1_000_003 + step * 2 + ranks.rank * 7_919_993
    if cfg.run.augment:
        x, _ = dihedral(x, torch.Generator().manual_seed(base + 1))
    return x, torch.Generator().manual_seed(base)


__all__ = ["WindowPool", "build_pool", "resolve_scenes", "step_batch"]
