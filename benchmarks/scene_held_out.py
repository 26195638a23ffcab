"""Training on the 18 EnMAP Potsdam tiles as they come, and scoring on tiles the model never saw.

``python -m benchmarks scene-held-out`` runs, on the real tiles (GeoTIFFs read in place, label tiles
paired by name — no ingest, no mosaic):

* **tiles vs mosaic**: the same run (KronA+, ``small`` dense, ``fraction:0.1``) on the 18 tiles and
  on their ingested mosaic, per seed — the tiles must land within the mosaic's seed spread;
* **whole tiles held out** (``scenes:0.7``): KronA+ and full fine-tuning, on the default 32-px tiles
  and on 16-px tiles (less spatial context to learn by heart), KronA+ with the decoder's context
  dropout (``--context-dropout 0.75 --epochs 600``), KronA+ on the Sentinel-2 resampling
  (``--spectral s2``) without and with context dropout (0.9, 600 epochs), KronA+ on the training
  pixels' discriminant directions (``--spectral lda``) with context dropout, against the SVM
  baseline on the same split (the same held-out tiles, per seed) and the same training pixels:
  these runs hold out no validation tiles (``val_fraction=0``). Without early stopping a network's
  validation set is only logged, and the SVM adds validation pixels to its training set, so with
  the default 10 % the networks trained on 2–3 tiles fewer than the SVM they were compared with
  (before 0.3).

It writes a section of ``docs/results.md`` and the runs' CSV (``docs/scene_held_out.csv``).

.. versionadded:: 0.2
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.tables import group_runs, mean_std, write_runs_csv

#: (row label, data, split, adapter, dense tile edge, other training options) of the network
#: runs; the SVM runs on the scenes split too. The context-dropout rows' options were chosen on
#: seeds 3–5 (docs/results.md), not on the table's seeds.
RUNS: tuple[tuple[str, str, str, str, int, dict], ...] = (
    ("mosaic, KronA+", "mosaic", "fraction:0.1", "krona+", 32, {}),
    ("18 tiles, KronA+", "tiles", "fraction:0.1", "krona+", 32, {}),
    ("18 tiles, whole tiles held out, KronA+", "tiles", "scenes:0.7", "krona+", 32, {}),
    ("18 tiles, whole tiles held out, full FT", "tiles", "scenes:0.7", "full", 32, {}),
    ("18 tiles, whole tiles held out, KronA+, 16-px tiles", "tiles", "scenes:0.7", "krona+", 16, {}),
    ("18 tiles, whole tiles held out, full FT, 16-px tiles", "tiles", "scenes:0.7", "full", 16, {}),
    (
        "18 tiles, whole tiles held out, KronA+, context dropout 0.75, 600 epochs",
        "tiles", "scenes:0.7", "krona+", 32, {"context_dropout": 0.75, "epochs": 600},
    ),
    ("18 tiles, whole tiles held out, KronA+, --spectral s2", "tiles", "scenes:0.7", "krona+", 32, {"spectral": "s2"}),
    (
        "18 tiles, whole tiles held out, KronA+, --spectral s2, context dropout 0.9, 600 epochs",
        "tiles", "scenes:0.7", "krona+", 32, {"spectral": "s2", "context_dropout": 0.9, "epochs": 600},
    ),
    (
        "18 tiles, whole tiles held out, KronA+, --spectral lda, context dropout 0.75, 600 epochs",
        "tiles", "scenes:0.7", "krona+", 32, {"spectral": "lda", "context_dropout": 0.75, "epochs": 600},
    ),
)  # fmt: skip

#: Validation share of the whole-tiles runs: none, so the networks and the SVM train on the same tiles.
HELD_OUT_VAL_FRACTION = 0.0


def _inputs(data_dir: Path, work: Path) -> dict[str, tuple[list, object]]:
    from geohsi.datasets.registry import ingest_dataset
    from geohsi.training import LabelSource

    mosaic = work / "enmap_potsdam.zarr"
    if not mosaic.exists():
        ingest_dataset("enmap_potsdam", mosaic)
    tiles = sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))
    return {
        "mosaic": ([mosaic], None),
        "tiles": (tiles, LabelSource.from_options(str(data_dir / "enmap_potsdam" / "labels" / "*.tif"))),
    }


def run(
    data_dir: Path,
    *,
    seeds: int = 3,
    model: str = "small",
    epochs: int = 150,
    workdir: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Every run of :data:`RUNS` and the SVM, per seed; one CSV-ready row each."""
    import geohsi

    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="geohsi-scenes-"))
    work.mkdir(parents=True, exist_ok=True)
    inputs = _inputs(data_dir, work)
    rows = []
    for seed in range(seeds):
        for label, data, split, adapter, tile, options in RUNS:
            scenes, labels = inputs[data]
            t0 = time.perf_counter()
            tag = "".join(f"-{k}{v}" for k, v in options.items())
            out = work / f"{data}-{split}-{adapter}-{tile}{tag}-{seed}".replace(":", "")
            geohsi.train(
                scenes,
                labels=labels,
                adapter=adapter,
                model=model,
                split=split,
                input_size=tile,
                **_held_out(split),
                **({"epochs": epochs} | options),
                seed=seed,
                out=out,
                overwrite=True,
                progress=False,
                log=lambda m: None,
            )
            m = json.loads((out / "metrics.json").read_text())
            rows.append(_row(label, split, seed, m, time.perf_counter() - t0))
            log(json.dumps(rows[-1]))
        scenes, labels = inputs["tiles"]
        t0 = time.perf_counter()
        m = geohsi.baseline(scenes, labels=labels, method="svm", split="scenes:0.7", seed=seed, **_held_out("scenes:0.7"))
        rows.append(_row("18 tiles, whole tiles held out, SVM (raw spectra)", "scenes:0.7", seed, m, time.perf_counter() - t0))
        log(json.dumps(rows[-1]))
    return rows


