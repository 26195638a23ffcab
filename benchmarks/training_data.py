"""Training from more scenes than fit in memory: peak memory and data wait of one epoch from 8, 32 and 128 scenes.

``python -m benchmarks training-data`` writes a few 1024 × 1024 × 224 scene stores (uint16, chunks of
256², eight labelled 24 × 24 fields per scene) and links them under as many names as a run needs
(disk: ``bases`` × 470 MB), then trains one epoch (``geohsi train``'s defaults: the ``small`` model,
dense head, KronA+; ``fraction:0.9`` split, no validation) from 8, 32 and 128 of them, each run in a
fresh process, and reports per run:

* the peak resident memory of the training process and of its largest data-loader worker
  (``VmHWM`` / ``RUSAGE_CHILDREN``), and their sum with every worker counted;
* the share of the epoch's step loop spent waiting for the next batch (``data_wait_s`` / ``train_s``
  of the bundle's training log), samples per second, the wall time of the run.

The goals (issue 28): peak memory at 128 scenes ≤ 1.2 × at 8; data wait ≤ 10 % of step time with the
default loader settings. (Before 0.3 the runs trained the ``tiny`` model with LoRA, not the defaults the
docs named: a step a fraction of the default's, against the same reads.)

.. versionadded:: 0.2
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Labelled fields per scene (24 × 24 pixel squares, classes 1..6, at random places).
FIELDS_PER_SCENE = 8
FIELD = 24


def write_stores(workdir: Path, bases: int, size: int, bands: int, log: Callable[[str], None]) -> list[Path]:
    """``bases`` distinct synthetic scene stores (random uint16 spectra, sparse labels), written chunk by chunk."""
    import dask.array as da

    from geohsi.scene import add_labels, make_scene, write_scene

    out = []
    for k in range(bases):
        path = workdir / f"base_{k}.zarr"
        out.append(path)
        if path.exists():
            continue
        t0 = time.perf_counter()
        cube = (da.random.default_rng(k).random((bands, size, size), chunks=(bands, 256, 256)) * 8000 + 1000).astype("uint16")
        rng = np.random.default_rng(k)
        labels = np.zeros((size, size), np.uint8)
        for y, x, c in zip(
            rng.integers(0, size - FIELD, FIELDS_PER_SCENE),
            rng.integers(0, size - FIELD, FIELDS_PER_SCENE),
            rng.integers(1, 7, FIELDS_PER_SCENE),
            strict=True,
        ):
            labels[y : y + FIELD, x : x + FIELD] = c
        scene = make_scene(cube, wavelength=np.linspace(420.0, 2450.0, bands), scale_factor=1e-4)
        write_scene(add_labels(scene, labels), path)
        log(f"wrote {path} in {time.perf_counter() - t0:.0f} s")
    return out


def scene_set(workdir: Path, bases: list[Path], n: int) -> list[Path]:
    """``n`` scene names, links to the base stores in turn."""
    d = workdir / f"set_{n}"
    d.mkdir(exist_ok=True)
    names = []
    for i in range(n):
        link = d / f"scene_{i:03d}.zarr"
        if not link.exists():
            link.symlink_to(bases[i % len(bases)].resolve(), target_is_directory=True)
        names.append(link)
    return names


def child(scenes: list[str], loader: str, out: str) -> None:
    """One training epoch in this process; prints a JSON line with its measurements."""
    import resource

    from geohsi.training import resolve_train_config, train

    t0 = time.perf_counter()
    # geohsi train's defaults (model, adapter, head, batch, precision): the step users run.
    config = resolve_train_config(epochs=1, split="fraction:0.9", val_fraction=0.0, loader=loader)
    bundle = train(scenes, config, out=out, overwrite=True, progress=False, log=lambda m: None)
    row = json.loads((Path(bundle) / "train_log.jsonl").read_text().splitlines()[0])
    status = Path("/proc/self/status").read_text()
    hwm = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024
    meta = json.loads((Path(bundle) / "bundle.json").read_text())
    n_train = sum(s["labelled_pixels"] for s in meta["train_config"]["scenes"])
    print(
        json.dumps(
            {
                "scenes": len(scenes),
                "loader": loader,
                "model": config.run.model,
                "adapter": config.adapter,
                "head": config.head,
                "peak_rss_mb": round(hwm, 1),
                "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
                "train_s": round(row["train_s"], 2),
                "data_wait_s": round(row["data_wait_s"], 2),
                "labelled_pixels": n_train,
                "wall_s": round(time.perf_counter() - t0, 1),
            }
        )
    )


def run(
    counts: tuple[int, ...] = (8, 32, 128),
    *,
    bases: int = 4,
    size: int = 1024,
    bands: int = 224,
    loader: str = "auto",
    workdir: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Train one epoch from each count of scenes, each in a fresh process; returns their measurements."""
    from geohsi.training.loader import STREAM_WORKERS

    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="geohsi-training-data-"))
    work.mkdir(parents=True, exist_ok=True)
    stores = write_stores(work, bases, size, bands, log)
    rows = []
    for n in counts:
        scenes = [str(p) for p in scene_set(work, stores, n)]
        code = f"from benchmarks.training_data import child; child({scenes!r}, {loader!r}, {str(work / f'bundle_{n}')!r})"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        if r.returncode != 0:
            raise RuntimeError(
                f"the {n}-scene run failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}"
            )
        row = json.loads(r.stdout.strip().splitlines()[-1])
        row["total_peak_rss_mb"] = round(row["peak_rss_mb"] + STREAM_WORKERS * row["worker_peak_rss_mb"], 1)
        row["data_wait_share"] = round(row["data_wait_s"] / row["train_s"], 4) if row["train_s"] else None
        log(json.dumps(row))
        rows.append(row)
    if workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def table(rows: list[dict], command: str) -> str:
    """The Markdown section of docs/performance.md."""
    first = rows[0]["total_peak_rss_mb"]
    lines = [
        f"Command: `{command}` (one run, idle 2-core machine, each count in a fresh process; `{rows[0]['model']}` model, "
        f"{rows[0]['adapter']}, {rows[0]['head']} head: `geohsi train`'s defaults).",
        "",
        "| scenes | labelled px | peak RSS, trainer (MB) | largest worker (MB) | total (MB) | vs first | data wait / step loop | epoch loop (s) | wall (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenes']} | {r['labelled_pixels']:,} | {r['peak_rss_mb']:.0f} | {r['worker_peak_rss_mb']:.0f} | {r['total_peak_rss_mb']:.0f} | "
            f"{r['total_peak_rss_mb'] / first:.2f} | {100 * r['data_wait_share']:.1f} % | {r['train_s']:.1f} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


__all__ = ["FIELDS_PER_SCENE", "FIELD", "child", "run", "scene_set", "table", "write_stores"]
