"""The GPU benchmark of ``benchmarks/gpu_check.sh`` (``python -m benchmarks gpu``): one run measures

* the bf16 matmul peak (8192³) and, for ``base`` in bf16 with weights converted once, the encoder
  forward at 64 tokens (patch windows) and the segmenter forward at dense tiles, as TFLOP/s and MFU
  (model FLOP/s ÷ the measured peak, and ÷ the datasheet's dense bf16 peak where the GPU is known);
  ``torch.compile`` (default and ``reduce-overhead``, i.e. CUDA graphs) is tried on the patch forward;
* px/s of patch and dense block prediction (windows/tiles built on the device) for ``base`` and ``small``;
* Dask classify px/s on one GPU worker ÷ the bare forward on the same pixels (a ``small`` bundle
  trained for one epoch on Indian Pines);
* ``base`` patch-mode training steps/s (KronA+ on Q/V, bf16 autocast, batch 64 on the device);
* ``geohsi classify --profile`` of Indian Pines with a dense bundle on one worker of the device:
  the per-stage breakdown of where a map's time goes there;
* the peak GPU memory.

``--dry-run`` runs the same code on the CPU with tiny sizes (CI runs it so the script cannot rot).
Results go to ``gpu_check.json`` in ``--out``.

.. versionadded:: 0.2
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.inference import _dask_classify, _time, bench_matmul, forward_gflops, ip_channels

#: dense (no sparsity) bf16 tensor-core peaks from the vendors' datasheets, TFLOP/s, by name fragment.
DATASHEET_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}
K = 16


def _sizes(dry_run: bool) -> dict:
    if dry_run:
        return {"matmul": 256, "batch": 4, "min_s": 0.05, "models": ("tiny",), "patch_px": 64, "dense_core": 40,
                "train_steps": 2, "train_batch": 4, "train_model": "tiny", "bundle_model": "tiny", "crop": (24, 24),
                "compile": False}  # fmt: skip
    return {"matmul": 8192, "batch": 1024, "min_s": 2.0, "models": ("base", "small"), "patch_px": 4096,
            "dense_core": 145, "train_steps": 30, "train_batch": 64, "train_model": "base", "bundle_model": "small",
            "crop": (145, 145), "compile": True}  # fmt: skip


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _datasheet(dev: torch.device) -> tuple[str, float | None]:
    if dev.type != "cuda":
        return platform.processor() or "cpu", None
    name = torch.cuda.get_device_name(dev)
    return name, next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in name), None)


def _segmenter_gflops(cfg: str, batch: int, dev: torch.device, min_s: float) -> float:
    """GFLOP/s of a bf16 ``cfg`` segmenter forward on ``[batch, 12, 32, 32]`` tiles."""
    from geohsi.models import count_flops
    from geohsi.models.decoder import build_segmenter, dense_head_flops

    torch.manual_seed(0)
    seg = build_segmenter(cfg, K).eval().to(dev).to(torch.bfloat16)
    x = torch.randn(batch, 12, 32, 32, device=dev, dtype=torch.bfloat16)

    def f():
        with torch.inference_mode():
            seg(x)
        _sync(dev)

    return (count_flops(cfg) + dense_head_flops(cfg, K)) * batch / _time(f, min_s) / 1e9


def _compiled_gflops(cfg: str, batch: int, dev: torch.device, min_s: float, mode: str | None) -> float:
    """GFLOP/s of the bf16 encoder forward under ``torch.compile(mode=mode)``."""
    from geohsi.models import SpectralGPT, count_flops

    torch.manual_seed(0)
    enc = torch.compile(SpectralGPT(cfg).eval().to(dev).to(torch.bfloat16), mode=mode)
    x = torch.randn(batch, 12, 32, 32, device=dev, dtype=torch.bfloat16)

    def f():
        with torch.inference_mode():
            enc(x)
        _sync(dev)

    for _ in range(3):  # compile and warm up (CUDA graphs record on the first calls)
        f()
    return count_flops(cfg) * batch / _time(f, min_s) / 1e9


def _block_px_s(cfg: str, chans: np.ndarray, s: dict, dev: torch.device) -> dict:
    """px/s of patch and dense block prediction for a random-weight ``cfg`` model in bf16 on ``dev``."""
    from geohsi.models.decoder import build_segmenter
    from geohsi.models.spectralgpt import build_classifier
    from geohsi.prediction import ForwardTimer
    from geohsi.prediction.patch import patch_block_probabilities
    from geohsi.prediction.tiles import dense_block_probabilities, dense_halo
    from geohsi.spectral.windows import pad_reflect_halo

    out: dict = {}
    torch.manual_seed(0)
    clf = build_classifier(cfg, K).eval().to(dev).to(torch.bfloat16)
    side = int(np.ceil(np.sqrt(s["patch_px"])))
    blk = pad_reflect_halo(chans[:, :side, :side], 7)
    for _ in range(2):  # warm-up, then timed
        timer = ForwardTimer()
        t0 = time.perf_counter()
        patch_block_probabilities(blk, clf, window=15, input_size=32, halo=7, batch_size=s["batch"], device=dev,
                                  precision="bf16", timer=timer)  # fmt: skip
        wall = time.perf_counter() - t0
    out["patch"] = {"px_per_s": side * side / wall, "forward_share": timer.seconds / wall, "pixels": side * side}
    seg = build_segmenter(cfg, K).eval().to(dev).to(torch.bfloat16)
    r, core = dense_halo(32), s["dense_core"]
    blk = pad_reflect_halo(chans[:, :core, :core], r)
    for _ in range(2):
        timer = ForwardTimer()
        t0 = time.perf_counter()
        dense_block_probabilities(blk, seg, halo=r, batch_size=max(8, s["batch"] // 4), device=dev, precision="bf16",
                                  timer=timer)  # fmt: skip
        wall = time.perf_counter() - t0
    out["dense"] = {"px_per_s": core * core / wall, "forward_share": timer.seconds / wall, "pixels": core * core}
    return out


def _train_steps_per_s(s: dict, dev: torch.device) -> float:
    """Training steps/s of a patch classifier with KronA+ on Q/V: bf16 autocast, the batch resident on the device."""
    from geohsi.adapters import apply_adapter
    from geohsi.models.spectralgpt import build_classifier
    from geohsi.prediction import autocast

    torch.manual_seed(0)
    model = build_classifier(s["train_model"], K).to(dev)
    apply_adapter(model, "krona+", "qv")
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(s["train_batch"], 12, 32, 32, device=dev)
    y = torch.randint(0, K, (s["train_batch"],), device=dev)

    def step():
        with autocast(dev, "bf16"):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(s["train_steps"]):
        step()
    _sync(dev)
    return s["train_steps"] / (time.perf_counter() - t0)


def _matmul_peak(res: dict, s: dict, dev: torch.device, sheet: float | None, log: Callable[[str], None]) -> float:
    """Measure the matmul GFLOP/s into ``res`` and log them; returns the bf16 peak (GFLOP/s)."""
    mm = {r["precision"]: r["gflops"] for r in bench_matmul(s["matmul"], s["min_s"], device=dev.type)}
    peak = mm["bf16"]
    res["matmul_tflops"] = {k: v / 1e3 for k, v in mm.items()}
    res["datasheet_bf16_tflops"] = sheet
    log(
        f"matmul {s['matmul']}³: bf16 {peak / 1e3:.1f} TFLOP/s, fp32 {mm['fp32'] / 1e3:.1f}"
        + (f" (datasheet bf16 {sheet})" if sheet else "")
    )
    return peak


def _forward_row(cfg: str, s: dict, dev: torch.device, peak: float, sheet: float | None) -> dict:
    """Patch and dense forward TFLOP/s and MFU of one model (and ``torch.compile`` where sized to)."""
    from geohsi.models import count_flops

    patch = forward_gflops(cfg, batch=s["batch"], precision="bf16", bf16_weights=True, device=dev.type, min_seconds=s["min_s"])
    dense = _segmenter_gflops(cfg, max(8, s["batch"] // 4), dev, s["min_s"])
    row = {
        "patch_tflops": patch / 1e3,
        "patch_mfu": patch / peak,
        "patch_mfu_datasheet": patch / 1e3 / sheet if sheet else None,
        "dense_tflops": dense / 1e3,
        "dense_mfu": dense / peak,
        "gflop_per_window": count_flops(cfg) / 1e9,
    }
    if s["compile"]:
        for mode in ("default", "reduce-overhead"):
            try:
                row[f"compile_{mode}_tflops"] = (
                    _compiled_gflops(cfg, s["batch"], dev, s["min_s"], None if mode == "default" else mode) / 1e3
                )
            except Exception as e:  # noqa: BLE001 - a compiler failure is a result to report, not a crash
                row[f"compile_{mode}_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    return row


def _ip_scene_and_bundle(work: Path, s: dict, dev: torch.device) -> tuple[Path, Path]:
    """Indian Pines ingested and a one-epoch patch bundle trained on it under ``work`` (reused when there)."""
    import geohsi
    from geohsi.datasets.registry import ingest_dataset

    scene = work / "ip.zarr"
    if not scene.exists():
        ingest_dataset("indian_pines", scene)
    bundle = work / "bundle"
    if not bundle.exists():
        geohsi.train(scene, adapter="krona+", model=s["bundle_model"], head="patch", epochs=1, split="per-class:10",
                     device=dev.type, out=bundle, progress=False, log=lambda m: None)  # fmt: skip
    return scene, bundle


def run(*, out: str | os.PathLike, dry_run: bool = False, data_dir: str | os.PathLike | None = None,
        log: Callable[[str], None] = print) -> dict:  # fmt: skip
    """Run every measurement and write ``gpu_check.json`` into ``out``.

    Args:
        out: output folder (created).
        dry_run: the CPU with tiny sizes.
        data_dir: the shared data (default ``GEOHSI_DATA_DIR``); Indian Pines is read from it.
        log: receives one line per measurement.

    Returns:
        The results written.
    """
    s = _sizes(dry_run)
    dev = torch.device("cpu" if dry_run or not torch.cuda.is_available() else "cuda")
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(dev)
    data = Path(data_dir or os.environ.get("GEOHSI_DATA_DIR", "data"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name, sheet = _datasheet(dev)
    res: dict = {
        "device": name,
        "torch": torch.__version__,
        "dry_run": dry_run,
        "sizes": {k: v for k, v in s.items() if k != "models"},
    }
    log(f"device: {name} (torch {torch.__version__}){' — dry run' if dry_run else ''}")
    peak = _matmul_peak(res, s, dev, sheet, log)
    res["forward"] = {}
    for cfg in s["models"]:
        row = _forward_row(cfg, s, dev, peak, sheet)
        res["forward"][cfg] = row
        log(f"{cfg} forward bf16: patch {row['patch_tflops']:.2f} TFLOP/s = MFU {row['patch_mfu']:.1%} of measured peak"
            + (f" ({row['patch_mfu_datasheet']:.1%} of datasheet)" if sheet else "")
            + f"; dense tiles {row['dense_tflops']:.2f} TFLOP/s = MFU {row['dense_mfu']:.1%}")  # fmt: skip
    chans = ip_channels(data)
    res["blocks"] = {cfg: _block_px_s(cfg, chans, s, dev) for cfg in s["models"]}
    for cfg, r in res["blocks"].items():
        log(f"{cfg} blocks bf16: patch {r['patch']['px_per_s']:,.0f} px/s, dense {r['dense']['px_per_s']:,.0f} px/s")
    res["train_steps_per_s"] = _train_steps_per_s(s, dev)
    log(f"{s['train_model']} patch training: {res['train_steps_per_s']:.2f} steps/s at batch {s['train_batch']}")
    work = out / "work"
    scene, bundle = _ip_scene_and_bundle(work, s, dev)
    rows, cols = s["crop"]
    res["dask"] = _dask_classify(scene, bundle, rows=rows, cols=cols, chunks=max(16, rows // 2), workers=1, precision="bf16",
                                 batch=s["batch"], log=log, device=dev.type)  # fmt: skip
    res["dense_profile"] = _dense_profile(scene, work, s, dev, log)
    if dev.type == "cuda":
        res["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
        log(f"peak GPU memory (this process): {res['peak_gpu_memory_mib']:,.0f} MiB")
    (out / "gpu_check.json").write_text(json.dumps(res, indent=2, default=str))
    log(f"wrote {out / 'gpu_check.json'}")
    return res


def _dense_profile(scene: Path, work: Path, s: dict, dev: torch.device, log: Callable[[str], None]) -> dict:
    """``geohsi classify --profile`` of the scene with a dense bundle on one worker of the device: where the time goes."""
    import geohsi

    bundle = work / "dense_bundle"
    if not bundle.exists():
        geohsi.train(scene, adapter="krona+", model=s["bundle_model"], head="dense", epochs=1, split="per-class:10",
                     device=dev.type, out=bundle, progress=False, log=lambda m: None)  # fmt: skip
    gpu = dev.type == "cuda"
    r = geohsi.classify(scene, work / "dense_map.zarr", bundle, device=dev.type, gpus="0" if gpu else None,
                        workers=None if gpu else 1, precision="bf16", overwrite=True, progress=False, profile=True,
                        log=lambda m: None)  # fmt: skip
    log(f"dense classify of {scene.name} on one {dev.type} worker, profiled: {r.valid_pixels / r.seconds:,.0f} px/s")
    for line in r.profile.lines():
        log(line)
    return r.profile.to_dict()


__all__ = ["DATASHEET_BF16_TFLOPS", "run"]
