"""Classify a scene with a model bundle on a Dask cluster and write a georeferenced map (``geohsi classify``).

* :func:`classify` — what ``geohsi classify`` runs: opens the scene and bundle, checks the
  outputs, starts or attaches to a cluster, computes, writes;
* :func:`write_map` — computes a plan's missing chunks into the resumable parts store (one task
  per chunk: model + region write + completion marker), then converts once to COG or Zarr
  (:class:`~geohsi.classification.job.MapJob` does both halves; a batch,
  :func:`~geohsi.classification.batch.classify_many`, runs many jobs in one cluster session).

:func:`~geohsi.classification.plan.predict_map` is the lazy twin (a DataArray, nothing written).
See :mod:`~geohsi.classification.plan` for the graph, :mod:`~geohsi.classification.worker` for the
model cache, :mod:`~geohsi.classification.parts` for the parts store and :mod:`geohsi.export.maps`
for the file formats.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from geohsi.classification.job import ClassifyResult, MapJob, MapOutputs
from geohsi.classification.plan import Plan, build_plan, chunk_edge, open_inputs
from geohsi.classification.worker import cluster_stats, stats_delta
from geohsi.console import say, warner
from geohsi.errors import ClusterError, UsageError

LATEST_BUNDLE = Path("runs") / "latest"


def write_map(
    plan: Plan,
    out: str | os.PathLike,
    client: Any,
    *,
    probabilities: str | os.PathLike | None = None,
    confidence: bool = False,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = say,
) -> ClassifyResult:
    """Compute a plan on a cluster into the parts store and write the final outputs.

    Args:
        plan: the graph from :func:`~geohsi.classification.plan.build_plan`.
        out: ``map.tif`` (COG) or ``map.zarr``.
        client: a connected :class:`distributed.Client`.
        probabilities: ``.tif`` (uint8 scaled) or ``.zarr`` (float16) path for per-class probabilities.
        confidence: also write the max-probability band.
        resume: reuse chunks completed by an interrupted run with the same bundle, scene, chunking and outputs.
        overwrite: replace existing outputs.
        progress: show the chunks' progress (a bar on a terminal, periodic lines in a log).
        log: receives one-line messages.

    Returns:
        A :class:`ClassifyResult`.

    Raises:
        OutputError: an output exists without ``overwrite``.
        GeoreferenceError: a ``.tif`` output for a scene without CRS.
        ClusterError: the distributed computation failed.
    """
    from geohsi.scene import scene_crs

    outputs = MapOutputs.resolve(out, probabilities, confidence)
    outputs.check_writable(overwrite)
    outputs.check_georeference(plan.scene.encoding.get("source", "the scene"), scene_crs(plan.scene))
    return _compute_and_write(plan, outputs, client, resume=resume, overwrite=overwrite, progress=progress, log=log)


def _compute_and_write(
    plan: Plan,
    outputs: MapOutputs,
    client: Any,
    *,
    resume: bool,
    overwrite: bool,
    progress: bool,
    log: Callable[[str], None],
    profile: bool = False,
    profile_report: str | os.PathLike | None = None,
) -> ClassifyResult:
    """The body of :func:`write_map`, for outputs already checked: one :class:`MapJob`, waited for (and profiled on request)."""
    job = MapJob(plan, outputs, resume=resume, overwrite=overwrite, log=log)
    before = cluster_stats(client)
    with _task_stream(client, profile or profile_report is not None, profile_report) as stream:
        t0 = time.perf_counter()
        job.submit(client)
        if outputs.remote:  # no disk shared with the workers is assumed: a worker builds and uploads the map
            job.submit_finish(client)
        try:
            with _chunk_progress(job.futures, enabled=progress):
                stuck = wait_unless_paused(client, lambda: job.done, paused_timeout())
            if stuck:
                raise ClusterError(f"{stuck}; completed chunks are kept in {job.store.path}, rerun the same command to resume")
        except BaseException:
            job.cancel(client)
            raise
        job.gather(client)
        after = cluster_stats(client) if job.futures else None
        t_finish = time.perf_counter()
        res = job.finish(client)
        t1 = time.perf_counter()
    if after is not None:
        res.workers, res.forward_seconds = len(after), stats_delta(before, after, "forward_s")
    if stream is not None:
        res.profile = _stage_profile(plan, stream.data, before, after, t1 - t0, 0.0 if outputs.remote else t1 - t_finish)
        for line in res.profile.lines():
            log(line)
    return res


@contextlib.contextmanager
def _task_stream(client: Any, enabled: bool, report: str | os.PathLike | None) -> Iterator[Any]:
    """Record the run's Dask task stream (``None`` when not ``enabled``), and a Dask performance report to ``report``."""
    if not enabled:
        yield None
        return
    from distributed import get_task_stream, performance_report

    from geohsi.files import atomic_output

    with contextlib.ExitStack() as stack:
        if report is not None:  # under a temporary name, renamed when Dask has written it (checked before the run)
            tmp = stack.enter_context(atomic_output(report, overwrite=True))
            stack.enter_context(performance_report(filename=str(tmp)))
        yield stack.enter_context(get_task_stream(client))


