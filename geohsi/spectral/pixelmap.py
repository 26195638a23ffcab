"""A spectral transform as one per-pixel map from raw band values, run as torch ops on any device.

:class:`~geohsi.spectral.transform.SpectralTransform` applies its arithmetic lazily over a Dask
cube on the host (:meth:`~geohsi.spectral.transform.SpectralTransform.apply`). A GPU worker should
not receive 12 host-computed channels but the raw block, and turn it into channels on its GPU:
:meth:`SpectralTransform.pixel_map` freezes everything that arithmetic needs for one scene — which
raw bands to read, the validity test (nodata, non-finite good bands), scale/offset, the band
reduction as a matrix (PCA centre and axes, or the Sentinel-2 resampling built for the scene) and
the normaliser — into a small picklable :class:`PixelMap`, and :meth:`PixelMap.apply` replays it
on a ``torch.Tensor`` with the same dtypes at every step as the numpy path (float64 physical
values and projection, float32 projected channels, float64 normalisation, float32 out), so on
the CPU the two agree to the last float32 bit up to the BLAS summation order.

Mapping on the CPU uses :meth:`PixelMap.apply_numpy` instead: the same steps in numpy, fused into
one task per chunk over slices of its pixels (each slice converted to float64 once, scaled,
centred and projected), so the raw bands are read once instead of once per step of the lazy graph
— with the same dtypes at every step, so its channels equal
:meth:`~geohsi.spectral.transform.SpectralTransform.apply`'s up to the BLAS summation order.

.. versionadded:: 0.1
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, eq=False)
class PixelMap:
    """Raw bands → normalised model channels of one scene, as a per-pixel affine map plus a validity test.

    Attributes:
        bands: ``[R]`` 0-based scene bands read (sorted): the raw block a task receives holds these.
        valid_cols: positions in ``bands`` of the bands the validity test reads (the good bands;
            every band when none is flagged).
        proj_cols: positions in ``bands`` of the bands the reduction reads, in matrix-column order.
        matrix: ``[C, P]`` float64 band reduction (PCA axes or Sentinel-2 weights).
        center: ``[P]`` float64 subtracted before ``matrix`` (the PCA mean), or ``None``.
        shift: ``[C]`` normaliser shift.
        scale: ``[C]`` normaliser scale.
        value_scale: the scene's ``scale_factor`` (physical = raw × value_scale + value_offset).
        value_offset: the scene's ``add_offset``.
        nodata: the scene's nodata value in the raw dtype, or ``None``.
        check_finite: whether non-finite good-band values make a pixel invalid (float cubes).

    .. versionadded:: 0.1
    """

    bands: np.ndarray
    valid_cols: np.ndarray
    proj_cols: np.ndarray
    matrix: np.ndarray
    center: np.ndarray | None
    shift: np.ndarray
    scale: np.ndarray
    value_scale: float = 1.0
    value_offset: float = 0.0
    nodata: float | None = None
    check_finite: bool = True

    @property
    def n_channels(self) -> int:
        """C, the number of output channels."""
        return int(self.matrix.shape[0])

    def apply(self, raw: torch.Tensor) -> torch.Tensor:
        """Channels of a raw block, on the block's device.

        Args:
            raw: ``[R, H, W]`` raw values of :attr:`bands` (any real dtype; integers are exact in float64).

        Returns:
            ``[C, H, W]`` float32 normalised channels, NaN at every channel of an invalid pixel.

        Raises:
            ValueError: ``raw`` does not hold :attr:`bands` bands.
        """
        import torch

        if raw.ndim != 3 or raw.shape[0] != len(self.bands):
            raise ValueError(f"expected a [{len(self.bands)}, H, W] raw block, got shape {tuple(raw.shape)}")
        dev = raw.device
        x = raw.to(torch.float64)
        _, h, w = x.shape

        def col(a: np.ndarray) -> torch.Tensor:
            return torch.tensor(a, device=dev)  # a copy: the frozen arrays are read-only

        test = x[col(self.valid_cols)]
        ok = torch.ones((h, w), dtype=torch.bool, device=dev)
        if self.check_finite:
            ok &= torch.isfinite(test).all(0)
        if self.nodata is not None:
            ok &= (test != self.nodata).all(0)
        phys = x[col(self.proj_cols)]
        if self.value_scale != 1.0 or self.value_offset != 0.0:
            phys = phys * self.value_scale + self.value_offset
        phys = torch.where(ok, phys, torch.tensor(float("nan"), dtype=torch.float64, device=dev))
        flat = phys.reshape(phys.shape[0], -1)
        if self.center is not None:
            flat = flat - col(self.center)[:, None]
        proj = (col(self.matrix) @ flat).to(torch.float32).reshape(-1, h, w)
        out = (proj.to(torch.float64) - col(self.shift)[:, None, None]) / col(self.scale)[:, None, None]
        return out.to(torch.float32)

    def valid_numpy(self, raw: np.ndarray) -> np.ndarray:
        """``[H, W]`` validity of a raw numpy block (the test of :meth:`apply`)."""
        test = raw[self.valid_cols]
        ok = np.ones(raw.shape[1:], dtype=bool)
        if self.check_finite:
            ok &= np.isfinite(test).all(0)
        if self.nodata is not None:
            ok &= (test != self.nodata).all(0)
        return ok

    def apply_numpy(self, raw: np.ndarray, slice_pixels: int = 4096) -> np.ndarray:
        """:meth:`apply` on the host in numpy, ``slice_pixels`` pixels converted to float64 at a time.

        Args:
            raw: ``[R, H, W]`` raw values of :attr:`bands`.
            slice_pixels: pixels converted to float64 at once (bounds the temporary memory).

        Returns:
            ``[C, H, W]`` float32 channels, NaN at every channel of an invalid pixel (what
            :meth:`apply` gives, up to the BLAS summation order).
        """
        if raw.ndim != 3 or raw.shape[0] != len(self.bands):
            raise ValueError(f"expected a [{len(self.bands)}, H, W] raw block, got shape {tuple(raw.shape)}")
        flat = raw.reshape(raw.shape[0], -1)
        proj = np.empty((self.n_channels, flat.shape[1]), dtype=np.float32)
        for s in range(0, flat.shape[1], slice_pixels):
            x = flat[self.proj_cols, s : s + slice_pixels].astype(np.float64)
            if self.value_scale != 1.0 or self.value_offset != 0.0:
                x = x * self.value_scale + self.value_offset
            if self.center is not None:
                x -= self.center[:, None]
            proj[:, s : s + slice_pixels] = self.matrix @ x
        out = ((proj - self.shift[:, None]) / self.scale[:, None]).astype(np.float32)
        out[:, ~self.valid_numpy(raw).reshape(-1)] = np.nan
        return out.reshape(self.n_channels, *raw.shape[1:])

    def raw_from_numpy(self, block: np.ndarray, device: Any = "cpu") -> torch.Tensor:
        """Upload a raw numpy block to ``device`` (unsigned 16/32/64-bit integers are widened on the host first:
        torch has few kernels for them)."""
        import torch

        arr = np.ascontiguousarray(block)
        if arr.dtype.kind == "u" and arr.dtype.itemsize > 1:
            arr = arr.astype(np.int32 if arr.dtype.itemsize == 2 else np.int64)
        if arr.dtype.kind == "b":
            arr = arr.astype(np.uint8)
        return torch.from_numpy(arr).to(device)

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        from dask.base import tokenize

        return (type(self).__name__, tokenize(*(getattr(self, f.name) for f in fields(self))))


__all__ = ["PixelMap"]
