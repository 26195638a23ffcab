"""CPU throughput of the SpectralGPT encoder forward, fp32 and bf16 autocast, against a matmul peak.

Measures, in one run and with the same thread count:

- the encoder forward (``forward_features``, inference mode) of a named config (default ``base``
  at 32×32, 12 bands) in fp32 and under ``torch.autocast("cpu", dtype=torch.bfloat16)``:
  samples/s and achieved GFLOP/s, FLOPs counted analytically by
  :func:`geohsi.models.count_flops` (matrix products only);
- a large square matmul in fp32 and bf16 (``2·n³`` FLOPs), the practical peak of this machine;

and prints a table with the ratios (model / peak, bf16 / fp32).

Usage::

    .venv/bin/python benchmarks/model_throughput.py                 # base, batch 16, all cores
    .venv/bin/python benchmarks/model_throughput.py --config small --batch 64 --threads 1 --json out.json

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

import torch

from geohsi.models import SpectralGPT, count_flops, count_parameters, resolve_model_config


def _time(fn: Callable[[], object], min_seconds: float, warmup: int) -> tuple[float, int]:
    """Seconds per call (median-free mean over ≥ 2 calls lasting ≥ ``min_seconds`` in total)."""
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if n >= 2 and elapsed >= min_seconds:
            return elapsed / n, n


def bench_model(config: str, batch: int, min_seconds: float) -> list[dict]:
    """Time the encoder forward in fp32 and bf16 autocast.

    Args:
        config: name of a config in :data:`geohsi.models.CONFIGS`.
        batch: samples per forward.
        min_seconds: minimum measured time per precision.

    Returns:
        One row per precision: ``precision``, ``seconds_per_batch``, ``samples_per_s``, ``gflops``.
    """
    cfg = resolve_model_config(config)
    torch.manual_seed(0)
    model = SpectralGPT(cfg).eval()
    h, w = cfg.input_size
    x = torch.randn(batch, cfg.num_bands, h, w)
    flops = count_flops(cfg) * batch
    rows = []
    for precision in ("fp32", "bf16-autocast"):
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision != "fp32" else contextlib.nullcontext()

        def step(ctx: contextlib.AbstractContextManager = ctx) -> object:
            with torch.inference_mode(), ctx:
                return model(x)

        sec, n = _time(step, min_seconds, warmup=2)
        rows.append(
            {
                "what": f"{config} forward",
                "precision": precision,
                "calls": n,
                "seconds_per_call": sec,
                "samples_per_s": batch / sec,
                "gflops": flops / sec / 1e9,
            }
        )
    return rows


def bench_matmul(n: int, min_seconds: float) -> list[dict]:
    """Time an ``n × n`` by ``n × n`` matmul in fp32 and bf16.

    Args:
        n: matrix side.
        min_seconds: minimum measured time per dtype.

    Returns:
        One row per dtype with achieved GFLOP/s (``2·n³`` FLOPs per call).
    """
    rows = []
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n).to(dtype)
        b = torch.randn(n, n).to(dtype)
        out = torch.empty(n, n, dtype=dtype)
        sec, calls = _time(lambda a=a, b=b, out=out: torch.matmul(a, b, out=out), min_seconds, warmup=2)
        rows.append(
            {
                "what": f"matmul {n}²",
                "precision": name,
                "calls": calls,
                "seconds_per_call": sec,
                "samples_per_s": None,
                "gflops": 2 * n**3 / sec / 1e9,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and print a table; returns the results dict (also written by ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="base", help="model config name (default: base)")
    ap.add_argument("--batch", type=int, default=16, help="samples per forward (default: 16)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    ap.add_argument("--matmul-size", type=int, default=2048, help="side of the square matmul (default: 2048)")
    ap.add_argument("--min-seconds", type=float, default=5.0, help="minimum timed seconds per row (default: 5)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = resolve_model_config(args.config)
    info = {
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "config": args.config,
        "input": f"{cfg.num_bands}×{cfg.input_size[0]}×{cfg.input_size[1]}",
        "batch": args.batch,
        "params": count_parameters(cfg),
        "gflop_per_sample": count_flops(cfg) / 1e9,
    }
    # Peak first, model second, peak again: brackets drift from other load on a shared machine.
    peak = bench_matmul(args.matmul_size, args.min_seconds)
    model = bench_model(args.config, args.batch, args.min_seconds)
    peak_after = bench_matmul(args.matmul_size, args.min_seconds)
    peak_best = {r["precision"]: max(r["gflops"], q["gflops"]) for r, q in zip(peak, peak_after, strict=True)}

    print(" · ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items()))
    print(f"{'what':<18}{'precision':<15}{'calls':>6}{'s/call':>10}{'samples/s':>12}{'GFLOP/s':>10}")
    for r in peak + model + peak_after:
        sps = f"{r['samples_per_s']:.1f}" if r["samples_per_s"] else "-"
        print(f"{r['what']:<18}{r['precision']:<15}{r['calls']:>6}{r['seconds_per_call']:>10.4f}{sps:>12}{r['gflops']:>10.1f}")
    fp32, bf16 = model
    ratios = {
        "fp32 model / fp32 matmul peak": fp32["gflops"] / peak_best["fp32"],
        "bf16 model / bf16 matmul peak": bf16["gflops"] / peak_best["bf16"],
        "bf16 / fp32 model speed-up": bf16["samples_per_s"] / fp32["samples_per_s"],
        "bf16 / fp32 matmul peak": peak_best["bf16"] / peak_best["fp32"],
    }
    for k, v in ratios.items():
        print(f"{k:<32}{v:>8.2f}")
    result = {"info": info, "rows": peak + model + peak_after, "ratios": ratios}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
