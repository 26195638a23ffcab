"""Training augmentation: the 8 dihedral transforms (90° rotations × horizontal flip), and samples
drawn from several versions of the scene (sensor augmentation).

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from torch import nn

    from geohsi.heads.base import TrainingSamples


def dihedral(
    x: torch.Tensor, generator: torch.Generator, y: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A random dihedral transform per sample, the same for a sample's input and its spatial targets.

    Draws, in this order, ``k ∈ {0..3}`` (quarter turns) then ``flip ∈ {0, 1}`` for each sample from
    ``generator`` (one generator per step, so runs replay exactly), rotates by ``k`` quarter turns
    over the last two axes, then flips horizontally where ``flip``.

    Args:
        x: ``[N, C, S, S]`` windows or tiles.
        generator: seeded generator.
        y: optional ``[N, S, S]`` per-pixel targets, transformed like ``x``.

    Returns:
        ``(x', y')`` (``y'`` is ``None`` without ``y``).
    """
    k = torch.randint(0, 4, (x.shape[0],), generator=generator)
    flip = torch.randint(0, 2, (x.shape[0],), generator=generator).bool()
    out = [x.clone(), None if y is None else y.clone()]
    for kk in range(4):
        for f in (False, True):
            sel = (k == kk) & (flip == f)
            if not sel.any():
                continue
            for i, t in enumerate((x, y)):
                if t is None:
                    continue
                v = torch.rot90(t[sel], kk, dims=(-2, -1))
                out[i][sel] = torch.flip(v, dims=(-1,)) if f else v
    return out[0], out[1]


class VariantSamples:
    """The samples of a run cut, sample by sample, from one of several versions of the same scene.

    Every version has the same samples (pixels or tile origins, targets); only the channels differ,
    e.g. the scene as random sensors see it (``geohsi train --sensor-augment``). Each sample of a
    batch draws its version from the step's generator (before the dihedral draws of each version's
    part). Validation and test scoring use the first version, the scene itself.

    Args:
        versions: the samples of each version, the scene's own first.

    .. versionadded:: 0.2
    """

    def __init__(self, versions: Sequence[TrainingSamples]) -> None:
        self.versions = list(versions)

    def epoch_size(self, epoch: int) -> int:
        return self.versions[0].epoch_size(epoch)

    def batch(self, epoch: int, sel: np.ndarray, generator: torch.Generator, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        pick = torch.randint(0, len(self.versions), (len(sel),), generator=generator).numpy()
        x = y = None
        for v in np.unique(pick):
            rows = np.flatnonzero(pick == v)
            xv, yv = self.versions[int(v)].batch(epoch, sel[rows], generator, augment)
            if x is None or y is None:
                x, y = xv.new_empty((len(sel), *xv.shape[1:])), yv.new_empty((len(sel), *yv.shape[1:]))
            x[rows], y[rows] = xv, yv
        assert x is not None and y is not None
        return x, y

    def sample_keys(self, epoch: int) -> np.ndarray:
        return self.versions[0].sample_keys(epoch)

    def predict(self, model: nn.Module, idx: np.ndarray, *, batch_size: int, device: Any, precision: str) -> np.ndarray:
        return self.versions[0].predict(model, idx, batch_size=batch_size, device=device, precision=precision)

    def with_channels(self, channels: Any) -> TrainingSamples:
        return self.versions[0].with_channels(channels)


__all__ = ["VariantSamples", "dihedral"]
