"""Batch mapping: many scenes — scene stores, source files or STAC items — to maps and a STAC catalogue
in one cluster session (``geohsi classify SCENE... --out-dir maps/``).

::

    scenes ──open lazily (client)──► pick the bundle that fits ──► MapJob.submit  ┐  at most
                                                                                  │  `scenes_in_flight`
    workers: one model per process and bundle, kept for every scene ◄─────────────┘  scenes at once
    first finished job ──► MapJob.finish (COG/Zarr, PNG) ──► STAC item ──► next scene submitted
    end (or Ctrl-C / SIGTERM) ──► catalog.json (Collection of every complete map) + summary.json

The cluster starts once. Scenes are pipelined: while one scene's outputs are written on the
client, the next scenes' chunks are already queued on the workers, and no more than
``scenes_in_flight`` scenes (default: twice the worker threads) are submitted at a time, so memory stays bounded whatever the batch
size. Each worker process loads each bundle once (:mod:`~geohsi.classification.worker`) and keeps
it for every scene.

Per scene the outputs are ``<name>.tif`` (COG; ``.zarr`` for pixel grids or with
``format="zarr"``), ``<name>.png``, optionally ``<name>.confidence.tif`` and
``<name>.probabilities.tif|.zarr``, and ``<name>.json``: the map's STAC Item (classification +
label extensions, ``derived_from`` the source, ``via`` the bundle, ``geohsi:*`` provenance and
class areas). The item is written last, so its presence marks a complete map.

A scene that cannot be read or does not fit any bundle is recorded as failed with its one-line
error and the batch goes on. Re-running the same batch skips every scene whose map is complete
for the same bundle hash and scene identity (read from the item and the map's tags), resumes
partial scenes from their parts stores, and recomputes nothing else; ``overwrite`` redoes all.

Class areas come from the same pass: every chunk's completion marker holds its pixels and
ground area per class (:func:`geohsi.scene.pixel_areas`: projected pixel size, or geodesic
pixel areas for geographic CRSs; none for pixel grids).

.. versionadded:: 0.2
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from geohsi import storage
from geohsi.classification.job import MapJob, MapOutputs
from geohsi.classification.map_items import earlier_items, item_path, map_completion, map_outputs, read_item, write_map_item
from geohsi.classification.records import BatchResult, SceneRecord, class_rows
from geohsi.classification.worker import cluster_stats, stats_delta
from geohsi.console import say, warner
from geohsi.errors import BandMismatchError, ClusterError, GeohsiError, GeohsiWarning, OutputError, UsageError
from geohsi.io.sources import expand_scenes, scene_name

#: file names of the batch's own outputs in the output directory.
CATALOG_NAME = "catalog.json"
SUMMARY_NAME = "summary.json"
#: how a batch's catalogue describes itself (and is told from a file of the same name it did not write).
CATALOG_DESCRIPTION = "land-cover maps made by geohsi from"
#: ``format`` values: ``auto`` writes a COG for georeferenced scenes and Zarr for pixel grids.
FORMATS = ("auto", "tif", "zarr")


# --------------------------------------------------------------------------- inputs


def _names(sources: Sequence[Any]) -> list[str]:
    names = [scene_name(s) for s in sources]
    seen: dict[str, int] = {}
    for k, n in enumerate(names):
        _check_name(n, sources[k])
        if n in seen:
            raise UsageError(
                f"scenes {sources[seen[n]]} and {sources[k]} would both be mapped to {n}.*; "
                "rename one or map them into separate --out-dir directories"
            )
        seen[n] = k
    return names


def _check_name(name: str, source: Any) -> None:
    """Refuse an output name that is one of the batch's own files (a scene ``catalog.tif`` had its item replaced by
    the catalogue) or that leaves ``--out-dir`` (a STAC item id ``../x`` or ``a/b``).

    Raises:
        UsageError: naming the scene and the fix.
    """
    own = {Path(CATALOG_NAME).stem, Path(SUMMARY_NAME).stem}
    if name.casefold() in own or not name or name.startswith(".") or any(c in name for c in "/\\"):
        why = "the batch's own catalogue and summary" if name.casefold() in own else "a name that is no plain file name"
        raise UsageError(
            f"scene {storage.display(source) if isinstance(source, str | os.PathLike) else name} would be mapped to "
            f"{name!r}, {why}; rename the file, or map it alone with --out"
        )


def _source_text(src: Any) -> str:
    """How the summary records a scene: a URL without its query string (a signed URL's token)."""
    if hasattr(src, "assets") and hasattr(src, "id"):
        return storage.display(src.get_self_href()) if src.get_self_href() else f"stac:{src.id}"
    return storage.display(src)


def _pick_bundle(ds: Any, bundles: Sequence[Any], source: str, warn: Callable[[str], None]) -> Any:
    """The first bundle whose spectral transform and head accept the scene (its input warnings go to ``warn``)."""
    errors = []
    h, w = int(ds.sizes["y"]), int(ds.sizes["x"])
    for b in bundles:
        try:
            said: list[str] = []
            b.transform.check_scene(ds, warn=said.append)
            b.head.check_scene(h, w, source, str(b.path))
            for message in said:
                warn(message)
            return b
        except GeohsiError as e:
            errors.append(e)
    if len(bundles) == 1:
        raise errors[0]
    raise BandMismatchError(
        f"none of the {len(bundles)} bundles fits {source} (first: {errors[0]}); add a bundle trained for this sensor"
    )


# --------------------------------------------------------------------------- the batch


class _Batch:
    """The state of one batch run (see :func:`classify_many`)."""

    def __init__(self, sources: list[Any], bundles: list[Any], out_dir: Path | str, opts: dict[str, Any], log: Callable) -> None:
        self.sources, self.bundles, self.out_dir, self.opts, self.log = sources, bundles, out_dir, opts, log
        self.names = _names(sources)
        self.records = [SceneRecord(n, _source_text(s)) for n, s in zip(self.names, sources, strict=True)]
        self.collection_id = (storage.name(out_dir) if storage.is_url(out_dir) else Path(out_dir).resolve().name) or "geohsi-maps"
        self.in_flight: list[tuple[int, MapJob]] = []

    def _say(self, k: int, text: str) -> None:
        self.log(f"[{k + 1}/{len(self.records)}] {self.names[k]}: {text}")

    def start(self, k: int, info: Any) -> None:
        """Open scene ``k``, check it, and submit its missing chunks (or record it skipped / failed)."""
        from geohsi.classification.plan import build_plan
        from geohsi.ingestion import open_source
        from geohsi.scene import scene_crs

        rec, src, o = self.records[k], self.sources[k], self.opts
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", GeohsiWarning)
                ds = open_source(src)
            for w in caught:
                if issubclass(w.category, GeohsiWarning):
                    self._warn(k, str(w.message))
                else:  # not ours: shown as Python would have
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            b = _pick_bundle(ds, self.bundles, rec.source, lambda m: self._warn(k, m))
            rec.bundle = b.location
            crs = scene_crs(ds)
            kind = o["format"] if o["format"] != "auto" else ("tif" if crs is not None else "zarr")
            out = map_outputs(self.out_dir, rec.name, kind, o["with_probabilities"], o["confidence"])
            out.check_not_inputs(src)
            out.check_georeference(rec.source, crs)
            plan = build_plan(
                ds,
                b,
                chunks=o["chunks"],
                batch_size=o["batch_size"],
                device=info.device,
                precision=o["precision"],
                gpu_resources=info.gpu_resources,
                torch_threads=info.torch_threads,
                host_workers=info.host_workers,
            )
            job = MapJob(plan, out, resume=o["resume"], overwrite=o["overwrite"], log=self.log)
            state = "absent" if o["overwrite"] else map_completion(out, job.identity)
            if state == "complete":
                self._skip(k, out)
                return
            if state == "foreign":
                raise OutputError(
                    f"{out.map} (or its item) exists and was not made from this bundle and scene; "
                    "pass --overwrite to replace it or choose another --out-dir"
                )
            job.overwrite = o["overwrite"] or state == "ours"  # our own partial outputs are replaced
            out.check_writable(job.overwrite)
            job.submit(info.client)
            job.submit_finish(info.client)  # the map is written on a worker: the client stays free
        except GeohsiError as e:
            self._fail(k, e)
            return
        rec.status = "running"
        self.in_flight.append((k, job))

    def _warn(self, k: int, message: str) -> None:
        self.records[k].warnings.append(" ".join(message.split()))
        self._say(k, f"[yellow]warning:[/] {message}")

    def _skip(self, k: int, out: MapOutputs) -> None:
        rec = self.records[k]
        item = read_item(item_path(out)) or {}
        props = item.get("properties", {})
        rec.status, rec.item = "skipped", str(item_path(out))
        rec.outputs = [str(p) for p in [*out.paths, out.quicklook] if storage.exists(p)]
        rec.classes = props.get("geohsi:class_stats", [])
        rec.valid_pixels = int(props.get("geohsi:valid_pixels", 0))
        rec.area_note = props.get("geohsi:area_note", "")
        self._say(k, "complete from an earlier run for the same bundle and scene; skipped")

    def _fail(self, k: int, e: BaseException) -> None:
        rec = self.records[k]
        rec.status, rec.message = "failed", " ".join(str(e).split())
        self._say(k, f"[red]failed:[/] {rec.message}")

    def finish(self, k: int, job: MapJob, client: Any) -> None:
        """Gather a finished scene, write its outputs and item, record it."""
        rec, src = self.records[k], self.sources[k]
        try:
            job.gather(client)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", GeohsiWarning)
                res = job.finish(client)
            for w in caught:
                self._warn(k, str(w.message))
            rows = class_rows(job.plan.bundle.classes, res.class_pixels, res.class_area_m2)
            rec.item = str(write_map_item(job, res, src, rows, self.collection_id))
        except GeohsiError as e:
            self._fail(k, e)
            return
        rec.status, rec.outputs, rec.classes, rec.area_note = "done", [str(p) for p in res.outputs], rows, res.area_note
        rec.valid_pixels, rec.seconds = res.mapped_pixels, round(res.seconds, 3)
        rec.chunks, rec.computed, rec.reused = res.n_chunks, res.computed, res.reused
        rec.pixels_per_second = round(res.valid_pixels / res.seconds, 1) if res.seconds > 0 and res.valid_pixels else None
        rate = f", {rec.pixels_per_second:,.0f} px/s" if rec.pixels_per_second else ""
        reused = f" ({res.reused} reused)" if res.reused else ""
        self._say(k, f"{res.computed} of {res.n_chunks} chunks{reused}, {rec.valid_pixels:,} px in {res.seconds:.1f} s{rate}")

    def interrupt(self, client: Any, why: str = "stopped before the map was complete") -> None:
        """Cancel what is in flight and record every unfinished scene as interrupted (completed chunks stay for a rerun)."""
        for _, job in self.in_flight:
            with contextlib.suppress(Exception):  # the cluster may already be gone; the parts store is what matters
                job.cancel(client)
        self.in_flight = []
        for rec in self.records:
            if rec.status == "running":
                rec.status, rec.message = "interrupted", f"{why}; rerun the same command to resume it"

    def write_index(self, result: BatchResult) -> None:
        """``catalog.json`` of every complete map and ``summary.json`` of every scene."""
        from geohsi.export.stac import write_map_collection
        from geohsi.files import write_bytes_atomic

        items = [
            it
            for r in self.records
            if r.item and r.status in ("done", "skipped")
            for it in [read_item(storage.as_path(r.item))]
            if it
        ]
        remote = storage.is_url(self.out_dir)
        try:
            items += earlier_items(self.out_dir, CATALOG_NAME, {r.name for r in self.records} | {it["id"] for it in items})
            if items:
                result.catalog = storage.join(self.out_dir, CATALOG_NAME)
                write_map_collection(
                    result.catalog,
                    items,
                    collection_id=self.collection_id,
                    description=f"{CATALOG_DESCRIPTION} {len(items)} scenes",
                    base=storage.display(self.out_dir) if remote else None,
                )
            summary = storage.join(self.out_dir, SUMMARY_NAME)
            write_bytes_atomic(summary, (json.dumps(result.to_dict(), indent=1) + "\n").encode(), overwrite=True)
            result.summary = summary
        except GeohsiError as e:
            if not remote:
                raise
            # a store that died mid-batch: the summary is still shown (and the failures make the exit non-zero)
            result.catalog = None
            self.log(f"[red]the catalogue and summary could not be written:[/] {e}")


def _load_bundles(bundle: Any, backbone: str | os.PathLike | None, log: Callable[[str], None]) -> list[Any]:
    from geohsi.bundle import Bundle, load_bundle
    from geohsi.classification.run import resolve_bundle

    given = bundle if isinstance(bundle, (list, tuple)) else [bundle]
    if not given:
        given = [None]
    loaded = [b if isinstance(b, Bundle) else load_bundle(resolve_bundle(b, log)) for b in given]
    return [b.with_backbone(backbone) for b in loaded]


def classify_many(
    scenes: Sequence[str | os.PathLike | Any],
    bundle: str | os.PathLike | Any | Sequence[str | os.PathLike | Any] | None,
    out_dir: str | os.PathLike,
    *,
    backbone: str | os.PathLike | None = None,
    format: str = "auto",
    with_probabilities: bool = False,
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
    scenes_in_flight: int | None = None,
    log: Callable[[str], None] = say,
) -> BatchResult:
    """Map many scenes with one cluster session into ``out_dir``: what ``geohsi classify --out-dir`` runs.

    Args:
        scenes: scene stores, source files ``geohsi ingest`` reads (read lazily in place), or
            ``pystac.Item`` objects (read from their asset hrefs).
        bundle: a bundle, or several: each scene is mapped with the first one that fits it (bands,
            wavelengths, size); ``None``: ``runs/latest``.
        out_dir: the output directory (created).
        backbone: the backbone file's new location, if the bundle's moved since training (every worker must see it there).
        format: ``auto`` (COG for georeferenced scenes, Zarr for pixel grids), ``tif`` or ``zarr``.
        with_probabilities: also write ``<name>.probabilities.tif|.zarr``.
        confidence: also write the max-probability band.
        client: an existing :class:`distributed.Client` (overrides ``scheduler``/``workers``).
        scheduler: ``tcp://HOST:PORT`` of a running scheduler (default: an embedded ``LocalCluster``).
        workers: worker processes of the embedded cluster (default: one per core).
        device: ``cpu`` or ``cuda``.
        gpus: GPUs of the embedded cluster (``"0,2"``; default every visible GPU), one worker each.
        precision: ``fp32`` or ``bf16``.
        chunks: spatial chunk edge (default: the bundle head's).
        batch_size: windows (patch) or tiles (dense) per forward.
        resume: resume partial scenes from their parts stores (``False`` recomputes them).
        overwrite: redo every scene, replacing its outputs.
        scenes_in_flight: scenes submitted to the cluster at once (≥ 1; bounds memory whatever the batch size);
            default: twice the cluster's worker threads (at least 2), enough to keep every worker busy.
        log: receives one-line messages (one per scene).

    Returns:
        A :class:`BatchResult` (what ``summary.json`` holds); failed scenes are in it, not raised —
        call :meth:`BatchResult.raise_for_failures` to turn them into an error.

    Raises:
        UsageError: no scenes, two scenes with one output name, bad options.
        OutputError: ``out_dir`` cannot be created.
        KeyboardInterrupt: on Ctrl-C / SIGTERM, after cancelling the work in flight and writing
            ``summary.json`` and ``catalog.json`` of what is complete.

    Example:
        >>> res = classify_many(sorted(Path("tiles").glob("*.tif")), "runs/latest", "maps")  # doctest: +SKIP

    .. versionadded:: 0.2
    """
    from geohsi.classification.cluster import cluster_info, open_cluster

    sources = list(scenes)
    _check_options(sources, format, scenes_in_flight, chunks, batch_size)
    out = _output_dir(out_dir, overwrite)
    opts = dict(format=format, with_probabilities=with_probabilities, confidence=confidence, chunks=chunks,
                batch_size=batch_size, precision=precision, resume=resume, overwrite=overwrite)  # fmt: skip
    batch = _Batch(sources, _load_bundles(bundle, backbone, log), out, opts, log)
    warn = warner(log)
    if client is not None:
        return _run_batch(batch, cluster_info(client, device, warn=warn), scenes_in_flight)
    try:
        with open_cluster(scheduler, workers=workers, device=device, gpus=gpus, warn=warn) as info:
            return _run_batch(batch, info, scenes_in_flight)
    finally:
        if scheduler is None:  # the embedded workers are gone: nothing writes any more, so no temporary is in use
            _remove_stale_temporaries(batch, with_probabilities, confidence)


def _remove_stale_temporaries(batch: _Batch, with_probabilities: bool, confidence: bool) -> None:
    """Remove the temporary outputs of every interrupted scene (their parts stores stay, for a rerun to resume)."""
    for rec in batch.records:
        if rec.status == "interrupted":
            for kind in ("tif", "zarr"):
                map_outputs(batch.out_dir, rec.name, kind, with_probabilities, confidence).remove_stale_temporaries()


def _check_options(sources: list, format: str, scenes_in_flight: int | None, chunks: int | None, batch_size: int | None) -> None:
    """Refuse an empty batch, an unknown format, a bad ``scenes_in_flight``, ``chunks`` or ``batch_size`` (before the
    folder and the cluster: not one failure per scene) and scene names no output can take."""
    from geohsi.classification.plan import check_counts

    check_counts(chunks, batch_size)
    if not sources:
        raise UsageError("no scenes given; pass scene files, --from-list FILE or --stac URL --collection C")
    if format not in FORMATS:
        raise UsageError(f"unknown --format {format!r}; use one of {', '.join(FORMATS)}")
    if scenes_in_flight is not None and (isinstance(scenes_in_flight, bool) or int(scenes_in_flight) < 1):
        raise UsageError(f"--scenes-in-flight must be at least 1, got {scenes_in_flight}")
    _names(sources)  # names that clash or leave the folder, before it is created


def _output_dir(out_dir: str | os.PathLike, overwrite: bool) -> Path | str:
    """The batch's output directory, created (or a bucket URL, checked): maps, items and the catalogue go there.

    Raises:
        OutputError: it cannot be created, or holds a catalogue or summary no batch wrote (:func:`_check_index_files`).
    """
    out = storage.as_path(out_dir)  # a URL: maps, items and the catalogue go to the bucket, written by the workers
    try:
        if storage.is_url(out):
            storage.check_bucket(out)
        else:
            out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create --out-dir {out}: {e.strerror or e}; choose a writable directory") from e
    _check_index_files(out, overwrite)
    return out


def _check_index_files(out: Path | str, overwrite: bool) -> None:
    """Refuse, before any work, a ``catalog.json`` or ``summary.json`` in ``out`` that no geohsi batch wrote
    (they had been replaced without ``--overwrite``); a batch's own are rewritten on every run.

    Raises:
        OutputError: naming the file and the fix.
    """
    if overwrite:
        return
    ours = {
        CATALOG_NAME: lambda d: d.get("type") == "Collection" and str(d.get("description", "")).startswith(CATALOG_DESCRIPTION),
        SUMMARY_NAME: lambda d: "geohsi_version" in d and "scenes" in d,
    }
    for file, written_by_geohsi in ours.items():
        path = storage.join(out, file)
        if storage.exists(path):
            doc = read_item(path)
            if not (isinstance(doc, dict) and written_by_geohsi(doc)):
                raise OutputError(
                    f"{storage.display(path)} was not written by a geohsi batch; choose another --out-dir, or move the file away"
                )


def _run_batch(batch: _Batch, info: Any, scenes_in_flight: int | None) -> BatchResult:
    """Every scene of ``batch`` through the cluster of ``info``, at most ``scenes_in_flight`` at once; the summary written.

    On any interruption the scenes in flight are cancelled and the summary and catalogue of what is
    complete are written before the exception goes on.
    """
    from geohsi.classification.cluster import host_threads

    result = BatchResult(batch.records, batch.out_dir, dashboard=info.dashboard_link)
    if info.dashboard_link:
        batch.log(f"Dask dashboard: {info.dashboard_link}")
    before = cluster_stats(info.client)
    t0 = time.perf_counter()
    threads = sum(host_threads(info.client).values()) or 1
    in_flight = int(scenes_in_flight) if scenes_in_flight is not None else max(2, 2 * threads)
    try:
        _drain(batch, info, list(range(len(batch.records))), in_flight)
    except BaseException as e:
        batch.interrupt(info.client, "stopped" if isinstance(e, KeyboardInterrupt) else f"stopped: {e}")
        result.seconds = time.perf_counter() - t0
        batch.write_index(result)
        raise
    result.seconds = time.perf_counter() - t0
    after = cluster_stats(info.client)
    result.workers = len(after or {})
    tasks = stats_delta(before, after, "tasks")
    result.model_tasks = None if tasks is None else int(tasks)
    result.forward_seconds = stats_delta(before, after, "forward_s")
    batch.write_index(result)
    return result


def _drain(batch: _Batch, info: Any, pending: list[int], in_flight: int) -> None:
    """Keep ``in_flight`` scenes on the cluster until ``pending`` is empty, finishing each as it completes.

    Raises:
        ClusterError: every worker stayed paused at its memory limit (:func:`~geohsi.classification.run.paused_timeout`).
    """
    from geohsi.classification.run import paused_timeout, wait_unless_paused

    limit = paused_timeout()
    while pending or batch.in_flight:
        while pending and len(batch.in_flight) < in_flight:
            batch.start(pending.pop(0), info)
        if not batch.in_flight:
            continue
        ends = [j.finish_future for _, j in batch.in_flight if j.finish_future is not None]
        stuck = wait_unless_paused(info.client, lambda: sum([j.done for _, j in batch.in_flight]) > 0, limit, futures=ends)
        if stuck:
            raise ClusterError(f"{stuck}; completed chunks are kept, rerun the same command to resume")
        k, job = next((k, j) for k, j in batch.in_flight if j.done)
        batch.in_flight.remove((k, job))
        # the next scene goes to the workers before this one's files are written on the client
        if pending and len(batch.in_flight) < in_flight:
            batch.start(pending.pop(0), info)
        batch.finish(k, job, info.client)


__all__ = [
    "CATALOG_NAME",
    "FORMATS",
    "SUMMARY_NAME",
    "BatchResult",
    "SceneRecord",
    "class_rows",
    "classify_many",
    "expand_scenes",
    "scene_name",
]
