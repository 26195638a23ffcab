"""Training augmentation: the 8 dihedral transforms (90° rotations × horizontal flip).

.. versionadded:: 0.1
"""

from __future__ import annotations

import torch


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


__all__ = ["dihedral"]
