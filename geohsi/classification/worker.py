"""What runs inside a Dask worker: the process-level model cache and the per-block inference.

The graph carries the bundle *path* and its hash, never weights. The first task a worker runs for
a bundle loads it (adapters merged into the weights, eval mode, moved to the device, weights
converted to bf16 once when the precision is bf16) into the worker's :class:`ModelCache`, keyed by
``(hash, device, precision)``; every later task of that worker reuses it. A bundle that changed on
disk since the graph was built (another hash) is refused rather than silently mixed. On the
embedded cluster the cache is a Dask worker plugin (:func:`model_cache_plugin`), so it lives and
dies with the worker. On a cluster given by ``--scheduler`` it is not registered (a broadcast to
workers that a nanny keeps restarting at their memory limit can wait forever, before geohsi's own
paused-workers check runs): there, as for tasks run outside a worker (the threads scheduler of
:func:`~geohsi.classification.predict_map`), each process keeps one cache of its own.

One task function, :func:`block_task`: the bundle's head predicts the halo'd block (one window per
pixel, or Hann-blended tiles on the scene-anchored grid). It adds the seconds spent in the model
forward to :data:`STATS`, which :func:`worker_stats` reports per worker (the classify summary's
share of worker time in the model).

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from geohsi.errors import ModelError
from geohsi.heads import Head
from geohsi.prediction import ForwardTimer
from geohsi.spectral.pixelmap import PixelMap

#: per-process counters: seconds inside the model forward, model inputs (windows or tiles) it ran,
#: pixels classified, tasks run, models loaded.
STATS: dict[str, float] = {"forward_s": 0.0, "inputs": 0, "pixels": 0, "tasks": 0, "model_loads": 0}
#: the name of the worker plugin holding each worker's :class:`ModelCache`.
MODEL_CACHE_PLUGIN = "geohsi-model-cache"


@dataclass(frozen=True)
class InferenceSpec:
    """Everything a task needs to rebuild and run the model — small and picklable.

    Attributes:
        bundle_path: absolute bundle directory (every worker must see it at this path), or its URL
            (each worker downloads it once into its own cache).
        bundle_hash: sha256 of the bundle's ``bundle.json`` (the cache key).
        head: the bundle's model mode with its geometry (what predicts a block).
        n_classes: number of logits K.
        batch_size: windows (patch) or tiles (dense) per forward; ``None``: the head's CPU default
            on the CPU, :func:`geohsi.prediction.autotune_batch_size` on CUDA (once per worker process).
        device: ``cpu`` or ``cuda``.
        precision: ``fp32`` or ``bf16``.
        torch_threads: intra-op threads for torch in each worker process; ``None`` derives it from
            the number of Dask worker threads on the host (see :func:`torch_threads_for_host`).
        host_workers: ``{host: Dask worker threads on that host}`` used when ``torch_threads`` is ``None``.
        pixel_map: the scene's spectral transform as torch ops when blocks carry raw bands (the
            transform then runs on the worker's device, :func:`block_task`); ``None``: blocks are channels.
        backbone: where the bundle's backbone file is now, if it moved since training (``--backbone``).
    """

    bundle_path: str
    bundle_hash: str
    head: Head
    n_classes: int
    batch_size: int | None = None
    device: str = "cpu"
    precision: str = "fp32"
    torch_threads: int | None = None
    host_workers: tuple[tuple[str, int], ...] = ()
    pixel_map: PixelMap | None = None
    backbone: str | None = None


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


class ModelCache:
    """The models one worker (or one process) has loaded, by ``(bundle hash, device, precision)``, and its devices."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self.devices: dict[str, Any] = {}
        self._lock = threading.Lock()

    def device(self, device: str) -> Any:
        """The torch device ``device`` runs on here, resolved once (``cuda`` without a GPU falls back to the CPU with one warning)."""
        dev = self.devices.get(device)
        if dev is None:
            from geohsi.prediction import resolve_device

            dev = self.devices[device] = resolve_device(device)
        return dev

    def model(self, spec: InferenceSpec) -> tuple[Any, Any]:
        """The cached ``(model, device)`` for ``spec``, loading the bundle on first use (see :func:`get_model`)."""
        key = (spec.bundle_hash, spec.device, spec.precision, spec.backbone)
        hit = self.models.get(key)
        if hit is not None:
            return hit
        with self._lock:
            if key not in self.models:
                self.models[key] = self._load(spec)
                STATS["model_loads"] += 1
            return self.models[key]

    def _load(self, spec: InferenceSpec) -> tuple[Any, Any]:
        import torch

        from geohsi.bundle import load_bundle

        threads = spec.torch_threads or torch_threads_for_host(dict(spec.host_workers))
        torch.set_num_threads(max(1, int(threads)))
        b = load_bundle(spec.bundle_path)
        if b.hash != spec.bundle_hash:
            raise ModelError(
                f"bundle {spec.bundle_path} changed since the classification was started (hash {b.hash[:12]}… ≠ "
                f"{spec.bundle_hash[:12]}…); rerun geohsi classify"
            )
        device = self.device(spec.device)
        model = b.build_model(backbone=spec.backbone, merge=True).to(device)
        if spec.precision == "bf16":
            model = model.to(torch.bfloat16)
        return model.eval(), device