def _held_out(split: str) -> dict[str, float]:
    """The validation share of a run: :data:`HELD_OUT_VAL_FRACTION` for whole tiles held out, else the default."""
    return {"val_fraction": HELD_OUT_VAL_FRACTION} if split.startswith("scenes") else {}


def _row(label: str, split: str, seed: int, m: dict, seconds: float) -> dict:
    return {
        "run": label,
        "split": split,
        "seed": seed,
        "oa": m["overall_accuracy"],
        "aa": m["average_accuracy"],
        "kappa": m["kappa"],
        "n_test": m["n_test"],
        "seconds": round(seconds, 1),
    }


def markdown(rows: list[dict], command: str) -> str:
    """The section of docs/results.md: one row per run label, mean ± std over seeds, and the per-seed OA."""
    lines = [
        f"Command: `{command}` (2-core CPU machine, `small` dense, PCA to 12 channels, 32-px tiles and 150 epochs unless the row says otherwise, no validation tiles under `scenes:0.7`; CSV: `docs/scene_held_out.csv`).",
        "",
        "| run | split | OA % | AA % | κ × 100 | test px (per seed when they differ) | OA per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, runs in group_runs(rows, lambda r: r["run"]).items():
        per_seed = " / ".join(f"{100 * r['oa']:.2f}" for r in runs)
        n_test = " / ".join(f"{int(n):,}" for n in dict.fromkeys(r["n_test"] for r in runs))
        lines.append(
            f"| {label} | `{runs[0]['split']}` | {mean_std([r['oa'] for r in runs])} | {mean_std([r['aa'] for r in runs])} | "
            f"{mean_std([r['kappa'] for r in runs])} | {n_test} | {per_seed} |"
        )
    return "\n".join(lines) + "\n"


def write(rows: list[dict], out: Path, command: str) -> Path:
    """Write the CSV beside ``docs/`` and the section into ``out`` (docs/results.md)."""
    from benchmarks.inference import replace_section

    write_runs_csv(rows, out.with_name("scene_held_out.md"))
    start, end = "<!-- scene-held-out:start -->", "<!-- scene-held-out:end -->"
    return replace_section(
        out,
        start,
        end,
        f"{start}\n{markdown(rows, command)}{end}",
        heading="## Many scenes: the tiles as they come, whole tiles held out",
    )


__all__ = ["RUNS", "markdown", "run", "write"]
