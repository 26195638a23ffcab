"""What runs inside a Dask worker: the process-level model cache and the per-block inference.

The graph carries the bundle *path* and its hash, never weights. The first task a worker process
runs for a bundle loads it (adapters merged into the weights, eval mode, moved to the device) into
:data:`_MODELS`, keyed by ``(hash, device)``; every later task of that process reuses it. A bundle
that changed on disk since the graph was built (another hash) is refused rather than silently mixed.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from geohsi.errors import ModelError

#: (bundle hash, device) → (model, torch.device); one per worker process.
_MODELS: dict[tuple[str, str], tuple[Any, Any]] = {}
_LOCK = threading.Lock()
#: how many times this process built a model (tests check that a worker loads a bundle once).
LOAD_COUNT = 0


@dataclass(frozen=True)
class InferenceSpec:
    """Everything a task needs to rebuild and run the model — small and picklable.

    Attributes:
        bundle_path: absolute bundle directory (every worker must see it at this path).
        bundle_hash: sha256 of the bundle's ``bundle.json`` (the cache key).
        window: window edge in pixels (odd).
        input_size: model input edge in pixels.
        n_classes: number of logits K.
        batch_size: windows per forward.
        device: ``cpu`` or ``cuda``.
        precision: ``fp32`` or ``bf16``.
        torch_threads: intra-op threads for torch in each worker process; ``None`` derives it from
            the number of Dask worker threads on the host (see :func:`torch_threads_for_host`).
        host_workers: ``{host: Dask worker threads on that host}`` used when ``torch_threads`` is ``None``.
    """

    bundle_path: str
    bundle_hash: str
    window: int
    input_size: int
    n_classes: int
    batch_size: int = 1024
    device: str = "cpu"
    precision: str = "fp32"
    torch_threads: int | None = None
    host_workers: tuple[tuple[str, int], ...] = ()


def torch_threads_for_host(host_workers: dict[str, int]) -> int:
    """Torch threads for this process so the Dask threads on this host do not oversubscribe its cores.

    Args:
        host_workers: ``{host: total Dask worker threads on that host}``.

    Returns:
        ``max(1, cores // threads_on_this_host)`` (``cores`` when this host is not listed).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    host = None
    try:
        from distributed import get_worker

        host = get_worker().address.split("://")[-1].rsplit(":", 1)[0]
    except (ImportError, ValueError):
        pass
    n = host_workers.get(host or socket.gethostname(), 0) if host_workers else 0
    return max(1, cores // n) if n else cores


def get_model(spec: InferenceSpec) -> tuple[Any, Any]:
    """The cached ``(model, device)`` for ``spec``, loading the bundle on first use in this process.

    Args:
        spec: the inference spec carried by the graph.

    Returns:
        ``(model, torch.device)``: merged adapters, eval mode, on the device.

    Raises:
        ModelError: the bundle on disk is not the one the graph was built for.
    """
    global LOAD_COUNT
    key = (spec.bundle_hash, spec.device)
    hit = _MODELS.get(key)
    if hit is not None:
        return hit
    with _LOCK:
        hit = _MODELS.get(key)
        if hit is not None:
            return hit
        import torch

        from geohsi.bundle import load_bundle
        from geohsi.inference import resolve_device

        threads = spec.torch_threads or torch_threads_for_host(dict(spec.host_workers))
        torch.set_num_threads(max(1, int(threads)))
        b = load_bundle(spec.bundle_path)
        if b.hash != spec.bundle_hash:
            raise ModelError(
                f"bundle {spec.bundle_path} changed since the classification was started (hash {b.hash[:12]}… ≠ "
                f"{spec.bundle_hash[:12]}…); rerun geohsi classify"
            )
        # On a CPU-only worker `cuda` falls back to the CPU (resolve_device warns once per process).
        device = resolve_device(spec.device)
        model = b.build_model(merge=True).to(device)
        model.eval()
        LOAD_COUNT += 1
        _MODELS[key] = (model, device)
        return model, device


def block_probabilities(block: np.ndarray, spec: InferenceSpec, halo: int) -> np.ndarray:
    """Class probabilities of every core pixel of a block that carries a halo.

    Windows are cut from the halo'd block and run through the model ``spec.batch_size`` at a time
    (memory per batch: ``batch·C·(w² + S²)·4`` bytes). Pixels that are invalid in the input (NaN
    channels) are not run; their probabilities are NaN.

    Args:
        block: ``[C, h + 2·halo, w + 2·halo]`` float32 channels, NaN at invalid pixels.
        spec: the inference spec.
        halo: the halo width the block carries (≥ ``window // 2``).

    Returns:
        ``[K, h, w]`` float32 probabilities, NaN at invalid pixels.
    """
    from geohsi.inference import predict_proba
    from geohsi.spectral.windows import windows_for_block

    c, hh, ww = block.shape
    h, w = hh - 2 * halo, ww - 2 * halo
    out = np.full((spec.n_classes, h, w), np.nan, dtype=np.float32)
    core = block[:, halo: halo + h, halo: halo + w]
    valid = ~np.isnan(core).any(axis=0)
    rows, cols = np.nonzero(valid)
    if rows.size == 0:
        return out
    model, device = get_model(spec)
    for start in range(0, rows.size, spec.batch_size):
        r, cc = rows[start: start + spec.batch_size], cols[start: start + spec.batch_size]
        win = windows_for_block(block, r, cc, spec.window, spec.input_size, halo=halo)
        p = predict_proba(model, win, batch_size=spec.batch_size, device=device, precision=spec.precision)
        out[:, r, cc] = p.T
    return out


__all__ = ["InferenceSpec", "LOAD_COUNT", "block_probabilities", "get_model", "torch_threads_for_host"]
