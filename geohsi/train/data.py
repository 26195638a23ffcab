"""Training augmentation of windows.

.. versionadded:: 0.1
"""

from __future__ import annotations

import torch


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 90° rotations and horizontal flips, drawn per sample (8 dihedral variants).

    Args:
        x: ``[N, C, S, S]`` windows.
        generator: seeded generator (one per step, so runs replay exactly).
    """
    k = torch.randint(0, 4, (x.shape[0],), generator=generator)
    flip = torch.randint(0, 2, (x.shape[0],), generator=generator).bool()
    out = x.clone()
    for kk in range(4):
        for f in (False, True):
            sel = (k == kk) & (flip == f)
            if not sel.any():
                continue
            v = torch.rot90(x[sel], kk, dims=(-2, -1))
            out[sel] = torch.flip(v, dims=(-1,)) if f else v
    return out
