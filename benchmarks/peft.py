"""``python -m benchmarks peft``: the paper's experiment — FFT vs linear probe vs LoRA/LoRA+/KronA/KronA+/LoKr vs
from-scratch vs SVM — on the same splits, several seeds, one results table.

Every training run happens in its own Python process (so its peak memory, the kernel's VmHWM, is
its own) through the same :func:`geohsi.train` that ``geohsi train`` uses; the SVM
runs :func:`geohsi.baseline` on the same split. :func:`peft_table` writes a CSV with one
row per run and ``docs/results.md`` (markdown tables of mean ± std, the exact command and the
machine), so the document is produced by the script, never edited by hand. The findings prose is
kept in ``benchmarks/peft_findings.md`` and appended with ``--findings``; ``--from-csv`` re-renders the
document from a finished run's CSV (:func:`render_from_csv`) without training again.

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

#: the repository root (the child processes import ``benchmarks`` from it).
REPO = Path(__file__).resolve().parents[1]
NEURAL = ("full", "linear", "lora", "lora+", "krona", "krona+", "lokr", "scratch")
METHODS = (*NEURAL, "svm")
#: dataset → the splits of the experiment (the few-shot protocol, a 10 % fraction, spatial blocks)
PROTOCOL: dict[str, tuple[str, ...]] = {"indian_pines": ("per-class:10", "fraction:0.1"), "enmap_potsdam": ("blocks:32",)}
LAMBDAS = (1.0, 4.0, 16.0, 64.0)
#: methods that train every backbone weight (they get ``lr_full``, the others ``lr``)
FULL_METHODS = ("full", "scratch")
#: PEFT adapters proper (the "best PEFT method" of the summary)
PEFT = ("lora", "lora+", "krona", "krona+", "lokr")
#: samples per optimisation step by head (dense: tiles of ``input_size``², patch: windows)
BATCH_SIZE = {"dense": 8, "patch": 64}


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
    batch_size: int = 8
    head: str = "dense"
    tag: str = "main"

    def key(self) -> str:
        return f"{self.tag}|{self.dataset}|{self.split}|{self.method}|{self.seed}|{self.lr_ratio:g}"


def run_one(spec: dict[str, Any], scene: str, workdir: str) -> dict[str, Any]:
    """Run one cell in this process and return its row (called in a child process)."""
    from geohsi.models import count_parameters, resolve_model_config

    s = RunSpec(**spec)
    t0 = time.perf_counter()
    row: dict[str, Any] = {**spec}
    if s.method == "svm":
        from geohsi import baseline

        r = baseline(scene, method="svm", split=s.split, seed=s.seed)
        row.update(
            oa=r["overall_accuracy"],
            aa=r["average_accuracy"],
            kappa=r["kappa"],
            n_test=r["n_test"],
            trainable_params=0,
            head_params=0,
            percent_params=0.0,
            adapter_bytes=0,
            seconds_per_epoch=r["fit_seconds"],
        )
    else:
        import torch

        from geohsi import resolve_train_config as train_config
        from geohsi import train

        torch.set_num_threads(int(os.environ.get("GEOHSI_BENCH_THREADS", os.cpu_count() or 1)))
        adapter = "full" if s.method == "scratch" else s.method
        cfg = train_config(
            adapter=adapter,
            model=s.model,
            split=s.split,
            epochs=s.epochs,
            seed=s.seed,
            lr=s.lr,
            lr_ratio=s.lr_ratio,
            batch_size=s.batch_size,
            head=s.head,
            backbone="random" if s.method == "scratch" else None,
        )
        out = Path(workdir) / "bundle"
        train(scene, cfg, out=out, overwrite=True, progress=False, log=lambda m: None)
        meta = json.loads((out / "bundle.json").read_text())
        adapter_meta = json.loads((out / "adapter" / "adapter.json").read_text())
        n_train = sum(int(np.prod(t["shape"])) for t in adapter_meta["tensors"].values())
        n_head = sum(int(np.prod(t["shape"])) for k, t in adapter_meta["tensors"].items() if k.startswith("head."))
        backbone = count_parameters(resolve_model_config(meta["model"]["config"]))
        log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        m = meta["metrics"]
        row.update(
            oa=m["overall_accuracy"],
            aa=m["average_accuracy"],
            kappa=m["kappa"],
            n_test=m["n_test"],
            trainable_params=n_train,
            head_params=n_head,
            percent_params=100.0 * n_train / backbone,
            adapter_bytes=sum(f.stat().st_size for f in (out / "adapter").iterdir()),
            seconds_per_epoch=float(np.mean([r["seconds"] for r in log])),
            backbone=meta["backbone"].get("path") or meta["backbone"]["identity"].get("name"),
        )
    from geohsi.classification.worker import peak_rss_mb

    row.update(peak_rss_mb=peak_rss_mb(), wall_seconds=time.perf_counter() - t0)
    return row


def _child(spec: RunSpec, scene: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="geohsi-bench-") as d:
        code = (
            "import json,sys; from benchmarks.peft import run_one; "
            "print('GEOHSI_ROW ' + json.dumps(run_one(json.loads(sys.argv[1]), sys.argv[2], sys.argv[3])))"
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        p = subprocess.run(
            [sys.executable, "-c", code, json.dumps(spec.__dict__), str(scene), d], capture_output=True, text=True, env=env
        )
        for line in p.stdout.splitlines():
            if line.startswith("GEOHSI_ROW "):
                return json.loads(line[len("GEOHSI_ROW ") :])
        tail = " ".join(p.stderr.strip().splitlines()[-1:])
        return {**spec.__dict__, "error": tail or f"exit {p.returncode}"}


def plan(
    *,
    datasets: Sequence[str],
    methods: Sequence[str],
    seeds: int,
    model: str,
    epochs: int,
    lr: float,
    lr_full: float | None = None,
    head: str = "dense",
    batch_size: int | None = None,
    lambda_sweep: bool,
    quick: bool,
) -> list[RunSpec]:
    """The list of runs of the experiment.

    ``full`` and ``scratch`` train with ``lr_full`` (default ``lr``), every other method with
    ``lr``; ``batch_size`` defaults to :data:`BATCH_SIZE` of the head.
    """
    bs = batch_size or BATCH_SIZE[head]

    def spec(ds: str, split: str, method: str, seed: int, **kw: Any) -> RunSpec:
        m_lr = lr_full if method in FULL_METHODS and lr_full is not None else lr
        return RunSpec(ds, split, method, seed, model, epochs, m_lr, batch_size=bs, head=head, **kw)

    runs = []
    for ds in datasets:
        splits = PROTOCOL[ds][:1] if quick else PROTOCOL[ds]
        for split in splits:
            for method in methods:
                for seed in range(seeds):
                    runs.append(spec(ds, split, method, seed))
    if lambda_sweep and not quick:
        ds, split = datasets[0], PROTOCOL[datasets[0]][-1]
        for method in ("lora+", "krona+"):
            for lam in LAMBDAS:
                runs.append(spec(ds, split, method, 0, lr_ratio=lam, tag="lambda"))
    return runs


def _fmt(vals: list[float], pct: bool = True) -> str:
    v = np.asarray(vals, float) * (100 if pct else 1)
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def _with_backbone_side(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with ``head_params``, ``backbone_side_params`` (trainable minus the head: the adapter, or
    every encoder weight for full/scratch) and ``backbone_side_percent`` (of the encoder).

    CSVs written before ``head_params`` was recorded get it from the linear probe of the same
    dataset/split, which trains exactly the head.
    """
    probe = {(r["dataset"], r["split"]): r["trainable_params"] for r in rows if r["method"] == "linear"}
    out = []
    for r in rows:
        r = dict(r)
        if "head_params" not in r and r["method"] != "svm":
            r["head_params"] = probe.get((r["dataset"], r["split"]), 0)
        side = float(r["trainable_params"]) - float(r.get("head_params", 0))
        backbone = 100.0 * float(r["trainable_params"]) / float(r["percent_params"]) if float(r.get("percent_params", 0)) else 0.0
        r["backbone_side_params"] = side
        r["backbone_side_percent"] = 100.0 * side / backbone if backbone else 0.0
        out.append(r)
    return out