#: the cache of tasks run outside a Dask worker (the threads or synchronous scheduler).
_PROCESS_CACHE = ModelCache()


def model_cache_plugin() -> object:
    """A Dask worker plugin giving each worker its own :class:`ModelCache` (``client.register_plugin``; idempotent)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class ModelCachePlugin(WorkerPlugin):
        """Each worker's :class:`ModelCache`: set up when the worker starts or joins, gone with it."""

        name = MODEL_CACHE_PLUGIN
        idempotent = True  # registering it again (another map on the same cluster) keeps the loaded models

        def setup(self, worker: object) -> None:
            self.cache = ModelCache()

    return ModelCachePlugin()


def register_model_cache(client: Any) -> None:
    """Register :func:`model_cache_plugin` on ``client``'s cluster.

    A worker that dies during the broadcast (a nanny restarting it at its memory limit) fails the
    registration with a closed connection; that is not the map's failure: the workers that got the
    plugin use it, the others use their process's cache, and the run goes on to report what matters.
    """
    with contextlib.suppress(OSError):  # distributed's CommClosedError is an OSError
        client.register_plugin(model_cache_plugin())


def model_cache() -> ModelCache:
    """The running worker's :class:`ModelCache` (its plugin's), or the process's outside a worker or without the plugin."""
    try:
        from distributed import get_worker

        plugin = get_worker().plugins.get(MODEL_CACHE_PLUGIN)
    except (ImportError, ValueError):  # no distributed, or not inside a worker's task
        plugin = None
    return getattr(plugin, "cache", None) or _PROCESS_CACHE


def worker_device(device: str) -> Any:
    """The torch device this worker runs ``device`` on (:meth:`ModelCache.device`)."""
    return model_cache().device(device)


def get_model(spec: InferenceSpec) -> tuple[Any, Any]:
    """The cached ``(model, device)`` for ``spec`` in this worker, loading the bundle on first use.

    Args:
        spec: the inference spec carried by the graph.

    With ``precision="bf16"`` the merged weights are converted to bf16 once here: autocast alone
    re-casts every fp32 weight on every forward (6 % of a ``base`` forward, docs/performance.md).
    Autocast stays on around the forward, so float32 inputs are cast and LayerNorm/softmax still
    run in fp32.

    Returns:
        ``(model, torch.device)``: merged adapters, eval mode, on the device.

    Raises:
        ModelError: the bundle on disk is not the one the graph was built for.
    """
    return model_cache().model(spec)


def batch_size_for(spec: InferenceSpec, model: Any, device: Any) -> int:
    """Windows (patch) or tiles (dense) per forward: ``spec.batch_size``, else a per-device default.

    On CUDA the batch is auto-tuned once per worker process (:func:`geohsi.prediction.autotune_batch_size`,
    cached); on the CPU, where tuning a ``small`` patch model would cost tens of seconds per worker
    and throughput is flat between 64 and 256 windows, the head's ``default_batch`` is used.

    Args:
        spec: the inference spec.
        model: the cached model.
        device: its torch device.

    Returns:
        A positive batch size.
    """
    if spec.batch_size:
        return int(spec.batch_size)
    if getattr(device, "type", str(device)) == "cuda":
        from geohsi.prediction import autotune_batch_size

        size = spec.head.input_size
        return autotune_batch_size(
            model, (model_channels(model), size, size), device=device, precision=spec.precision, max_bytes=2 << 30
        )
    return int(spec.head.default_batch["cpu"])


def model_channels(model: Any) -> int:
    """Input channels C of a SpectralGPT classifier or segmenter."""
    return int(model.config.num_bands)


#: this process's forward timer (its seconds are :data:`STATS` ``forward_s``).
_TIMER = ForwardTimer()


