"""One scene's map, from plan to files: the unit that single-scene and batch classification share.

A :class:`MapJob` holds a built :class:`~geohsi.classification.plan.Plan` and its checked
:class:`MapOutputs`. :meth:`MapJob.submit` opens the resumable parts store and hands the chunks it
still lacks to the cluster (one task per chunk: model + region write + completion marker);
:meth:`MapJob.finish` converts the store once into the final COG or Zarr outputs (a
:class:`MapWriter`), each written under a temporary name and renamed. A single-scene run writes
them on the client; a batch queues the writer as one more task on the cluster
(:meth:`MapJob.submit_finish`), so the client only opens scenes and submits work while the
workers compute and write several scenes at once.

The map records what it was made from — the bundle hash and the scene identity — in its GeoTIFF
tags or Zarr attributes (:func:`map_identity` reads them back), which is how a rerun of a batch
knows a map is complete for the same bundle and scene.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from geohsi.classification.plan import Plan, scene_identity
from geohsi.console import say
from geohsi.errors import ClusterError, GeohsiError, GeohsiWarning, UsageError
from geohsi.export import maps
from geohsi.files import input_among
from geohsi.storage import as_path, display, exists, is_url, name, sibling, with_suffix

#: version of the resume identity of a parts store (2: completion markers carry class counts and areas).
IDENTITY_VERSION = 2


@dataclass
class ClassifyResult:
    """What a classification run did.

    Attributes:
        outputs: every file/store written.
        n_chunks: chunks of the map.
        computed: chunks computed in this run.
        reused: chunks taken from an interrupted run's parts store.
        valid_pixels: classified pixels computed in this run.
        seconds: wall time of the chunk computation (cluster start-up excluded; in a batch, from
            the scene's submission to its last chunk, so scenes in flight together overlap).
        forward_seconds: seconds the workers spent in the model forward in this run (summed over
            workers; ``None`` when the workers could not be asked or scenes shared the workers).
        workers: workers of the cluster.
        dashboard: the Dask dashboard link, if any.
        class_pixels: pixels of the whole map per class id (chunks of an interrupted run included).
        class_area_m2: their ground area in m² (``None`` for a pixel grid).
        area_note: how the areas were computed, or why not.
        profile: seconds per stage when the run was profiled
            (:class:`~geohsi.classification.profile.StageProfile`), else ``None``.
    """

    outputs: list[Path | str] = field(default_factory=list)
    n_chunks: int = 0
    computed: int = 0
    reused: int = 0
    valid_pixels: int = 0
    seconds: float = 0.0
    forward_seconds: float | None = None
    workers: int = 0
    dashboard: str | None = None
    class_pixels: dict[int, int] = field(default_factory=dict)
    class_area_m2: dict[int, float] | None = None
    area_note: str = ""
    profile: Any = None

    @property
    def forward_share(self) -> float | None:
        """Share of the workers' wall time spent in the model forward (``None`` when unknown)."""
        if self.forward_seconds is None or not self.workers or self.seconds <= 0:
            return None
        return min(1.0, self.forward_seconds / (self.seconds * self.workers))

    @property
    def mapped_pixels(self) -> int:
        """Classified pixels of the whole map."""
        return int(sum(self.class_pixels.values()))


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

    map: Path | str
    kind: str
    probabilities: Path | str | None = None
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
        out = as_path(out)
        prob = as_path(probabilities) if probabilities is not None else None
        res = cls(
            out, maps.check_suffix(out), prob, maps.check_suffix(prob, "--probabilities") if prob else None, bool(confidence)
        )
        named: dict[Any, str] = {}
        for flag, p in (("--out", res.map), ("--probabilities", res.probabilities), ("--confidence", res.confidence_tif)):
            if p is None:
                continue
            key = p if is_url(p) else p.absolute()
            if key in named:  # a clash with NAME.confidence.tif had been reported as --out given twice
                raise UsageError(f"{named[key]} and {flag} would both write {display(p)}; give --probabilities another name")
            named[key] = flag
        return res

    def check_not_inputs(self, source: Any) -> None:
        """Refuse an output that is the scene's own file: with ``--overwrite`` the map would replace its input.

        Args:
            source: what the scene was opened from (a path or URL, several tile paths, or a STAC item).

        Raises:
            UsageError: naming the output and the fix.
        """
        inputs = [source] if isinstance(source, str | os.PathLike) else source if isinstance(source, list | tuple) else []
        p = input_among(self.paths, [i for i in inputs if isinstance(i, str | os.PathLike)])
        if p is not None:
            raise UsageError(f"output {display(p)} is the scene being classified; write the map under another name or folder")

    def _confidence_beside(self) -> Path | str:
        """Where ``NAME.confidence.tif`` goes beside a ``.tif`` map."""
        return sibling(self.map, Path(name(self.map)).stem + ".confidence.tif")

    @property
    def confidence_tif(self) -> Path | str | None:
        """``NAME.confidence.tif`` beside a ``.tif`` map written with confidence."""
        return self._confidence_beside() if self.confidence and self.kind == "tif" else None

    def stale_confidence(self) -> Path | str | None:
        """``NAME.confidence.tif`` beside a ``.tif`` map when it exists but this run writes none: an earlier map's,
        it would be read as this map's (it had stayed beside a map rewritten with ``--overwrite``, unsaid)."""
        if self.kind != "tif" or self.confidence:
            return None
        old = self._confidence_beside()
        return old if exists(old) else None

    @property
    def quicklook(self) -> Path | str:
        """``NAME.png`` beside the map."""
        return with_suffix(self.map, ".png")

    @property
    def paths(self) -> list[Path | str]:
        """Every final output path (the quicklook aside)."""
        return [p for p in (self.map, self.probabilities, self.confidence_tif) if p is not None]

    @property
    def remote(self) -> bool:
        """Whether the outputs are URLs (object storage): written locally where the writer runs, then uploaded."""
        return is_url(self.map)

    def localised(self, folder: Path) -> MapOutputs:
        """The same outputs under a local ``folder`` (same names), where a writer builds them before the upload."""
        local = folder / name(self.map)
        prob = folder / name(self.probabilities) if self.probabilities is not None else None
        return replace(self, map=local, probabilities=prob)

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete temporaries an earlier, killed run left beside the outputs (``.NAME.tmp-*``); returns them.

        A run stopped by SIGKILL, or a worker process killed while it wrote a map, cannot remove its
        temporary output itself; the next run of the same outputs does.
        """
        import shutil

        gone = []
        for p in [*self.paths, self.quicklook]:
            if is_url(p):
                continue  # object storage keeps no temporaries: every output is one upload or has a marker
            for tmp in p.parent.glob(f".{p.name}.tmp-*"):
                if tmp.is_dir():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    tmp.unlink(missing_ok=True)
                gone.append(tmp)
        return gone

    def check_writable(self, overwrite: bool) -> None:
        """Refuse outputs that exist (without ``overwrite``) or cannot be written.

        Raises:
            OutputError: an output exists or cannot be written.
        """
        from geohsi.files import check_output

        for p in self.paths:  # a .zarr is a folder: a folder of the user's files is refused before the run
            check_output(p, overwrite, directory=name(p).lower().endswith(".zarr"))

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


def map_identity(plan: Plan) -> dict[str, str]:
    """What a map records about its making: bundle path and hash, scene source and identity."""
    ds = plan.scene
    return {
        "bundle": plan.spec.bundle_path,
        "bundle_sha256": plan.spec.bundle_hash,
        "scene": str(ds.encoding.get("source", "")),
        "scene_identity": scene_identity(ds),
    }


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


class MapJob:
    """One scene's classification on a cluster: submit its missing chunks, later finish its files.

    Args:
        plan: the graph from :func:`~geohsi.classification.plan.build_plan`.
        outputs: checked outputs (:meth:`MapOutputs.check_writable`, :meth:`MapOutputs.check_georeference`).
        resume: reuse chunks completed by an interrupted run with the same bundle, scene, chunking and outputs.
        overwrite: replace existing outputs.
        log: receives one-line messages.
    """

    def __init__(
        self, plan: Plan, outputs: MapOutputs, *, resume: bool = True, overwrite: bool = False, log: Callable[[str], None] = say
    ) -> None:
        from geohsi.scene import pixel_areas

        self.plan, self.outputs, self.resume, self.overwrite, self.log = plan, outputs, resume, overwrite, log
        stale = outputs.stale_confidence()
        if stale is not None:
            log(
                f"[yellow]warning:[/] {display(stale)} is an earlier map's (this run writes no confidence); delete it or pass --confidence"
            )
        self.identity = map_identity(plan)
        self.row_areas, self.area_note = pixel_areas(plan.scene)
        self.store: Any = None
        self.futures: list[Any] = []
        self.finish_future: Any = None
        self.token = uuid.uuid4().hex[:12]  # names this run's tasks
        self.result = ClassifyResult(area_note=self.area_note)
        self._t0 = 0.0
        self._t1: float | None = None

    @property
    def source(self) -> str:
        """The scene's name in messages."""
        return self.identity["scene"] or "the scene"

    def _open_store(self) -> list[tuple[int, int]]:
        from geohsi.classification import parts

        plan, ids = self.plan, self.plan.bundle.class_ids
        h, w = int(plan.scene.sizes["y"]), int(plan.scene.sizes["x"])
        want_prob = self.outputs.probabilities is not None
        identity = {
            "version": IDENTITY_VERSION,
            "bundle_sha256": plan.spec.bundle_hash,
            "scene": self.identity["scene_identity"],
            "shape": [h, w],
            "chunk": plan.chunk,
            "precision": plan.spec.precision,  # a map half fp32, half bf16 is no map
            "probabilities": want_prob,
            "confidence": self.outputs.confidence,
        }
        self.store, note = parts.open_intermediate(
            self.outputs.map,
            identity=identity,
            shape=(h, w),
            chunk=plan.chunk,
            n_classes=len(ids),
            dtype=maps.class_dtype(ids),
            probabilities=want_prob,
            confidence=self.outputs.confidence,
            resume=self.resume,
        )
        if note:
            self.log(note)
        ny, nx = plan.block_grid
        done = self.store.done()
        return [(i, j) for i in range(ny) for j in range(nx) if (i, j) not in done]

    def submit(self, client: Any) -> None:
        """Open (or resume) the parts store and hand the missing chunks to the cluster; returns at once."""
        import dask

        from geohsi.classification import parts

        self.outputs.remove_stale_temporaries()
        todo = self._open_store()
        ny, nx = self.plan.block_grid
        self.result.n_chunks, self.result.reused = ny * nx, ny * nx - len(todo)
        if self.result.reused:
            self.log(
                f"resuming {self.source}: {self.result.reused} of {self.result.n_chunks} chunks were completed by an earlier run; "
                f"computing {len(todo)}"
            )
        self._t0 = time.perf_counter()
        if not todo:
            return
        # optimize_graph=False keeps the model layer's GPU annotation (dask issue 7036); the scheduler
        # only runs what the requested chunks need, so skipped chunks cost nothing.
        blocks = self.plan.probabilities.to_delayed(optimize_graph=False)
        c, ids, store = self.plan.chunk, self.plan.bundle.class_ids, self.store
        tasks = [
            dask.delayed(parts.store_chunk, pure=False)(
                blocks[0, i, j],
                i,
                j,
                inter=store,
                class_ids=ids,
                row_areas=None if self.row_areas is None else self.row_areas[i * c : (i + 1) * c],
                # unique per run: a rerun on the same client must not pick up a finished key of the last one
                dask_key_name=f"geohsi-store-{i}-{j}-{store.name}-{self.token}",
            )
            for i, j in todo
        ]
        self.futures = client.compute(tasks, optimize_graph=False)
        self.result.computed = len(todo)

    @property
    def done(self) -> bool:
        """Whether every chunk task (and the finish task, when submitted) has finished, or one has failed."""
        futures = [*self.futures, *([self.finish_future] if self.finish_future is not None else [])]
        finished = all(f.done() for f in futures) or any(f.status == "error" for f in futures)
        if finished and self._t1 is None:
            self._t1 = time.perf_counter()
        return finished

    def cancel(self, client: Any) -> None:
        """Cancel the tasks still pending (completed chunks stay in the parts store)."""
        pending = [*self.futures, *([self.finish_future] if self.finish_future is not None else [])]
        if pending:
            client.cancel(pending)

    def gather(self, client: Any) -> None:
        """Collect the chunk results after :attr:`done`.

        Raises:
            ClusterError: a chunk task failed (completed chunks are kept for a rerun).
            GeohsiError: a chunk task raised one (e.g. an unreadable block of the source).
        """
        try:
            counts = client.gather(self.futures) if self.futures else []
        except BaseException as e:
            self.cancel(client)
            if isinstance(e, (KeyboardInterrupt, SystemExit)) or type(e).__module__.startswith("geohsi"):
                raise
            raise ClusterError(
                f"the distributed classification of {self.source} failed ({type(e).__name__}: {_one_line(e)}); "
                f"completed chunks are kept in {self.store.path}, rerun the same command to resume"
            ) from e
        self.result.valid_pixels = int(sum(counts))
        self.result.seconds = (self._t1 or time.perf_counter()) - self._t0

    def writer(self) -> MapWriter:
        """The final conversion of this map, as a small picklable callable (run here or on a worker)."""
        ds = self.plan.scene
        return MapWriter(
            store=self.store,
            outputs=self.outputs,
            classes=self.plan.bundle.classes,
            grid=map_grid(ds),
            identity=dict(self.identity),
            overwrite=self.overwrite,
        )

    def submit_finish(self, client: Any) -> None:
        """Queue the final conversion on the cluster after the chunk tasks (a batch: the client stays free).

        :attr:`done` then waits for it, and :meth:`finish` only collects what it wrote.
        """
        self.finish_future = client.submit(
            self.writer(), *self.futures, pure=False, key=f"geohsi-finish-{self.store.name}-{self.token}"
        )

    def finish(self, client: Any = None) -> ClassifyResult:
        """The final outputs from the parts store (after :meth:`gather`): written here, or collected from
        the cluster after :meth:`submit_finish`; the parts store is removed."""
        res = self.result
        if self.finish_future is not None:
            try:
                written = client.gather(self.finish_future)
            except BaseException as e:
                if isinstance(e, (KeyboardInterrupt, SystemExit)) or type(e).__module__.startswith("geohsi"):
                    raise
                raise ClusterError(f"writing the map of {self.source} failed ({type(e).__name__}: {_one_line(e)})") from e
        else:
            written = self.writer()()
        # release the tasks before the store goes: nothing may recompute into a removed store
        self.futures, self.finish_future = [], None
        from geohsi.classification import parts

        parts.remove_intermediate(self.store)
        res.outputs += [as_path(p) for p in written["outputs"]]
        res.class_pixels = {int(k): int(v) for k, v in written["class_pixels"].items()}
        areas = written["class_area_m2"]
        res.class_area_m2 = None if areas is None else {int(k): float(v) for k, v in areas.items()}
        for note in written["notes"]:
            self.log(note)
        if res.mapped_pixels == 0:
            warnings.warn(
                f"the map of {self.source} has no classified pixel: every pixel of the scene is nodata or invalid; "
                "check its nodata value and bad bands (geohsi info)",
                GeohsiWarning,
                stacklevel=2,
            )
        return res


def map_grid(ds: Any) -> Any:
    """The scene's grid alone (``y``/``x`` coordinates, CRS, transform): what the map writers need of it."""
    import xarray as xr

    from geohsi.scene import scene_crs, scene_transform, write_georef

    crs = scene_crs(ds)
    grid = xr.Dataset(coords={"y": ds["y"].values, "x": ds["x"].values}, attrs={"georeferenced": int(crs is not None)})
    return write_georef(grid, scene_transform(ds), crs)


@dataclass(frozen=True)
class MapWriter:
    """The final conversion of one map: parts store → COG / Zarr (+ confidence, probabilities) + PNG.

    Small and picklable (paths, the legend and the bare grid), so a batch runs it as a task on a
    worker after the scene's chunk tasks; a single-scene run calls it on the client. Every output is
    written under a temporary name and renamed. It leaves the parts store in place (the caller
    removes it once it holds the result), so running it twice gives the same outputs.

    Attributes:
        store: the scene's parts store.
        outputs: the checked outputs.
        classes: the bundle's legend.
        grid: :func:`map_grid` of the scene.
        identity: bundle and scene provenance recorded in the map (:func:`map_identity`).
        overwrite: replace existing outputs.
    """

    store: Any
    outputs: MapOutputs
    classes: Any
    grid: Any
    identity: dict[str, str]
    overwrite: bool

    def __call__(self, *chunk_results: Any) -> dict[str, Any]:
        """Write everything; returns ``{"outputs", "class_pixels", "class_area_m2", "notes"}``.

        Args:
            *chunk_results: the chunk tasks' results (only waited for: the store holds the data).
        """
        if self.outputs.remote:
            return self._write_and_upload()
        from geohsi.plot import have_matplotlib, write_map_quicklook  # map.png: its colour table and class names

        # Dask may run this task again (a worker died holding its result): outputs that carry this
        # map's identity are then our own and are rewritten from the store, which the client removes
        # only after it has the result.
        overwrite = self.overwrite or self._ours()
        class_pixels, class_area = self.store.totals()
        outputs = self._write_maps(overwrite)
        notes: list[str] = []
        try:
            if not have_matplotlib():
                raise GeohsiError("matplotlib is not installed")
            png = write_map_quicklook(self.outputs.map, overwrite=overwrite, log=notes.append)
            outputs += [str(png)] if png else []
        except GeohsiError as e:
            # The map itself is complete and in place; a quicklook that cannot be drawn must not fail the run.
            notes.append(f"[yellow]warning: map written, but no quicklook: {e}[/]")
        return {"outputs": outputs, "class_pixels": class_pixels, "class_area_m2": class_area, "notes": notes}

    def _write_and_upload(self) -> dict[str, Any]:
        """URL outputs: built in a local temporary folder of the machine running this (a worker, for a
        batch or a cluster), then each uploaded as one object (a Zarr map with its completion marker).

        The client checked that no output exists (or ``overwrite``) before any chunk ran; a rerun of this
        task by Dask uploads the same files again.
        """
        import tempfile

        from geohsi.storage import put

        with tempfile.TemporaryDirectory(prefix="geohsi-map-") as tmp:
            folder = Path(tmp)
            written = replace(self, outputs=self.outputs.localised(folder), overwrite=True)()
            # every file the writer made (the map, confidence, probabilities, quicklook) by name → its URL
            final = {name(u): str(u) for u in [*self.outputs.paths, self.outputs.quicklook]}
            urls = [final[Path(f).name] for f in written["outputs"]]
            for f, url in zip(written["outputs"], urls, strict=True):
                put(Path(f), url, overwrite=True)
        return {**written, "outputs": urls}

    def _ours(self) -> bool:
        recorded = maps.read_identity(self.outputs.map) if exists(self.outputs.map) else None
        return recorded is not None and all(recorded.get(k) == v for k, v in self.identity.items())

    def _write_maps(self, overwrite: bool) -> list[str]:
        from geohsi.files import atomic_output, joined_dask_threads
        from geohsi.scene import scene_crs, scene_transform

        grid, out, store, classes = self.grid, self.outputs, self.store.path, self.classes
        crs, transform = scene_crs(grid), scene_transform(grid)
        attrs = dict(self.identity)
        written = []
        with atomic_output(out.map, overwrite) as tmp:
            if out.kind == "tif":
                maps.write_class_cog(store, tmp, crs=crs, transform=transform, classes=classes, identity=attrs)
            else:
                variables = ("classes", "confidence") if out.confidence else ("classes",)
                with joined_dask_threads():
                    maps.write_zarr_map(store, tmp, scene=grid, classes=classes, variables=variables, attrs=attrs)
        written.append(str(out.map))
        if out.confidence_tif is not None:
            with atomic_output(out.confidence_tif, overwrite) as tmp:
                maps.write_scaled_cog(
                    store, "confidence", tmp, crs=crs, transform=transform, descriptions=["probability of the predicted class"]
                )
            written.append(str(out.confidence_tif))
        if out.probabilities is not None:
            with atomic_output(out.probabilities, overwrite) as tmp:
                if out.probabilities_kind == "tif":
                    names = [f"P({c.name})" for c in classes]
                    maps.write_scaled_cog(store, "probabilities", tmp, crs=crs, transform=transform, descriptions=names)
                else:
                    with joined_dask_threads():
                        maps.write_zarr_map(store, tmp, scene=grid, classes=classes, variables=("probabilities",), attrs=attrs)
            written.append(str(out.probabilities))
        return written


__all__ = ["IDENTITY_VERSION", "ClassifyResult", "MapJob", "MapOutputs", "MapWriter", "map_grid", "map_identity"]