def _lr(rows: list[dict[str, Any]], *, adapters: bool) -> str:
    v = sorted({float(r["lr"]) for r in rows if r["method"] != "svm" and (r["method"] not in FULL_METHODS) == adapters})
    return "/".join(f"{x:g}" for x in v) or "–"


def summary_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The paper's and the issue's claims checked against the main-table rows (mean over seeds).

    Per dataset/split: the best PEFT method, KronA+ − FFT in OA and KronA+'s trainable parameters
    as a share of FFT's, KronA+ − from-scratch, and the SVM for reference.
    """

    def mean(rs: list[dict[str, Any]], method: str, key: str = "oa") -> float | None:
        v = [float(r[key]) for r in rs if r["method"] == method]
        return float(np.mean(v)) if v else None

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in _with_backbone_side(rows):
        if r.get("tag", "main") == "main":
            groups.setdefault((r["dataset"], r["split"]), []).append(r)
    out = [
        "## Summary (computed from the tables above)",
        "",
        "KronA+ / FFT trainable parameters compares the backbone side (the adapter vs every encoder "
        "weight); the head, the same in every method, is left out.",
        "",
        "| dataset, split | best PEFT (OA) | KronA+ − FFT (pp) | KronA+ / FFT trainable params | KronA+ − scratch (pp) | SVM OA |",
        "|---|---|---|---|---|---|",
    ]
    for (ds, split), rs in groups.items():
        peft = [(mean(rs, m), m) for m in PEFT if mean(rs, m) is not None]
        best = max(peft) if peft else None
        kr, fft, scr, svm = (mean(rs, m) for m in ("krona+", "full", "scratch", "svm"))
        kp, fp = mean(rs, "krona+", "backbone_side_params"), mean(rs, "full", "backbone_side_params")

        def pp(a: float | None, b: float | None) -> str:
            return f"{100 * (a - b):+.2f}" if a is not None and b is not None else "–"

        out.append(
            f"| {ds}, `{split}` | {f'{best[1]} {100 * best[0]:.2f} %' if best else '–'} | {pp(kr, fft)} "
            f"| {f'{100 * kp / fp:.2f} %' if kp is not None and fp else '–'} | {pp(kr, scr)} "
            f"| {f'{100 * svm:.2f} %' if svm is not None else '–'} |"
        )
    return [*out, ""]


def render_markdown(rows: list[dict[str, Any]], *, command: str, wall: float, findings: str = "") -> str:
    """The results document from the CSV rows (what ``docs/results.md`` holds)."""
    import torch

    ok = _with_backbone_side([r for r in rows if "error" not in r])
    heads = sorted({r.get("head", "dense") for r in ok})
    first = ok[0] if ok else {}
    lines = [
        "# Results: PEFT methods on SpectralGPT (reproduced on CPU)",
        "",
        "Produced by `python -m benchmarks peft`; **do not edit by hand** — re-run:",
        "",
        f"```\n{command}\n```",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}. Total wall time {wall / 60:.1f} min.",
        "OA/AA/κ in %, mean ± std over seeds (sample std). Trainable parameters: the backbone side (the adapter; "
        "every encoder weight for full/scratch) and its % of the encoder, then the head every method trains "
        "(linear = the head alone). The adapter file holds both. Peak memory is the training process's VmHWM.",
        "",
        f"Protocol: `{first.get('model', '?')}` backbone (its shipped pretrained weights; `scratch` = same "
        f"architecture, random init), head `{', '.join(heads)}`, {first.get('epochs', '?')} epochs, "
        f"batch {first.get('batch_size', '?')}, lr {_lr(ok, adapters=True)} for the adapters and the linear probe, "
        f"{_lr(ok, adapters=False)} for full fine-tuning and scratch, λ = 16 for LoRA+/KronA+ outside the sweep; "
        "every run in its own process, the same split per seed for every method.",
        "",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in ok:
        if r.get("tag", "main") == "main":
            groups.setdefault((r["dataset"], r["split"]), []).append(r)
    for (ds, split), rs in groups.items():
        lines += [
            f"## {ds}, `{split}`",
            "",
            "| method | OA | AA | κ | trainable: backbone side | % of encoder | + head | adapter file | s / epoch | peak MB | seeds |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for method in METHODS:
            mr = [r for r in rs if r["method"] == method]
            if not mr:
                continue
            lines.append(
                f"| {method} | {_fmt([r['oa'] for r in mr])} | {_fmt([r['aa'] for r in mr])} | {_fmt([r['kappa'] for r in mr])} "
                f"| {int(mr[0]['backbone_side_params']):,} | {mr[0]['backbone_side_percent']:.3f} % | {int(mr[0].get('head_params', 0)):,} "
                f"| {mr[0]['adapter_bytes'] / 1e6:.3f} MB "
                f"| {np.mean([r['seconds_per_epoch'] for r in mr]):.1f} | {np.mean([r['peak_rss_mb'] for r in mr]):.0f} | {len(mr)} |"
            )
        lines.append("")
    lam = [r for r in ok if r.get("tag") == "lambda"]
    if lam:
        lines += [
            f"## λ sweep ({lam[0]['dataset']}, `{lam[0]['split']}`, seed 0)",
            "",
            "| method | λ | OA | AA | κ |",
            "|---|---|---|---|---|",
        ]
        for r in sorted(lam, key=lambda r: (r["method"], r["lr_ratio"])):
            lines.append(
                f"| {r['method']} | {r['lr_ratio']:g} | {100 * r['oa']:.2f} | {100 * r['aa']:.2f} | {100 * r['kappa']:.2f} |"
            )
        lines.append("")
    lines += summary_lines(ok)
    bad = [r for r in rows if "error" in r]
    if bad:
        lines += (
            ["## Failed runs", ""]
            + [f"- {r['dataset']} {r['split']} {r['method']} seed {r['seed']}: {r['error']}" for r in bad]
            + [""]
        )
    if findings:
        lines += ["## Findings", "", findings.strip(), ""]
    return "\n".join(lines)


#: CSV columns that hold text; every other column is a number
_TEXT_COLUMNS = {"dataset", "split", "method", "model", "head", "tag", "backbone", "error"}
_INT_COLUMNS = {"seed", "epochs", "batch_size", "n_test", "trainable_params", "head_params", "adapter_bytes"}


def _csv_text(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=sorted({k for r in rows for k in r}))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _write(path: Path, text: str) -> None:
    from geohsi.files import atomic_output

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=True) as t:
        t.write_text(text)


def _run_json(out_md: Path) -> Path:
    return out_md.with_suffix(".run.json")


def read_rows(csv_path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a results CSV written by :func:`peft_table` (numbers as numbers, empty cells dropped)."""
    import csv

    p = Path(csv_path)
    if not p.is_file():
        raise UsageError(f"results CSV {p} does not exist; run `python -m benchmarks peft` first or pass the CSV it wrote")
    rows = []
    for raw in csv.DictReader(p.open()):
        rows.append(
            {k: (v if k in _TEXT_COLUMNS else int(v) if k in _INT_COLUMNS else float(v)) for k, v in raw.items() if v != ""}
        )
    return rows


