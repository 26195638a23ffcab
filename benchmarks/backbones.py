"""Which backbone to fine-tune (``python -m benchmarks backbones``): the shipped ``s2`` backbone vs the
shipped PCA one vs random initialisation, on Indian Pines ``per-class:10`` in patch mode (the paper's
protocol: one 15-px window per pixel resized to 32 px), seeds 0–2.

Rows: KronA+ on the ``s2`` backbone with ``--spectral s2``; KronA+ on the PCA backbone with
``--spectral pca`` (each backbone with the front end it was pretrained on, what ``geohsi train``
picks by default); KronA+ on a frozen random backbone (what the pretrained weights add for the
adapter); full fine-tuning from a random initialisation with ``--spectral s2`` and with
``--spectral pca`` (the from-scratch baselines of each front end). Test OA is the bundle's (the
split's test pixels). Writes a Markdown table and a CSV beside it; finished bundles in ``--workdir``
are reused, so an interrupted run resumes.

.. versionadded:: 0.2
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from benchmarks.tables import group_runs, mean_std, write_runs_csv

#: row name → (spectral front end, adapter, backbone: None = the default for the front end, or "random").
ROWS: dict[str, tuple[str, str, str | None]] = {
    "s2 backbone + KronA+": ("s2", "krona+", None),
    "PCA backbone + KronA+": ("pca", "krona+", None),
    "random init + KronA+ (s2)": ("s2", "krona+", "random"),
    "random init, full FT (s2)": ("s2", "full", "random"),
    "random init, full FT (pca)": ("pca", "full", "random"),
}


def run(
    *,
    workdir: str | Path,
    out: str | Path = "docs/backbones.md",
    rows: Sequence[str] = tuple(ROWS),
    seeds: Sequence[int] = (0, 1, 2),
    model: str = "small",
    split: str = "per-class:10",
    epochs: int = 150,
    lr: float = 2e-3,
    lr_full: float = 5e-4,
    command: str = "python -m benchmarks backbones",
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Train every (row, seed) on Indian Pines in patch mode and write the table.

    Returns:
        One dict per run: row, seed, OA, AA, kappa, backbone, train seconds.
    """
    import geohsi
    from geohsi.datasets.registry import ingest_dataset

    workdir, out = Path(workdir), Path(out)
    workdir.mkdir(parents=True, exist_ok=True)
    scene = workdir / "indian_pines.zarr"
    if not scene.exists():
        ingest_dataset("indian_pines", scene)
    results: list[dict] = []
    t_all = time.perf_counter()
    for seed in seeds:  # seed outermost: an interrupted run has every row of its first seeds
        for name in rows:
            spectral, adapter, backbone = ROWS[name]
            b = workdir / "bundles" / f"{spectral}_{adapter}_{backbone or 'default'}_{seed}".replace("+", "plus")
            if not (b / "bundle.json").exists():
                geohsi.train(scene, adapter=adapter, spectral=spectral, backbone=backbone, model=model, split=split,
                             seed=seed, head="patch", epochs=epochs, lr=lr_full if adapter == "full" else lr,
                             out=b, overwrite=True, progress=False, log=lambda m: None)  # fmt: skip
            meta = json.loads((b / "bundle.json").read_text())
            m, bb = meta["metrics"], meta["backbone"]
            row = {
                "row": name,
                "seed": seed,
                "oa": m["overall_accuracy"],
                "aa": m["average_accuracy"],
                "kappa": m["kappa"],
                "backbone": Path(bb["path"]).name if bb.get("path") else bb["identity"].get("name"),
                "pretrained_on": bb.get("pretrained_on", ""),
                "train_s": float(meta["train_config"]["wall_seconds"]),  # recorded by the run, also when reused
            }
            results.append(row)
            log(f"{name} seed {seed}: OA {row['oa']:.4f} ({row['backbone']}, {row['train_s']:.0f} s)")
            _write(results, out, command, time.perf_counter() - t_all, model, split, epochs)
    return results


def _write(rows: list[dict], out: Path, command: str, wall: float, model: str, split: str, epochs: int) -> None:
    write_runs_csv(rows, out)
    groups = group_runs(rows, lambda r: r["row"])
    ms = mean_std

    lines = [
        "# Backbones on Indian Pines (generated)",
        "",
        f"Command: `{command}` ({wall / 60:.1f} min for this invocation, {sum(r['train_s'] for r in rows) / 60:.1f} "
        f"min of training in all, on this machine). `{model}`, patch head (15-px windows → "
        f"32 px), `{split}`, {epochs} epochs; adapters lr 2e-3, full fine-tuning 5e-4. OA/AA/κ on the "
        "split's test pixels, mean ± sample std over seeds.",
        "",
        "| backbone and method | backbone file | seeds | OA % | AA % | κ × 100 | train s/run |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, g in groups.items():
        lines.append(
            f"| {name} | {g[0]['backbone']} | {len(g)} | {ms([r['oa'] for r in g])} | "
            f"{ms([r['aa'] for r in g])} | {ms([r['kappa'] for r in g])} | {np.mean([r['train_s'] for r in g]):.0f} |"
        )
    out.write_text("\n".join(lines) + "\n")


__all__ = ["ROWS", "run"]