def check_report(report: str | os.PathLike | None, overwrite: bool) -> Path | None:
    """Refuse a ``--profile-report`` path (``None``: none asked for) before the run: not ``.html`` (so never
    the scene or a map), or existing.

    Raises:
        UsageError: not ``.html``; OutputError: it exists without ``overwrite``.
    """
    from geohsi.files import check_output

    if report is None:
        return None
    path = Path(report)
    if path.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--profile-report {path} is Dask's HTML performance report; name it REPORT.html")
    return check_output(path, overwrite, directory=False)


def _stage_profile(plan: Plan, stream: list, before: dict | None, after: dict | None, wall: float, local_finish: float):
    """The run's :class:`~geohsi.classification.profile.StageProfile` (map writing in the client counted as one thread's time)."""
    from geohsi.classification.profile import StageProfile, stage_seconds

    seconds = stage_seconds(stream, stats_delta(before, after, "forward_s") or 0.0)
    seconds["map writing"] += local_finish
    threads = sum(int(n) for _, n in plan.spec.host_workers) or max(1, len(after or {}))
    tile = getattr(plan.bundle.head, "tile", None)
    return StageProfile(
        seconds=seconds,
        wall_s=wall,
        threads=threads,
        model_inputs=int(stats_delta(before, after, "inputs") or 0),
        pixels=int(plan.scene.sizes["y"]) * int(plan.scene.sizes["x"]),
        tile=None if tile is None else int(tile),
    )


@contextlib.contextmanager
def _chunk_progress(futures: Sequence[Any], *, enabled: bool) -> Iterator[None]:
    """Show how many chunk tasks have finished while the caller waits for them.

    A rich bar on a terminal, a plain line every ``GEOHSI_PROGRESS_INTERVAL`` seconds in a log
    (:func:`geohsi.console.progress`). A watcher thread counts the finished futures, so the caller's
    wait (and its paused-workers check) runs undisturbed.

    Args:
        futures: the chunk tasks' futures.
        enabled: show the progress (nothing is shown without futures either).
    """
    import threading

    from geohsi.console import progress

    if not (enabled and futures):
        yield
        return
    stop = threading.Event()

    def finished() -> int:
        return sum(f.done() for f in futures)

    with progress("classify", len(futures), unit="chunks") as update:

        def follow() -> None:
            while not stop.wait(0.5):  # a count costs nothing: the futures' states are local
                update(completed=finished())

        watcher = threading.Thread(target=follow, name="geohsi-progress", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()
            update(completed=finished())


def paused_timeout() -> float:
    """Seconds every worker may stay paused (memory limit) before the run is failed (0 = never).

    Dask pauses a worker whose process memory passes ``distributed.worker.memory.pause`` of its
    limit and only terminates it at ``terminate``; a worker whose own footprint (torch, the model)
    sits between the two never runs a task again, so without this guard the run would wait forever.
    Set with the ``geohsi.classify.paused-timeout`` Dask config key or ``GEOHSI_PAUSED_TIMEOUT``.
    """
    import dask

    value = os.environ.get("GEOHSI_PAUSED_TIMEOUT") or dask.config.get("geohsi.classify.paused-timeout", 300)
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError) as e:
        raise UsageError(f"GEOHSI_PAUSED_TIMEOUT={value!r} is not a number of seconds; use e.g. 300 (0 = never)") from e