def render_from_csv(csv_path: str | os.PathLike, out_md: str | os.PathLike, *, findings: str = "") -> Path:
    """Re-write the results document from the CSV of a finished run (e.g. to add the findings).

    The command and wall time are those of the run that produced the CSV (kept beside the
    document in ``<out>.run.json``), so the numbers and the command that made them stay together.
    """
    out_md = Path(out_md)
    meta_path = _run_json(out_md)
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {"command": "(unknown)", "wall_seconds": float("nan")}
    _write(out_md, render_markdown(read_rows(csv_path), command=meta["command"], wall=meta["wall_seconds"], findings=findings))
    return out_md


def _check_choices(methods: Sequence[str], datasets: Sequence[str]) -> None:
    """Raise :class:`UsageError` for a method or dataset the experiment does not know."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise UsageError(f"unknown methods {unknown}; use {', '.join(METHODS)}")
    bad = sorted(set(datasets) - set(PROTOCOL))
    if bad:
        raise UsageError(f"no protocol for datasets {bad}; use {', '.join(PROTOCOL)}")


def _ingested_scenes(datasets: Sequence[str], wd: Path) -> dict[str, Path]:
    """``{dataset: scene}`` under ``wd``, each ingested from the registry unless already there."""
    from geohsi.datasets.registry import ingest_dataset

    scenes = {ds: wd / f"{ds}.zarr" for ds in datasets}
    for ds, p in scenes.items():
        if not p.exists():
            ingest_dataset(ds, p)
    return scenes


def _run_each(runs: list[RunSpec], scenes: dict[str, Path], out_csv: Path, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every run in a child process, the CSV rewritten and one line logged after each."""
    rows = []
    for i, spec in enumerate(runs, 1):
        row = _child(spec, scenes[spec.dataset])
        rows.append(row)
        _write(out_csv, _csv_text(rows))  # after every run, so an interrupted experiment keeps its rows
        msg = f"error: {row['error']}" if "error" in row else f"OA {100 * row['oa']:.2f} ({row['wall_seconds']:.0f} s)"
        log(f"[{i}/{len(runs)}] {spec.dataset} {spec.split} {spec.method} λ={spec.lr_ratio:g} seed {spec.seed}: {msg}")
    return rows


