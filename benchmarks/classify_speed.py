"""Dask LocalCluster classification vs the bare batched model forward in one process.

Same scene, same model, same pixels. Three timings (start-up excluded everywhere: the cluster is
started and every worker has loaded the bundle before the clock starts; the single process has
built its model):

* ``forward``  — model forward only, on windows cut beforehand (the floor: pure compute);
* ``process``  — one process: spectral transform + window cut + forward, batched (what one would write by hand);
* ``dask``     — ``geohsi.predict_map(...).compute()`` on a ``LocalCluster`` of N single-thread
  worker processes (torch threads = cores / N), i.e. the full graph: Zarr read, transform, halo,
  windows, model, argmax, gather.

It also reads every worker's counters (:func:`geohsi.classification.worker.worker_stats`): seconds inside
the model forward, so the share of classify wall time spent *outside* the forward (Zarr read,
transform, halo, window cut, Dask) is reported, and each worker's peak RSS (``VmHWM``).
``python -m benchmarks inference`` runs the same comparison with the trained ``small`` bundles.

Usage::

    .venv/bin/python benchmarks/classify_speed.py [--scene ip.zarr --bundle BUNDLE] [--workers 2] [--chunks 64] [--precision bf16]

Without ``--scene/--bundle`` it builds Indian Pines from ``GEOHSI_DATA_DIR`` and trains a random tiny bundle (≈10 s).
Prints one JSON object: px/s of each and the ratio dask / forward.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _setup(tmp: Path) -> tuple[Path, Path]:
    import scipy.io

    from geohsi.datasets.registry import indian_pines_bands
    from geohsi.scene import add_labels, make_scene, write_scene
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    d = Path(os.environ.get("GEOHSI_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")) / "indian_pines"
    cube = scipy.io.loadmat(d / "Indian_pines_corrected.mat")["indian_pines_corrected"].transpose(2, 0, 1)
    gt = scipy.io.loadmat(d / "Indian_pines_gt.mat")["indian_pines_gt"]
    wl, fw = indian_pines_bands()
    scene = write_scene(add_labels(make_scene(cube, wavelength=wl, fwhm=fw), gt), tmp / "ip.zarr")
    cfg = resolve_train_config(adapter="lora", epochs=1, split="per-class:5", model="tiny", device="cpu", head="patch")
    bundle = train(scene, cfg, out=tmp / "bundle", progress=False, log=lambda m: None)
    return scene, bundle


def _parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path)
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: cores)")
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--rows", type=int, default=None, help="classify only the first ROWS rows (faster runs)")
    return ap.parse_args()


def _single_process(ds: Any, b: Any, args: argparse.Namespace, cores: int) -> dict[str, Any]:
    """Transform + window cut + forward in this process on all cores: timings, the valid mask and the labels."""
    import dask
    import torch

    from geohsi.prediction import predict_proba
    from geohsi.spectral.windows import extract_windows

    torch.set_num_threads(cores)
    model = b.build_model(merge=True)
    if args.precision == "bf16":
        model = model.to(torch.bfloat16)  # as the workers do: weights cast once, not per forward
    t0 = time.perf_counter()
    with dask.config.set(scheduler="synchronous"):
        channels = np.asarray(b.transform.apply(ds).values, dtype="float32")
    valid = ~np.isnan(channels).any(axis=0)
    rows, cols = np.nonzero(valid)
    n = rows.size
    probs = np.empty((n, len(b.classes)), np.float32)
    t_cut = 0.0
    t_fwd = 0.0
    for s in range(0, n, args.batch_size):
        r, c = rows[s : s + args.batch_size], cols[s : s + args.batch_size]
        t1 = time.perf_counter()
        win = extract_windows(channels, r, c, b.head.window, b.head.input_size)
        t2 = time.perf_counter()
        probs[s : s + len(r)] = predict_proba(model, win, batch_size=args.batch_size, precision=args.precision)
        t_fwd += time.perf_counter() - t2
        t_cut += t2 - t1
    t_process = time.perf_counter() - t0
    ref = b.class_ids[probs.argmax(1)]
    return {"valid": valid, "n": n, "t_cut": t_cut, "t_fwd": t_fwd, "t_process": t_process, "ref": ref}


def _dask_run(ds: Any, b: Any, args: argparse.Namespace, n_workers: int) -> tuple[Any, float, dict]:
    """``(map, seconds, worker stats)`` of the map on a LocalCluster, start-up and bundle loading excluded."""
    from geohsi.classification import predict_map
    from geohsi.classification.cluster import open_cluster
    from geohsi.classification.worker import worker_stats

    with open_cluster(workers=n_workers) as info:
        lazy = predict_map(ds, b, info.client, chunks=args.chunks, batch_size=args.batch_size, precision=args.precision)
        # warm-up: every worker loads the bundle (start-up, excluded)
        warm = predict_map(
            ds.isel(y=slice(0, 16), x=slice(0, 16 * n_workers)), b, info.client, chunks=16, precision=args.precision
        )
        warm.compute()
        info.client.run(worker_stats, True)
        t0 = time.perf_counter()
        m = lazy.compute()
        t_dask = time.perf_counter() - t0
        stats = info.client.run(worker_stats)
    return m, t_dask, stats


def main() -> None:
    args = _parse_args()

    from geohsi.bundle import load_bundle
    from geohsi.scene import open_scene

    tmp = Path(tempfile.mkdtemp(prefix="geohsi-bench-"))
    scene, bundle = (args.scene, args.bundle) if args.scene and args.bundle else _setup(tmp)
    ds = open_scene(scene)
    if args.rows:
        ds = ds.isel(y=slice(0, args.rows))
    b = load_bundle(bundle)
    cores = len(os.sched_getaffinity(0))
    n_workers = args.workers or cores

    # --- single process: all cores to torch -------------------------------------------------
    p = _single_process(ds, b, args, cores)
    n, t_fwd, t_cut, t_process = p["n"], p["t_fwd"], p["t_cut"], p["t_process"]

    # --- Dask LocalCluster ----------------------------------------------------------------------
    m, t_dask, stats = _dask_run(ds, b, args, n_workers)
    same = bool(np.array_equal(m.values[p["valid"]], p["ref"]))
    out = {
        "scene": str(scene),
        "bundle": str(bundle),
        "pixels": int(n),
        "cores": cores,
        "workers": n_workers,
        "chunks": args.chunks,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "forward_px_s": n / t_fwd,
        "process_px_s": n / t_process,
        "dask_px_s": n / t_dask,
        "window_cut_s": t_cut,
        "transform_s": t_process - t_cut - t_fwd,
        "ratio_dask_vs_forward": (n / t_dask) / (n / t_fwd),
        "ratio_dask_vs_process": (n / t_dask) / (n / t_process),
        "labels_identical": same,
        "outside_forward_share": 1 - sum(v["forward_s"] for v in stats.values()) / (t_dask * len(stats)),
        "peak_rss_mb_per_worker": sorted(round(v["peak_rss_mb"], 1) for v in stats.values()),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
