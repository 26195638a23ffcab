"""Patch-mode prediction: one window per pixel, resized to the model input, one logit vector each.

The paper's protocol (:class:`~geohsi.models.spectralgpt.SpectralGPTClassifier`): the window of
``w × w`` pixels centred on a pixel (cut by :mod:`geohsi.spectral.windows`) is resized to
``S × S`` and classified. These functions run such a model over windows, over the pixels of a
scene, and over every pixel of a block that carries a halo (what a classify task does).

.. versionadded:: 0.1
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from geohsi.errors import UsageError
from geohsi.prediction.runtime import ForwardTimer, autocast, batches, device_block, timed
from geohsi.spectral.windows import WindowSource, check_window


@torch.inference_mode()
def predict_proba(
    model: nn.Module,
    windows: np.ndarray,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    timer: ForwardTimer | None = None,
) -> np.ndarray:
    """Class probabilities of windows.

    Args:
        model: a classifier returning logits ``[N, K]`` (put in eval mode here).
        windows: ``[N, C, S, S]`` float32.
        batch_size: windows per forward.
        device: torch device.
        precision: ``fp32`` or ``bf16`` (autocast).
        timer: accumulates the seconds spent in the model forwards.

    Returns:
        ``[N, K]`` float32 softmax probabilities (computed in fp32 from the logits).

    .. versionadded:: 0.1
    """
    device = torch.device(device)
    model.eval()
    out: list[np.ndarray] = []
    for sl in batches(len(windows), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(windows[sl])).to(device, non_blocking=True)
        with autocast(device, precision), timed(timer, len(x)):
            logits = model(x)
        out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    if not out:
        k = getattr(getattr(model, "head", None), "num_classes", 0)
        return np.zeros((0, k), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def predict_window_classes(
    model: nn.Module,
    source: WindowSource,
    idx: np.ndarray,
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> np.ndarray:
    """Predicted logit indices of scene pixels ``idx``, windows cut batch by batch.

    Args:
        model: a patch classifier.
        source: the scene's windows (:class:`~geohsi.spectral.windows.WindowSource`).
        idx: ``[N]`` flat (row-major) pixel indices.
        batch_size: windows per forward (windows are cut ``max(batch_size, 1024)`` at a time).
        device: torch device.
        precision: ``fp32`` or ``bf16``.

    Returns:
        ``[N]`` int64 logit indices.

    .. versionadded:: 0.1
    """
    out = np.empty(len(idx), dtype=np.int64)
    for sl in batches(len(idx), max(batch_size, 1024)):
        p = predict_proba(model, source.windows(idx[sl]), batch_size=batch_size, device=device, precision=precision)
        out[sl] = p.argmax(1)
    return out


def patch_block_probabilities(
    block_with_halo: np.ndarray | torch.Tensor,
    model: nn.Module,
    *,
    window: int,
    input_size: int,
    halo: int,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    timer: ForwardTimer | None = None,
) -> np.ndarray:
    """Class probabilities of every core pixel of a block that carries a halo.

    The block is uploaded to ``device`` once; windows are cut from it (a strided view and one
    gather per batch), resized (bilinear, ``align_corners=False``, as
    :func:`~geohsi.spectral.windows.windows_for_block`) and classified there, and only the
    probabilities are downloaded (device memory per batch: ``batch·C·(w² + S²)·4`` bytes). Pixels
    that are invalid in the input (NaN channels) are not run; their probabilities are NaN.

    Args:
        block_with_halo: ``[C, h + 2·halo, w + 2·halo]`` float32 channels, NaN at invalid pixels
            (numpy, or a tensor already on ``device``).
        model: a patch classifier (eval mode; adapters merged).
        window: window edge in pixels (odd).
        input_size: model input edge in pixels.
        halo: the halo width the block carries (≥ ``window // 2``).
        batch_size: windows per forward.
        device: torch device.
        precision: ``fp32`` or ``bf16``.
        timer: accumulates the seconds spent in the model forwards.

    Returns:
        ``[K, h, w]`` float32 probabilities, NaN at invalid pixels.

    .. versionadded:: 0.1
    """
    import torch.nn.functional as F

    r = check_window(window)
    if halo < r:
        raise UsageError(f"block halo {halo} is smaller than the window radius {r}; fetch blocks with halo >= window // 2")
    device = torch.device(device)
    model.eval()
    # One upload of the halo'd block; windows are cut, resized and classified on the device, and only
    # the probabilities come back.
    blk = device_block(block_with_halo, device)
    _, hh, ww = blk.shape
    h, w = hh - 2 * halo, ww - 2 * halo
    k = int(model.head.num_classes)
    out = torch.full((k, h, w), float("nan"), dtype=torch.float32, device=device)
    rows, cols = torch.nonzero(~torch.isnan(blk[:, halo : halo + h, halo : halo + w]).any(0), as_tuple=True)
    off = halo - r  # first window row for core row 0
    view = torch.nan_to_num(blk, nan=0.0).unfold(1, window, 1).unfold(2, window, 1)  # [C, H', W', w, w], no copy
    with torch.inference_mode():
        for sl in batches(int(rows.numel()), batch_size):
            r_, c_ = rows[sl], cols[sl]
            win = view[:, r_ + off, c_ + off].transpose(0, 1)  # gather: [N, C, w, w]
            if window != input_size:
                win = F.interpolate(win, size=(input_size, input_size), mode="bilinear", align_corners=False, antialias=False)
            with autocast(device, precision), timed(timer, len(win)):
                logits = model(win.contiguous())
            out[:, r_, c_] = torch.softmax(logits.float(), dim=-1).T
    return out.cpu().numpy()


__all__ = ["patch_block_probabilities", "predict_proba", "predict_window_classes"]
