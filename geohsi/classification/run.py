"""Classify a scene with a model bundle on a Dask cluster and write a georeferenced map (``geohsi classify``).

* :func:`classify` — what ``geohsi classify`` runs: opens the scene and bundle, checks the
  outputs, starts or attaches to a cluster, computes, writes;
* :func:`write_map` — computes a plan's missing chunks into the resumable parts store (one task
  per chunk: model + region write + completion marker), then converts once to COG or Zarr.

:func:`~geohsi.classification.plan.predict_map` is the lazy twin (a DataArray, nothing written).
See :mod:`~geohsi.classification.plan` for the graph, :mod:`~geohsi.classification.worker` for the
model cache, :mod:`~geohsi.classification.parts` for the parts store and :mod:`geohsi.export.maps`
for the file formats.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geohsi.classification.plan import Plan, build_plan, open_inputs, scene_identity
from geohsi.console import say
from geohsi.errors import ClusterError, GeohsiError, UsageError
from geohsi.export import maps

LATEST_BUNDLE = Path("runs") / "latest"
IDENTITY_VERSION = 1


@dataclass
class ClassifyResult:
    """What a classification run did.

    Attributes:
        outputs: every file/store written.
        n_chunks: chunks of the map.
        computed: chunks computed in this run.
        reused: chunks taken from an interrupted run's parts store.
        valid_pixels: classified pixels computed in this run.
        seconds: wall time of the chunk computation (cluster start-up excluded).
        forward_seconds: seconds the workers spent in the model forward in this run (summed over
            workers; ``None`` when the workers could not be asked).
        workers: workers of the cluster.
        dashboard: the Dask dashboard link, if any.
    """

    outputs: list[Path] = field(default_factory=list)
    n_chunks: int = 0
    computed: int = 0
    reused: int = 0
    valid_pixels: int = 0
    seconds: float = 0.0
    forward_seconds: float | None = None
    workers: int = 0
    dashboard: str | None = None

    @property
    def forward_share(self) -> float | None:
        """Share of the workers' wall time spent in the model forward (``None`` when unknown)."""
        if self.forward_seconds is None or not self.workers or self.seconds <= 0:
            return None
        return min(1.0, self.forward_seconds / (self.seconds * self.workers))


@dataclass(frozen=True)
class MapOutputs:
    """The files one classification writes, resolved and checked once before any work.

    Attributes:
        map: ``map.tif`` (COG) or ``map.zarr``.
        kind: ``tif`` or ``zarr``.
        probabilities: per-class probabilities path, or ``None``.
        probabilities_kind: its ``tif``/``zarr`` kind.
        confidence: whether the max-probability band is written (``NAME.confidence.tif`` beside a
            ``.tif`` map; a variable of a ``.zarr`` map).
    """

    map: Path
    kind: str
    probabilities: Path | None = None
    probabilities_kind: str | None = None
    confidence: bool = False

    @classmethod
    def resolve(
        cls, out: str | os.PathLike, probabilities: str | os.PathLike | None = None, confidence: bool = False
    ) -> MapOutputs:
        """Name the outputs.

        Raises:
            UsageError: an unknown suffix, or the same path twice.
        """
        out = Path(out)
        prob = Path(probabilities) if probabilities is not None else None
        res = cls(
            out, maps.check_suffix(out), prob, maps.check_suffix(prob, "--probabilities") if prob else None, bool(confidence)
        )
        if len({p.absolute() for p in res.paths}) != len(res.paths):
            raise UsageError(f"--out and --probabilities must be different paths, got {out} twice")
        return res

    @property
    def confidence_tif(self) -> Path | None:
        """``NAME.confidence.tif`` beside a ``.tif`` map written with confidence."""
        return self.map.with_name(self.map.stem + ".confidence.tif") if self.confidence and self.kind == "tif" else None

    @property
    def paths(self) -> list[Path]:
        """Every final output path."""
        return [p for p in (self.map, self.probabilities, self.confidence_tif) if p is not None]

    def check_writable(self, overwrite: bool) -> None:
        """Refuse outputs that exist (without ``overwrite``) or cannot be written.

        Raises:
            OutputError: an output exists or cannot be written.
        """
        from geohsi.files import check_output

        for p in self.paths:
            check_output(p, overwrite)

    def check_georeference(self, scene: Any, crs: Any) -> None:
        """Refuse GeoTIFF outputs of a scene without CRS.

        Args:
            scene: the scene's name in messages.
            crs: the scene's CRS (``None``: pixel grid).

        Raises:
            GeoreferenceError: a ``.tif`` output for a pixel-grid scene.
        """
        for p, k in ((self.map, self.kind), (self.probabilities, self.probabilities_kind)):
            if k == "tif":
                maps.require_crs(scene, crs, p)


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
        progress: show Dask's progress bar.
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