def wait_unless_paused(
    client: Any, ready: Callable[[], bool], timeout: float, poll: float = 2.0, futures: list | None = None
) -> str | None:
    """Wait until ``ready()``; ``None``, or why the wait was given up.

    The wait is given up when every worker has been paused for ``timeout`` seconds in a row
    (``timeout`` 0 = never): such a run would otherwise wait forever. With ``futures`` the wait
    wakes as soon as one of them finishes instead of on the next 0.1 s tick.
    """
    from distributed import wait

    since: float | None = None
    last = time.monotonic()
    while not ready():
        if futures:
            with contextlib.suppress(TimeoutError):
                wait(futures, timeout=0.1, return_when="FIRST_COMPLETED")
        else:
            time.sleep(0.1)
        if timeout <= 0 or time.monotonic() - last < poll:
            continue
        last = time.monotonic()
        try:
            workers = list(client.scheduler_info(n_workers=-1)["workers"].values())
        except Exception:  # noqa: BLE001 - a transient scheduler hiccup is not a reason to give up
            continue
        if not (workers and all(w.get("status") == "paused" for w in workers)):
            since = None
            continue
        since = since or last
        if last - since >= timeout:
            limits = sorted({int(w.get("memory_limit") or 0) for w in workers})
            shown = ", ".join(f"{m / 2**20:.0f} MiB" for m in limits if m) or "unknown"
            return (
                f"every Dask worker has been paused at its memory limit ({shown}) for {timeout:.0f} s; "
                "give the workers more memory (dask worker --memory-limit) or fewer threads per worker"
            )
    return None


def resolve_bundle(bundle: str | os.PathLike | None, log: Callable[[str], None] = say) -> Path | str:
    """The bundle to use: the given one, or ``runs/latest`` (saying so).

    Raises:
        InputFormatError: no bundle given and ``runs/latest`` does not exist.
    """
    from geohsi.errors import InputFormatError
    from geohsi.storage import as_path

    if bundle is not None:
        return as_path(bundle)
    if not LATEST_BUNDLE.exists():
        raise InputFormatError(
            f"no --bundle given and {LATEST_BUNDLE} does not exist; train one with 'geohsi train SCENE.zarr' or pass --bundle"
        )
    log(f"using bundle {LATEST_BUNDLE} → {LATEST_BUNDLE.resolve()}")
    return LATEST_BUNDLE


def _plan_on(
    info: Any, ds: Any, bundle: Any, *, chunks: int | None, batch_size: int | None, precision: str, log: Callable[[str], None]
) -> Plan:
    """The scene's graph for the cluster of ``info`` (its device, GPU resources and torch threads); names its dashboard."""
    if info.dashboard_link:
        log(f"Dask dashboard: {info.dashboard_link}")
    return build_plan(ds, bundle, chunks=chunks, batch_size=batch_size, device=info.device, precision=precision,
                      gpu_resources=info.gpu_resources, torch_threads=info.torch_threads, host_workers=info.host_workers)  # fmt: skip


def _open_checked(
    scene: str | os.PathLike | Any, bundle: str | os.PathLike | None, outputs: MapOutputs, log: Callable[[str], None]
) -> tuple[Any, Any]:
    """``(scene Dataset, bundle)`` opened, the scene checked against the outputs' georeference and the bundle's transform."""
    from geohsi.scene import scene_crs

    ds, b = open_inputs(scene, resolve_bundle(bundle, log))
    outputs.check_georeference(scene, scene_crs(ds))
    b.transform.check_scene(ds, warn=warner(log))
    return ds, b


