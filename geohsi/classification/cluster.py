"""Getting a Dask client: an embedded ``LocalCluster`` by default, or an existing scheduler.

The embedded cluster uses worker *processes* with one thread each (torch releases the GIL only
inside kernels, and a process per core keeps model caches independent); each process gets
``cores // workers`` torch threads so the machine is not oversubscribed. With ``device="cuda"``
there is one worker per GPU, each advertising ``resources={"GPU": 1}``.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from geohsi.errors import ClusterError, UsageError

#: seconds to wait for a scheduler given with ``--scheduler`` before giving up.
CONNECT_TIMEOUT_S = 5
#: worker memory below which the embedded cluster starts fewer workers (bytes per worker).
MIN_WORKER_MEMORY = 1 << 30


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


class _DropComputeFailed:
    """A logging filter dropping the worker's "Compute Failed" records (the client reports the error itself)."""

    def filter(self, record: object) -> bool:
        return not str(getattr(record, "msg", "")).startswith("Compute Failed")


def _quiet_task_errors_plugin() -> object:
    """A :class:`QuietTaskErrors` instance (``distributed`` is imported only when a cluster starts)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class QuietTaskErrors(WorkerPlugin):
        """Worker plugin of the embedded cluster: a task's error is reported once, as geohsi's one line.

        Without it every failed task (an unreadable block of a source file) also prints the worker's
        multi-line "Compute Failed" record with a traceback on the terminal.
        """

        name = "geohsi-quiet-task-errors"

        def setup(self, worker: object) -> None:
            import logging

            logging.getLogger("distributed.worker").addFilter(_DropComputeFailed())

    return QuietTaskErrors()


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover
        return 0


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


@contextlib.contextmanager
def open_cluster(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    device: str = "cpu",
    max_tasks: int | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[ClusterInfo]:
    """Connect to ``scheduler`` or start an embedded ``LocalCluster``; close what was started on exit.

    Args:
        scheduler: ``tcp://HOST:PORT`` of a running scheduler, or ``None`` for an embedded cluster.
        workers: embedded worker processes (default :func:`default_workers`); ignored with ``scheduler``.
        device: ``cpu`` or ``cuda``.
        max_tasks: number of chunks to classify (no more embedded workers than that).
        warn: receives one-line warnings (GPU fallback).

    Yields:
        A :class:`ClusterInfo`.

    Raises:
        ClusterError: the scheduler cannot be reached within :data:`CONNECT_TIMEOUT_S`, or has no workers.
        UsageError: bad ``device`` or ``workers``.
    """
    import dask
    from distributed import Client, LocalCluster

    warn = warn or (lambda m: None)
    if device not in ("cpu", "cuda"):
        raise UsageError(f"unknown --device {device!r}; use cpu or cuda")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    if scheduler is not None:
        if workers is not None:
            warn(f"--workers {workers} is ignored with --scheduler: the cluster at {scheduler} has its own workers")
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
            gpu = False
            if device == "cuda":
                gpu = gpu_worker_count(client) > 0
                if not gpu:
                    warn(
                        f"no worker of {scheduler} advertises a GPU resource (dask worker --resources GPU=1); running on the CPU"
                    )
                    device = "cpu"
            yield ClusterInfo(client, False, gpu, device, None, host_threads(client))
        finally:
            client.close()
        return

    gpus = _gpu_count() if device == "cuda" else 0
    if device == "cuda" and gpus == 0:
        warn("CUDA requested but no GPU is available; running on the CPU")
        device = "cpu"
    cores = _cores()
    if gpus:
        n = gpus if workers is None else workers
        kwargs = {"resources": {"GPU": 1}}
    else:
        n = workers if workers is not None else default_workers(max_tasks)
        kwargs = {}
    # Silence the cluster's own INFO logging: the CLI prints what matters (dashboard, progress).
    with dask.config.set({"distributed.worker.daemon": True, "logging.distributed": "error"}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0", **kwargs)
    client = Client(cluster)
    try:
        client.register_plugin(_quiet_task_errors_plugin())
        yield ClusterInfo(client, True, bool(gpus), device, max(1, cores // n), {})
    finally:
        client.close()
        cluster.close()


__all__ = ["CONNECT_TIMEOUT_S", "ClusterInfo", "default_workers", "gpu_worker_count", "host_threads", "open_cluster"]
