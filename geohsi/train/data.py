"""Training/evaluation inputs: the scene's labelled pixels as model windows.

:class:`WindowSource` turns a scene + fitted spectral transform into ``[N, C, S, S]`` windows for
any set of pixels. Scenes whose transformed channels fit in memory (≤ ``max_in_memory_bytes``,
all the benchmark scenes) are transformed once and padded once; larger scenes are read chunk by
chunk from Zarr with halos (:func:`geohsi.spectral.windows.windows_at`), the same code path as
distributed inference.

.. versionadded:: 0.1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from geohsi.spectral.windows import check_window, pad_reflect_halo, windows_at, windows_for_block

MAX_IN_MEMORY_BYTES = 2 * 1024**3


@dataclass
class WindowSource:
    """Windows around pixels of one scene, after its spectral transform.

    Attributes:
        channels: the transformed scene ``(channel, y, x)`` (lazy).
        window: window edge (odd, pixels).
        input_size: model input edge (pixels).
    """

    channels: xr.DataArray
    window: int
    input_size: int
    max_in_memory_bytes: int = MAX_IN_MEMORY_BYTES
    _padded: np.ndarray | None = None

    def __post_init__(self) -> None:
        c, h, w = self.channels.shape
        check_window(self.window, h, w)
        if c * h * w * 4 <= self.max_in_memory_bytes:
            arr = np.asarray(self.channels.values, dtype=np.float32)
            self._padded = pad_reflect_halo(arr, self.window // 2)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.channels.shape[1]), int(self.channels.shape[2])

    def windows(self, flat_idx: np.ndarray) -> np.ndarray:
        """``[N, C, S, S]`` float32 windows centred on row-major pixel indices ``flat_idx``."""
        rows, cols = np.divmod(np.asarray(flat_idx, dtype=np.int64), self.shape[1])
        if self._padded is not None:
            return windows_for_block(self._padded, rows, cols, self.window, self.input_size)
        return windows_at(self.channels, rows, cols, self.window, self.input_size)


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
