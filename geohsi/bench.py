"""``geohsi bench peft``: the paper's experiment — FFT vs linear probe vs LoRA/LoRA+/KronA/KronA+/LoKr vs
from-scratch vs SVM — on the same splits, several seeds, one results table.

Every training run happens in its own Python process (so its peak memory, the kernel's VmHWM, is
its own) through the same :func:`geohsi.train.loop.train` that ``geohsi train`` uses; the SVM
runs :func:`geohsi.baseline.baseline` on the same split. :func:`peft_table` writes a CSV with one
row per run and ``docs/results.md`` (markdown tables of mean ± std, the exact command and the
machine), so the document is produced by the script, never edited by hand.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import UsageError

NEURAL = ("full", "linear", "lora", "lora+", "krona", "krona+", "lokr", "scratch")
METHODS = (*NEURAL, "svm")
#: dataset → the splits of the experiment (the few-shot protocol, a 10 % fraction, spatial blocks)
PROTOCOL: dict[str, tuple[str, ...]] = {
    "indian_pines": ("per-class:10", "fraction:0.1"),
    "enmap_potsdam": ("blocks:32",),
}
LAMBDAS = (1.0, 4.0, 16.0, 64.0)


@dataclass(frozen=True)
class RunSpec:
    """One cell of the experiment."""

    dataset: str
    split: str
    method: str
    seed: int
    model: str
    epochs: int
    lr: float
    lr_ratio: float = 16.0
    batch_size: int = 64
    tag: str = "main"

    def key(self) -> str:
        return f"{self.tag}|{self.dataset}|{self.split}|{self.method}|{self.seed}|{self.lr_ratio:g}"


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_one(spec: dict[str, Any], scene: str, workdir: str) -> dict[str, Any]:
    """Run one cell in this process and return its row (called in a child process)."""
    from geohsi.models.spectralgpt import count_parameters, resolve_config

    s = RunSpec(**spec)
    t0 = time.perf_counter()
    row: dict[str, Any] = {**spec}
    if s.method == "svm":
        from geohsi.baseline import baseline

        r = baseline(scene, method="svm", split=s.split, seed=s.seed)
        row.update(oa=r["overall_accuracy"], aa=r["average_accuracy"], kappa=r["kappa"], n_test=r["n_test"],
                   trainable_params=0, percent_params=0.0, adapter_bytes=0, seconds_per_epoch=r["fit_seconds"])
    else:
        import torch

        from geohsi.train.config import resolve_config as train_config
        from geohsi.train.loop import train

        torch.set_num_threads(int(os.environ.get("GEOHSI_BENCH_THREADS", os.cpu_count() or 1)))
        adapter = "full" if s.method == "scratch" else s.method
        cfg = train_config(adapter=adapter, model=s.model, split=s.split, epochs=s.epochs, seed=s.seed, lr=s.lr,
                           lr_ratio=s.lr_ratio, batch_size=s.batch_size,
                           backbone="random" if s.method == "scratch" else None)
        out = Path(workdir) / "bundle"
        train(scene, cfg, out=out, overwrite=True, progress=False, log=lambda m: None)
        meta = json.loads((out / "bundle.json").read_text())
        adapter_meta = json.loads((out / "adapter" / "adapter.json").read_text())
        n_train = sum(int(np.prod(t["shape"])) for t in adapter_meta["tensors"].values())
        backbone = count_parameters(resolve_config(meta["model"]["config"]))
        log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        m = meta["metrics"]
        row.update(oa=m["overall_accuracy"], aa=m["average_accuracy"], kappa=m["kappa"], n_test=m["n_test"],
                   trainable_params=n_train, percent_params=100.0 * n_train / backbone,
                   adapter_bytes=sum(f.stat().st_size for f in (out / "adapter").iterdir()),
                   seconds_per_epoch=float(np.mean([r["seconds"] for r in log])),
                   backbone=meta["backbone"].get("path") or meta["backbone"]["identity"].get("name"))
    row.update(peak_rss_mb=_peak_rss_mb(), wall_seconds=time.perf_counter() - t0)
    return row


def _child(spec: RunSpec, scene: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="geohsi-bench-") as d:
        code = ("import json,sys; from geohsi.bench import run_one; "
                "print('GEOHSI_ROW ' + json.dumps(run_one(json.loads(sys.argv[1]), sys.argv[2], sys.argv[3])))")
        p = subprocess.run([sys.executable, "-c", code, json.dumps(spec.__dict__), str(scene), d],
                           capture_output=True, text=True)
        for line in p.stdout.splitlines():
            if line.startswith("GEOHSI_ROW "):
                return json.loads(line[len("GEOHSI_ROW "):])
        tail = " ".join(p.stderr.strip().splitlines()[-1:])
        return {**spec.__dict__, "error": tail or f"exit {p.returncode}"}


def plan(*, datasets: Sequence[str], methods: Sequence[str], seeds: int, model: str, epochs: int, lr: float,
         lambda_sweep: bool, quick: bool) -> list[RunSpec]:
    """The list of runs of the experiment."""
    runs = []
    for ds in datasets:
        splits = PROTOCOL[ds][:1] if quick else PROTOCOL[ds]
        for split in splits:
            for method in methods:
                for seed in range(seeds):
                    runs.append(RunSpec(ds, split, method, seed, model, epochs, lr))
    if lambda_sweep and not quick:
        ds, split = datasets[0], PROTOCOL[datasets[0]][-1]
        for method in ("lora+", "krona+"):
            for lam in LAMBDAS:
                runs.append(RunSpec(ds, split, method, 0, model, epochs, lr, lr_ratio=lam, tag="lambda"))
    return runs


def _fmt(vals: list[float], pct: bool = True) -> str:
    v = np.asarray(vals, float) * (100 if pct else 1)
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def render_markdown(rows: list[dict[str, Any]], *, command: str, wall: float, findings: str = "") -> str:
    """The results document from the CSV rows (what ``docs/results.md`` holds)."""
    import torch

    ok = [r for r in rows if "error" not in r]
    lines = [
        "# Results: PEFT methods on SpectralGPT (reproduced on CPU)",
        "",
        "Produced by `benchmarks/peft_table.py` (also `geohsi bench peft`); **do not edit by hand** — re-run:",
        "",
        f"```\n{command}\n```",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}. Total wall time {wall / 60:.1f} min.",
        "OA/AA/κ in %, mean ± std over seeds (sample std). Trainable parameters include the classification head; "
        "% is relative to the backbone encoder. Peak memory is the training process's VmHWM.",
        "",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in ok:
        if r.get("tag", "main") == "main":
            groups.setdefault((r["dataset"], r["split"]), []).append(r)
    for (ds, split), rs in groups.items():
        lines += [f"## {ds}, `{split}`", "",
                  "| method | OA | AA | κ | trainable params | % of backbone | adapter file | s / epoch | peak MB | seeds |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for method in METHODS:
            mr = [r for r in rs if r["method"] == method]
            if not mr:
                continue
            lines.append(
                f"| {method} | {_fmt([r['oa'] for r in mr])} | {_fmt([r['aa'] for r in mr])} | {_fmt([r['kappa'] for r in mr])} "
                f"| {int(mr[0]['trainable_params']):,} | {mr[0]['percent_params']:.3f} % | {mr[0]['adapter_bytes'] / 1e6:.3f} MB "
                f"| {np.mean([r['seconds_per_epoch'] for r in mr]):.1f} | {np.mean([r['peak_rss_mb'] for r in mr]):.0f} | {len(mr)} |"
            )
        lines.append("")
    lam = [r for r in ok if r.get("tag") == "lambda"]
    if lam:
        lines += [f"## λ sweep ({lam[0]['dataset']}, `{lam[0]['split']}`, seed 0)", "", "| method | λ | OA | AA | κ |", "|---|---|---|---|---|"]
        for r in sorted(lam, key=lambda r: (r["method"], r["lr_ratio"])):
            lines.append(f"| {r['method']} | {r['lr_ratio']:g} | {100 * r['oa']:.2f} | {100 * r['aa']:.2f} | {100 * r['kappa']:.2f} |")
        lines.append("")
    bad = [r for r in rows if "error" in r]
    if bad:
        lines += ["## Failed runs", ""] + [f"- {r['dataset']} {r['split']} {r['method']} seed {r['seed']}: {r['error']}" for r in bad] + [""]
    if findings:
        lines += ["## Findings", "", findings.strip(), ""]
    return "\n".join(lines)


def peft_table(
    *,
    out_md: str | os.PathLike = "docs/results.md",
    out_csv: str | os.PathLike | None = None,
    datasets: Sequence[str] = ("indian_pines", "enmap_potsdam"),
    methods: Sequence[str] = METHODS,
    seeds: int = 3,
    model: str = "small",
    epochs: int = 20,
    lr: float = 1e-3,
    lambda_sweep: bool = True,
    quick: bool = False,
    workdir: str | os.PathLike | None = None,
    command: str = "",
    findings: str = "",
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run the experiment and write the CSV + markdown.

    Args:
        out_md: markdown output.
        out_csv: CSV output (default: beside ``out_md`` with ``.csv``).
        datasets: registry names (see :data:`PROTOCOL`).
        methods: subset of :data:`METHODS`.
        seeds: seeds per cell.
        model: backbone config (the default backbone of that config is used; ``scratch`` is random).
        epochs: training epochs of every neural run.
        lr: base learning rate.
        lambda_sweep: add the λ ∈ {1, 4, 16, 64} sweep of LoRA+/KronA+.
        quick: CI mode — first split of each dataset only, no sweep.
        workdir: where scenes are ingested (default: a temporary directory).
        command: the command line recorded in the document.
        findings: a findings section appended to the document.
        log: progress messages.

    Returns:
        The rows (one per run).
    """
    from geohsi._atomic import atomic_output
    from geohsi.datasets.registry import ingest_dataset

    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise UsageError(f"unknown methods {unknown}; use {', '.join(METHODS)}")
    bad = sorted(set(datasets) - set(PROTOCOL))
    if bad:
        raise UsageError(f"no protocol for datasets {bad}; use {', '.join(PROTOCOL)}")
    out_md = Path(out_md)
    out_csv = Path(out_csv) if out_csv else out_md.with_suffix(".csv")
    t0 = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="geohsi-peft-") if workdir is None else None
    wd = Path(workdir or tmp.name)
    scenes = {ds: wd / f"{ds}.zarr" for ds in datasets}
    for ds, p in scenes.items():
        if not p.exists():
            ingest_dataset(ds, p)
    runs = plan(datasets=datasets, methods=methods, seeds=seeds, model=model, epochs=epochs, lr=lr,
                lambda_sweep=lambda_sweep, quick=quick)
    rows = []
    for i, spec in enumerate(runs, 1):
        row = _child(spec, scenes[spec.dataset])
        rows.append(row)
        msg = f"error: {row['error']}" if "error" in row else f"OA {100 * row['oa']:.2f} ({row['wall_seconds']:.0f} s)"
        log(f"[{i}/{len(runs)}] {spec.dataset} {spec.split} {spec.method} λ={spec.lr_ratio:g} seed {spec.seed}: {msg}")
    import csv
    import io

    cols = sorted({k for r in rows for k in r})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    for path, text in ((out_csv, buf.getvalue()), (out_md, render_markdown(rows, command=command, wall=time.perf_counter() - t0, findings=findings))):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, overwrite=True) as t:
            t.write_text(text)
    if tmp is not None:
        tmp.cleanup()
    return rows