def _forward_seconds(client: Any) -> dict[str, float] | None:
    from geohsi.classification.worker import worker_stats

    try:
        return {w: float(s["forward_s"]) for w, s in client.run(worker_stats).items()}
    except Exception:  # noqa: BLE001 - instrumentation only: a worker that cannot answer leaves it unknown
        return None


def _compute_and_write(
    plan: Plan, outputs: MapOutputs, client: Any, *, resume: bool, overwrite: bool, progress: bool, log: Callable[[str], None]
) -> ClassifyResult:
    """The body of :func:`write_map`, for outputs already checked."""
    import dask

    from geohsi.classification import parts
    from geohsi.files import atomic_output
    from geohsi.scene import scene_crs

    ds, b = plan.scene, plan.bundle
    crs = scene_crs(ds)
    ids = b.class_ids
    h, wd = int(ds.sizes["y"]), int(ds.sizes["x"])
    want_prob = outputs.probabilities is not None
    identity = {
        "version": IDENTITY_VERSION,
        "bundle_sha256": plan.spec.bundle_hash,
        "scene": scene_identity(ds),
        "shape": [h, wd],
        "chunk": plan.chunk,
        "probabilities": want_prob,
        "confidence": outputs.confidence,
    }
    store, note = parts.open_intermediate(
        outputs.map,
        identity=identity,
        shape=(h, wd),
        chunk=plan.chunk,
        n_classes=len(ids),
        dtype=maps.class_dtype(ids),
        probabilities=want_prob,
        confidence=outputs.confidence,
        resume=resume,
    )
    if note:
        log(note)
    ny, nx = plan.block_grid
    done = store.done()
    todo = [(i, j) for i in range(ny) for j in range(nx) if (i, j) not in done]
    result = ClassifyResult(n_chunks=ny * nx, reused=ny * nx - len(todo))
    if result.reused:
        log(f"resuming: {result.reused} of {result.n_chunks} chunks were completed by an earlier run; computing {len(todo)}")
    t0 = time.perf_counter()
    if todo:
        before = _forward_seconds(client)
        # optimize_graph=False keeps the model layer's GPU annotation (dask issue 7036); the scheduler
        # only runs what the requested chunks need, so skipped chunks cost nothing.
        blocks = plan.probabilities.to_delayed(optimize_graph=False)
        tasks = [
            dask.delayed(parts.store_chunk, pure=False)(
                blocks[0, i, j], i, j, inter=store, class_ids=ids, dask_key_name=f"geohsi-store-{i}-{j}-{store.path.name}"
            )
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
                raise ClusterError(f"{stuck}; completed chunks are kept in {store.path}, rerun the same command to resume")
            counts = client.gather(futures)
        except BaseException as e:
            client.cancel(futures)
            if isinstance(e, (KeyboardInterrupt, SystemExit)) or type(e).__module__.startswith("geohsi"):
                raise
            raise ClusterError(
                f"the distributed classification failed ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
                f"completed chunks are kept in {store.path}, rerun the same command to resume"
            ) from e
        result.valid_pixels = int(sum(counts))
        result.computed = len(todo)
        result.seconds = time.perf_counter() - t0
        after = _forward_seconds(client)
        if before is not None and after is not None:
            result.workers = len(after)
            result.forward_seconds = sum(max(0.0, s - before.get(w, 0.0)) for w, s in after.items())
    else:
        result.seconds = time.perf_counter() - t0

    transform = ds.rio.transform()
    attrs = {"bundle": plan.spec.bundle_path, "bundle_sha256": plan.spec.bundle_hash, "scene": str(ds.encoding.get("source", ""))}
    with atomic_output(outputs.map, overwrite) as tmp:
        if outputs.kind == "tif":
            maps.write_class_cog(store.path, tmp, crs=crs, transform=transform, classes=b.classes)
        else:
            maps.write_zarr_map(
                store.path,
                tmp,
                scene=ds,
                classes=b.classes,
                variables=("classes", "confidence") if outputs.confidence else ("classes",),
                attrs=attrs,
            )
    result.outputs.append(outputs.map)
    if outputs.confidence_tif is not None:
        with atomic_output(outputs.confidence_tif, overwrite) as tmp:
            maps.write_scaled_cog(
                store.path, "confidence", tmp, crs=crs, transform=transform, descriptions=["probability of the predicted class"]
            )
        result.outputs.append(outputs.confidence_tif)
    if outputs.probabilities is not None:
        with atomic_output(outputs.probabilities, overwrite) as tmp:
            if outputs.probabilities_kind == "tif":
                maps.write_scaled_cog(
                    store.path,
                    "probabilities",
                    tmp,
                    crs=crs,
                    transform=transform,
                    descriptions=[f"P({c.name})" for c in b.classes],
                )
            else:
                maps.write_zarr_map(store.path, tmp, scene=ds, classes=b.classes, variables=("probabilities",), attrs=attrs)
        result.outputs.append(outputs.probabilities)
    parts.remove_intermediate(store)
    from geohsi.plot import write_map_quicklook  # map.png beside the map: its colour table and class names

    try:
        result.outputs += [p for p in [write_map_quicklook(outputs.map, overwrite=overwrite, log=log)] if p is not None]
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
            return (
                f"every Dask worker has been paused at its memory limit ({shown}) for {timeout:.0f} s; "
                "give the workers more memory (dask worker --memory-limit) or fewer threads per worker"
            )
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


def classify(
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
    """Classify every pixel of a scene with a model bundle on a Dask cluster into map files: what ``geohsi classify`` runs.

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
    from geohsi.classification.cluster import ClusterInfo, gpu_worker_count, host_threads, open_cluster
    from geohsi.scene import scene_crs

    outputs = MapOutputs.resolve(out, probabilities, confidence)
    outputs.check_writable(overwrite)  # before anything is opened: an existing output fails at once
    ds, b = open_inputs(scene, resolve_bundle(bundle, log))
    outputs.check_georeference(scene, scene_crs(ds))
    b.transform.check_scene(ds)

    def run(info: ClusterInfo) -> ClassifyResult:
        if info.dashboard_link:
            log(f"Dask dashboard: {info.dashboard_link}")
        plan = build_plan(
            ds,
            b,
            chunks=chunks,
            batch_size=batch_size,
            device=info.device,
            precision=precision,
            gpu_resources=info.gpu_resources,
            torch_threads=info.torch_threads,
            host_workers=info.host_workers,
        )
        res = _compute_and_write(plan, outputs, info.client, resume=resume, overwrite=overwrite, progress=progress, log=log)
        res.dashboard = info.dashboard_link
        return res

    if client is not None:
        gpu = device == "cuda" and gpu_worker_count(client) > 0
        return run(ClusterInfo(client, False, gpu, device, None, host_threads(client)))
    # Count chunks first so a small scene does not start more workers than it has tasks.
    c = chunks or b.head.default_chunk(int(ds.sizes["y"]), int(ds.sizes["x"]), int(ds.sizes["band"]))
    n_tasks = (-(-int(ds.sizes["y"]) // c)) * (-(-int(ds.sizes["x"]) // c))
    with open_cluster(
        scheduler, workers=workers, device=device, max_tasks=n_tasks, warn=lambda m: log(f"[yellow]warning:[/] {m}")
    ) as info:
        return run(info)


__all__ = ["ClassifyResult", "MapOutputs", "classify", "paused_timeout", "resolve_bundle", "write_map"]
