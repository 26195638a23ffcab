"""Classify a scene with a model bundle on a Dask cluster and write a georeferenced map.

* :func:`classify` — the lazy Python twin: a georeferenced ``xarray.DataArray`` (class ids,
  probabilities or confidence) that a notebook can ``.compute()``, plot or write itself;
* :func:`classify_scene` — what ``geohsi classify`` runs: opens the scene and bundle, starts or
  attaches to a cluster, and calls :func:`write_map`;
* :func:`write_map` — computes the missing chunks into a resumable intermediate store (one task
  per chunk: model + region write + completion marker), then converts once to COG or Zarr.

See :mod:`geohsi.classify.graph` for the graph, :mod:`geohsi.classify.worker` for the model
cache and :mod:`geohsi.classify.write` for the file formats.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr

from geohsi.classify.graph import NODATA, Plan, as_dataarray, build_plan, class_dtype, scene_identity
from geohsi.errors import ClusterError, GeohsiError, UsageError
from geohsi.console import say

LATEST_BUNDLE = Path("runs") / "latest"
IDENTITY_VERSION = 1


def _open(scene: Any, bundle: Any):
    from geohsi.bundle import Bundle, load_bundle
    from geohsi.scene import open_scene

    ds = scene if isinstance(scene, xr.Dataset) else open_scene(scene)
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    return ds, b


def classify(
    scene: str | os.PathLike | xr.Dataset,
    bundle: Any,
    client: Any = None,
    *,
    what: str = "labels",
    chunks: int | None = None,
    batch_size: int | None = None,
    device: str = "cpu",
    precision: str = "fp32",
) -> xr.DataArray:
    """Lazy classification of a scene: nothing runs until the result is computed.

    Args:
        scene: a scene store path or an opened scene.
        bundle: a bundle directory or a loaded :class:`~geohsi.bundle.Bundle`.
        client: a :class:`distributed.Client` whose workers will compute the result; used to size
            torch threads per host and, with ``device="cuda"``, to annotate the model tasks with
            ``resources={"GPU": 1}`` when some worker advertises a GPU. Compute with
            ``optimize_graph=False`` to keep that annotation (dask issue 7036).
        what: ``labels`` (class ids ``(y, x)``, 0 = nodata), ``probabilities`` (``(class, y, x)``
            float32, NaN = nodata) or ``confidence`` (``(y, x)`` max probability).
        chunks: spatial chunk edge in pixels (default: 128 in patch mode, 256 in dense mode, fewer
            for very many bands).
        batch_size: windows (patch) or tiles (dense) per forward (default: per device, see
            the bundle head's ``default_batch``).
        device: ``cpu`` or ``cuda``.
        precision: ``fp32`` or ``bf16``.

    Returns:
        A lazy DataArray with the scene's coordinates and ``spatial_ref`` (``rio.crs`` set when the
        scene has a CRS); attrs carry class ids, names and colours.

    Raises:
        BandMismatchError: the scene's bands do not fit the bundle.
        UsageError: bad options.

    Example:
        >>> m = classify("ip.zarr", "runs/latest").compute()  # doctest: +SKIP
    """
    ds, b = _open(scene, bundle)
    gpu, host_workers = False, None
    if client is not None:
        from geohsi.classify.cluster import _gpu_workers, host_threads

        host_workers = host_threads(client)
        gpu = device == "cuda" and _gpu_workers(client) > 0
    plan = build_plan(ds, b, chunks=chunks, batch_size=batch_size, device=device, precision=precision,
                      gpu_resources=gpu, host_workers=host_workers)
    return as_dataarray(plan, what)


@dataclass
class ClassifyResult:
    """What a classification run did.

    Attributes:
        outputs: every file/store written.
        n_chunks: chunks of the map.
        computed: chunks computed in this run.
        reused: chunks taken from an interrupted run's intermediate store.
        valid_pixels: classified pixels computed in this run.
        seconds: wall time of the chunk computation (cluster start-up excluded).
        dashboard: the Dask dashboard link, if any.
    """

    outputs: list[Path] = field(default_factory=list)
    n_chunks: int = 0
    computed: int = 0
    reused: int = 0
    valid_pixels: int = 0
    seconds: float = 0.0
    dashboard: str | None = None


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
    """Compute a plan on a cluster into the intermediate store and write the final outputs.

    Args:
        plan: the graph from :func:`~geohsi.classify.graph.build_plan`.
        out: ``map.tif`` (COG) or ``map.zarr``.
        client: a connected :class:`distributed.Client`.
        probabilities: ``.tif`` (uint8 scaled) or ``.zarr`` (float16) path for per-class probabilities.
        confidence: also write the max-probability band.
        resume: reuse chunks completed by an interrupted run with the same bundle, scene, chunking and outputs.
        overwrite: replace existing outputs.
        progress: show Dask's progress bar.
        log: receives one-line messages.

    Returns:
        A :class:`ClassifyResult`.

    Raises:
        OutputError: an output exists without ``overwrite``.
        GeoreferenceError: a ``.tif`` output for a scene without CRS.
        ClusterError: the distributed computation failed.
    """
    import dask

    from geohsi.files import atomic_output, check_output
    from geohsi.classify import write as w
    from geohsi.scene import scene_crs

    out = Path(out)
    kind = w.check_suffix(out)
    prob_path = Path(probabilities) if probabilities is not None else None
    prob_kind = w.check_suffix(prob_path, "--probabilities") if prob_path is not None else None
    conf_path = out.with_name(out.stem + ".confidence.tif") if (confidence and kind == "tif") else None
    ds, b = plan.scene, plan.bundle
    crs = scene_crs(ds)
    for p, k in ((out, kind), (prob_path, prob_kind)):
        if k == "tif":
            w.require_crs(ds.encoding.get("source", "the scene"), crs, p)
    finals = [p for p in (out, prob_path, conf_path) if p is not None]
    if len({p.absolute() for p in finals}) != len(finals):
        raise UsageError(f"--out and --probabilities must be different paths, got {out} twice")
    for p in finals:
        check_output(p, overwrite)

    ids = b.class_ids
    h, wd = int(ds.sizes["y"]), int(ds.sizes["x"])
    identity = {
        "version": IDENTITY_VERSION,
        "bundle_sha256": plan.spec.bundle_hash,
        "scene": scene_identity(ds),
        "shape": [h, wd],
        "chunk": plan.chunk,
        "probabilities": prob_path is not None,
        "confidence": bool(confidence),
    }
    inter, note = w.open_intermediate(
        out, identity=identity, shape=(h, wd), chunk=plan.chunk, n_classes=len(ids), dtype=class_dtype(ids),
        probabilities=prob_path is not None, confidence=bool(confidence), resume=resume,
    )
    if note:
        log(note)
    ny, nx = plan.block_grid
    done = inter.done()
    todo = [(i, j) for i in range(ny) for j in range(nx) if (i, j) not in done]
    result = ClassifyResult(n_chunks=ny * nx, reused=ny * nx - len(todo))
    if result.reused:
        log(f"resuming: {result.reused} of {result.n_chunks} chunks were completed by an earlier run; computing {len(todo)}")
    t0 = time.perf_counter()
    if todo:
        # optimize_graph=False keeps the model layer's GPU annotation (dask issue 7036); the scheduler
        # only runs what the requested chunks need, so skipped chunks cost nothing.
        blocks = plan.probabilities.to_delayed(optimize_graph=False)
        tasks = [
            dask.delayed(w.store_chunk, pure=False)(blocks[0, i, j], i, j, inter=inter, class_ids=ids,
                                                    dask_key_name=f"geohsi-store-{i}-{j}-{inter.path.name}")
            for i, j in todo
        ]
        pause_limit = paused_timeout()
        futures = client.compute(tasks, optimize_graph=False)
        try:
            if progress:
                import threading

                from distributed import progress as dask_progress

                # the bar blocks until the futures finish; the paused-workers check must keep running
                threading.Thread(target=dask_progress, args=(futures,), daemon=True).start()
            stuck = _wait_unless_paused(client, futures, pause_limit)
            if stuck:
                raise ClusterError(f"{stuck}; completed chunks are kept in {inter.path}, rerun the same command to resume")
            counts = client.gather(futures)
        except BaseException as e:
            client.cancel(futures)
            if isinstance(e, (KeyboardInterrupt, SystemExit)) or type(e).__module__.startswith("geohsi"):
                raise
            raise ClusterError(
                f"the distributed classification failed ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
                f"completed chunks are kept in {inter.path}, rerun the same command to resume"
            ) from e
        result.valid_pixels = int(sum(counts))
        result.computed = len(todo)
    result.seconds = time.perf_counter() - t0

    transform = ds.rio.transform()
    attrs = {"bundle": plan.spec.bundle_path, "bundle_sha256": plan.spec.bundle_hash,
             "scene": str(ds.encoding.get("source", ""))}
    with atomic_output(out, overwrite) as tmp:
        if kind == "tif":
            w.write_class_cog(inter, tmp, crs=crs, transform=transform, classes=b.classes)
        else:
            w.write_zarr_map(inter, tmp, scene=ds, classes=b.classes,
                             variables=("classes", "confidence") if confidence else ("classes",), attrs=attrs)
    result.outputs.append(out)
    if conf_path is not None:
        with atomic_output(conf_path, overwrite) as tmp:
            w.write_scaled_cog(inter, "confidence", tmp, crs=crs, transform=transform,
                               descriptions=["probability of the predicted class"])
        result.outputs.append(conf_path)
    if prob_path is not None:
        with atomic_output(prob_path, overwrite) as tmp:
            if prob_kind == "tif":
                w.write_scaled_cog(inter, "probabilities", tmp, crs=crs, transform=transform,
                                   descriptions=[f"P({c.name})" for c in b.classes])
            else:
                w.write_zarr_map(inter, tmp, scene=ds, classes=b.classes, variables=("probabilities",), attrs=attrs)
        result.outputs.append(prob_path)
    w.remove_intermediate(inter)
    from geohsi.plot import write_map_quicklook  # map.png beside the map: its colour table and class names

    try:
        result.outputs += [p for p in [write_map_quicklook(out, overwrite=overwrite, log=log)] if p is not None]
    except GeohsiError as e:
        # The map itself is complete and in place; a quicklook that cannot be drawn must not fail the run.
        log(f"[yellow]warning: map written, but no quicklook: {e}[/]")
    return result


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


def _wait_unless_paused(client: Any, futures: list, timeout: float, poll: float = 2.0) -> str | None:
    """Wait until every future is finished (or one failed); ``None``, or why the wait was given up.

    The wait is given up when every worker has been paused for ``timeout`` seconds in a row
    (``timeout`` 0 = never): such a run would otherwise wait forever.
    """
    since: float | None = None
    last = time.monotonic()
    while not (all(f.done() for f in futures) or any(f.status == "error" for f in futures)):
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
            return (f"every Dask worker has been paused at its memory limit ({shown}) for {timeout:.0f} s; "
                    "give the workers more memory (dask worker --memory-limit) or fewer threads per worker")
    return None


def resolve_bundle(bundle: str | os.PathLike | None, log: Callable[[str], None] = say) -> Path:
    """The bundle to use: the given one, or ``runs/latest`` (saying so).

    Raises:
        InputFormatError: no bundle given and ``runs/latest`` does not exist.
    """
    from geohsi.errors import InputFormatError

    if bundle is not None:
        return Path(bundle)
    if not LATEST_BUNDLE.exists():
        raise InputFormatError(
            f"no --bundle given and {LATEST_BUNDLE} does not exist; train one with 'geohsi train SCENE.zarr' or pass --bundle"
        )
    log(f"using bundle {LATEST_BUNDLE} → {LATEST_BUNDLE.resolve()}")
    return LATEST_BUNDLE


def classify_scene(
    scene: str | os.PathLike,
    out: str | os.PathLike,
    bundle: str | os.PathLike | None = None,
    *,
    probabilities: str | os.PathLike | None = None,
    confidence: bool = False,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    chunks: int | None = None,
    batch_size: int | None = None,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = say,
) -> ClassifyResult:
    """Classify a scene store into a map file: what ``geohsi classify`` runs.

    Args:
        scene: scene store.
        out: ``map.tif`` (COG; needs a CRS) or ``map.zarr``.
        bundle: bundle directory (default ``runs/latest``).
        probabilities: optional per-class probabilities path (``.tif`` uint8 scaled / ``.zarr`` float16).
        confidence: also write the max-probability band.
        client: an existing :class:`distributed.Client` (overrides ``scheduler``/``workers``).
        scheduler: ``tcp://HOST:PORT`` of a running scheduler (default: embedded ``LocalCluster``).
        workers: worker processes of the embedded cluster.
        device: ``cpu`` or ``cuda`` (CPU fallback with a warning without GPU).
        precision: ``fp32`` or ``bf16``.
        chunks: spatial chunk edge in pixels.
        batch_size: windows (patch) or tiles (dense) per forward (default: per device).
        resume: reuse completed chunks of an interrupted run (``--no-resume`` recomputes all).
        overwrite: replace existing outputs.
        progress: show Dask's progress bar.
        log: receives one-line messages.

    Returns:
        A :class:`ClassifyResult`.

    Raises:
        GeohsiError: subclasses for every user-caused problem (missing inputs, band mismatch,
            unreachable scheduler, existing outputs, pixel-grid scene to GeoTIFF).
    """
    from geohsi.files import check_output
    from geohsi.classify import write as w
    from geohsi.classify.cluster import ClusterInfo, host_threads, open_cluster
    from geohsi.scene import scene_crs

    out = Path(out)
    w.check_suffix(out)
    check_output(out, overwrite)
    if probabilities is not None:
        w.check_suffix(Path(probabilities), "--probabilities")
        check_output(probabilities, overwrite)
    ds, b = _open(scene, resolve_bundle(bundle, log))
    for p in (out, Path(probabilities) if probabilities else None):
        if p is not None and w.check_suffix(p) == "tif":
            w.require_crs(scene, scene_crs(ds), p)
    b.transform.check_scene(ds)

    def run(info: ClusterInfo) -> ClassifyResult:
        if info.dashboard_link:
            log(f"Dask dashboard: {info.dashboard_link}")
        plan = build_plan(ds, b, chunks=chunks, batch_size=batch_size, device=info.device, precision=precision,
                          gpu_resources=info.gpu_resources, torch_threads=info.torch_threads,
                          host_workers=info.host_workers)
        res = write_map(plan, out, info.client, probabilities=probabilities, confidence=confidence, resume=resume,
                        overwrite=overwrite, progress=progress, log=log)
        res.dashboard = info.dashboard_link
        return res

    if client is not None:
        gpu = False
        if device == "cuda":
            from geohsi.classify.cluster import _gpu_workers

            gpu = _gpu_workers(client) > 0
        return run(ClusterInfo(client, False, gpu, device, None, host_threads(client)))
    # Count chunks first so a small scene does not start more workers than it has tasks.
    c = chunks or b.head.default_chunk(int(ds.sizes["y"]), int(ds.sizes["x"]), int(ds.sizes["band"]))
    n_tasks = (-(-int(ds.sizes["y"]) // c)) * (-(-int(ds.sizes["x"]) // c))
    with open_cluster(scheduler, workers=workers, device=device, max_tasks=n_tasks,
                      warn=lambda m: log(f"[yellow]warning:[/] {m}")) as info:
        return run(info)


__all__ = ["ClassifyResult", "NODATA", "classify", "classify_scene", "resolve_bundle", "write_map"]


from geohsi._callable import make_callable  # noqa: E402

make_callable(__name__, "geohsi.classify:classify")  # `geohsi.classify(...)` calls it
