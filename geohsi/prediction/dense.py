"""Dense-mode prediction: overlapping tiles on a scene-anchored grid, Hann-blended logits.

A dense model (:class:`~geohsi.models.dense.SpectralGPTSegmenter`) labels a whole ``S × S`` tile per
forward. To map a block without seams, the block is covered by tiles on a **global** grid — tile
origins at scene coordinates that are multiples of the stride ``s = S − overlap`` — and each
pixel's logits are the average of the logits of every tile covering it, weighted by a separable
Hann window ``w(i) = sin²(π(i + ½)/S)`` (strictly positive, ≈ 0 at tile edges, where a tile sees
the least context; for ``overlap = S/2`` the weights of neighbouring tiles sum to a constant).
Softmax is taken after blending.

Because the grid is anchored to the scene, not to the block, a pixel sees the same tiles, blended
in the same order, whatever the Dask chunking: maps agree across partitions and chunk borders are
invisible. This needs a halo of :func:`dense_halo` ``= S − 1`` pixels around the block (the
farthest a tile covering a core pixel can reach) and the block's position in the scene
(``origin``). Pixels beyond the scene edge come from the halo's reflection
(:func:`geohsi.spectral.windows.overlap_reflect`), as in patch mode.

Cost per pixel: one encoder forward per ``s²`` pixels plus the head at full resolution on
``(S/s)²`` tiles, against one forward per pixel in patch mode.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from geohsi.errors import UsageError
from geohsi.prediction.runtime import ForwardTimer, autocast, timed
from geohsi.spectral.windows import overlap_reflect

#: Default overlap between neighbouring tiles as a share of the tile edge (32 px tiles → 8 px).
DEFAULT_OVERLAP_SHARE = 0.25


def default_overlap(tile: int) -> int:
    """Overlap in pixels used when none is given: ``tile // 4`` (stride ``3·tile/4``).

    .. versionadded:: 0.1
    """
    return int(tile * DEFAULT_OVERLAP_SHARE)


def dense_halo(tile: int) -> int:
    """Halo (pixels on each side of a block) that dense inference needs for tile edge ``tile``: ``tile − 1``.

    .. versionadded:: 0.1
    """
    return int(tile) - 1


def hann_weight(tile: int) -> np.ndarray:
    """``[S, S]`` float32 separable Hann blending weight, strictly positive.

    .. versionadded:: 0.1
    """
    w = np.sin(np.pi * (np.arange(tile) + 0.5) / tile) ** 2
    return np.outer(w, w).astype(np.float32)


def _origins(start: int, size: int, tile: int, stride: int) -> np.ndarray:
    """Global tile origins (multiples of ``stride``) of the tiles covering ``[start, start + size)``."""
    first = math.ceil((start - tile + 1) / stride) * stride
    return np.arange(first, start + size, stride, dtype=np.int64)


def _check_geometry(tile: int, overlap: int) -> int:
    if tile < 1:
        raise UsageError(f"dense tile edge {tile} must be a positive pixel count (e.g. 32)")
    if not 0 <= overlap < tile:
        raise UsageError(
            f"tile overlap {overlap} must be in [0, {tile - 1}] for {tile}-pixel tiles (e.g. {default_overlap(tile)})"
        )
    return tile - overlap


def dense_block_probabilities(
    block_with_halo: Any,
    model: Any,
    *,
    halo: int,
    tile: int | None = None,
    overlap: int | None = None,
    origin: tuple[int, int] = (0, 0),
    batch_size: int = 32,
    device: Any = "cpu",
    precision: str = "fp32",
    timer: ForwardTimer | None = None,
) -> np.ndarray:
    """Class probabilities of every core pixel of a block, from overlapping Hann-blended tiles.

    Args:
        block_with_halo: ``[C, h + 2·halo, w + 2·halo]`` float32 channels, NaN at invalid pixels
            (numpy, or a tensor already on ``device``).
        model: a dense model mapping ``[N, C, S, S]`` → ``[N, K, S, S]`` logits (eval mode;
            adapters merged).
        halo: the halo the block carries; at least what the tiles reach (``dense_halo(tile)`` always
            suffices).
        tile: tile edge S in pixels (default: the model's input size).
        overlap: pixels shared by neighbouring tiles (default :func:`default_overlap`).
        origin: scene ``(row, col)`` of the block's first core pixel (anchors the tile grid so maps
            do not depend on the chunking).
        batch_size: tiles per forward.
        device: torch device.
        precision: ``fp32`` or ``bf16`` (autocast).
        timer: accumulates the seconds spent in the model forwards.

    Returns:
        ``[K, h, w]`` float32 probabilities, NaN at invalid core pixels (any NaN channel).

    Raises:
        UsageError: bad tile/overlap, or a halo too small for the tiles covering the core.

    .. versionadded:: 0.1
    """
    import torch

    if tile is None:
        tile = int(model.config.input_size[0])
    overlap = default_overlap(tile) if overlap is None else int(overlap)
    stride = _check_geometry(tile, overlap)
    from geohsi.prediction.runtime import device_block

    shape = tuple(block_with_halo.shape)
    if len(shape) != 3:
        raise UsageError(f"expected a [C, H, W] block, got shape {shape}")
    h, w = shape[1] - 2 * halo, shape[2] - 2 * halo
    if h < 1 or w < 1:
        raise UsageError(f"block of shape {shape} is smaller than its halo {halo}; pass a block with a core")
    y0, x0 = int(origin[0]), int(origin[1])
    k = int(model.head.num_classes)
    out = np.full((k, h, w), np.nan, dtype=np.float32)
    # One upload of the halo'd block (none when it is already a tensor on the device); the validity of
    # the core comes back as a small boolean mask for the tile plan.
    dev = torch.device(device)
    blk = device_block(block_with_halo, dev)
    core_valid_t = ~torch.isnan(blk[:, halo : halo + h, halo : halo + w]).any(0)
    core_valid = core_valid_t.cpu().numpy()
    if not core_valid.any():
        return out
    gy, gx = _origins(y0, h, tile, stride), _origins(x0, w, tile, stride)
    # Block-local position of each tile's first row/column (the halo'd block starts at y0 − halo).
    ly, lx = gy - y0 + halo, gx - x0 + halo
    if ly[0] < 0 or lx[0] < 0 or ly[-1] + tile > shape[1] or lx[-1] + tile > shape[2]:
        raise UsageError(
            f"block halo {halo} is too small for {tile}-pixel tiles; read blocks with halo >= {dense_halo(tile)} (dense_halo)"
        )
    # Skip tiles that cover no valid core pixel: their logits would be discarded anyway.
    cy0, cx0 = np.clip(gy - y0, 0, h), np.clip(gx - x0, 0, w)
    cy1, cx1 = np.clip(gy - y0 + tile, 0, h), np.clip(gx - x0 + tile, 0, w)
    sat = np.pad(core_valid.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    count = (
        sat[cy1[:, None], cx1[None, :]]
        - sat[cy0[:, None], cx1[None, :]]
        - sat[cy1[:, None], cx0[None, :]]
        + sat[cy0[:, None], cx0[None, :]]
    )
    ti, tj = np.nonzero(count > 0)  # row-major: every pixel accumulates its tiles in one fixed order

    # Tiles are cut, classified and Hann-blended on the device (in float64, so the blend does not
    # depend on the device), and only the probabilities come back.
    src = torch.nan_to_num(blk, nan=0.0)  # NaN → 0 (the channel mean), as in patch mode
    weight = torch.from_numpy(hann_weight(tile)).to(dev)
    acc = torch.zeros((k, h, w), dtype=torch.float64, device=dev)
    wsum = torch.zeros((h, w), dtype=torch.float64, device=dev)
    w64 = weight.double()
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(ti), batch_size):
            bi, bj = ti[start : start + batch_size], tj[start : start + batch_size]
            x = torch.stack([src[:, ly[i] : ly[i] + tile, lx[j] : lx[j] + tile] for i, j in zip(bi, bj, strict=True)])
            with autocast(dev, precision), timed(timer):
                logits = model(x)
            logits = (logits.float() * weight).double()
            for n, (i, j) in enumerate(zip(bi, bj, strict=True)):
                r0, r1, c0, c1 = cy0[i], cy1[i], cx0[j], cx1[j]
                tr, tc = r0 - (gy[i] - y0), c0 - (gx[j] - x0)  # first tile row/col inside the core
                acc[:, r0:r1, c0:c1] += logits[n, :, tr : tr + r1 - r0, tc : tc + c1 - c0]
                wsum[r0:r1, c0:c1] += w64[tr : tr + r1 - r0, tc : tc + c1 - c0]
        p = torch.softmax(acc / wsum.clamp_min(1e-30), dim=0).float()
        p = torch.where(core_valid_t, p, torch.tensor(float("nan"), device=dev))
    return p.cpu().numpy()


def predict_dense(
    model: Any,
    channels: Any,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    block: int = 256,
    batch_size: int = 32,
    device: Any = "cpu",
    precision: str = "fp32",
    pixels: np.ndarray | None = None,
) -> np.ndarray:
    """Dense class probabilities of a whole scene, block by block (bounded memory, no Dask cluster).

    The same tiles and blending as the Dask graph: each ``block × block`` chunk is read with a
    reflected halo of :func:`dense_halo` pixels and passed to :func:`dense_block_probabilities`.

    Args:
        model: a dense model (eval mode).
        channels: ``[C, H, W]`` transformed scene: numpy, Dask array or DataArray; NaN = invalid.
        tile: tile edge (default: the model's input size).
        overlap: tile overlap in pixels (default :func:`default_overlap`).
        block: chunk edge processed at once (pixels).
        batch_size: tiles per forward.
        device: torch device.
        precision: ``fp32`` or ``bf16``.
        pixels: flat (row-major) indices of the pixels wanted; only the blocks holding them are
            predicted (the others stay NaN). ``None``: every block.

    Returns:
        ``[K, H, W]`` float32 probabilities, NaN at invalid pixels (and outside the blocks predicted).

    Raises:
        UsageError: a scene smaller than the tile, or bad tile/overlap.

    .. versionadded:: 0.1
    """
    import dask.array as da

    if tile is None:
        tile = int(model.config.input_size[0])
    data = getattr(channels, "data", channels)
    _, hgt, wid = data.shape
    if tile > hgt or tile > wid:
        raise UsageError(f"the scene is {hgt}×{wid} pixels, smaller than the {tile}-pixel dense tile; use a smaller --tile")
    r = dense_halo(tile)
    arr = data if isinstance(data, da.Array) else da.from_array(np.asarray(data, dtype=np.float32), chunks=(-1, block, block))
    arr = arr.astype(np.float32).rechunk((-1, block, block))
    halo_blocks = overlap_reflect(arr, r)
    ys = np.concatenate([[0], np.cumsum(arr.chunks[1])])
    xs = np.concatenate([[0], np.cumsum(arr.chunks[2])])
    wanted = None
    if pixels is not None:
        rows, cols = np.divmod(np.asarray(pixels, dtype=np.int64), wid)
        wanted = set(
            zip(
                (np.searchsorted(ys, rows, side="right") - 1).tolist(),
                (np.searchsorted(xs, cols, side="right") - 1).tolist(),
                strict=True,
            )
        )
    out = None
    for i in range(len(ys) - 1):
        for j in range(len(xs) - 1):
            if wanted is not None and (i, j) not in wanted:
                continue
            b = np.asarray(halo_blocks.blocks[0, i, j].compute())
            p = dense_block_probabilities(
                b,
                model,
                halo=r,
                tile=tile,
                overlap=overlap,
                origin=(int(ys[i]), int(xs[j])),
                batch_size=batch_size,
                device=device,
                precision=precision,
            )
            if out is None:
                out = np.full((p.shape[0], hgt, wid), np.nan, dtype=np.float32)
            out[:, ys[i] : ys[i + 1], xs[j] : xs[j + 1]] = p
    return out if out is not None else np.zeros((0, hgt, wid), np.float32)  # no pixel wanted: nothing predicted


#: Block edge of :func:`predict_dense_classes` when the pixels wanted are few and far between.
SPARSE_BLOCK = 64


def predict_dense_classes(
    model: Any,
    channels: Any,
    idx: np.ndarray,
    *,
    tile: int,
    overlap: int,
    batch_size: int,
    device: Any = "cpu",
    precision: str = "fp32",
) -> np.ndarray:
    """Predicted logit indices at pixels ``idx`` from one blended dense prediction of the whole scene.

    Args:
        model: a dense model.
        channels: ``[C, H, W]`` transformed scene (numpy or lazy).
        idx: ``[N]`` flat (row-major) pixel indices.
        tile: tile edge (pixels).
        overlap: tile overlap (pixels).
        batch_size: tiles per forward.
        device: torch device.
        precision: ``fp32`` or ``bf16``.

    Returns:
        ``[N]`` int64 logit indices (pixels without a prediction get logit 0).

    .. versionadded:: 0.1
    """
    if len(idx) == 0:
        return np.zeros(0, dtype=np.int64)
    _, h, w = getattr(channels, "shape", (0, 0, 0))
    # Few pixels over a large scene (a validation or test set): small blocks around them, so only the tiles
    # near them run; the maps are the same for any block size (the tiles are anchored to the scene).
    block = SPARSE_BLOCK if len(idx) * SPARSE_BLOCK**2 * 4 < h * w else 256
    probs = predict_dense(
        model,
        channels,
        tile=tile,
        overlap=overlap,
        block=block,
        batch_size=batch_size,
        device=device,
        precision=precision,
        pixels=idx,
    )
    flat = probs.reshape(probs.shape[0], -1)[:, idx]
    return np.nan_to_num(flat, nan=-1.0).argmax(0)


__all__ = [
    "DEFAULT_OVERLAP_SHARE",
    "default_overlap",
    "dense_block_probabilities",
    "dense_halo",
    "hann_weight",
    "predict_dense",
    "predict_dense_classes",
]
