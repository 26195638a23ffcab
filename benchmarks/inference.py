"""Inference benchmarks: what ``python -m benchmarks inference`` and ``python -m benchmarks sections`` run.

* :func:`run` — the one-shot acceptance benchmark (``python -m benchmarks inference``): matmul peak
  (bf16, fp32), model forward GFLOP/s against it (``base`` at the default batch and the configured
  model; bf16 weights converted once vs autocast alone), patch vs dense px/s with the same
  backbone, Dask classify px/s ÷ bare forward px/s and the share of classify wall time outside the
  model forward, peak RSS per worker, and the OA of both modes on Indian Pines and EnMAP with the
  same backbone and adapter. :func:`write_docs` puts the result between markers in
  ``docs/performance.md``. On a CUDA machine it adds MFU.
* :func:`large_scene` — a synthetic Zarr scene (1024² and 2048² × 224 bands), written chunk by
  chunk, classified in dense mode on a LocalCluster with the per-stage profile, against the bare
  forward of the same model (:func:`bare_dense_forward`): px/s, ratios, tile forwards per map pixel,
  peak RSS per worker.
* :func:`main` — the older section-by-section model-side benchmark (``peak``, ``modes``, ``steps``,
  ``base``, ``oa``), with ``argparse`` flags (``python -m benchmarks sections -- --help``).

Everything is measured in one process (plus its Dask workers), on one machine, back to back, so
the ratios hold on a shared machine where absolute numbers drift.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geohsi.adapters import apply_adapter, merge_adapter
from geohsi.models import build_classifier, count_flops
from geohsi.models.decoder import build_segmenter, dense_head_flops
from geohsi.prediction import (
    ForwardTimer,
    autocast,
    autotune_batch_size,
    default_overlap,
    dense_block_probabilities,
    dense_halo,
    predict_proba,
)
from geohsi.spectral.windows import pad_reflect_halo, resize_windows, windows_for_block

K = 16  # Indian Pines classes
WINDOW = 15


def _time(fn: Callable[[], object], min_seconds: float) -> float:
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return dt / n


def bench_matmul(n: int, min_seconds: float, device: str = "cpu") -> list[dict]:
    """GFLOP/s of an ``n × n`` by ``n × n`` matmul in fp32 and bf16 (``2·n³`` FLOPs per call).

    Args:
        n: matrix side.
        min_seconds: minimum timed seconds per dtype.
        device: ``cpu`` or ``cuda``.

    Returns:
        One row per dtype: ``{"precision", "gflops", "seconds_per_call"}``.
    """
    rows = []
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
        out = torch.empty(n, n, dtype=dtype, device=device)

        def f(a=a, b=b, out=out):
            torch.matmul(a, b, out=out)
            if device == "cuda":
                torch.cuda.synchronize()

        sec = _time(f, min_seconds)
        rows.append({"precision": name, "gflops": 2 * n**3 / sec / 1e9, "seconds_per_call": sec})
    return rows


def ip_channels(data_dir: Path) -> np.ndarray:
    """Indian Pines as standardised PCA-12 channels ``[12, 145, 145]`` float32."""
    import scipy.io

    cube = scipy.io.loadmat(data_dir / "indian_pines" / "Indian_pines_corrected.mat")["indian_pines_corrected"]
    x = cube.reshape(-1, cube.shape[2]).astype(np.float64)
    x = (x - x.mean(0)) / x.std(0)
    z = x @ np.linalg.svd(x, full_matrices=False)[2][:12].T
    return ((z - z.mean(0)) / z.std(0)).T.reshape(12, *cube.shape[:2]).astype(np.float32)


def _adapted(model: nn.Module, seed: int = 0) -> nn.Module:
    """Apply krona+ (q, v) and give every trainable tensor a value, as after training."""
    apply_adapter(model, "krona+", "qv")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return model.eval()


class Timed(nn.Module):
    """Wraps a model and accumulates the seconds spent in its forward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.seconds = model, 0.0
        self.config, self.head = model.config, model.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        out = self.model(x)
        self.seconds += time.perf_counter() - t0
        return out


def patch_mode(model: nn.Module, chans: np.ndarray, n_px: int, batch: int, precision: str) -> dict:
    """px/s of patch mode on ``n_px`` pixels of a block (windows cut from a halo'd block, one forward each)."""
    r = WINDOW // 2
    blk = pad_reflect_halo(chans[:, :64, :64], r)
    rows, cols = np.divmod(np.arange(n_px), 64)
    timed = Timed(model)
    t_cut = 0.0
    probs = []
    t0 = time.perf_counter()
    for s in range(0, n_px, batch):
        t1 = time.perf_counter()
        w = windows_for_block(blk, rows[s : s + batch], cols[s : s + batch], WINDOW, 32, halo=r)
        t_cut += time.perf_counter() - t1
        probs.append(predict_proba(timed, w, batch_size=batch, precision=precision))
    total = time.perf_counter() - t0
    return {
        "px_per_s": n_px / total,
        "seconds": total,
        "forward_share": timed.seconds / total,
        "cut_share": t_cut / total,
        "labels": np.concatenate(probs).argmax(1),
    }


def dense_mode(model: nn.Module, chans: np.ndarray, core: int, batch: int, precision: str, overlap: int) -> dict:
    """px/s of dense mode on a ``core × core`` block carrying the dense halo."""
    r = dense_halo(32)
    blk = pad_reflect_halo(chans[:, :core, :core], r)
    timed = Timed(model)
    t0 = time.perf_counter()
    p = dense_block_probabilities(blk, timed, halo=r, overlap=overlap, batch_size=batch, precision=precision)
    total = time.perf_counter() - t0
    return {
        "px_per_s": core * core / total,
        "seconds": total,
        "forward_share": timed.seconds / total,
        "labels": p.argmax(0).reshape(-1),
    }


def section_modes(cfg: str, chans: np.ndarray, args) -> dict:
    torch.manual_seed(0)
    clf = build_classifier(cfg, K)
    _adapted(clf)
    merge_adapter(clf, unload=True)
    seg = build_segmenter(cfg, K)
    _adapted(seg)
    merge_adapter(seg, unload=True)
    n_px = args.patch_px.get(cfg, 256)
    out: dict = {"config": cfg, "patch_pixels": n_px, "dense_block": args.dense_core, "overlap": args.overlap}
    for prec in ("fp32", "bf16"):
        pm = patch_mode(clf, chans, n_px, args.patch_batch, prec)
        dm = dense_mode(seg, chans, args.dense_core, args.dense_batch, prec, args.overlap)
        out[prec] = {
            "patch": {k: v for k, v in pm.items() if k != "labels"},
            "dense": {k: v for k, v in dm.items() if k != "labels"},
            "dense_over_patch": dm["px_per_s"] / pm["px_per_s"],
        }
        out[prec + "_labels"] = (pm["labels"], dm["labels"])
    out["bf16_label_agreement"] = {
        "patch": float((out["fp32_labels"][0] == out["bf16_labels"][0]).mean()),
        "dense": float((out["fp32_labels"][1] == out["bf16_labels"][1]).mean()),
    }
    del out["fp32_labels"], out["bf16_labels"]
    stride = 32 - args.overlap
    out["analytic_ratio"] = count_flops(cfg) / ((count_flops(cfg) + dense_head_flops(cfg, K)) / stride**2)
    return out


