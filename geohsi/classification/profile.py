"""Where a classification's time goes: seconds per stage, from the workers' own records.

``geohsi classify --profile`` (``classify(..., profile=True)``) records the Dask task stream of the
run — every task's compute and transfer intervals on every worker thread — and sorts the tasks into
stages by their graph layer's name (:func:`stage_of`):

* **read + decompress** — the scene store's chunks (``zarr``/``original``/``open_dataset`` layers);
* **rechunk + halo** — ``rechunk``, ``overlap``, ``getitem`` and ``concatenate`` layers: chunks
  regrouped to the map's chunks and the halo cut from the neighbours;
* **spectral transform** — every other array operation before the model (PCA projection,
  resampling, normalisation, masking, casts);
* **model forward** and **tiles + blending** — the model task split by the worker's forward timer:
  the forwards themselves, and everything else in the task (cutting tiles or windows, weighting and
  summing them, the device upload), with the dense head's blend of each block with its
  neighbours' margins (``geohsi-blend``);
* **parts write** — class ids (and confidence) into the parts store;
* **transfer between workers** — data moved to the worker that needs it (the halo exchange);
* **map writing** — the final COG/Zarr from the parts store (on a worker for a URL output, in the
  client otherwise).

Seconds are summed over worker threads; the shares are of the run's capacity, wall seconds × worker
threads, so what is left is **idle** (waiting on the scheduler, on a slow neighbour, or on the
client). ``model inputs`` counts the windows or tiles the model ran: for a dense head, ``inputs ×
tile²`` over the map's pixels is the tile forwards per map pixel, which the tiling's own overlap
sets (``(tile / stride)²`` away from the scene's edges).

.. versionadded:: 0.3
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: the stages in the order a pixel meets them.
STAGES = (
    "read + decompress",
    "rechunk + halo",
    "spectral transform",
    "model forward",
    "tiles + blending",
    "parts write",
    "transfer between workers",
    "map writing",
)

_READ = ("zarr", "original", "open_dataset", "open-dataset", "from-")
_MOVE = ("rechunk", "overlap", "getitem", "concatenate", "reflect")


def stage_of(key: Any) -> str:
    """The stage of a task, from its key (a Dask key: ``"name-token"`` or ``("name-token", i, ...)``)."""
    from dask.utils import key_split

    raw = str(key[0] if isinstance(key, tuple) else key)
    name = key_split(key)  # the layer's name without its token (and without 8-letter words: hence ``raw`` below)
    if raw.startswith("geohsi-classify"):
        return "model"
    if raw.startswith("geohsi-blend"):
        return "tiles + blending"
    if raw.startswith("geohsi-store"):
        return "parts write"
    if raw.startswith("geohsi-finish"):
        return "map writing"
    if any(part in name for part in _READ):
        return "read + decompress"
    if any(name.startswith(part) for part in _MOVE):
        return "rechunk + halo"
    return "spectral transform"


@dataclass
class StageProfile:
    """Seconds per stage of one classification run.

    Attributes:
        seconds: worker-thread seconds per stage (:data:`STAGES`).
        wall_s: wall seconds of the run's chunk computation (and the map writing).
        threads: worker threads of the cluster.
        model_inputs: windows or tiles the model ran.
        pixels: map pixels classified.
        tile: the dense head's tile edge (``None``: a patch head).
    """

    seconds: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    threads: int = 1
    model_inputs: int = 0
    pixels: int = 0
    tile: int | None = None

    @property
    def shares(self) -> dict[str, float]:
        """Each stage's share of the run's capacity (wall × threads), and ``idle``: what no stage used."""
        capacity = max(self.wall_s * self.threads, 1e-12)
        out = {s: self.seconds.get(s, 0.0) / capacity for s in STAGES}
        out["idle"] = max(0.0, 1.0 - sum(out.values()))
        return out

    @property
    def tile_forwards_per_pixel(self) -> float | None:
        """Tile pixels the model ran per map pixel (a dense head; ``None`` for a patch head or no pixels)."""
        if self.tile is None or not self.pixels:
            return None
        return self.model_inputs * self.tile**2 / self.pixels

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: seconds, shares, the run's size and the tile forwards per pixel."""
        return {
            "seconds": {s: round(self.seconds.get(s, 0.0), 4) for s in STAGES},
            "shares": {k: round(v, 4) for k, v in self.shares.items()},
            "wall_s": round(self.wall_s, 4),
            "threads": self.threads,
            "model_inputs": self.model_inputs,
            "pixels": self.pixels,
            "tile_forwards_per_pixel": self.tile_forwards_per_pixel,
        }

    def lines(self) -> list[str]:
        """The profile as lines for a terminal: one per stage, then the model inputs."""
        out = [f"{self.wall_s:.1f} s × {self.threads} worker threads:"]
        for stage, share in self.shares.items():
            secs = f"{self.seconds[stage]:8.2f} s" if stage in self.seconds else " " * 10
            out.append(f"  {stage:<26} {secs}  {share:6.1%}")
        per_px = self.tile_forwards_per_pixel
        out.append(
            f"  model inputs {self.model_inputs:,} for {self.pixels:,} pixels"
            + (f" ({per_px:.3f} tile forwards per map pixel)" if per_px is not None else "")
        )
        return out


def stage_seconds(task_stream: Iterable[Mapping[str, Any]], forward_s: float) -> dict[str, float]:
    """Worker-thread seconds per stage from a Dask task stream, the model task split by ``forward_s``.

    Args:
        task_stream: the records of :func:`distributed.get_task_stream` (``key`` and ``startstops``
            with an ``action``: ``compute``, ``transfer``, ``disk-read``, ``disk-write``).
        forward_s: seconds the workers spent in the model forward during the run.
    """
    seconds = dict.fromkeys(STAGES, 0.0)
    for task in task_stream:
        stage = stage_of(task["key"])
        for ss in task.get("startstops", ()):
            dt = float(ss["stop"]) - float(ss["start"])
            if ss["action"] == "compute":
                seconds.setdefault(stage, 0.0)
                seconds[stage] += dt
            elif ss["action"] == "transfer":
                seconds["transfer between workers"] += dt
    model = seconds.pop("model", 0.0)
    seconds["model forward"] = min(forward_s, model) if model else forward_s
    seconds["tiles + blending"] += max(0.0, model - forward_s)
    return seconds


__all__ = ["STAGES", "StageProfile", "stage_of", "stage_seconds"]