def _task_count(ds: Any, bundle: Any, chunks: int | None, batch_size: int | None) -> int:
    """Chunks of the map (the model tasks) for this chunk edge (:func:`~geohsi.classification.plan.chunk_edge`)."""
    h, w = int(ds.sizes["y"]), int(ds.sizes["x"])
    c = chunk_edge(bundle.head, h, w, int(ds.sizes["band"]), chunks, batch_size)
    return (-(-h // c)) * (-(-w // c))


def classify(
    scene: str | os.PathLike | Any,
    out: str | os.PathLike,
    bundle: str | os.PathLike | None = None,
    *,
    backbone: str | os.PathLike | None = None,
    probabilities: str | os.PathLike | None = None,
    confidence: bool = False,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    device: str = "cpu",
    gpus: Sequence[str] | str | None = None,
    precision: str = "fp32",
    chunks: int | None = None,
    batch_size: int | None = None,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    profile: bool = False,
    profile_report: str | os.PathLike | None = None,
    log: Callable[[str], None] = say,
) -> ClassifyResult:
    """Classify every pixel of a scene with a model bundle on a Dask cluster into map files: what ``geohsi classify`` runs.

    Args:
        scene: a scene store, or any source file ``geohsi ingest`` reads (GeoTIFF/COG, ENVI,
            NetCDF, MATLAB), or a ``pystac.Item``: read lazily in place (:func:`geohsi.ingestion.open_source`).
        out: ``map.tif`` (COG; needs a CRS) or ``map.zarr``; or an ``s3://``/``gs://``/``az://`` URL: the
            parts store then sits beside it in the bucket and a worker builds the map and uploads it.
        bundle: bundle directory (default ``runs/latest``).
        backbone: the backbone file's new location, if it moved since training (every worker must see it there).
        probabilities: optional per-class probabilities path (``.tif`` uint8 scaled / ``.zarr`` float16).
        confidence: also write the max-probability band.
        client: an existing :class:`distributed.Client` (overrides ``scheduler``/``workers``).
        scheduler: ``tcp://HOST:PORT`` of a running scheduler (default: embedded ``LocalCluster``).
        workers: worker processes of the embedded cluster.
        device: ``cpu`` or ``cuda`` (CPU fallback with a warning without GPU).
        gpus: GPUs of the embedded cluster (``"0,2"``; default every visible GPU), one worker each.
        precision: ``fp32`` or ``bf16``.
        chunks: spatial chunk edge in pixels.
        batch_size: windows (patch) or tiles (dense) per forward (default: per device).
        resume: reuse completed chunks of an interrupted run (``--no-resume`` recomputes all).
        overwrite: replace existing outputs.
        progress: show the chunks' progress (a bar on a terminal, periodic lines in a log).
        profile: record where the time goes (:mod:`geohsi.classification.profile`): the result's
            ``profile``, also logged as one line per stage.
        profile_report: also write Dask's performance report (HTML: task stream, worker profiles,
            bandwidth) here; implies ``profile``.
        log: receives one-line messages.

    Returns:
        A :class:`ClassifyResult`.

    Raises:
        GeohsiError: subclasses for every user-caused problem (missing inputs, band mismatch,
            unreachable scheduler, existing outputs, pixel-grid scene to GeoTIFF).
    """
    from geohsi.classification.cluster import ClusterInfo, cluster_info, open_cluster

    outputs = MapOutputs.resolve(out, probabilities, confidence)
    outputs.check_not_inputs(scene)
    outputs.check_writable(overwrite)  # before anything is opened: an existing output fails at once
    check_report(profile_report, overwrite)
    ds, b = _open_checked(scene, bundle, outputs, log)
    b = b.with_backbone(backbone)

    def run(info: ClusterInfo) -> ClassifyResult:
        plan = _plan_on(info, ds, b, chunks=chunks, batch_size=batch_size, precision=precision, log=log)
        res = _compute_and_write(plan, outputs, info.client, resume=resume, overwrite=overwrite, progress=progress, log=log,
                                 profile=profile, profile_report=profile_report)  # fmt: skip
        res.dashboard = info.dashboard_link
        return res

    if client is not None:
        return run(cluster_info(client, device, warn=warner(log)))
    # Count chunks first so a small scene does not start more workers than it has tasks.
    n_tasks = _task_count(ds, b, chunks, batch_size)
    with open_cluster(scheduler, workers=workers, device=device, gpus=gpus, max_tasks=n_tasks, warn=warner(log)) as info:
        return run(info)


__all__ = ["ClassifyResult", "MapOutputs", "classify", "paused_timeout", "resolve_bundle", "wait_unless_paused", "write_map"]
