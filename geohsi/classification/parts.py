"""The resumable parts store of a classification: chunk results land here as they finish.

The store ``.NAME.parts.zarr`` sits beside the output. Every chunk task writes its region of each
array (chunk-aligned, so parallel writers never touch the same Zarr chunk) and then a marker
``done/I_J.json`` (written under a temporary name and renamed, so a marker only exists for a
complete chunk). A re-run with the same bundle hash, scene identity, chunking and outputs skips the
chunks that have markers. After the last chunk the writers of :mod:`geohsi.export.maps` convert
the store once into the final outputs, and the store is removed.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geohsi import storage
from geohsi.export.maps import NODATA, labels_from_probabilities
from geohsi.storage import is_url


def intermediate_path(out: Path | str) -> Path | str:
    """The resumable intermediate store of an output: ``.NAME.parts.zarr`` beside it (in the same bucket for a URL)."""
    if is_url(out):
        base, name = str(out).rstrip("/").rsplit("/", 1)
        return f"{base}/.{name}.parts.zarr"
    return out.parent / f".{out.name}.parts.zarr"


@dataclass
class PartsStore:
    """The chunk store of one classification run.

    Attributes:
        path: the ``.parts.zarr`` directory (a URL beside a URL output: workers write it directly).
        shape: ``(H, W)``.
        chunk: spatial chunk edge.
        n_classes: K.
        probabilities: whether per-class probabilities are stored.
        confidence: whether the max probability is stored.
    """

    path: Path | str
    shape: tuple[int, int]
    chunk: int
    n_classes: int
    probabilities: bool
    confidence: bool

    @property
    def name(self) -> str:
        """The store's folder name."""
        return storage.name(self.path)

    @property
    def done_dir(self) -> Path | str:
        return storage.join(self.path, "done")

    def done(self) -> set[tuple[int, int]]:
        """Chunks ``(i, j)`` whose results are complete."""
        return {_chunk_of(n) for n in storage.list_names(self.done_dir, ".json") if not n.startswith(".")}

    def markers(self) -> dict[tuple[int, int], dict[str, Any]]:
        """The content of every completion marker (write id, worker, pid, class counts and areas)."""
        names = [n for n in storage.list_names(self.done_dir, ".json") if not n.startswith(".")]
        return {_chunk_of(n): json.loads(storage.read_text(storage.join(self.done_dir, n))) for n in names}

    def totals(self) -> tuple[dict[int, int], dict[int, float] | None]:
        """Pixels and ground area (m²) per class id, summed over every completed chunk.

        Chunks computed by an earlier, interrupted run count too: their markers hold their numbers.

        Returns:
            ``(counts, areas)``; ``areas`` is ``None`` when the chunks carry no areas (pixel grid).
        """
        counts: dict[int, int] = {}
        areas: dict[int, float] | None = {}
        for m in self.markers().values():
            for k, n in m.get("counts", {}).items():
                counts[int(k)] = counts.get(int(k), 0) + int(n)
            if areas is not None and "area_m2" in m:
                for k, a in m["area_m2"].items():
                    areas[int(k)] = areas.get(int(k), 0.0) + float(a)
            elif m.get("counts"):
                areas = None
        return dict(sorted(counts.items())), None if areas is None else dict(sorted(areas.items()))


def _chunk_of(marker_name: str) -> tuple[int, int]:
    i, j = marker_name.removesuffix(".json").split("_")
    return int(i), int(j)


