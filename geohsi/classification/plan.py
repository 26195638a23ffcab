"""The classification graph: channels → overlap(halo) → map_blocks(model) → probabilities → class map.

::

    scene cube (band, y, x) ──rechunk (all bands, c × c)──► PixelMap.apply_numpy   [C, H, W] float32, NaN = invalid
        (the bundle's transform for this scene folded into one affine step per chunk)
        ──overlap_reflect(r)──► blocks [C, c + 2r, c + 2r]  (neighbours inside, reflection at edges)
        (on GPU workers: raw bands [R, …] are overlapped instead, and each task turns its block
        into channels on its GPU with the transform's PixelMap)
        ──map_blocks(task)──► [K, H, W] float32 (NaN = invalid); the halo is consumed by the
                              window/tile cut, so no trim step is needed
        ──argmax → class ids──► [H, W] uint8/uint16, 0 = nodata

The bundle's head (:mod:`geohsi.heads`) gives the halo, the default chunk and the prediction of
each block (:func:`~geohsi.classification.worker.block_task` calls ``head.predict_block``):

* ``patch`` — one window per pixel, ``r = window // 2``;
* ``dense`` — tiles on a grid anchored to the scene and blended with a Hann weight
  (:mod:`geohsi.prediction.tiles`), ``r = tile − 1``. Every task gets the scene position of its
  block (``offsets`` + ``block_id``), so a pixel sees the same tiles whatever the chunking: the map
  does not depend on ``--chunks`` and has no seams at chunk borders.

``map_blocks`` is called with explicit output chunks ``((K,), y-chunks, x-chunks)`` on the halo'd
array, so the channel axis becomes the class axis without ``new_axis``/``drop_axis`` (and without
``map_overlap``, whose ``new_axis`` handling is broken: dask issue 11961). The model layer is the
only one annotated with ``resources={"GPU": 1}`` when GPU workers are used.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from geohsi.classification.worker import InferenceSpec, block_task
from geohsi.errors import UsageError
from geohsi.export.maps import NODATA, labels_from_probabilities
from geohsi.scene import scene_identity


@dataclass
class Plan:
    """A built classification graph.

    Attributes:
        scene: the scene Dataset.
        bundle: the loaded :class:`~geohsi.bundle.Bundle`.
        spec: the inference spec carried by every model task.
        chunk: spatial chunk edge (pixels).
        radius: halo width (the head's ``halo``).
        probabilities: lazy ``[K, H, W]`` float32, NaN at invalid pixels.
        gpu: whether the model layer carries ``resources={"GPU": 1}``.
    """

    scene: xr.Dataset
    bundle: Any
    spec: InferenceSpec
    chunk: int
    radius: int
    probabilities: da.Array
    gpu: bool

    @property
    def chunks_yx(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Row and column chunk sizes of the map."""
        return self.probabilities.chunks[1], self.probabilities.chunks[2]

    @property
    def block_grid(self) -> tuple[int, int]:
        """Number of chunks along y and x."""
        return self.probabilities.numblocks[1], self.probabilities.numblocks[2]


def chunk_edge(head: Any, h: int, w: int, n_bands: int, chunks: int | None, batch_size: int | None) -> int:
    """The spatial chunk edge (the head's default for ``None``), after checking it and the batch size;
    never above the scene (a chunk edge of 100,000 px had sized the parts store's chunks so, and a
    worker filled its memory writing a 192 × 160 scene into one).

    Raises:
        UsageError: ``chunks`` or ``batch_size`` is not a positive count.
    """
    if chunks is None:
        chunks = head.default_chunk(h, w, n_bands)
    check_counts(chunks, batch_size)
    return min(int(chunks), max(h, w))


def check_counts(chunks: int | None, batch_size: int | None) -> None:
    """Refuse a chunk edge or a batch size (``None``: the default) that is not a positive count.

    Raises:
        UsageError: naming the option.
    """
    if chunks is not None and (isinstance(chunks, bool) or int(chunks) < 1):
        raise UsageError(f"--chunks must be a positive pixel count, got {chunks}")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise UsageError(f"--batch-size must be a positive number of windows (tiles in dense mode), got {batch_size}")


def _channel_grid(scene: xr.Dataset, bundle: Any, chunks: int, spectral_on_device: bool) -> tuple[da.Array, Any]:
    """``(grid, pixel_map)``: the raw bands the transform reads (on device) or its channels (on the host), per chunk."""
    from geohsi.scene import cube, rechunk_scene

    # Rechunk the raw cube (all bands together) so the spectral transform already runs per map chunk.
    ds = rechunk_scene(scene, chunks)  # data variables only: band coordinates stay in memory
    # The transform is per pixel, so reflecting raw bands at the edges then transforming equals
    # transforming then reflecting: the blocks are the same pixels either way.
    pixel_map = bundle.transform.pixel_map(ds)
    raw = cube(ds).data
    if len(pixel_map.bands) < raw.shape[0]:
        raw = raw[pixel_map.bands]
    if spectral_on_device:
        grid = raw
    else:  # one fused task per chunk on the host (PixelMap.apply_numpy), then the halo of C channels
        grid = raw.map_blocks(
            pixel_map.apply_numpy,
            chunks=((pixel_map.n_channels,), *raw.chunks[1:]),
            dtype=np.float32,
            meta=np.empty((0, 0, 0), np.float32),
            name="spectral-transform-" + dask.base.tokenize(raw.name, pixel_map),
        )
    return grid, pixel_map


def build_plan(
    scene: xr.Dataset,
    bundle: Any,
    *,
    chunks: int | None = None,
    batch_size: int | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    gpu_resources: bool = False,
    torch_threads: int | None = None,
    host_workers: dict[str, int] | None = None,
    spectral_on_device: bool | None = None,
) -> Plan:
    """Build the lazy probability graph of a scene for a bundle (patch or dense mode, from the bundle).

    Args:
        scene: an opened scene (lazy).
        bundle: a loaded bundle.
        chunks: spatial chunk edge (default: the head's ``default_chunk``).
        batch_size: windows (patch) or tiles (dense) per forward in each task; ``None``: chosen per
            device by the worker.
        device: ``cpu`` or ``cuda`` (workers fall back to the CPU with a warning when they have no GPU).
        precision: ``fp32`` or ``bf16``.
        gpu_resources: annotate the model layer with ``resources={"GPU": 1}``.
        torch_threads: torch threads per worker process (``None``: cores / Dask threads on the host).
        host_workers: ``{host: Dask threads}`` of the cluster (for ``torch_threads=None``).
        spectral_on_device: run the spectral transform inside the model task on the worker's device
            (the halo'd blocks then carry the raw bands the transform reads, and the task uploads
            the raw block once); ``False``: on the host, one fused task per chunk before the halo; ``None``:
            on the device for ``cuda``, on the host for ``cpu`` (where the fused numpy step is faster and
            the halo exchange moves 12 channels instead of every band).

    Returns:
        The :class:`Plan`.

    Raises:
        UsageError: bad chunk or batch size, a window larger than the scene (patch mode) or a scene
            smaller than one tile (dense mode).
        BandMismatchError: the scene does not fit the bundle's spectral transform.
    """
    from geohsi.spectral.windows import overlap_reflect

    h, w = int(scene.sizes["y"]), int(scene.sizes["x"])
    head = bundle.head
    head.check_scene(h, w, str(scene.encoding.get("source", "the scene")), str(bundle.path))
    r = head.halo
    chunks = chunk_edge(head, h, w, int(scene.sizes["band"]), chunks, batch_size)
    if spectral_on_device is None:
        spectral_on_device = device.startswith("cuda")
    grid, pixel_map = _channel_grid(scene, bundle, chunks, spectral_on_device)
    blocks = overlap_reflect(grid, r)
    k = len(bundle.classes)
    spec = InferenceSpec(
        bundle_path=bundle.location,
        bundle_hash=bundle.hash,
        head=head,
        n_classes=k,
        batch_size=None if batch_size is None else int(batch_size),
        device=device,
        precision=precision,
        torch_threads=torch_threads,
        host_workers=tuple(sorted((host_workers or {}).items())),
        pixel_map=pixel_map if spectral_on_device else None,
        backbone=bundle.moved_backbone,
    )
    probs = _model_layer(blocks, spec, r, grid.chunks[1:], (h, w), gpu_resources)
    return Plan(scene, bundle, spec, chunks, r, probs, gpu_resources)


def _model_layer(
    blocks: da.Array, spec: InferenceSpec, halo: int, chunks: tuple[tuple[int, ...], ...], shape: tuple[int, int], gpu: bool
) -> da.Array:
    """``[K, H, W]`` probabilities from the halo'd blocks: the model task per block (annotated for GPU
    workers), and for a head with a reach the blend of each block's sums with its neighbours'."""
    k, reach = spec.n_classes, spec.head.reach
    # scene row/column of each chunk's first core pixel: a dense head anchors its tile grid there
    ys = tuple(int(v) for v in np.cumsum((0,) + chunks[0][:-1]))
    xs = tuple(int(v) for v in np.cumsum((0,) + chunks[1][:-1]))
    out_chunks = ((k,), *chunks)
    if reach:  # the sums over each core and the margin its tiles reach (inside the scene)
        out_chunks = ((k + 1,), *(tuple(min(c + reach, n - o) for c, o in zip(cs, os_, strict=True))
                                  for cs, os_, n in zip(chunks, (ys, xs), shape, strict=True)))  # fmt: skip
    ctx = dask.annotate(resources={"GPU": 1}) if gpu else contextlib.nullcontext()
    with ctx:
        out = blocks.map_blocks(
            block_task,
            spec=spec,
            halo=halo,
            offsets=(ys, xs),
            scene_shape=shape,
            chunks=out_chunks,
            dtype=np.float64 if reach else np.float32,
            meta=np.empty((0, 0, 0), np.float64 if reach else np.float32),
            name="geohsi-classify-" + dask.base.tokenize(blocks.name, spec),
        )
    return _blend_layer(out, k, chunks, (ys, xs)) if reach else out


def _blend_layer(sums: da.Array, k: int, chunks: tuple[tuple[int, ...], ...], starts: tuple[tuple[int, ...], ...]) -> da.Array:
    """Overlap-add: each block's probabilities from its own sums and the margins of the blocks above and
    to the left that reach it (:func:`~geohsi.prediction.blend_accumulated`)."""
    from dask.highlevelgraph import HighLevelGraph

    from geohsi.prediction import blend_accumulated

    name = "geohsi-blend-" + dask.base.tokenize(sums.name)
    ys, xs = starts
    reach_y = [[a for a in range(i + 1) if ys[a] + sums.chunks[1][a] > ys[i]] for i in range(len(ys))]
    reach_x = [[b for b in range(j + 1) if xs[b] + sums.chunks[2][b] > xs[j]] for j in range(len(xs))]
    dsk = {}
    for i, rows in enumerate(reach_y):
        for j, cols in enumerate(reach_x):
            parts = [(sums.name, 0, a, b) for a in rows for b in cols]
            offsets = [(ys[a] - ys[i], xs[b] - xs[j]) for a in rows for b in cols]
            dsk[(name, 0, i, j)] = (blend_accumulated, parts, offsets, (chunks[0][i], chunks[1][j]))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[sums])
    return da.Array(graph, name, chunks=((k,), *chunks), dtype=np.float32, meta=np.empty((0, 0, 0), np.float32))


