"""Getting a Dask client: an embedded ``LocalCluster`` by default, or an existing scheduler.

The embedded cluster uses worker *processes* with one thread each (torch releases the GIL only
inside kernels, and a process per core keeps model caches independent); each process gets
``cores // workers`` torch threads so the machine is not oversubscribed. With ``device="cuda"``
there is one worker per GPU, each seeing only its own GPU as ``cuda:0`` (its own rotation of
``CUDA_VISIBLE_DEVICES``, as dask-cuda does) and advertising ``resources={"GPU": 1}``.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from geohsi.errors import ClusterError, UsageError

#: seconds to wait for a scheduler given with ``--scheduler`` before giving up.
CONNECT_TIMEOUT_S = 5
#: worker memory below which the embedded cluster starts fewer workers (bytes per worker).
MIN_WORKER_MEMORY = 1 << 30
#: Dask threads of a GPU worker: one reads and decompresses the next block while another runs the
#: model on the current one; more would only queue blocks for the same GPU and multiply host memory.
GPU_WORKER_THREADS = 2


@dataclass
class ClusterInfo:
    """What the classification needs to know about the cluster it runs on.

    Attributes:
        client: the connected :class:`distributed.Client`.
        embedded: whether geohsi started the cluster (and closes it).
        gpu_resources: whether tasks should carry ``resources={"GPU": 1}``.
        device: the device workers run the model on (``cuda`` only when GPU workers exist).
        torch_threads: torch threads per worker process (``None``: derived per host on the worker).
        host_workers: ``{host: Dask worker threads}``.
    """

    client: object
    embedded: bool
    gpu_resources: bool
    device: str
    torch_threads: int | None
    host_workers: dict[str, int]

    @property
    def dashboard_link(self) -> str | None:
        return getattr(self.client, "dashboard_link", None)


#: the worker's log record of a heartbeat that found the scheduler gone (dask/distributed#7891).
HEARTBEAT_FAILED = "Failed to communicate with scheduler during heartbeat"
#: the worker's log record of a task cancelled by ``Worker.close()`` (an interrupted run closing its cluster).
CLOSE_CANCELLED = "Async instruction for "


class _QuietWorkerLog:
    """A logging filter of an embedded worker: drops records that are noise to a geohsi user.

    * "Compute Failed" records: the client reports the task's error itself, as one line.
    * A failed heartbeat once the worker is shutting down: closing the cluster can close the
      connection under a heartbeat in flight, and the worker logs that with a traceback although
      nothing went wrong. While the worker runs, the record is kept (a lost scheduler matters).
    * "Async instruction … ended with CancelledError" once the worker is shutting down: Ctrl-C or
      SIGTERM closes the cluster under running tasks, which is what geohsi's own line already says.

    Args:
        worker: the :class:`distributed.Worker` the filter's logger belongs to (anything with a
            ``status``).
    """

    def __init__(self, worker: object) -> None:
        self.worker = worker

    def filter(self, record: object) -> bool:
        msg = str(getattr(record, "msg", ""))
        if msg.startswith("Compute Failed"):
            return False
        closing_noise = msg.startswith(HEARTBEAT_FAILED) or (msg.startswith(CLOSE_CANCELLED) and msg.endswith("CancelledError"))
        if closing_noise:
            from distributed.core import Status

            return getattr(self.worker, "status", None) in (Status.running, Status.paused)
        return True


def _quiet_task_errors_plugin() -> object:
    """A :class:`QuietTaskErrors` instance (``distributed`` is imported only when a cluster starts)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class QuietTaskErrors(WorkerPlugin):
        """Worker plugin of the embedded cluster: a task's error is reported once, as geohsi's one line.

        Without it every failed task (an unreadable block of a source file) also prints the worker's
        multi-line "Compute Failed" record with a traceback on the terminal, and closing the cluster
        can print a heartbeat traceback (see :class:`_QuietWorkerLog`).
        """

        name = "geohsi-quiet-task-errors"

        def setup(self, worker: object) -> None:
            import logging

            for name in ("distributed.worker", "distributed.worker.state_machine"):
                logging.getLogger(name).addFilter(_QuietWorkerLog(worker))

    return QuietTaskErrors()


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _physical_gpu_count() -> int:
    """GPUs on this machine, counted without initialising CUDA in this process.

    NVML (``pynvml``, installed with dask-cuda) first, then ``nvidia-smi -L``, then ``torch.cuda`` in a
    short-lived subprocess: a CUDA context created in the client before the workers fork would pin
    memory on GPU 0 and can break the workers' own CUDA initialisation.
    """
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no pynvml, no driver: try the next way
        pass
    for cmd in (["nvidia-smi", "-L"], [sys.executable, "-c", "import torch; print(torch.cuda.device_count())"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if cmd[0] == "nvidia-smi":
            return sum(1 for line in out.splitlines() if line.startswith("GPU "))
        with contextlib.suppress(ValueError):
            return int(out.strip().splitlines()[-1])
    return 0


def visible_gpus() -> list[str]:
    """The GPUs the embedded cluster may use, as ``CUDA_VISIBLE_DEVICES`` entries.

    The entries of this process's ``CUDA_VISIBLE_DEVICES`` when it is set (ids or ``GPU-…`` UUIDs, up
    to the first invalid one as CUDA reads it), else ``0..N-1`` for the N GPUs the driver reports.
    :func:`select_gpus` and :func:`open_cluster` look it up when they run, so a test can stand in
    GPUs for it (the workers then fall back to the CPU).

    Returns:
        The device entries, empty when there is no GPU.
    """
    n = _physical_gpu_count()
    if n == 0:
        return []
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return [str(i) for i in range(n)]
    out: list[str] = []
    for entry in (e.strip() for e in env.split(",")):
        if not entry or entry.startswith("-"):
            break
        out.append(entry)
    return out


def cuda_visible_devices(i: int, devices: Sequence[str]) -> str:
    """``CUDA_VISIBLE_DEVICES`` of GPU worker ``i``: the device list rotated to start at its own GPU.

    Inside the worker ``cuda:0`` is then its own GPU, and the others stay visible in a fixed order
    (as dask-cuda does, for peer-to-peer copies).

    Args:
        i: worker index, ``0 <= i < len(devices)``.
        devices: the devices of the cluster (:func:`visible_gpus` or ``--gpus``).

    Returns:
        A comma-separated device list, e.g. ``"2,3,0,1"`` for ``i=2`` of four.
    """
    d = list(devices)
    return ",".join(d[i:] + d[:i])


def select_gpus(gpus: Sequence[str] | str | None) -> list[str]:
    """The GPUs the embedded cluster runs on: all visible ones, or the ``--gpus`` subset.

    Args:
        gpus: ``None`` (every visible GPU), or device entries (``"0,2"`` or ``["0", "2"]``) out of
            :func:`visible_gpus`.

    Returns:
        The chosen entries, in the order given (empty: no GPU).

    Raises:
        UsageError: an entry is not a visible GPU, or is given twice.
    """
    visible = visible_gpus()
    if gpus is None:
        return visible
    chosen = [g.strip() for g in (gpus.split(",") if isinstance(gpus, str) else gpus) if str(g).strip()]
    if not chosen:
        raise UsageError("--gpus is empty; give device ids like 0,2 or leave it out to use every GPU")
    if len(set(chosen)) != len(chosen):
        raise UsageError(f"--gpus {','.join(chosen)} names a GPU twice; give each device once")
    missing = [g for g in chosen if g not in visible]
    if missing:
        shown = ",".join(visible) if visible else "none"
        raise UsageError(
            f"--gpus {','.join(missing)}: not a visible GPU (this machine shows {shown}); pick from those, "
            "as nvidia-smi -L numbers them (or CUDA_VISIBLE_DEVICES lists them)"
        )
    return chosen


def default_workers(max_tasks: int | None = None) -> int:
    """Workers of the embedded cluster: one per core, fewer if memory is short or tasks are few."""
    n = _cores()
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        n = min(n, max(1, total // (2 * MIN_WORKER_MEMORY)))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        pass
    if max_tasks is not None:
        n = min(n, max(1, max_tasks))
    return max(1, n)


def host_threads(client) -> dict[str, int]:
    """``{host: total worker threads}`` of the cluster a client is connected to."""
    out: dict[str, int] = {}
    for addr, w in client.scheduler_info(n_workers=-1).get("workers", {}).items():
        host = addr.split("://")[-1].rsplit(":", 1)[0]
        out[host] = out.get(host, 0) + int(w.get("nthreads", 1))
    return out


def gpu_worker_count(client) -> int:
    """Workers of the cluster that advertise a ``GPU`` resource."""
    info = client.scheduler_info(n_workers=-1).get("workers", {})
    return sum(1 for w in info.values() if float(w.get("resources", {}).get("GPU", 0)) > 0)


def _pinned_workers(client) -> int:
    """Workers whose process has ``CUDA_VISIBLE_DEVICES`` set (as ``dask cuda worker`` starts them)."""
    try:
        env = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
    except Exception:  # noqa: BLE001 - a worker that cannot run a function is not a GPU worker we can use
        return 0
    return sum(1 for v in env.values() if v and not v.startswith("-"))


def cluster_info(client, device: str = "cpu", *, warn: Callable[[str], None] | None = None, where: str = "") -> ClusterInfo:
    """What the classification needs to know about a cluster geohsi did not start.

    With ``device="cuda"``, workers advertising a ``GPU`` resource (``dask worker --resources GPU=1``)
    get the model tasks through that resource; a cluster of ``dask cuda worker`` processes, which
    pin a GPU per worker by ``CUDA_VISIBLE_DEVICES`` but advertise no resource, runs them as they are.
    Without either, the model runs on the CPU with a warning.

    Args:
        client: a connected :class:`distributed.Client`.
        device: ``cpu`` or ``cuda``.
        warn: receives the CPU-fallback warning.
        where: how to name the cluster in the warning (e.g. its scheduler address).

    Returns:
        A :class:`ClusterInfo` with ``embedded=False``.
    """
    warn = warn or (lambda m: None)
    gpu = False
    if device == "cuda":
        gpu = gpu_worker_count(client) > 0
        workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        if not gpu and not (workers and _pinned_workers(client) == workers):
            warn(
                f"no worker of {where or 'the cluster'} has a GPU (start them with 'dask cuda worker' or "
                "'dask worker --resources GPU=1'); running on the CPU"
            )
            device = "cpu"
    return ClusterInfo(client, False, gpu, device, None, host_threads(client))


def _gpu_cluster(devices: Sequence[str], threads: int) -> object:
    """One worker process per GPU, each seeing its own GPU as ``cuda:0``.

    ``dask_cuda.LocalCUDACluster`` when the ``gpu`` extra is installed (it also sets CPU affinity
    per GPU); otherwise a :class:`distributed.SpecCluster` of nannies with the same per-worker
    ``CUDA_VISIBLE_DEVICES`` rotation. Every worker advertises ``resources={"GPU": 1}``.
    """
    import logging

    from distributed import Nanny, Scheduler, SpecCluster
    from distributed.system import MEMORY_LIMIT

    if _physical_gpu_count():  # dask-cuda needs the GPUs to be there
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            pass
        else:  # pragma: no cover - needs GPUs and dask-cuda
            return LocalCUDACluster(
                CUDA_VISIBLE_DEVICES=",".join(devices),
                threads_per_worker=threads,
                resources={"GPU": 1},
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
    memory = MEMORY_LIMIT // len(devices)
    workers = {
        f"gpu-{dev}": {
            "cls": Nanny,
            "options": {
                "nthreads": threads,
                "memory_limit": memory,
                "resources": {"GPU": 1},
                "env": {"CUDA_VISIBLE_DEVICES": cuda_visible_devices(i, devices)},
                "silence_logs": logging.ERROR,
            },
        }
        for i, dev in enumerate(devices)
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0"}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR)


@contextlib.contextmanager
def _connected(
    scheduler: str, device: str, *, workers: int | None, gpus: Sequence[str] | str | None, warn: Callable[[str], None]
) -> Iterator[ClusterInfo]:
    """The :class:`ClusterInfo` of a running scheduler with at least one worker; the client is closed on exit.

    Raises:
        UsageError: ``scheduler`` is not an address.
        ClusterError: it cannot be reached within :data:`CONNECT_TIMEOUT_S`, or has no worker after 30 s.
    """
    import dask
    from distributed import Client

    if workers is not None:
        warn(f"--workers {workers} is ignored with --scheduler: the cluster at {scheduler} has its own workers")
    if gpus is not None:
        warn(f"--gpus is ignored with --scheduler: the workers of {scheduler} have their own GPUs")
    try:
        with dask.config.set({"distributed.comm.timeouts.connect": f"{CONNECT_TIMEOUT_S}s"}):
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except ValueError as e:  # distributed's address parser: no scheme/port, unknown protocol
        raise UsageError(
            f"--scheduler {scheduler!r} is not a Dask scheduler address ({' '.join(str(e).split())[:100]}); "
            "use tcp://HOST:PORT as printed by 'dask scheduler'"
        ) from e
    except (OSError, TimeoutError) as e:
        raise ClusterError(
            f"cannot reach a Dask scheduler at {scheduler} within {CONNECT_TIMEOUT_S} s ({type(e).__name__}); "
            "start one with 'dask scheduler' (and 'dask worker ADDRESS') or drop --scheduler to use a local cluster"
        ) from e
    try:
        try:
            client.wait_for_workers(1, timeout=30)
        except TimeoutError as e:
            raise ClusterError(
                f"the Dask scheduler at {scheduler} has no workers after 30 s; start some with 'dask worker {scheduler}'"
            ) from e
        yield cluster_info(client, device, warn=warn, where=scheduler)
    finally:
        client.close()


@contextlib.contextmanager
def open_cluster(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    device: str = "cpu",
    gpus: Sequence[str] | str | None = None,
    max_tasks: int | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[ClusterInfo]:
    """Connect to ``scheduler`` or start an embedded cluster; close what was started on exit.

    The embedded cluster on the CPU is a ``LocalCluster`` of single-thread worker processes. With
    ``device="cuda"`` it is one worker process per GPU (:func:`visible_gpus`, or the ``gpus``
    subset), pinned by its own ``CUDA_VISIBLE_DEVICES`` rotation, with :data:`GPU_WORKER_THREADS`
    threads so that reading and decompressing the next block overlaps the model on the current one.
    GPUs are counted without initialising CUDA in this process.

    Args:
        scheduler: ``tcp://HOST:PORT`` of a running scheduler, or ``None`` for an embedded cluster.
        workers: embedded worker processes (default :func:`default_workers`); ignored with ``scheduler``;
            with GPUs it must equal their number (pick GPUs with ``gpus``).
        device: ``cpu`` or ``cuda``.
        gpus: GPUs of the embedded cluster (``"0,2"``); default every visible GPU; ignored with ``scheduler``.
        max_tasks: number of chunks to classify (no more embedded CPU workers than that).
        warn: receives one-line warnings (GPU fallback, ignored options).

    Yields:
        A :class:`ClusterInfo`.

    Raises:
        ClusterError: the scheduler cannot be reached within :data:`CONNECT_TIMEOUT_S`, or has no workers.
        UsageError: bad ``device``, ``workers`` or ``gpus``.
    """
    import dask
    from distributed import Client, LocalCluster

    warn = warn or (lambda m: None)
    if device not in ("cpu", "cuda"):
        raise UsageError(f"unknown --device {device!r}; use cpu or cuda")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    if gpus is not None and device != "cuda":
        raise UsageError("--gpus picks the GPUs of --device cuda; add --device cuda or drop --gpus")
    if scheduler is not None:
        with _connected(scheduler, device, workers=workers, gpus=gpus, warn=warn) as info:
            yield info
        return

    devices = select_gpus(gpus) if device == "cuda" else []
    if device == "cuda" and not devices:
        warn("CUDA requested but no GPU is available; running on the CPU")
        device = "cpu"
    cores = _cores()
    # Silence the cluster's own INFO logging: the CLI prints what matters (dashboard, progress).
    with dask.config.set({"distributed.worker.daemon": True, "logging.distributed": "error"}):
        if devices:
            if workers is not None and workers != len(devices):
                raise UsageError(
                    f"--workers {workers} with --device cuda: the embedded cluster runs one worker per GPU "
                    f"({len(devices)} here); choose the GPUs with --gpus instead"
                )
            n = len(devices)
            cluster = _gpu_cluster(devices, GPU_WORKER_THREADS)
        else:
            n = workers if workers is not None else default_workers(max_tasks)
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    try:
        from geohsi.classification.worker import register_model_cache

        client.register_plugin(_quiet_task_errors_plugin())
        register_model_cache(client)
        if devices:
            client.wait_for_workers(n, timeout=120)
        yield ClusterInfo(client, True, bool(devices), device, max(1, cores // n), {})
    finally:
        client.close()
        cluster.close()


__all__ = [
    "CONNECT_TIMEOUT_S",
    "GPU_WORKER_THREADS",
    "ClusterInfo",
    "cluster_info",
    "cuda_visible_devices",
    "default_workers",
    "gpu_worker_count",
    "host_threads",
    "open_cluster",
    "select_gpus",
    "visible_gpus",
]