def open_intermediate(
    out: Path | str,
    *,
    identity: dict[str, Any],
    shape: tuple[int, int],
    chunk: int,
    n_classes: int,
    dtype: np.dtype,
    probabilities: bool,
    confidence: bool,
    resume: bool,
) -> tuple[PartsStore, str | None]:
    """Open the intermediate store for resuming, or (re)create it.

    Args:
        out: the final output path.
        identity: bundle hash, scene identity, chunking and outputs; must equal the stored one to resume.
        shape: ``(H, W)``.
        chunk: spatial chunk edge.
        n_classes: K.
        dtype: class-id dtype.
        probabilities: store per-class probabilities.
        confidence: store the max probability.
        resume: reuse matching completed chunks.

    Returns:
        ``(intermediate, note)``; ``note`` says why an existing store was discarded, if it was.
    """
    import zarr

    path = intermediate_path(out)
    inter = PartsStore(path, shape, chunk, n_classes, probabilities, confidence)
    note = None
    if storage.exists(path):
        try:
            stored = dict(zarr.open_group(str(path), mode="r").attrs).get("identity")
        except Exception:  # a broken store from a crash during creation: start again
            stored = None
        if resume and stored == identity:
            return inter, None
        note = (
            "--no-resume: recomputing every chunk"
            if not resume
            else f"intermediate {storage.display(path)} belongs to another bundle, scene, chunking or output set; recomputing every chunk"
        )
        storage.remove_tree(path)
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    h, w = shape
    g.create_array("classes", shape=(h, w), chunks=(chunk, chunk), dtype=dtype, fill_value=NODATA)
    if probabilities:
        g.create_array(
            "probabilities", shape=(n_classes, h, w), chunks=(n_classes, chunk, chunk), dtype="float32", fill_value=np.nan
        )
    if confidence:
        g.create_array("confidence", shape=(h, w), chunks=(chunk, chunk), dtype="float32", fill_value=np.nan)
    g.attrs["identity"] = identity
    storage.make_dirs(inter.done_dir)
    return inter, note


def store_chunk(
    probs: np.ndarray, i: int, j: int, *, inter: PartsStore, class_ids: np.ndarray, row_areas: np.ndarray | None = None
) -> int:
    """Write one chunk's results into the intermediate store, then its completion marker.

    Runs on a worker. Region writes are aligned to the store's chunks, so concurrent tasks never
    write the same Zarr chunk. The marker records the chunk's pixels per class and, with
    ``row_areas``, their ground area, so the map's class areas come from the same pass (and from
    the markers of chunks an interrupted run completed).

    Args:
        probs: ``[K, h, w]`` float32 probabilities of chunk ``(i, j)``, NaN = nodata.
        i: chunk row index.
        j: chunk column index.
        inter: the intermediate store.
        class_ids: ``[K]`` class id per logit.
        row_areas: ``[h]`` m² per pixel of each of the chunk's rows (:func:`geohsi.scene.pixel_areas`),
            or ``None`` (pixel grid).

    Returns:
        The number of classified (valid) pixels in the chunk.
    """
    import socket

    import zarr

    g = zarr.open_group(str(inter.path), mode="r+")
    y0, x0 = i * inter.chunk, j * inter.chunk
    _, h, w = probs.shape
    labels = labels_from_probabilities(probs, class_ids)
    g["classes"][y0 : y0 + h, x0 : x0 + w] = labels
    if inter.probabilities:
        g["probabilities"][:, y0 : y0 + h, x0 : x0 + w] = probs
    if inter.confidence:
        g["confidence"][y0 : y0 + h, x0 : x0 + w] = probs.max(axis=0)
    worker = None
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        pass
    marker: dict[str, Any] = {"write_id": uuid.uuid4().hex, "worker": worker, "host": socket.gethostname(), "pid": os.getpid()}
    ids, per_class = np.unique(labels[labels != NODATA], return_counts=True)
    marker["counts"] = {str(int(k)): int(n) for k, n in zip(ids, per_class, strict=True)}
    if row_areas is not None:
        rows_area = np.asarray(row_areas, dtype="float64")[:, None]
        marker["area_m2"] = {str(int(k)): float(np.broadcast_to(rows_area, labels.shape)[labels == k].sum()) for k in ids}
    # whole or not at all: renamed into place (a local store) or one object (a bucket)
    storage.write_text(storage.join(inter.done_dir, f"{i}_{j}.json"), json.dumps(marker))
    return int(per_class.sum())


def remove_intermediate(inter: PartsStore) -> None:
    """Delete the intermediate store once every output is in place."""
    storage.remove_tree(inter.path)


__all__ = ["PartsStore", "intermediate_path", "open_intermediate", "remove_intermediate", "store_chunk"]
