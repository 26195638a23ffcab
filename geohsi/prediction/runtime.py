"""The runtime every prediction shares: device choice, autocast, batching, batch-size tuning, forward timing.

Performance choices (measured by ``python -m benchmarks inference``, see ``docs/performance.md``):
``torch.inference_mode`` (no autograd bookkeeping), adapters merged before inference
(:meth:`geohsi.bundle.Bundle.build_model`), bf16 autocast on request, and a per-device batch size
from :func:`autotune_batch_size`.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from geohsi.errors import UsageError


def resolve_device(device: str = "auto", *, warn=None) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda`` into a device; ``cuda`` without a GPU falls back to CPU with a warning.

    Args:
        device: requested device.
        warn: callable receiving a one-line warning (default: :func:`warnings.warn` of a :class:`~geohsi.errors.GeohsiWarning`).
    """
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise UsageError(f"unknown device {device!r}; use auto, cpu or cuda")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        msg = "CUDA requested but no GPU is available; running on the CPU"
        if warn is None:
            import warnings

            from geohsi.errors import GeohsiWarning

            warnings.warn(msg, GeohsiWarning, stacklevel=2)
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


def device_block(block: Any, device: torch.device | str) -> torch.Tensor:
    """A ``[C, H, W]`` block as a float32 tensor on ``device``: a numpy block is uploaded once, a
    tensor (e.g. channels a worker already computed on its GPU) is used where it is."""
    if isinstance(block, torch.Tensor):
        return block.to(device=device, dtype=torch.float32)
    return torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32)).to(device)


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices ``[0, n)`` in steps of ``batch_size``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


#: (device type, model class, input shape, precision) → best batch size found in this process.
_BATCH_CACHE: dict[tuple, int] = {}


@torch.inference_mode()
def autotune_batch_size(
    model: nn.Module,
    sample_shape: tuple[int, ...],
    *,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    candidates: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512),
    max_bytes: int = 1 << 30,
    min_seconds: float = 0.2,
) -> int:
    """The batch size with the highest samples/s for this model, input and device (cached per process).

    Times one warm forward (more while under ``min_seconds``) per candidate, in increasing order,
    and stops early once throughput falls 10 % below the best (larger batches only spill caches
    from there), or a batch's input would exceed ``max_bytes``, or CUDA runs out of memory.

    Args:
        model: the model in eval mode, on ``device``.
        sample_shape: one sample's shape, e.g. ``(12, 32, 32)``.
        device: torch device.
        precision: ``fp32`` or ``bf16``.
        candidates: batch sizes to try, increasing.
        max_bytes: largest input batch (bytes of float32) to try.
        min_seconds: minimum timed seconds per candidate.

    Returns:
        The best batch size.

    .. versionadded:: 0.1
    """
    device = torch.device(device)
    key = (device.type, type(model).__name__, id(model), tuple(sample_shape), precision)
    if key in _BATCH_CACHE:
        return _BATCH_CACHE[key]
    model.eval()
    per = int(np.prod(sample_shape)) * 4
    best, best_rate = candidates[0], 0.0
    for b in candidates:
        if b * per > max_bytes and b != candidates[0]:
            break
        x = torch.randn(b, *sample_shape, device=device)
        try:
            with autocast(device, precision):
                model(x)  # warm-up (allocations, oneDNN primitive creation)
                n, t0 = 0, time.perf_counter()
                while True:
                    model(x)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    n += 1
                    dt = time.perf_counter() - t0
                    if dt >= min_seconds:
                        break
        except torch.OutOfMemoryError:
            break
        rate = n * b / dt
        if rate > best_rate:
            best, best_rate = b, rate
        elif rate < 0.9 * best_rate:
            break
    _BATCH_CACHE[key] = best
    return best


class ForwardTimer:
    """Accumulates the wall seconds spent inside model forwards (the per-worker classify statistic).

    On CUDA it synchronises at the end of each forward, so the seconds are the kernels', not their launch's.

    Attributes:
        seconds: total seconds timed so far.
        calls: number of timed forwards.
        inputs: model inputs (windows or tiles) of those forwards, as given to :func:`timed`.

    Example:
        >>> timer = ForwardTimer()
        >>> with timer:
        ...     pass
        >>> timer.calls
        1
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.inputs = 0
        self._t0 = 0.0
        self._pending = 0

    def __enter__(self) -> ForwardTimer:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if torch.cuda.is_initialized():  # kernels run asynchronously: count them, not their launch
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - self._t0
        self.calls += 1
        self.inputs += self._pending
        self._pending = 0


def timed(timer: ForwardTimer | None, inputs: int = 0) -> contextlib.AbstractContextManager:
    """``timer`` as a context manager counting ``inputs`` model inputs, or a no-op when there is none."""
    if timer is None:
        return contextlib.nullcontext()
    timer._pending = int(inputs)
    return timer


__all__ = ["ForwardTimer", "autocast", "autotune_batch_size", "batches", "device_block", "resolve_device", "timed"]
