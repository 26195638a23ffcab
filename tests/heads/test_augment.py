"""Sensor augmentation's samples: each sample of a batch comes from one version of the scene."""

from __future__ import annotations

import numpy as np
import torch

from geohsi.heads.augment import VariantSamples


class _Version:
    """Samples whose inputs are filled with the version's number and whose targets are the sample ids."""

    def __init__(self, k: int) -> None:
        self.k = k

    def epoch_size(self, epoch: int) -> int:
        return 100 + epoch

    def batch(self, epoch, sel, generator, augment):
        return torch.full((len(sel), 2, 4, 4), float(self.k)), torch.as_tensor(sel)

    def predict(self, model, idx, *, batch_size, device, precision):
        return np.full(len(idx), self.k)


def test_each_sample_draws_its_version_and_keeps_its_target() -> None:
    samples = VariantSamples([_Version(0), _Version(1), _Version(2)])
    sel = np.arange(10, 74)
    x, y = samples.batch(0, sel, torch.Generator().manual_seed(5), True)
    assert x.shape == (64, 2, 4, 4) and torch.equal(y, torch.as_tensor(sel))  # order kept
    picked = x[:, 0, 0, 0].numpy()
    assert set(picked.tolist()) == {0.0, 1.0, 2.0}  # every version used in a batch of 64
    assert (x == x[:, :1, :1, :1]).all()  # a sample is one version's, whole
    x2, _ = samples.batch(0, sel, torch.Generator().manual_seed(5), True)
    assert torch.equal(x, x2)  # the step's generator decides: runs replay
    x3, _ = samples.batch(0, sel, torch.Generator().manual_seed(6), True)
    assert not torch.equal(x, x3)
    assert samples.epoch_size(3) == 103
    assert (samples.predict(None, np.arange(5), batch_size=8, device="cpu", precision="fp32") == 0).all()  # scored on the scene
