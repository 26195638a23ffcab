"""Training throughput with DistributedDataParallel: 1 and N ranks, and the share of step time in the all-reduce.

``python -m benchmarks ddp`` runs the fine-tuning step of ``geohsi train`` (the ``small`` dense model with a
KronA+ adapter, bf16 autocast, AdamW, gradient clipping, through :class:`geohsi.training.runner.Runner`) on
synthetic 32 × 32 tiles of 12 channels, for 1 rank and for N ranks (gloo on the CPU, NCCL with
``--device cuda``), the global batch fixed. Per rank count it reports samples per second and, from the same
ranks, the step time with the gradient all-reduce switched off (``DistributedDataParallel.no_sync``): the
difference is the all-reduce's share of a step.

.. versionadded:: 0.2
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import torch


def _rank(rank: int, world: int, init: str, out: str, model: str, batch: int, steps: int, device: str) -> None:
    import torch.nn.functional as F

    from geohsi.adapters import apply_adapter, method_options, param_groups
    from geohsi.heads import get_head
    from geohsi.models import resolve_model_config
    from geohsi.prediction import autocast
    from geohsi.training.distributed import Ranks, wrap
    from geohsi.training.runner import Runner, seed_init

    if device == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dev = torch.device("cuda", rank) if device == "cuda" else torch.device("cpu")
    if world > 1:
        torch.distributed.init_process_group(
            "nccl" if device == "cuda" else "gloo", init_method=init, rank=rank, world_size=world
        )
    seed_init(0)
    head = get_head("dense").from_options(window=15, input_size=32)
    net = head.build_model(resolve_model_config(model, img_size=32, num_bands=12), 8)
    apply_adapter(net, "krona+", "qv", **method_options("krona+", rank=8, alpha=None, lr_ratio=16.0))
    net.to(dev)
    runner = Runner(
        net,
        torch.optim.AdamW(param_groups(net, 2e-3)),
        total_steps=10**6,
        warmup_steps=0,
        work=Path(out).parent,
        config_json="{}",
        grad_clip=1.0,
    )
    ddp = wrap(net, Ranks(rank, world), dev)
    b = batch // world
    x, y = torch.randn(b, 12, 32, 32, device=dev), torch.randint(0, 8, (b, 32, 32), device=dev)

    def timed(sync: bool) -> float:
        for i in range(steps + 2):
            if i == 2:  # two warm-up steps
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            ctx = ddp.no_sync() if (not sync and world > 1) else _null()
            with ctx, autocast(dev, "bf16"):
                loss = F.cross_entropy(ddp(x).float(), y)
            runner.step(loss)
        if device == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / steps

    synced, local = timed(True), timed(False)
    if rank == 0:
        Path(out).write_text(json.dumps({"ranks": world, "step_s": synced, "step_s_without_allreduce": local}))
    if world > 1:
        torch.distributed.destroy_process_group()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def run(
    ranks: tuple[int, ...] = (1, 2), *, model: str = "small", batch: int = 16, steps: int = 20, device: str = "cpu"
) -> list[dict]:
    """Measure each rank count in fresh processes; returns one row per count."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="geohsi-ddp-") as tmp:
        for world in ranks:
            out = Path(tmp) / f"r{world}.json"
            args = (world, f"file://{tmp}/rdzv{world}", str(out), model, batch, steps, device)
            torch.multiprocessing.spawn(_rank, args=args, nprocs=world)
            r = json.loads(out.read_text())
            r["samples_per_s"] = batch / r["step_s"]
            r["allreduce_share"] = max(0.0, 1.0 - r["step_s_without_allreduce"] / r["step_s"]) if world > 1 else 0.0
            rows.append(r)
    return rows


def markdown(rows: list[dict], command: str, *, model: str, batch: int, device: str) -> str:
    """The section of docs/performance.md."""
    base = rows[0]["samples_per_s"]
    lines = [
        f"Command: `{command}` ({model} dense model + KronA+, global batch {batch} tiles of 32 × 32, bf16 autocast, {device}; "
        "one run, each rank count in fresh processes).",
        "",
        "| ranks | step (s) | samples/s | vs 1 rank | step without the all-reduce (s) | all-reduce share of a step |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        alone = f"{r['step_s_without_allreduce']:.3f}" if r["ranks"] > 1 else "–"
        share = f"{100 * r['allreduce_share']:.1f} %" if r["ranks"] > 1 else "–"
        lines.append(
            f"| {r['ranks']} | {r['step_s']:.3f} | {r['samples_per_s']:.1f} | {r['samples_per_s'] / base:.2f} | {alone} | {share} |"
        )
    return "\n".join(lines) + "\n"


__all__ = ["markdown", "run"]