def section_steps(cfg: str, chans: np.ndarray, args) -> dict:
    torch.manual_seed(0)
    x = torch.from_numpy(
        windows_for_block(pad_reflect_halo(chans[:, :64, :64], 7), np.arange(128) // 64, np.arange(128) % 64, WINDOW, 32, halo=7)
    )
    res: dict = {"config": cfg}
    m = _adapted(build_classifier(cfg, K))

    def fwd(model, mode, inp=x):
        ctx = (
            torch.inference_mode()
            if mode == "inference_mode"
            else (torch.no_grad() if mode == "no_grad" else contextlib.nullcontext())
        )
        with ctx:
            return model(inp)

    res["unmerged_s_per_128"] = _time(lambda: fwd(m, "inference_mode"), args.min_seconds)
    merge_adapter(m, unload=True)
    res["merged_s_per_128"] = _time(lambda: fwd(m, "inference_mode"), args.min_seconds)
    res["autograd_on_s_per_128"] = _time(lambda: fwd(m, "grad"), args.min_seconds)
    res["no_grad_s_per_128"] = _time(lambda: fwd(m, "no_grad"), args.min_seconds)
    # window extraction: vectorised (strided view + one gather + one resize) vs a loop per pixel
    blk = pad_reflect_halo(chans[:, :64, :64], 7)
    rows, cols = np.divmod(np.arange(256), 64)  # one patch-mode batch
    res["extract_vectorised_s_per_256"] = _time(lambda: windows_for_block(blk, rows, cols, WINDOW, 32, halo=7), args.min_seconds)

    def loop():
        for r_, c_ in zip(rows, cols, strict=True):
            resize_windows(np.nan_to_num(blk[None, :, r_ : r_ + WINDOW, c_ : c_ + WINDOW]), 32)

    res["extract_loop_s_per_256"] = _time(loop, args.min_seconds)
    # batch size: throughput per candidate, and the auto-tuned choice
    res["batch_px_per_s"] = {}
    for b in (16, 64, 256, 1024):
        xb = x.repeat(b // 128 + 1, 1, 1, 1)[:b]
        res["batch_px_per_s"][b] = b / _time(lambda xb=xb: fwd(m, "inference_mode", xb), args.min_seconds)
    res["autotuned_batch_fp32"] = autotune_batch_size(m, (12, 32, 32), precision="fp32")
    if args.compile:
        try:
            cm = torch.compile(m)
            with torch.inference_mode():
                cm(x)  # compile
            res["compiled_s_per_128"] = _time(lambda: fwd(cm, "inference_mode"), args.min_seconds)
        except Exception as e:  # a missing compiler toolchain is a result too
            res["compiled_s_per_128"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    return res


def section_base(args) -> dict:
    """bf16 base forward at the default batch vs the bf16 matmul peak, with a profiler breakdown."""
    from torch.profiler import ProfilerActivity, profile

    from geohsi.models import SpectralGPT

    torch.manual_seed(0)
    enc = SpectralGPT("base").eval()
    res: dict = {}
    for b in (args.base_batch, 64):
        x = torch.randn(b, 12, 32, 32)

        def f(x=x):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return enc(x)

        sec = _time(f, args.min_seconds)
        res[f"batch{b}_gflops"] = count_flops("base") * b / sec / 1e9
    x = torch.randn(args.base_batch, 12, 32, 32)
    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(3):
            enc(x)
    tot = sum(e.self_cpu_time_total for e in prof.key_averages())
    groups = {
        "matmul (linear/addmm/mm)": ("aten::addmm", "aten::mm", "aten::linear", "aten::bmm", "aten::matmul"),
        "attention (sdpa)": ("sdpa", "scaled_dot_product", "flash_attention"),
        "layernorm": ("layer_norm",),
        "gelu": ("gelu",),
        "bf16 casts (to/copy)": ("aten::to", "aten::copy_", "_to_copy"),
        "conv3d (tubelets)": ("conv", "mkldnn_convolution"),
    }
    share = {g: 0.0 for g in groups}
    for e in prof.key_averages():
        for g, keys in groups.items():
            if any(k in e.key for k in keys):
                share[g] += e.self_cpu_time_total / tot
                break
    share["other"] = 1 - sum(share.values())
    res["profile_share"] = share
    res["sdpa_op"] = sorted({e.key for e in prof.key_averages() if "attention" in e.key})
    return res


def _bf16_agreement(bundle: Path, scene: Path) -> float:
    """Share of the bundle's test pixels whose bf16-autocast label equals the fp32 label (trained model)."""
    from geohsi.bundle import load_bundle
    from geohsi.scene import open_scene

    b = load_bundle(bundle)
    model = b.build_model()
    chans = b.transform.apply(open_scene(scene))
    idx = b.split().test
    preds = []
    for prec in ("fp32", "bf16"):
        preds.append(
            b.head.predict_pixels(
                model, chans, idx, batch_size=b.head.default_batch["cpu"], device=torch.device("cpu"), precision=prec
            )
        )
    return float((preds[0] == preds[1]).mean())


def section_oa(args) -> dict:
    """Train a patch and a dense bundle (same backbone config, adapter, split) and evaluate both."""
    import tempfile

    from geohsi.datasets.registry import ingest_dataset
    from geohsi.evaluation import evaluate
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    os.environ.setdefault("GEOHSI_DATA_DIR", str(args.data_dir))
    work = Path(args.oa_dir or tempfile.mkdtemp(prefix="geohsi-bench-"))
    scene = work / "ip.zarr"
    if not scene.exists():
        ingest_dataset("indian_pines", scene)
    e_patch, e_dense = (int(v) for v in args.oa_epochs.split(","))
    common = {"model": args.oa_config, "adapter": args.oa_adapter, "split": "fraction:0.1", "seed": 0}
    res: dict = {"config": args.oa_config, "adapter": args.oa_adapter, "split": "fraction:0.1"}
    for head, extra in (("dense", {"epochs": e_dense, "batch_size": 8, "lr": 2e-3}), ("patch", {"epochs": e_patch})):
        out = work / f"{head}-bundle"
        t0 = time.perf_counter()
        train(
            scene, resolve_train_config(head=head, **common, **extra), out=out, overwrite=True, progress=False, log=lambda m: None
        )
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = evaluate(out, scene)
        res[head] = {
            "oa": r["overall_accuracy"],
            "aa": r["average_accuracy"],
            "kappa": r["kappa"],
            "n_test": r["n_test"],
            "train_s": t_train,
            "evaluate_s": time.perf_counter() - t0,
            "bundle": str(out),
            **extra,
        }
        res[head]["bf16_label_agreement"] = _bf16_agreement(out, scene)
        print(
            f"  {head}: OA {r['overall_accuracy']:.4f} (train {t_train:.0f} s, evaluate {res[head]['evaluate_s']:.1f} s), "
            f"bf16/fp32 label agreement {res[head]['bf16_label_agreement']:.5f}",
            flush=True,
        )
    res["oa_dense_minus_patch_pp"] = 100 * (res["dense"]["oa"] - res["patch"]["oa"])
    return res


def main(argv: list[str] | None = None) -> dict:
    """The section-by-section model-side benchmark (``python -m benchmarks sections``); returns the results dict."""
    ap = argparse.ArgumentParser(description="Model-side inference benchmark: patch vs dense mode, performance steps.")
    ap.add_argument("--sections", default="peak,modes,steps,base", help="comma-separated: peak,modes,steps,base,oa")
    ap.add_argument("--configs", default="tiny,small", help="configs for modes/steps (default tiny,small)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    ap.add_argument("--min-seconds", type=float, default=2.0, help="minimum timed seconds per measurement")
    ap.add_argument("--patch-batch", type=int, default=256)
    ap.add_argument("--dense-batch", type=int, default=16)
    ap.add_argument("--dense-core", type=int, default=96, help="dense block core edge (pixels)")
    ap.add_argument("--overlap", type=int, default=default_overlap(32))
    ap.add_argument("--base-batch", type=int, default=16, help="the default batch of model_throughput.py")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    ap.add_argument("--oa-config", default="tiny")
    ap.add_argument("--oa-adapter", default="krona+")
    ap.add_argument("--oa-epochs", default="30,150", help="patch,dense epochs")
    ap.add_argument("--oa-dir", default=None)
    ap.add_argument("--data-dir", type=Path, default=_data_dir())
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args(argv)
    args.patch_px = {"tiny": 1024, "small": 256, "base": 32}
    torch.set_num_threads(args.threads)
    sections = args.sections.split(",")
    result: dict = {
        "info": {
            "torch": torch.__version__,
            "cpu": platform.machine(),
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(),
            "load_avg_start": os.getloadavg(),
        }
    }
    chans = ip_channels(args.data_dir) if {"modes", "steps"} & set(sections) else None
    if "peak" in sections:
        result["peak"] = {r["precision"]: r["gflops"] for r in bench_matmul(2048, args.min_seconds)}
        print("matmul peak GFLOP/s:", {k: round(v, 1) for k, v in result["peak"].items()}, flush=True)
    for cfg in args.configs.split(","):
        if "modes" in sections:
            r = section_modes(cfg, chans, args)
            result.setdefault("modes", []).append(r)
            for p in ("fp32", "bf16"):
                print(
                    f"{cfg} {p}: patch {r[p]['patch']['px_per_s']:.1f} px/s (forward {r[p]['patch']['forward_share']:.0%}), "
                    f"dense {r[p]['dense']['px_per_s']:.0f} px/s (forward {r[p]['dense']['forward_share']:.0%}), "
                    f"dense/patch {r[p]['dense_over_patch']:.0f}× (analytic {r['analytic_ratio']:.0f}×)",
                    flush=True,
                )
            print(f"{cfg} bf16 vs fp32 label agreement: {r['bf16_label_agreement']}", flush=True)
        if "steps" in sections:
            r = section_steps(cfg, chans, args)
            result.setdefault("steps", []).append(r)
            print(
                f"{cfg} steps: " + json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()}), flush=True
            )
    if "base" in sections:
        r = section_base(args)
        result["base"] = r
        if "peak" in result:
            r["ratio_to_bf16_peak"] = {k: v / result["peak"]["bf16"] for k, v in r.items() if k.endswith("_gflops")}
        print("base bf16: " + json.dumps(r, default=str), flush=True)
    if "oa" in sections:
        result["oa"] = section_oa(args)
        print("OA: " + json.dumps({k: v for k, v in result["oa"].items() if k != "dense" and k != "patch"}), flush=True)
    result["info"]["load_avg_end"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return result


# ---------------------------------------------------------------------------------------------------
# python -m benchmarks inference: the one-shot acceptance benchmark
# ---------------------------------------------------------------------------------------------------

#: nominal dense bf16 tensor-core peak (GFLOP/s) of GPUs MFU is reported against (vendor datasheets).
GPU_BF16_PEAK_GFLOPS = {
    "H100": 989_400.0,
    "H200": 989_400.0,
    "A100": 312_000.0,
    "L40S": 362_050.0,
    "L4": 121_000.0,
    "A10": 125_000.0,
    "V100": 125_000.0,
    "T4": 65_000.0,
}
DOCS_START, DOCS_END = "<!-- bench:start -->", "<!-- bench:end -->"
#: default batch of the model forward measurement (the default of ``benchmarks/model_throughput.py``).
FORWARD_BATCH = 16


def _data_dir() -> Path:
    return Path(os.environ.get("GEOHSI_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _peak_rss_mb() -> float:
    from geohsi.classification.worker import peak_rss_mb

    return peak_rss_mb()


def forward_gflops(
    config: str,
    *,
    batch: int = FORWARD_BATCH,
    precision: str = "bf16",
    bf16_weights: bool = False,
    device: str = "cpu",
    min_seconds: float = 2.0,
) -> float:
    """GFLOP/s of a SpectralGPT encoder forward (analytic FLOPs of :func:`~geohsi.models.count_flops`).

    Args:
        config: encoder config name.
        batch: samples per forward ``[batch, 12, 32, 32]``.
        precision: ``fp32`` or ``bf16`` (autocast).
        bf16_weights: convert the weights to bf16 once before timing (what classify workers do)
            instead of letting autocast re-cast them on every forward.
        device: ``cpu`` or ``cuda``.
        min_seconds: minimum timed seconds.

    Returns:
        Achieved GFLOP/s.
    """
    from geohsi.models import SpectralGPT

    torch.manual_seed(0)
    enc = SpectralGPT(config).eval().to(device)
    if bf16_weights:
        enc = enc.to(torch.bfloat16)
    x = torch.randn(batch, 12, 32, 32, device=device)
    dev = torch.device(device)

    def f():
        with torch.inference_mode(), autocast(dev, precision):
            enc(x)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    return count_flops(config) * batch / _time(f, min_seconds) / 1e9


def _bf16_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).to(torch.bfloat16)


def _bare_block_forward(b: Any, ds: Any, device: str, precision: str, batch: int) -> tuple[int, float, float]:
    """``(valid pixels, forward s, total s)`` of the head's block prediction on the crop in this process (after a warm-up)."""
    import dask

    from geohsi.spectral.windows import pad_reflect_halo

    with dask.config.set(scheduler="synchronous"):
        chans = np.asarray(b.transform.apply(ds).values, dtype=np.float32)
    valid = ~np.isnan(chans).any(0)
    n = int(valid.sum())
    dev = torch.device(device)
    model = b.build_model(merge=True).to(dev)
    if precision == "bf16":
        model = _bf16_copy(model)
    r = b.head.halo
    blk = pad_reflect_halo(chans, r)
    timer = ForwardTimer()
    b.head.predict_block(blk, model, halo=r, origin=(0, 0), batch_size=batch, device=dev, precision=precision)  # warm-up
    t0 = time.perf_counter()
    b.head.predict_block(blk, model, halo=r, origin=(0, 0), batch_size=batch, device=dev, precision=precision, timer=timer)
    return n, timer.seconds, time.perf_counter() - t0


def _dask_crop_run(
    ds: Any, b: Any, *, cols: int, chunks: int, workers: int, precision: str, batch: int, device: str
) -> tuple[float, dict]:
    """``(wall s, worker stats)`` of the crop's Dask classify on a LocalCluster (one GPU worker for cuda), warmed up first."""
    from geohsi.classification import predict_map
    from geohsi.classification.cluster import open_cluster
    from geohsi.classification.worker import worker_stats

    gpu = torch.device(device).type == "cuda"
    with open_cluster(workers=None if gpu else workers, device=device, gpus="0" if gpu else None) as info:
        c = info.client
        warm = predict_map(
            ds.isel(y=slice(0, max(b.head.window, b.head.input_size)), x=slice(0, cols)),
            b,
            c,
            chunks=max(1, cols // workers),
            precision=precision,
            batch_size=batch,
            device=info.device,
        )
        warm.compute(optimize_graph=False)  # every worker loads the bundle (start-up, excluded)
        c.run(worker_stats, True)
        lazy = predict_map(ds, b, c, chunks=chunks, precision=precision, batch_size=batch, device=info.device)
        t0 = time.perf_counter()
        lazy.compute(optimize_graph=False)
        wall = time.perf_counter() - t0
        stats = c.run(worker_stats)
    return wall, stats


def _dask_classify(
    scene: Path,
    bundle: Path,
    *,
    rows: int,
    cols: int,
    chunks: int,
    workers: int,
    precision: str,
    batch: int,
    log: Callable[[str], None],
    device: str = "cpu",
) -> dict:
    """Patch/dense Dask classify of a crop on a LocalCluster vs the bare batched forward on the same pixels.

    With ``device="cuda"`` the cluster is one GPU worker (GPU 0) and the bare forward runs on that GPU.

    Start-up is excluded: the cluster is started and every worker has loaded the bundle (a
    warm-up run) before the clock starts. The bare forward runs in this process with all cores on
    windows (patch) or the halo'd crop (dense) prepared beforehand.
    """
    from geohsi.bundle import load_bundle
    from geohsi.scene import open_scene

    b = load_bundle(bundle)
    ds = open_scene(scene).isel(y=slice(0, rows), x=slice(0, cols))
    n, bare_s, bare_total_s = _bare_block_forward(b, ds, device, precision, batch)
    wall, stats = _dask_crop_run(
        ds, b, cols=cols, chunks=chunks, workers=workers, precision=precision, batch=batch, device=device
    )
    fwd = sum(s["forward_s"] for s in stats.values())
    res = {
        "head": b.head.name,
        "precision": precision,
        "pixels": n,
        "crop": [rows, cols],
        "chunks": chunks,
        "workers": workers,
        "batch": batch,
        "bare_forward_px_s": n / bare_s,
        "bare_total_px_s": n / bare_total_s,
        "dask_px_s": n / wall,
        "dask_wall_s": wall,
        "ratio_dask_vs_bare_forward": bare_s / wall,
        "outside_forward_share": 1 - fwd / (wall * len(stats)),
        "peak_rss_mb_per_worker": sorted(round(s["peak_rss_mb"], 1) for s in stats.values()),
        "tasks_per_worker": sorted(int(s["tasks"]) for s in stats.values()),
    }
    log(
        f"  dask {b.head.name} {precision}: {res['dask_px_s']:.1f} px/s vs bare forward {res['bare_forward_px_s']:.1f} px/s "
        f"(ratio {res['ratio_dask_vs_bare_forward']:.2f}), outside the forward {res['outside_forward_share']:.1%}, "
        f"peak RSS/worker {res['peak_rss_mb_per_worker']} MiB"
    )
    return res


def run(
    *,
    model: str = "small",
    adapter: str = "krona+",
    quick: bool = False,
    patch_epochs: int | None = None,
    dense_epochs: int | None = None,
    workers: int = 2,
    threads: int | None = None,
    precision: str = "bf16",
    workdir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the inference benchmark of issue 9 in one process on this machine and return its numbers.

    Trains a patch and a dense bundle with the same backbone (the shipped default for ``model``)
    and adapter on Indian Pines (``fraction:0.1``) and the EnMAP Potsdam mosaic, then measures
    peak, forward, mode and Dask throughput with those bundles.

    Args:
        model: backbone config (its shipped pretrained backbone is used).
        adapter: PEFT method of both modes.
        quick: smoke run: ``per-class:5`` splits, 1 patch / 2 dense epochs, short timings, a small
            Dask crop. OA is always on every test pixel of the split (scored by ``train``).
        patch_epochs: patch-mode training epochs (default 2; quick 1).
        dense_epochs: dense-mode training epochs (default 15; quick 2).
        workers: Dask worker processes (one thread each).
        threads: torch threads of this process (default: all cores).
        precision: precision of the classify/mode runs (``bf16`` or ``fp32``).
        workdir: keep ingested scenes and bundles here (default: a temporary directory).
        data_dir: the shared data folder (default ``GEOHSI_DATA_DIR``).
        log: receives one line per result.

    Returns:
        A JSON-able dict of every measurement (``info``, ``peak``, ``forward``, ``oa``, ``modes``,
        ``dask``, ``gpu``).

    .. versionadded:: 0.1
    """
    import tempfile

    t_start = time.perf_counter()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(threads or cores)
    if data_dir is not None:
        os.environ["GEOHSI_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("GEOHSI_DATA_DIR", str(_data_dir()))
    patch_epochs = patch_epochs or (1 if quick else 2)
    dense_epochs = dense_epochs or (2 if quick else 15)
    min_s = 0.3 if quick else 2.0
    split = "per-class:5" if quick else "fraction:0.1"
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="geohsi-bench-inference-"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict = {"info": _run_info(model, adapter, quick, workers, precision, cores, split, patch_epochs, dense_epochs)}
    log(
        f"benchmarks inference: {model} backbone ({res['info']['backbone']}), {adapter}, {cores} cores, "
        f"{torch.get_num_threads()} torch threads, {workers} Dask workers{' [quick]' if quick else ''}"
    )
    res.update(_forward_vs_peak(model, quick, min_s, log))
    scenes = {"indian_pines": work / "indian_pines.zarr", "enmap_potsdam": work / "enmap_potsdam.zarr"}
    bundles, res["oa"] = _train_bundles(scenes, work, model, adapter, split, {"patch": patch_epochs, "dense": dense_epochs}, log)
    res["modes"] = _mode_rates(bundles["indian_pines"], model, quick, log)
    res["dask"] = _dask_rows(scenes["indian_pines"], bundles["indian_pines"], quick, workers, precision, log)
    res["gpu"] = _gpu_mfu(model, min_s, log)
    res["info"]["load_avg_end"] = os.getloadavg()
    res["info"]["wall_s"] = time.perf_counter() - t_start
    res["info"]["workdir"] = str(work)
    return res


def _run_info(model: str, adapter: str, quick: bool, workers: int, precision: str, cores: int, split: str,
              patch_epochs: int, dense_epochs: int) -> dict:  # fmt: skip
    """The machine and the settings of a :func:`run`."""
    from geohsi.models.default import default_backbone_path

    backbone = default_backbone_path(model)
    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": cores,
        "threads": torch.get_num_threads(),
        "workers": workers,
        "quick": quick,
        "model": model,
        "adapter": adapter,
        "backbone": str(backbone) if backbone else "random init",
        "patch_epochs": patch_epochs,
        "dense_epochs": dense_epochs,
        "split": split,
        "precision": precision,
        "load_avg_start": os.getloadavg(),
        "cuda": torch.cuda.is_available(),
    }


def _forward_vs_peak(model: str, quick: bool, min_s: float, log: Callable[[str], None]) -> dict:
    """Step 1 of :func:`run`: the matmul peak and the model forward against it (``forward``, ``peak_runs``, ``peak``).

    Peak and forward alternate (peak, forward, peak, ...) and each forward is divided by the higher of
    its two neighbouring peaks; the median over repeats is kept. On the shared 2-core machine the
    matmul peak itself swings 3× within a minute, so a ratio of two far-apart measurements is noise.
    """
    n_mm = 1024 if quick else 2048
    variants = (("fp32_gflops", "fp32", False), ("bf16_autocast_gflops", "bf16", False), ("bf16_weights_gflops", "bf16", True))
    res: dict = {"forward": {}, "peak_runs": []}
    for cfg in dict.fromkeys(("base", model)):
        batch = 2 if (quick and cfg == "base") else FORWARD_BATCH
        samples: dict[str, list[tuple[float, float]]] = {k: [] for k, _, _ in variants}
        for _ in range(1 if quick else 3):
            peaks = [{r["precision"]: r["gflops"] for r in bench_matmul(n_mm, min_s / 2)}]
            for key, prec, bw in variants:
                g = forward_gflops(cfg, batch=batch, precision=prec, bf16_weights=bw, min_seconds=min_s)
                peaks.append({r["precision"]: r["gflops"] for r in bench_matmul(n_mm, min_s / 2)})
                samples[key].append((g, max(peaks[-2][prec], peaks[-1][prec])))
            res["peak_runs"] += peaks
        row: dict = {"batch": batch, "repeats": len(samples["fp32_gflops"])}
        for key, _, _ in variants:
            row[key] = float(np.median([g for g, _ in samples[key]]))
            row[key.replace("_gflops", "_ratio_to_peak")] = float(np.median([g / pk for g, pk in samples[key]]))
        row["bf16_ratio_to_peak"] = row.pop("bf16_weights_ratio_to_peak")
        res["forward"][cfg] = row
        log(
            f"{cfg} forward (batch {batch}, median of {row['repeats']}): bf16 weights {row['bf16_weights_gflops']:.1f} GFLOP/s "
            f"= {row['bf16_ratio_to_peak']:.0%} of the adjacent bf16 peak (autocast on fp32 weights: "
            f"{row['bf16_autocast_gflops']:.1f} = {row['bf16_autocast_ratio_to_peak']:.0%}), fp32 {row['fp32_gflops']:.1f} "
            f"= {row['fp32_ratio_to_peak']:.0%} of the fp32 peak"
        )
    res["peak"] = {k: float(np.median([p[k] for p in res["peak_runs"]])) for k in ("bf16", "fp32")}
    log(
        f"matmul peak GFLOP/s (median of {len(res['peak_runs'])}): bf16 {res['peak']['bf16']:.1f}, fp32 {res['peak']['fp32']:.1f} "
        f"(range bf16 {min(p['bf16'] for p in res['peak_runs']):.0f}–{max(p['bf16'] for p in res['peak_runs']):.0f})"
    )
    return res


def _train_bundles(scenes: dict[str, Path], work: Path, model: str, adapter: str, split: str, epochs: dict[str, int],
                   log: Callable[[str], None]) -> tuple[dict[str, dict[str, Path]], dict]:  # fmt: skip
    """Step 2 of :func:`run`: a patch and a dense bundle (same backbone and adapter) per scene, and their OA."""
    from geohsi.bundle import load_bundle
    from geohsi.datasets.registry import ingest_dataset
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    bundles: dict[str, dict[str, Path]] = {}
    oa: dict = {}
    for name, path in scenes.items():
        if not path.exists():
            ingest_dataset(name, path)
        bundles[name] = {}
        oa[name] = {}
        for head, extra in (
            ("patch", {"epochs": epochs["patch"]}),
            ("dense", {"epochs": epochs["dense"], "batch_size": 8, "lr": 2e-3}),
        ):
            out = work / f"{name}-{head}-{model}-{adapter}"
            cfg = resolve_train_config(model=model, adapter=adapter, head=head, split=split, seed=0, device="cpu", **extra)
            t0 = time.perf_counter()
            train(path, cfg, out=out, overwrite=True, progress=False, log=lambda m: None)
            t_train = time.perf_counter() - t0
            bundles[name][head] = out
            m = load_bundle(out).meta.metrics  # train scores every test pixel of the split at the end
            oa[name][head] = {
                "oa": m["overall_accuracy"],
                "aa": m["average_accuracy"],
                "kappa": m["kappa"],
                "n_test": m["n_test"],
                "epochs": extra["epochs"],
                "train_s": t_train,
            }
            log(
                f"{name} {head}: OA {m['overall_accuracy']:.4f} on all {m['n_test']} test pixels "
                f"({extra['epochs']} epochs, train + test {t_train:.0f} s)"
            )
        oa[name]["dense_minus_patch_pp"] = 100 * (oa[name]["dense"]["oa"] - oa[name]["patch"]["oa"])
    return bundles, oa


def _mode_rates(bundles: dict[str, Path], model: str, quick: bool, log: Callable[[str], None]) -> dict:
    """Step 3 of :func:`run`: patch vs dense px/s with the same backbone (the Indian Pines bundles), fp32 and bf16 weights."""
    from geohsi.bundle import load_bundle

    chans = ip_channels(Path(os.environ["GEOHSI_DATA_DIR"]))
    pb, db = load_bundle(bundles["patch"]), load_bundle(bundles["dense"])
    pm, dm = pb.build_model(), db.build_model()
    modes: dict = {}
    n_px = 64 if quick else 256
    for prec in ("fp32", "bf16"):
        p_model, d_model = (pm, dm) if prec == "fp32" else (_bf16_copy(pm), _bf16_copy(dm))
        p = patch_mode(p_model, chans, n_px, 64 if quick else 256, prec)
        d = dense_mode(d_model, chans, 64 if quick else 96, 16, prec, db.head.overlap)
        modes[prec] = {
            "patch_px_s": p["px_per_s"],
            "dense_px_s": d["px_per_s"],
            "dense_over_patch": d["px_per_s"] / p["px_per_s"],
            "patch_forward_share": p["forward_share"],
            "dense_forward_share": d["forward_share"],
        }
        log(
            f"{model} {prec}: patch {p['px_per_s']:.1f} px/s, dense {d['px_per_s']:.0f} px/s, "
            f"dense/patch {d['px_per_s'] / p['px_per_s']:.0f}×"
        )
    return modes


def _dask_rows(scene: Path, bundles: dict[str, Path], quick: bool, workers: int, precision: str,
               log: Callable[[str], None]) -> dict:  # fmt: skip
    """Step 4 of :func:`run`: Dask classify vs the bare forward (start-up excluded), share outside the forward, peak RSS."""
    dask_res: dict = {}
    # 64×128 px in 32-px chunks = 4 tasks per worker: the share outside the forward is then the
    # steady per-chunk cost (transform, windows, write), not one compute()'s fixed latency, which
    # with a single ~3 s task per worker (32×64 px) was 20–23 % of the wall time on its own.
    rows, cols = (16, 32) if quick else (64, 128)
    dask_res["patch"] = _dask_classify(
        scene,
        bundles["patch"],
        rows=rows,
        cols=cols,
        chunks=8 if quick else 32,
        workers=workers,
        precision=precision,
        batch=64 if quick else 256,
        log=log,
    )
    dask_res["dense"] = _dask_classify(
        scene, bundles["dense"], rows=145, cols=145, chunks=64, workers=workers, precision=precision, batch=16, log=log
    )
    return dask_res


def _gpu_mfu(model: str, min_s: float, log: Callable[[str], None]) -> dict | None:
    """Step 5 of :func:`run`: MFU against the nominal bf16 tensor-core peak (only where CUDA is present)."""
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        nominal = next((v for k, v in GPU_BF16_PEAK_GFLOPS.items() if k in name), None)
        peak = {r["precision"]: r["gflops"] for r in bench_matmul(8192, min_s, device="cuda")}
        g = {"device": name, "matmul_peak_gflops": peak, "nominal_bf16_gflops": nominal, "forward": {}}
        for cfg in dict.fromkeys(("base", model)):
            gf = forward_gflops(cfg, batch=256, precision="bf16", bf16_weights=True, device="cuda", min_seconds=min_s)
            g["forward"][cfg] = {
                "batch": 256,
                "bf16_gflops": gf,
                "ratio_to_matmul_peak": gf / peak["bf16"],
                "mfu": gf / nominal if nominal else None,
            }
        log(f"GPU {name}: " + json.dumps(g["forward"]))
        return g
    log("no CUDA device: MFU not measured (the GPU code path runs only where torch.cuda.is_available())")
    return None


def _tile_rate(bundle_path: str, precision: str, seconds: float, threads: int | None = None) -> float:
    """Tiles per second of the bundle's merged model at the classify batch (16) on random channels.

    Runs where it is called: in this process, or on every Dask worker at once through
    ``client.run`` (each with ``threads`` torch threads).
    """
    from geohsi.bundle import load_bundle

    if threads is not None:
        torch.set_num_threads(threads)
    b = load_bundle(bundle_path)
    model = b.build_model(merge=True).eval()
    if precision == "bf16":
        model = _bf16_copy(model)
    x = torch.randn(16, b.transform.n_channels, b.head.tile, b.head.tile)
    with torch.inference_mode(), autocast(torch.device("cpu"), precision):
        model(x)  # warm-up
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model(x)
            n += len(x)
    return n / (time.perf_counter() - t0)


def bare_dense_forward(bundle: Any, size: int, precision: str, client: Any = None, *, seconds: float = 4.0) -> dict:
    """The model's own speed on a ``size × size`` scene: the forward alone, without anything around it.

    * ``workers_px_s`` — the Dask workers all running the bare forward at once (``client.run``,
      each with the torch threads classify gives it): their tiles per second × the scene's
      pixels ÷ the tiles of its tiling (:func:`~geohsi.prediction.scene_tiles`) — the same
      processes on the same cores, so classify's ratio to it is the share of the run the forward
      would need if nothing else cost anything;
    * ``block_px_s`` — :func:`dense_mode` in this process on a 96-px core block (blended alone, so
      its border tiles count for it alone: 2.78 tile forwards per pixel) — this benchmark's
      dense-mode row, the baseline issue 32 quotes.
    """
    from geohsi.prediction import scene_tiles

    n_tiles = scene_tiles((size, size), bundle.head.tile, bundle.head.overlap)
    res = {"scene_tiles": n_tiles, "tiling_forwards_per_px": n_tiles * bundle.head.tile**2 / size**2}
    if client is not None:  # a LocalCluster on this machine: classify gives each worker cores ÷ Dask threads
        dask_threads = sum(int(w["nthreads"]) for w in client.scheduler_info(n_workers=-1)["workers"].values())
        threads = max(1, len(os.sched_getaffinity(0)) // dask_threads)
        rates = client.run(_tile_rate, str(bundle.path), precision, seconds, threads)
        res["workers_tiles_per_s"] = sum(rates.values())
        res["workers_px_s"] = res["workers_tiles_per_s"] * size**2 / n_tiles
    model = bundle.build_model(merge=True).eval()
    model = _bf16_copy(model) if precision == "bf16" else model
    chans = np.random.default_rng(0).standard_normal((bundle.transform.n_channels, 96, 96)).astype(np.float32)
    res["block_px_s"] = dense_mode(model, chans, 96, 16, precision, bundle.head.overlap)["px_per_s"]
    return res


def _synthetic_scene(b: Any, size: int, where: Path) -> Path:
    """A ``size²`` uint16 cube with the bundle's bands (uniform 1000–9000, 128-px Zarr chunks), written chunk by chunk once."""
    import dask.array as da

    from geohsi.scene import make_scene, write_scene

    scene = where / f"synthetic_{size}x{size}x{b.transform.input_band_count}.zarr"
    if not scene.exists():
        shape = (b.transform.input_band_count, size, size)
        cube = (da.random.default_rng(0).random(shape, chunks=(shape[0], 128, 128)) * 8000 + 1000).astype("uint16")
        write_scene(make_scene(cube, wavelength=np.asarray(b.transform.input_wavelengths)), scene, chunks=128)
    return scene


def _classify_between_baselines(
    b: Any, scene: Path, out: Path, *, size: int, chunks: int, workers: int, precision: str, bare_seconds: float
) -> tuple[Any, dict, dict]:
    """``(classify result, worker stats, bare baselines)``: the profiled classify on a LocalCluster, the bare
    forward measured right before and right after it on the same workers."""
    from geohsi.classification import classify
    from geohsi.classification.cluster import open_cluster
    from geohsi.classification.worker import worker_stats

    with open_cluster(workers=workers) as info:
        before = bare_dense_forward(b, size, precision, info.client, seconds=bare_seconds)
        r = classify(scene, out, b.path, client=info.client, chunks=chunks, precision=precision, overwrite=True,
                     progress=False, profile=True, log=lambda m: None)  # fmt: skip
        stats = info.client.run(worker_stats)
        after = bare_dense_forward(b, size, precision, info.client, seconds=bare_seconds)
    # the machine's speed drifts: each baseline is the mean of the measurements right before and right after
    bare = {**before, **{k: (before[k] + after[k]) / 2 for k in ("workers_tiles_per_s", "workers_px_s", "block_px_s")},
            "before": before, "after": after}  # fmt: skip
    return r, stats, bare


def _large_scene_lines(res: dict) -> tuple[str, str]:
    """The two log lines of a :func:`large_scene` result: the speed and ratios, then the stage shares."""
    nb, size = res["shape"][0], res["shape"][1]
    bare, prof = res["bare"], res["profile"]
    shares = ", ".join(f"{k} {v:.1%}" for k, v in prof["shares"].items())
    return (
        f"{size}×{size}×{nb} synthetic scene, {res['head']} mode, {res['chunks']}-px chunks, {res['workers']} workers: classified in "
        f"{res['classify_s']:.1f} s ({res['px_s']:,.0f} px/s) = {res['ratio_to_workers_forward']:.2f} of the workers' bare forward of its "
        f"tiling ({bare['workers_px_s']:,.0f} px/s), {res['ratio_to_block_forward']:.2f} of the 96-px block forward "
        f"({bare['block_px_s']:,.0f} px/s); tile forwards per map pixel {res['tile_forwards_per_px']:.3f} "
        f"(tiling {bare['tiling_forwards_per_px']:.3f}); peak RSS per worker {res['peak_rss_mb_per_worker']} MiB",
        f"  stages: {shares}",
    )


def large_scene(
    bundle: str | os.PathLike,
    *,
    size: int = 1024,
    chunks: int | None = None,
    workers: int = 2,
    precision: str = "bf16",
    workdir: str | os.PathLike | None = None,
    bare_seconds: float = 4.0,
    log: Callable[[str], None] = print,
) -> dict:
    """Classify a ``size × size`` synthetic scene with the bundle's bands on a LocalCluster, profiled, against the bare forward.

    The cube (uniform random values, the bundle's band count and wavelengths) is generated and
    written chunk by chunk by Dask, never whole in memory; the map goes to a Zarr store through
    :func:`geohsi.classify` with ``profile=True``, so the client never holds it either. Right
    before, on the same workers, :func:`bare_dense_forward` measures the model's own speed.

    Args:
        bundle: a dense bundle (its band count sets the cube's, e.g. 224 for EnMAP).
        size: scene edge in pixels.
        chunks: spatial chunk edge (default: the bundle head's ``default_chunk``).
        workers: LocalCluster worker processes (one thread each).
        precision: ``fp32`` or ``bf16``.
        workdir: where the scene and map go (default: a temporary directory, removed afterwards).
        bare_seconds: seconds of each bare forward measurement (before and after the classify).
        log: receives the result lines.

    Returns:
        Scene shape, wall times, classify px/s, the bare forward baselines and the ratios to them,
        tile forwards per map pixel (measured and the tiling's own), the per-stage profile, peak RSS
        of this process and of each worker (MiB).

    .. versionadded:: 0.1
    """
    import shutil
    import tempfile

    from geohsi.bundle import load_bundle

    b = load_bundle(bundle)
    nb = b.transform.input_band_count
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="geohsi-large-"))
    tmp.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    scene = _synthetic_scene(b, size, tmp)
    t_write = time.perf_counter() - t0
    c = chunks or b.head.default_chunk(size, size, nb)
    r, stats, bare = _classify_between_baselines(
        b, scene, tmp / "map.zarr", size=size, chunks=c, workers=workers, precision=precision, bare_seconds=bare_seconds
    )
    prof = r.profile.to_dict()
    px_s = size * size / r.seconds
    res = {
        "bundle": str(b.path), "head": b.head.name, "shape": [nb, size, size], "chunks": c, "workers": workers,
        "precision": precision, "write_scene_s": t_write, "classify_s": r.seconds, "px_s": px_s, "bare": bare,
        "ratio_to_workers_forward": px_s / bare["workers_px_s"], "ratio_to_block_forward": px_s / bare["block_px_s"],
        "tile_forwards_per_px": prof["tile_forwards_per_pixel"], "profile": prof,
        "peak_rss_mb_per_worker": sorted(round(s["peak_rss_mb"], 1) for s in stats.values()),
        "client_peak_rss_mb": round(_peak_rss_mb(), 1), "scene_gb": nb * size * size * 2 / 1e9,
    }  # fmt: skip
    speed, stages = _large_scene_lines(res)
    log(speed)
    log(stages)
    if not workdir:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def _fmt(v: float, d: int = 1) -> str:
    return f"{v:,.{d}f}"


def render_markdown(res: dict, command: str) -> str:
    """The generated section of ``docs/performance.md`` for a :func:`run` result (and ``large_scene``)."""
    i = res["info"]
    lines = [
        DOCS_START,
        "",
        "## `python -m benchmarks inference` (generated)",
        "",
        f"Command: `{command}`. Written by the command; edit the hand-written sections around it instead.",
        "",
        f"Machine: {i['cores']} cores (`{i['cpu_capability']}`), torch {i['torch']}, {i['threads']} torch threads in the "
        f"benchmark process, {i['workers']} Dask workers × 1 thread; load average {i['load_avg_start'][0]:.1f} at the start, "
        f"{i['load_avg_end'][0]:.1f} at the end (the 2 cores are shared with other jobs, so absolute numbers drift; "
        f"ratios are measured back to back). Backbone `{i['model']}` ({Path(i['backbone']).name}), adapter `{i['adapter']}`, "
        f"precision {i['precision']} for the mode and Dask rows. Total wall time {i['wall_s'] / 60:.1f} min.",
        "",
    ]
    p = res["peak"]
    runs = res.get("peak_runs", [p])
    lines += [
        "| measurement | value |",
        "|---|---|",
        f"| matmul peak bf16 / fp32 (median of {len(runs)}; bf16 range {min(r['bf16'] for r in runs):.0f}–"
        f"{max(r['bf16'] for r in runs):.0f}) | {_fmt(p['bf16'])} / {_fmt(p['fp32'])} GFLOP/s |",
    ]
    for cfg, f in res["forward"].items():
        lines.append(
            f"| `{cfg}` forward, batch {f['batch']} (median of {f.get('repeats', 1)}, each ÷ its adjacent peak): "
            "bf16 weights / bf16 autocast on fp32 weights / fp32 | "
            f"{_fmt(f['bf16_weights_gflops'])} / {_fmt(f['bf16_autocast_gflops'])} / {_fmt(f['fp32_gflops'])} GFLOP/s "
            f"= **{f['bf16_ratio_to_peak']:.0%}** / {f['bf16_autocast_ratio_to_peak']:.0%} of the bf16 peak, "
            f"{f['fp32_ratio_to_peak']:.0%} of the fp32 peak |"
        )
    for prec, m in res["modes"].items():
        lines.append(
            f"| {prec}: patch / dense px/s (same trained backbone + adapter) | {_fmt(m['patch_px_s'])} / "
            f"{_fmt(m['dense_px_s'], 0)} → **{m['dense_over_patch']:.0f}×** |"
        )
    for head, d in res["dask"].items():
        lines.append(
            f"| Dask {head} classify px/s ÷ bare forward px/s ({d['pixels']} px, {d['chunks']}-px chunks) | "
            f"{_fmt(d['dask_px_s'])} ÷ {_fmt(d['bare_forward_px_s'])} = **{d['ratio_dask_vs_bare_forward']:.2f}** |"
        )
        lines.append(
            f"| Dask {head} classify: wall time outside the model forward / peak RSS per worker | "
            f"**{d['outside_forward_share']:.1%}** / {', '.join(f'{v:,.0f}' for v in d['peak_rss_mb_per_worker'])} MiB |"
        )
    for scene, o in res["oa"].items():
        lines.append(
            f"| OA {scene} ({i['split']}): patch ({o['patch']['epochs']} ep) / dense ({o['dense']['epochs']} ep) | "
            f"{o['patch']['oa']:.4f} / {o['dense']['oa']:.4f} (dense − patch {o['dense_minus_patch_pp']:+.1f} pp; "
            f"all {o['patch']['n_test']} test px) |"
        )
    if res.get("gpu"):
        g = res["gpu"]
        for cfg, f in g["forward"].items():
            mfu = f"{f['mfu']:.1%}" if f["mfu"] is not None else "unknown GPU peak"
            lines.append(
                f"| GPU {g['device']} `{cfg}` bf16 forward (batch 256): MFU | {mfu} ({_fmt(f['bf16_gflops'], 0)} GFLOP/s) |"
            )
    else:
        lines.append("| GPU MFU | no CUDA device on this machine (code path only) |")
    scenes = res.get("large_scene") or []
    for ls in [scenes] if isinstance(scenes, dict) else scenes:  # one scene (older results) or several
        lines += _large_scene_rows(ls)
    lines += ["", DOCS_END]
    return "\n".join(lines)


def _large_scene_rows(ls: dict) -> list[str]:
    """The table rows of one :func:`large_scene` result."""
    name = f"{ls['shape'][1]}×{ls['shape'][2]}×{ls['shape'][0]} synthetic Zarr scene, {ls['head']} mode, {ls['chunks']}-px chunks"
    rows = [
        f"| {name} | {ls['classify_s']:.1f} s ({_fmt(ls['px_s'], 0)} px/s), peak RSS per worker "
        f"{', '.join(f'{v:,.0f}' for v in ls['peak_rss_mb_per_worker'])} MiB |"
    ]
    if "bare" not in ls:
        return rows
    bare, prof = ls["bare"], ls["profile"]
    shares = ", ".join(f"{k} {v:.1%}" for k, v in prof["shares"].items())
    return rows + [
        f"| {name}: classify ÷ the workers' bare forward of its tiling / ÷ the 96-px block forward | "
        f"{ls['px_s']:,.0f} ÷ {bare['workers_px_s']:,.0f} = **{ls['ratio_to_workers_forward']:.2f}** / "
        f"{ls['px_s']:,.0f} ÷ {bare['block_px_s']:,.0f} = **{ls['ratio_to_block_forward']:.2f}** |",
        f"| {name}: tile forwards per map pixel (the tiling's own) | {ls['tile_forwards_per_px']:.3f} "
        f"({bare['tiling_forwards_per_px']:.3f}) |",
        f"| {name}: share of the workers' time by stage | {shares} |",
    ]


def write_docs(res: dict, path: str | os.PathLike, command: str) -> Path:
    """Replace the generated section between :data:`DOCS_START`/:data:`DOCS_END` of ``path`` (append it if absent)."""
    return replace_section(path, DOCS_START, DOCS_END, render_markdown(res, command))


def replace_section(path: str | os.PathLike, start: str, end: str, block: str, heading: str = "") -> Path:
    """Put ``block`` (which starts with ``start`` and ends with ``end``) in place of the section between
    those markers of the Markdown file ``path``, or append it (under ``heading``) when they are absent."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        a, rest = text.split(start, 1)
        text = a + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + (f"{heading}\n\n" if heading else "") + block + "\n"
    path.write_text(text)
    return path


__all__ = [
    "bare_dense_forward",
    "bench_matmul",
    "forward_gflops",
    "large_scene",
    "main",
    "render_markdown",
    "replace_section",
    "run",
    "write_docs",
]
