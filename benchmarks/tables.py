"""What the accuracy benchmarks share to write their results: the CSV of runs, runs grouped into
table rows, and ``mean ± sample std`` cells.

.. versionadded:: 0.2
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np


def write_runs_csv(rows: list[dict], out_md: Path) -> None:
    """Write one CSV line per run beside the Markdown table ``out_md`` (same name, ``.csv``)."""
    out_md.parent.mkdir(parents=True, exist_ok=True)
    with open(out_md.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def group_runs(rows: list[dict], key: Callable[[dict], Hashable]) -> dict[Hashable, list[dict]]:
    """Runs grouped by ``key`` (the seeds of one table row), in first-seen order."""
    groups: dict[Hashable, list[dict]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return groups


def mean_std(values: Sequence[float], scale: float = 100.0) -> str:
    """``"mean ± sample std"`` of ``values × scale`` to 2 decimals (the mean alone for one value)."""
    a = np.asarray(values, dtype="float64") * scale
    return f"{a.mean():.2f} ± {a.std(ddof=1):.2f}" if len(a) > 1 else f"{a.mean():.2f}"


__all__ = ["group_runs", "mean_std", "write_runs_csv"]
