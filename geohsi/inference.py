"""Batched model inference on windows: the one forward loop shared by training, evaluation and classify.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from geohsi.errors import UsageError


def resolve_device(device: str = "auto", *, warn=None) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda`` into a device; ``cuda`` without a GPU falls back to CPU with a warning.

    Args:
        device: requested device.
        warn: callable receiving a one-line warning (default: :func:`warnings.warn`).
    """
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise UsageError(f"unknown device {device!r}; use auto, cpu or cuda")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        msg = "CUDA requested but no GPU is available; running on the CPU"
        if warn is None:
            import warnings

            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        else:
            warn(msg)
        return torch.device("cpu")
    return torch.device(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPU or GPU when ``precision == "bf16"``, a no-op otherwise."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise UsageError(f"precision must be bf16 or fp32, got {precision!r}")
    return contextlib.nullcontext()


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices ``[0, n)`` in steps of ``batch_size``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


@torch.inference_mode()
def predict_proba(
    model: nn.Module,
    windows: np.ndarray,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> np.ndarray:
    """Class probabilities of windows.

    Args:
        model: a classifier returning logits ``[N, K]`` (put in eval mode here).
        windows: ``[N, C, S, S]`` float32.
        batch_size: windows per forward.
        device: torch device.
        precision: ``fp32`` or ``bf16`` (autocast).

    Returns:
        ``[N, K]`` float32 softmax probabilities (computed in fp32 from the logits).
    """
    device = torch.device(device)
    model.eval()
    out: list[np.ndarray] = []
    for sl in batches(len(windows), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(windows[sl])).to(device, non_blocking=True)
        with autocast(device, precision):
            logits = model(x)
        out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    if not out:
        k = getattr(getattr(model, "head", None), "num_classes", 0)
        return np.zeros((0, k), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)
