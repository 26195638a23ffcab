"""Dense-mode prediction: overlapping tiles on a scene-anchored grid, Hann-blended logits.

A dense model (:class:`~geohsi.models.decoder.SpectralGPTSegmenter`) labels a whole ``S × S`` tile per
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


def scene_tiles(shape: tuple[int, int], tile: int, overlap: int | None = None) -> int:
    """Tiles of the scene-anchored grid that touch a ``shape`` scene: what one pass over it runs at most.

    ``scene_tiles(shape, tile) · tile² / (H·W)`` is the tiling's own tile forwards per map pixel
    (``(tile / stride)²`` plus the scene's edges).

    .. versionadded:: 0.3
    """
    stride = _check_geometry(int(tile), default_overlap(tile) if overlap is None else int(overlap))
    return len(_origins(0, int(shape[0]), int(tile), stride)) * len(_origins(0, int(shape[1]), int(tile), stride))


def _check_geometry(tile: int, overlap: int) -> int:
    if tile < 1:
        raise UsageError(f"dense tile edge {tile} must be a positive pixel count (e.g. 32)")
    if not 0 <= overlap < tile:
        raise UsageError(
            f"tile overlap {overlap} must be in [0, {tile - 1}] for {tile}-pixel tiles (e.g. {default_overlap(tile)})"
        )
    return tile - overlap


def summed_area_table(mask: np.ndarray) -> np.ndarray:
    """``[H + 1, W + 1]`` int64 summed-area table of a 2-D mask, zero-padded on top and left.

    The count of true pixels in rows ``[y0, y1)`` and columns ``[x0, x1)`` is
    ``sat[y1, x1] − sat[y0, x1] − sat[y1, x0] + sat[y0, x0]``, for any number of boxes at once.

    .. versionadded:: 0.3
    """
    return np.pad(np.asarray(mask, dtype=np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))


def _tile_plan(gy: np.ndarray, gx: np.ndarray, ry: int, rx: int, valid: np.ndarray, tile: int):
    """The tiles at ``gy × gx`` that cover at least one valid pixel of a region, and every tile's span in it.

    Args:
        gy, gx: tile origins (scene rows and columns).
        ry, rx: scene row and column of the region's first pixel.
        valid: ``[rh, rw]`` validity of the region's pixels.
        tile: tile edge.

    Returns:
        ``(ti, tj, (y0, y1, x0, x1))``: row-major indices into ``gy``/``gx`` of the tiles to run
        (every pixel then accumulates its tiles in one fixed order), and each origin's first and
        last-plus-one region row (column) it covers.
    """
    rh, rw = valid.shape
    y0, x0 = np.clip(gy - ry, 0, rh), np.clip(gx - rx, 0, rw)
    y1, x1 = np.clip(gy - ry + tile, 0, rh), np.clip(gx - rx + tile, 0, rw)
    sat = summed_area_table(valid)
    count = (
        sat[y1[:, None], x1[None, :]]
        - sat[y0[:, None], x1[None, :]]
        - sat[y1[:, None], x0[None, :]]
        + sat[y0[:, None], x0[None, :]]
    )
    ti, tj = np.nonzero(count > 0)
    return ti, tj, (y0, y1, x0, x1)


def _accumulate(
    src: Any,
    model: Any,
    tiles: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    spans: tuple[np.ndarray, ...],
    *,
    region: tuple[int, int, int, int],
    local: tuple[int, int],
    tile: int,
    batch_size: int,
    precision: str,
    timer: ForwardTimer | None,
):
    """Hann-weighted logit sums of tiles over a region: ``(acc [K, rh, rw], wsum [rh, rw])``, float64 on ``src``'s device.

    Args:
        src: ``[C, H', W']`` channels on the device (NaN already 0), the tiles are cut from it.
        model: the dense model.
        tiles: ``(gy, gx, ti, tj)``: origins and the row-major pairs of them to run.
        spans: each origin's region span (:func:`_tile_plan`).
        region: scene ``(row, col, height, width)`` of the region summed over.
        local: ``src`` row and column of scene position ``(0, 0)``.
        tile, batch_size, precision, timer: as in :func:`dense_block_probabilities`.
    """
    import torch

    gy, gx, ti, tj = tiles
    y0, y1, x0, x1 = spans
    ry, rx, rh, rw = region
    dev = src.device
    k = int(model.head.num_classes)
    weight = torch.from_numpy(hann_weight(tile)).to(dev)
    w64 = weight.double()
    acc = torch.zeros((k, rh, rw), dtype=torch.float64, device=dev)
    wsum = torch.zeros((rh, rw), dtype=torch.float64, device=dev)
    ly, lx = gy + local[0], gx + local[1]
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(ti), batch_size):
            bi, bj = ti[start : start + batch_size], tj[start : start + batch_size]
            x = torch.stack([src[:, ly[i] : ly[i] + tile, lx[j] : lx[j] + tile] for i, j in zip(bi, bj, strict=True)])
            with autocast(dev, precision), timed(timer, len(x)):
                logits = model(x)
            logits = (logits.float() * weight).double()
            for n, (i, j) in enumerate(zip(bi, bj, strict=True)):
                r0, r1, c0, c1 = y0[i], y1[i], x0[j], x1[j]
                tr, tc = r0 - (gy[i] - ry), c0 - (gx[j] - rx)  # first tile row/col inside the region
                acc[:, r0:r1, c0:c1] += logits[n, :, tr : tr + r1 - r0, tc : tc + c1 - c0]
                wsum[r0:r1, c0:c1] += w64[tr : tr + r1 - r0, tc : tc + c1 - c0]
    return acc, wsum


def _check_block(shape: tuple[int, ...], halo: int) -> tuple[int, int]:
    """The core ``(h, w)`` of a halo'd ``[C, h + 2·halo, w + 2·halo]`` block."""
    if len(shape) != 3:
        raise UsageError(f"expected a [C, H, W] block, got shape {shape}")
    h, w = shape[1] - 2 * halo, shape[2] - 2 * halo
    if h < 1 or w < 1:
        raise UsageError(f"block of shape {shape} is smaller than its halo {halo}; pass a block with a core")
    return h, w


def _block_geometry(block_with_halo: Any, model: Any, halo: int, tile: int | None, overlap: int | None,
                    origin: tuple[int, int], device: Any):  # fmt: skip
    """``(block on the device, tile, stride, (h, w) of the core, (row, col) origin)``, every argument checked.

    The halo'd block is uploaded once (not at all when it is already a tensor on the device).
    """
    import torch

    from geohsi.prediction.runtime import device_block

    tile = int(model.config.input_size[0]) if tile is None else int(tile)
    stride = _check_geometry(tile, default_overlap(tile) if overlap is None else int(overlap))
    core = _check_block(tuple(block_with_halo.shape), halo)
    blk = device_block(block_with_halo, torch.device(device))
    return blk, tile, stride, core, (int(origin[0]), int(origin[1]))


def _check_reach(gy: np.ndarray, gx: np.ndarray, local: tuple[int, int], tile: int, shape: tuple[int, ...]) -> None:
    if len(gy) and len(gx) and (gy[0] + local[0] < 0 or gx[0] + local[1] < 0 or gy[-1] + local[0] + tile > shape[1]
                                or gx[-1] + local[1] + tile > shape[2]):  # fmt: skip
        raise UsageError(
            f"block halo is too small for {tile}-pixel tiles; read blocks with halo >= {dense_halo(tile)} (dense_halo)"
        )


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

    Every tile covering a core pixel runs here, so a tile straddling a block border runs in both
    blocks; :func:`dense_block_accumulate` and :func:`blend_accumulated` run each tile once.

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

    blk, tile, stride, (h, w), (y0, x0) = _block_geometry(block_with_halo, model, halo, tile, overlap, origin, device)
    shape = tuple(blk.shape)
    out = np.full((int(model.head.num_classes), h, w), np.nan, dtype=np.float32)
    core_valid_t = ~torch.isnan(blk[:, halo : halo + h, halo : halo + w]).any(0)
    core_valid = core_valid_t.cpu().numpy()
    if not core_valid.any():
        return out
    gy, gx = _origins(y0, h, tile, stride), _origins(x0, w, tile, stride)
    local = (halo - y0, halo - x0)  # block row/col of scene (0, 0)
    _check_reach(gy, gx, local, tile, shape)
    ti, tj, spans = _tile_plan(gy, gx, y0, x0, core_valid, tile)  # tiles covering no valid core pixel are skipped
    # Tiles are cut, classified and Hann-blended on the device (in float64, so the blend does not
    # depend on the device), and only the probabilities come back.
    acc, wsum = _accumulate(torch.nan_to_num(blk, nan=0.0), model, (gy, gx, ti, tj), spans, region=(y0, x0, h, w),
                            local=local, tile=tile, batch_size=batch_size, precision=precision, timer=timer)  # fmt: skip
    with torch.inference_mode():
        p = torch.softmax(acc / wsum.clamp_min(1e-30), dim=0).float()
        p = torch.where(core_valid_t, p, torch.tensor(float("nan"), device=blk.device))
    return p.cpu().numpy()


def _owned_origins(start: int, size: int, tile: int, stride: int) -> np.ndarray:
    """Origins of the tiles a chunk ``[start, start + size)`` runs: those starting in it, and for the
    first chunk also those starting before the scene (every tile touching the scene runs once)."""
    first = int(_origins(0, 1, tile, stride)[0]) if start == 0 else math.ceil(start / stride) * stride
    return np.arange(first, start + size, stride, dtype=np.int64)


def dense_block_accumulate(
    block_with_halo: Any,
    model: Any,
    *,
    halo: int,
    scene_shape: tuple[int, int],
    tile: int | None = None,
    overlap: int | None = None,
    origin: tuple[int, int] = (0, 0),
    batch_size: int = 32,
    device: Any = "cpu",
    precision: str = "fp32",
    timer: ForwardTimer | None = None,
) -> np.ndarray:
    """The Hann-weighted logit sums of the tiles a block owns, over its core and the margin they reach.

    Overlap-add: a block runs only the tiles of the scene-anchored grid whose origin lies in its core
    (:func:`_owned_origins`), so every tile of the scene runs once, whatever the chunking. Those
    tiles reach up to ``tile − 1`` pixels past the core's bottom and right edges, into the next
    blocks; :func:`blend_accumulated` adds each block's margin to its neighbours' cores. A tile is
    skipped when it covers no valid pixel of the scene.

    Args:
        block_with_halo: ``[C, h + 2·halo, w + 2·halo]`` float32 channels, NaN at invalid pixels
            (numpy, or a tensor on ``device``); ``halo ≥ dense_halo(tile)``.
        model: the dense model (eval mode; adapters merged).
        halo: the halo the block carries.
        scene_shape: ``(H, W)`` of the scene (the margin stops at its edge; the halo beyond it is a
            reflection, not pixels of the map).
        tile, overlap, origin, batch_size, device, precision, timer: as in :func:`dense_block_probabilities`.

    Returns:
        ``[K + 1, rh, rw]`` float64 over the scene region ``origin + [0, rh) × [0, rw)`` (the core
        and its margin, ``rh = min(h + tile − 1, H − row)``): the weighted logit sums, NaN at the
        core's invalid pixels, then the weight sum.

    .. versionadded:: 0.3
    """
    import torch

    blk, tile, stride, (h, w), (y0, x0) = _block_geometry(block_with_halo, model, halo, tile, overlap, origin, device)
    shape = tuple(blk.shape)
    rh, rw = accumulated_shape((h, w), origin, scene_shape, tile)
    valid = ~torch.isnan(blk[:, halo : halo + rh, halo : halo + rw]).any(0)
    gy, gx = _owned_origins(y0, h, tile, stride), _owned_origins(x0, w, tile, stride)
    local = (halo - y0, halo - x0)
    _check_reach(gy, gx, local, tile, shape)
    ti, tj, spans = _tile_plan(gy, gx, y0, x0, valid.cpu().numpy(), tile)
    acc, wsum = _accumulate(torch.nan_to_num(blk, nan=0.0), model, (gy, gx, ti, tj), spans, region=(y0, x0, rh, rw),
                            local=local, tile=tile, batch_size=batch_size, precision=precision, timer=timer)  # fmt: skip
    acc[:, :h, :w] = torch.where(valid[:h, :w], acc[:, :h, :w], torch.tensor(float("nan"), dtype=acc.dtype, device=acc.device))
    return torch.cat([acc, wsum[None]]).cpu().numpy()


def accumulated_shape(core: tuple[int, int], origin: tuple[int, int], scene_shape: tuple[int, int], tile: int) -> tuple[int, int]:
    """``(rh, rw)`` of :func:`dense_block_accumulate`'s region: the core and the ``tile − 1`` margin inside the scene."""
    return (
        min(core[0] + tile - 1, int(scene_shape[0]) - int(origin[0])),
        min(core[1] + tile - 1, int(scene_shape[1]) - int(origin[1])),
    )


def empty_accumulated(k: int, core: tuple[int, int], region: tuple[int, int]) -> np.ndarray:
    """What :func:`dense_block_accumulate` gives for a block without a valid pixel: no sums, every core pixel NaN."""
    out = np.zeros((k + 1, *region), dtype=np.float64)
    out[:k, : core[0], : core[1]] = np.nan
    return out


def blend_accumulated(parts: list[np.ndarray], offsets: list[tuple[int, int]], core: tuple[int, int]) -> np.ndarray:
    """Probabilities of one block's core from the accumulated sums that reach it (its own and its neighbours').

    Args:
        parts: ``[K + 1, rh, rw]`` outputs of :func:`dense_block_accumulate`.
        offsets: each part's region origin relative to the core's first pixel (``(0, 0)`` for the
            block's own part, negative rows/columns for the blocks above and to the left).
        core: ``(h, w)``.

    Returns:
        ``[K, h, w]`` float32 probabilities (softmax of the blended logits), NaN at invalid pixels.

    .. versionadded:: 0.3
    """
    import torch

    total = np.zeros((parts[0].shape[0], *core), dtype=np.float64)
    for part, (dy, dx) in zip(parts, offsets, strict=True):
        r0, c0 = max(0, dy), max(0, dx)
        r1, c1 = min(core[0], dy + part.shape[1]), min(core[1], dx + part.shape[2])
        if r1 > r0 and c1 > c0:
            total[:, r0:r1, c0:c1] += part[:, r0 - dy : r1 - dy, c0 - dx : c1 - dx]
    acc, wsum = torch.from_numpy(total[:-1]), torch.from_numpy(total[-1])
    return torch.softmax(acc / wsum.clamp_min(1e-30), dim=0).float().numpy()


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
        raise UsageError(
            f"the scene is {hgt}×{wid} pixels, smaller than the {tile}-pixel dense tile; give a scene at least one tile "
            "high and wide, or use a patch-mode bundle"
        )
    r = dense_halo(tile)
    arr = data if isinstance(data, da.Array) else da.from_array(np.asarray(data, dtype=np.float32), chunks=(-1, block, block))
    arr = arr.astype(np.float32).rechunk((-1, block, block))
    halo_blocks = overlap_reflect(arr, r)
    ys = np.concatenate([[0], np.cumsum(arr.chunks[1])])
    xs = np.concatenate([[0], np.cumsum(arr.chunks[2])])
    wanted = None if pixels is None else _blocks_holding(pixels, wid, ys, xs)
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


def _blocks_holding(pixels: np.ndarray, width: int, ys: np.ndarray, xs: np.ndarray) -> set[tuple[int, int]]:
    """``(row, column)`` of the blocks (edges ``ys``, ``xs``) holding the flat row-major ``pixels``."""
    rows, cols = np.divmod(np.asarray(pixels, dtype=np.int64), width)
    return set(
        zip(
            (np.searchsorted(ys, rows, side="right") - 1).tolist(),
            (np.searchsorted(xs, cols, side="right") - 1).tolist(),
            strict=True,
        )
    )


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
    "accumulated_shape",
    "blend_accumulated",
    "default_overlap",
    "dense_block_accumulate",
    "dense_block_probabilities",
    "dense_halo",
    "empty_accumulated",
    "hann_weight",
    "predict_dense",
    "predict_dense_classes",
    "scene_tiles",
    "summed_area_table",
]