def _georef(arr: xr.DataArray, scene: xr.Dataset) -> xr.DataArray:
    from geohsi.scene import scene_crs, scene_transform, write_georef

    return write_georef(arr, scene_transform(scene), scene_crs(scene))


def as_dataarray(plan: Plan, what: str = "labels") -> xr.DataArray:
    """Wrap a plan's graph as a georeferenced lazy DataArray.

    Args:
        plan: a built :class:`Plan`.
        what: ``labels`` (class ids ``(y, x)``, 0 = nodata), ``probabilities`` (``(class, y, x)``
            float32, NaN = nodata) or ``confidence`` (max probability ``(y, x)`` float32).

    Returns:
        Lazy DataArray with the scene's ``y``/``x`` coords and ``spatial_ref`` (CRS when the scene has one).

    Raises:
        UsageError: unknown ``what``.
    """
    s = plan.scene
    classes = plan.bundle.classes
    ids = classes.ids
    attrs = {**classes.to_attrs(), "bundle": plan.spec.bundle_path, "bundle_sha256": plan.spec.bundle_hash}
    coords = {"y": s["y"].values, "x": s["x"].values}
    if what == "labels":
        arr = xr.DataArray(labels_from_probabilities(plan.probabilities, ids), dims=("y", "x"), coords=coords, name="classes")
        arr.attrs.update(attrs, long_name="class id (0 = nodata)")
        arr.attrs["_FillValue"] = NODATA  # what rio.write_nodata(encoded=False) writes; rio.nodata reads it
    elif what == "probabilities":
        arr = xr.DataArray(plan.probabilities, dims=("class", "y", "x"), coords={"class": ids, **coords}, name="probabilities")
        arr.attrs.update(attrs, long_name="class probability (NaN = nodata)")
    elif what == "confidence":
        conf = plan.probabilities.max(axis=0)  # NaN stays NaN at invalid pixels
        arr = xr.DataArray(conf, dims=("y", "x"), coords=coords, name="confidence")
        arr.attrs.update(attrs, long_name="probability of the predicted class (NaN = nodata)")
    else:
        raise UsageError(f"unknown output {what!r}; use labels, probabilities or confidence")
    return _georef(arr, s)


