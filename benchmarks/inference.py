"""Model-side inference benchmark: patch mode vs dense mode, and each performance step measured.

Everything is measured in one process, on the same machine, with the same thread count, so the
ratios are meaningful even on a shared machine where absolute numbers drift (re-run to see the
spread). Inputs are real Indian Pines pixels (standardised PCA-12), not random numbers.

Sections (each can be skipped):

- ``peak``: bf16 and fp32 matmul GFLOP/s (``benchmarks/model_throughput.py``'s measurement).
- ``modes``: per config, patch-mode px/s (window cut + one forward per pixel) and dense-mode px/s
  (tiles with :func:`geohsi.classify.dense.dense_block_probabilities` on a block with its halo),
  fp32 and bf16 autocast, their ratio, the share of time outside the model forward, and the
  agreement of bf16 and fp32 labels.
- ``steps``: adapters merged vs not, ``torch.inference_mode`` vs autograd on, vectorised window
  extraction vs a per-pixel loop, batch-size auto-tuning, optional ``torch.compile``.
- ``base``: the ``base`` encoder forward in bf16 at the default batch against the bf16 matmul
  peak, with the profiler's split of time between matmuls, attention and the rest.
- ``oa`` (slow, off by default): train a patch and a dense bundle with the same backbone config,
  adapter and split on Indian Pines and evaluate both on the same test pixels.

Usage::

    .venv/bin/python benchmarks/inference.py --configs tiny,small --threads 1 --json out.json
    .venv/bin/python benchmarks/inference.py --sections oa --oa-config tiny --oa-epochs 30,150

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_throughput import bench_matmul  # noqa: E402  (sibling benchmark script)

from geohsi.adapters import apply_adapter, merge_adapter  # noqa: E402
from geohsi.classify.dense import dense_block_probabilities, dense_halo, default_overlap  # noqa: E402
from geohsi.inference import autocast, autotune_batch_size, predict_proba  # noqa: E402
from geohsi.models import count_flops  # noqa: E402
from geohsi.models.dense import build_segmenter, dense_head_flops  # noqa: E402
from geohsi.models.spectralgpt import build_classifier  # noqa: E402
from geohsi.spectral.windows import pad_reflect_halo, resize_windows, windows_for_block  # noqa: E402

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
        w = windows_for_block(blk, rows[s: s + batch], cols[s: s + batch], WINDOW, 32, halo=r)
        t_cut += time.perf_counter() - t1
        probs.append(predict_proba(timed, w, batch_size=batch, precision=precision))
    total = time.perf_counter() - t0
    return {"px_per_s": n_px / total, "seconds": total, "forward_share": timed.seconds / total,
            "cut_share": t_cut / total, "labels": np.concatenate(probs).argmax(1)}


def dense_mode(model: nn.Module, chans: np.ndarray, core: int, batch: int, precision: str, overlap: int) -> dict:
    """px/s of dense mode on a ``core × core`` block carrying the dense halo."""
    r = dense_halo(32)
    blk = pad_reflect_halo(chans[:, :core, :core], r)
    timed = Timed(model)
    t0 = time.perf_counter()
    p = dense_block_probabilities(blk, timed, halo=r, overlap=overlap, batch_size=batch, precision=precision)
    total = time.perf_counter() - t0
    return {"px_per_s": core * core / total, "seconds": total, "forward_share": timed.seconds / total,
            "labels": p.argmax(0).reshape(-1)}


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
        out[prec] = {"patch": {k: v for k, v in pm.items() if k != "labels"}, "dense": {k: v for k, v in dm.items() if k != "labels"},
                     "dense_over_patch": dm["px_per_s"] / pm["px_per_s"]}
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
    x = torch.from_numpy(windows_for_block(pad_reflect_halo(chans[:, :64, :64], 7), np.arange(128) // 64,
                                           np.arange(128) % 64, WINDOW, 32, halo=7))
    res: dict = {"config": cfg}
    m = _adapted(build_classifier(cfg, K))

    def fwd(model, mode, inp=x):
        ctx = torch.inference_mode() if mode == "inference_mode" else (torch.no_grad() if mode == "no_grad" else contextlib.nullcontext())
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
            resize_windows(np.nan_to_num(blk[None, :, r_: r_ + WINDOW, c_: c_ + WINDOW]), 32)

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

    from geohsi.models.spectralgpt import SpectralGPT

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
    groups = {"matmul (linear/addmm/mm)": ("aten::addmm", "aten::mm", "aten::linear", "aten::bmm", "aten::matmul"),
              "attention (sdpa)": ("sdpa", "scaled_dot_product", "flash_attention"),
              "layernorm": ("layer_norm",), "gelu": ("gelu",), "bf16 casts (to/copy)": ("aten::to", "aten::copy_", "_to_copy"),
              "conv3d (tubelets)": ("conv", "mkldnn_convolution")}
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
    from geohsi.train.data import WindowSource
    from geohsi.train.loop import predict_classes, predict_dense_classes

    b = load_bundle(bundle)
    model = b.build_model()
    chans = b.transform.apply(open_scene(scene))
    idx = b.split().test
    preds = []
    for prec in ("fp32", "bf16"):
        if b.head == "dense":
            preds.append(predict_dense_classes(model, chans, idx, tile=b.tile, overlap=b.overlap, batch_size=16,
                                               device=torch.device("cpu"), precision=prec))
        else:
            preds.append(predict_classes(model, WindowSource(chans, b.window, b.input_size), idx, batch_size=256,
                                         device=torch.device("cpu"), precision=prec))
    return float((preds[0] == preds[1]).mean())


def section_oa(args) -> dict:
    """Train a patch and a dense bundle (same backbone config, adapter, split) and evaluate both."""
    import tempfile

    from geohsi.datasets.registry import ingest_dataset
    from geohsi.evaluate import evaluate
    from geohsi.train.config import resolve_config
    from geohsi.train.loop import train

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
        train(scene, resolve_config(head=head, **common, **extra), out=out, overwrite=True, progress=False, log=lambda m: None)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = evaluate(out, scene)
        res[head] = {"oa": r["overall_accuracy"], "aa": r["average_accuracy"], "kappa": r["kappa"], "n_test": r["n_test"],
                     "train_s": t_train, "evaluate_s": time.perf_counter() - t0, "bundle": str(out), **extra}
        res[head]["bf16_label_agreement"] = _bf16_agreement(out, scene)
        print(f"  {head}: OA {r['overall_accuracy']:.4f} (train {t_train:.0f} s, evaluate {res[head]['evaluate_s']:.1f} s), "
              f"bf16/fp32 label agreement {res[head]['bf16_label_agreement']:.5f}", flush=True)
    res["oa_dense_minus_patch_pp"] = 100 * (res["dense"]["oa"] - res["patch"]["oa"])
    return res


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("GEOHSI_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args(argv)
    args.patch_px = {"tiny": 1024, "small": 256, "base": 32}
    torch.set_num_threads(args.threads)
    sections = args.sections.split(",")
    result: dict = {"info": {"torch": torch.__version__, "cpu": platform.machine(), "threads": torch.get_num_threads(),
                             "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
                             "load_avg_start": os.getloadavg()}}
    chans = ip_channels(args.data_dir) if {"modes", "steps"} & set(sections) else None
    if "peak" in sections:
        result["peak"] = {r["precision"]: r["gflops"] for r in bench_matmul(2048, args.min_seconds)}
        print("matmul peak GFLOP/s:", {k: round(v, 1) for k, v in result["peak"].items()}, flush=True)
    for cfg in args.configs.split(","):
        if "modes" in sections:
            r = section_modes(cfg, chans, args)
            result.setdefault("modes", []).append(r)
            for p in ("fp32", "bf16"):
                print(f"{cfg} {p}: patch {r[p]['patch']['px_per_s']:.1f} px/s (forward {r[p]['patch']['forward_share']:.0%}), "
                      f"dense {r[p]['dense']['px_per_s']:.0f} px/s (forward {r[p]['dense']['forward_share']:.0%}), "
                      f"dense/patch {r[p]['dense_over_patch']:.0f}× (analytic {r['analytic_ratio']:.0f}×)", flush=True)
            print(f"{cfg} bf16 vs fp32 label agreement: {r['bf16_label_agreement']}", flush=True)
        if "steps" in sections:
            r = section_steps(cfg, chans, args)
            result.setdefault("steps", []).append(r)
            print(f"{cfg} steps: " + json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
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


if __name__ == "__main__":
    main()
