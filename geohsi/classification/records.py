"""What a batch did, as ``summary.json`` holds it: a :class:`SceneRecord` per scene and the :class:`BatchResult`.

.. versionadded:: 0.2
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geohsi import storage
from geohsi.errors import BatchError


@dataclass
class SceneRecord:
    """One scene of a batch, as ``summary.json`` holds it.

    Attributes:
        name: the scene's name (output file stem).
        source: the path or STAC item it was read from.
        status: ``done`` (mapped in this run), ``skipped`` (complete from an earlier run),
            ``failed``, ``interrupted`` (stopped mid-way; a rerun resumes it) or ``not started``.
        message: the one-line error of a failed scene (or why it was interrupted).
        bundle: the bundle that mapped it.
        outputs: files written for it.
        item: its STAC item file.
        valid_pixels: classified pixels of the map.
        seconds: from submission to the last chunk (scenes in flight together overlap).
        pixels_per_second: pixels computed in this run per second.
        chunks: chunks of the map.
        computed: chunks computed in this run.
        reused: chunks reused from an interrupted run.
        classes: per class ``{id, name, pixels, percent, area_ha}`` (``area_ha`` ``None`` for pixel grids).
        area_note: how the areas were computed, or why not.
        warnings: one-line warnings about the scene (odd band table, values or model input unlike
            the training data).
    """

    name: str
    source: str
    status: str = "not started"
    message: str | None = None
    bundle: str | None = None
    outputs: list[str] = field(default_factory=list)
    item: str | None = None
    valid_pixels: int = 0
    seconds: float = 0.0
    pixels_per_second: float | None = None
    chunks: int = 0
    computed: int = 0
    reused: int = 0
    classes: list[dict[str, Any]] = field(default_factory=list)
    area_note: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchResult:
    """What a batch did: one :class:`SceneRecord` per scene, and the batch totals.

    Attributes:
        scenes: the records, in input order.
        out_dir: the output directory.
        catalog: ``catalog.json`` (a STAC Collection of every complete map), or ``None`` when none is.
        summary: ``summary.json``.
        seconds: wall time of the batch (cluster start-up excluded).
        workers: workers of the cluster.
        model_tasks: model task executions on the workers during the batch (``None`` when unknown).
        forward_seconds: worker seconds inside the model forward during the batch.
        dashboard: the Dask dashboard link, if any.
    """

    scenes: list[SceneRecord]
    out_dir: Path | str
    catalog: Path | str | None = None
    summary: Path | str | None = None
    seconds: float = 0.0
    workers: int = 0
    model_tasks: int | None = None
    forward_seconds: float | None = None
    dashboard: str | None = None

    @property
    def failed(self) -> list[SceneRecord]:
        """Scenes that failed."""
        return [s for s in self.scenes if s.status == "failed"]

    @property
    def forward_share(self) -> float | None:
        """Share of the workers' wall time spent in the model forward over the whole batch."""
        if self.forward_seconds is None or not self.workers or self.seconds <= 0:
            return None
        return min(1.0, self.forward_seconds / (self.seconds * self.workers))

    def counts(self) -> dict[str, int]:
        """Scenes per status."""
        out: dict[str, int] = {}
        for s in self.scenes:
            out[s.status] = out.get(s.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        from geohsi.version import __version__

        return {
            "geohsi_version": __version__,
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
            "out_dir": str(self.out_dir),
            "catalog": storage.name(self.catalog) if self.catalog else None,
            "scenes_by_status": self.counts(),
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
            "model_tasks": self.model_tasks,
            "forward_share": None if self.forward_share is None else round(self.forward_share, 4),
            "scenes": [s.to_dict() for s in self.scenes],
        }

    def raise_for_failures(self) -> None:
        """Raise :class:`~geohsi.errors.BatchError` when any scene failed (what the CLI's exit code reports).

        Raises:
            BatchError: naming how many scenes failed and where the summary is.
        """
        if self.failed:
            first = self.failed[0]
            raise BatchError(
                f"{len(self.failed)} of {len(self.scenes)} scenes failed (first: {first.name}: {first.message}); "
                f"see {self.summary or 'the lines above'} for each error, fix them and rerun the same command to map the rest"
            )


def class_rows(legend: Any, pixels: dict[int, int], area_m2: dict[int, float] | None) -> list[dict[str, Any]]:
    """Per class of the legend: ``{id, name, pixels, percent, area_ha}`` (``area_ha`` ``None`` without areas)."""
    total = sum(pixels.values())
    return [
        {
            "id": int(c.id),
            "name": c.name,
            "pixels": int(pixels.get(int(c.id), 0)),
            "percent": round(100.0 * pixels.get(int(c.id), 0) / total, 4) if total else 0.0,
            "area_ha": None if area_m2 is None else round(area_m2.get(int(c.id), 0.0) / 1e4, 4),
        }
        for c in legend
    ]


__all__ = ["BatchResult", "SceneRecord", "class_rows"]