def peft_table(
    *,
    out_md: str | os.PathLike = "docs/results.md",
    out_csv: str | os.PathLike | None = None,
    datasets: Sequence[str] = ("indian_pines", "enmap_potsdam"),
    methods: Sequence[str] = METHODS,
    seeds: int = 3,
    model: str = "small",
    epochs: int = 150,
    lr: float = 2e-3,
    lr_full: float | None = 5e-4,
    head: str = "dense",
    batch_size: int | None = None,
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
        lr: learning rate of the adapters and the linear probe (factor A of LoRA+/KronA+).
        lr_full: learning rate of ``full`` and ``scratch`` (``None`` → ``lr``).
        head: ``dense`` (segmentation of tiles, :mod:`geohsi.heads.dense`) or ``patch`` (one window
            per pixel, the paper's protocol; ~10× slower to train and evaluate on CPU).
        batch_size: samples per step (default :data:`BATCH_SIZE` of the head).
        lambda_sweep: add the λ ∈ {1, 4, 16, 64} sweep of LoRA+/KronA+.
        quick: CI mode — first split of each dataset only, no sweep.
        workdir: where scenes are ingested (default: a temporary directory).
        command: the command line recorded in the document.
        findings: a findings section appended to the document.
        log: progress messages.

    Returns:
        The rows (one per run).
    """
    _check_choices(methods, datasets)
    out_md = Path(out_md)
    out_csv = Path(out_csv) if out_csv else out_md.with_suffix(".csv")
    t0 = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="geohsi-peft-") if workdir is None else None
    wd = Path(workdir or tmp.name)
    scenes = _ingested_scenes(datasets, wd)
    runs = plan(
        datasets=datasets,
        methods=methods,
        seeds=seeds,
        model=model,
        epochs=epochs,
        lr=lr,
        lr_full=lr_full,
        head=head,
        batch_size=batch_size,
        lambda_sweep=lambda_sweep,
        quick=quick,
    )
    rows = _run_each(runs, scenes, out_csv, log)
    wall = time.perf_counter() - t0
    _write(_run_json(out_md), json.dumps({"command": command, "wall_seconds": wall}, indent=1) + "\n")
    _write(out_md, render_markdown(rows, command=command, wall=wall, findings=findings))
    if tmp is not None:
        tmp.cleanup()
    return rows