def open_inputs(scene: Any, bundle: Any) -> tuple[xr.Dataset, Any]:
    """An opened scene and a loaded bundle from paths (or the objects themselves).

    ``scene`` is a scene store, any source file ``geohsi ingest`` reads, a ``pystac.Item`` (read
    lazily in place: :func:`geohsi.ingestion.open_source`) or an opened Dataset.
    """
    from geohsi.bundle import Bundle, load_bundle
    from geohsi.ingestion import open_source

    ds = scene if isinstance(scene, xr.Dataset) else open_source(scene)
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    return ds, b


def predict_map(
    scene: str | os.PathLike | xr.Dataset,
    bundle: Any,
    client: Any = None,
    *,
    what: str = "labels",
    chunks: int | None = None,
    batch_size: int | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    spectral_on_device: bool | None = None,
) -> xr.DataArray:
    """The lazy class map of a scene: a georeferenced DataArray, nothing runs until it is computed.

    :func:`geohsi.classify` writes files; this is the same graph for a notebook to ``.compute()``,
    plot, or write itself.

    Args:
        scene: a scene store path or an opened scene.
        bundle: a bundle directory or a loaded :class:`~geohsi.bundle.Bundle`.
        client: a :class:`distributed.Client` whose workers will compute the result; used to size
            torch threads per host and, with ``device="cuda"``, to annotate the model tasks with
            ``resources={"GPU": 1}`` when some worker advertises a GPU. Compute with
            ``optimize_graph=False`` to keep that annotation (dask issue 7036).
        what: ``labels`` (class ids ``(y, x)``, 0 = nodata), ``probabilities`` (``(class, y, x)``
            float32, NaN = nodata) or ``confidence`` (``(y, x)`` max probability).
        chunks: spatial chunk edge in pixels (default: the bundle head's, 128 patch / 256 dense,
            fewer for very many bands).
        batch_size: windows (patch) or tiles (dense) per forward (default: the head's per-device default).
        device: ``cpu`` or ``cuda``.
        precision: ``fp32`` or ``bf16``.
        spectral_on_device: run the spectral transform in the model task on the worker's device
            (default: for ``cuda``); see :func:`build_plan`.

    Returns:
        A lazy DataArray with the scene's coordinates and ``spatial_ref`` (``rio.crs`` set when the
        scene has a CRS); attrs carry class ids, names and colours.

    Raises:
        BandMismatchError: the scene's bands do not fit the bundle.
        UsageError: bad options.

    Example:
        >>> m = predict_map("ip.zarr", "runs/latest").compute()  # doctest: +SKIP

    .. versionadded:: 0.1
    """
    ds, b = open_inputs(scene, bundle)
    gpu, host_workers = False, None
    if client is not None:
        from geohsi.classification.cluster import cluster_info

        info = cluster_info(client, device)
        gpu, host_workers, device = info.gpu_resources, info.host_workers, info.device
    plan = build_plan(
        ds,
        b,
        chunks=chunks,
        batch_size=batch_size,
        device=device,
        precision=precision,
        gpu_resources=gpu,
        host_workers=host_workers,
        spectral_on_device=spectral_on_device,
    )
    return as_dataarray(plan, what)


__all__ = ["Plan", "as_dataarray", "build_plan", "chunk_edge", "open_inputs", "predict_map", "scene_identity"]