def block_task(
    block: np.ndarray,
    spec: InferenceSpec,
    halo: int,
    offsets: tuple[tuple[int, ...], tuple[int, ...]],
    scene_shape: tuple[int, int] | None = None,
    block_id: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """The model task of one chunk: the head's prediction of a halo'd block.

    A head without a :attr:`~geohsi.heads.Head.reach` (patch) gives the core's class probabilities;
    a dense head gives the sums of the tiles the block owns over its core and margin
    (:meth:`~geohsi.heads.dense.DenseHead.accumulate_block`), which the plan's blend step adds up.

    With ``spec.pixel_map`` the block holds the scene's raw bands: it is uploaded to the worker's
    device once and turned into channels there (:class:`~geohsi.spectral.pixelmap.PixelMap`), and the
    head cuts its windows or tiles from that device tensor.

    Args:
        block: ``[C, h + 2·halo, w + 2·halo]`` float32 channels, NaN at invalid pixels; with
            ``spec.pixel_map``, ``[R, …]`` raw values of its bands.
        spec: the inference spec.
        halo: the halo the block carries (the head's :attr:`~geohsi.heads.Head.halo`).
        offsets: scene row of each row-chunk's first core pixel, and column of each column-chunk's
            (a dense head anchors its tile grid there, so the map does not depend on the chunking).
        scene_shape: ``(H, W)`` of the scene (needed by a head with a reach).
        block_id: ``(0, i, j)``, filled in by :func:`dask.array.map_blocks`.

    Returns:
        ``[K, h, w]`` float32 probabilities, NaN at invalid pixels; with a reach, ``[K + 1, rh, rw]``
        float64 sums (:func:`~geohsi.prediction.dense_block_accumulate`).
    """
    from geohsi.prediction import accumulated_shape, empty_accumulated

    STATS["tasks"] += 1
    i, j = (block_id or (0, 0, 0))[1], (block_id or (0, 0, 0))[2]
    h, w = block.shape[1] - 2 * halo, block.shape[2] - 2 * halo
    origin = (offsets[0][i], offsets[1][j])
    reach = spec.head.reach
    rh, rw = accumulated_shape((h, w), origin, scene_shape, reach + 1) if reach else (h, w)
    channels = _channels(block, spec)
    if not _has_valid(channels, halo, rh, rw):  # no model load for a block without valid pixels
        return (
            empty_accumulated(spec.n_classes, (h, w), (rh, rw)) if reach else np.full((spec.n_classes, h, w), np.nan, np.float32)
        )
    model, device = get_model(spec)
    run = dict(halo=halo, origin=origin, batch_size=batch_size_for(spec, model, device), device=device, precision=spec.precision)
    if reach:
        out = spec.head.accumulate_block(channels, model, scene_shape=scene_shape, timer=_TIMER, **run)
    else:
        out = spec.head.predict_block(channels, model, timer=_TIMER, **run)
    STATS["forward_s"], STATS["inputs"] = _TIMER.seconds, _TIMER.inputs
    STATS["pixels"] += int((~np.isnan(out[0, :h, :w])).sum())
    return out


def _channels(block: np.ndarray, spec: InferenceSpec) -> Any:
    """The block's channels: itself, or (with ``spec.pixel_map``) its raw bands transformed on the worker's device."""
    if spec.pixel_map is None:
        return block
    pm = spec.pixel_map
    return pm.apply(pm.raw_from_numpy(block, worker_device(spec.device)))


def _has_valid(channels: Any, halo: int, rh: int, rw: int) -> bool:
    """Whether the block's region past its halo (core, and margin for a head with a reach) holds a valid pixel."""
    part = channels[:, halo : halo + rh, halo : halo + rw]
    if isinstance(part, np.ndarray):
        return bool((~np.isnan(part).any(0)).any())
    return bool((~part.isnan().any(0)).any())  # a tensor on the worker's device


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (``VmHWM``; ``ru_maxrss`` where ``/proc`` is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_stats(reset: bool = False) -> dict[str, float]:
    """This process's :data:`STATS` (forward seconds, model inputs, pixels, tasks, model loads) and peak RSS in MiB; ``reset`` zeroes the counters.

    Meant for ``client.run(worker_stats)`` from benchmarks. The peak is ``VmHWM`` of
    ``/proc/self/status``, not ``ru_maxrss``: Linux carries ``ru_maxrss`` across fork + exec, so a
    worker spawned by a 1.5 GB benchmark process would report the parent's peak.
    """
    out = dict(STATS, peak_rss_mb=peak_rss_mb())
    if reset:
        STATS.update(forward_s=0.0, inputs=0, pixels=0, tasks=0, model_loads=0)
        _TIMER.seconds, _TIMER.calls, _TIMER.inputs = 0.0, 0, 0
    return out


def cluster_stats(client: Any) -> dict[str, dict[str, float]] | None:
    """Every worker's :func:`worker_stats`, or ``None`` when they cannot be asked (the client side of the counters)."""
    try:
        return {w: dict(s) for w, s in client.run(worker_stats).items()}
    except Exception:  # noqa: BLE001 - instrumentation only: a worker that cannot answer leaves it unknown
        return None


def stats_delta(before: dict | None, after: dict | None, key: str) -> float | None:
    """What the workers added to counter ``key`` between two :func:`cluster_stats` (``None``: unknown)."""
    if before is None or after is None:
        return None
    return sum(max(0.0, float(s[key]) - float(before.get(w, {}).get(key, 0.0))) for w, s in after.items())


__all__ = [
    "STATS",
    "MODEL_CACHE_PLUGIN",
    "InferenceSpec",
    "ModelCache",
    "batch_size_for",
    "block_task",
    "cluster_stats",
    "get_model",
    "model_cache",
    "model_cache_plugin",
    "register_model_cache",
    "peak_rss_mb",
    "stats_delta",
    "torch_threads_for_host",
    "worker_device",
    "worker_stats",
]
