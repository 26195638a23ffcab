"""`python -m benchmarks peft --quick` keeps the results-table script working (CI smoke run)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli


def run_benchmarks(*args, env=None):
    """``python -m benchmarks ARGS`` from the repository root, as a user runs it."""
    e = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *map(str, args)], capture_output=True, text=True, env=e, cwd=REPO, timeout=1800
    )


@pytest.mark.slow
def test_peft_table_quick(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "results.md"
    r = run_benchmarks(
        "peft",
        "--quick",
        "--out",
        out,
        "--method",
        "krona+",
        "--method",
        "scratch",
        "--method",
        "svm",
        "--workdir",
        tmp_path / "scenes",
        env={"GEOHSI_DATA_DIR": str(data_dir)},
    )
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert {(x["dataset"], x["split"], x["method"]) for x in rows} == {
        (d, s, m)
        for d, s in (("indian_pines", "per-class:10"), ("enmap_potsdam", "blocks:32"))
        for m in ("krona+", "scratch", "svm")
    }
    assert not any(x.get("error") for x in rows), rows
    text = out.read_text()
    assert "## indian_pines, `per-class:10`" in text and "## enmap_potsdam, `blocks:32`" in text
    assert "do not edit by hand" in text and "python -m benchmarks peft --quick" in text
    for x in rows:
        assert 0.0 <= float(x["oa"]) <= 1.0
    krona = next(x for x in rows if x["method"] == "krona+" and x["dataset"] == "indian_pines")
    assert int(krona["trainable_params"]) < int(next(x for x in rows if x["method"] == "scratch")["trainable_params"])
    assert "## Summary (computed from the tables above)" in text

    # re-rendering from the CSV adds findings and keeps the command of the run that made the numbers
    findings = tmp_path / "findings.md"
    findings.write_text("KronA+ holds up.\n")
    r = run_benchmarks("peft", "--from-csv", out.with_suffix(".csv"), "--out", out, "--findings", findings)
    assert r.returncode == 0, r.stderr
    again = out.read_text()
    assert "## Findings\n\nKronA+ holds up." in again and "python -m benchmarks peft --quick" in again
    assert again.split("## Findings")[0].replace("\n", "") == text.replace("\n", "")


def test_plan_gives_full_methods_their_own_lr_and_head_batch() -> None:
    from benchmarks.peft import LAMBDAS, plan

    runs = plan(
        datasets=["indian_pines"],
        methods=["full", "scratch", "krona+", "linear", "svm"],
        seeds=2,
        model="small",
        epochs=5,
        lr=2e-3,
        lr_full=5e-4,
        head="dense",
        lambda_sweep=True,
        quick=False,
    )
    main = [r for r in runs if r.tag == "main"]
    assert len(main) == 2 * 5 * 2  # two IP splits × 5 methods × 2 seeds
    assert {r.lr for r in main if r.method in ("full", "scratch")} == {5e-4}
    assert {r.lr for r in main if r.method not in ("full", "scratch")} == {2e-3}
    assert {r.batch_size for r in runs} == {8} and {r.head for r in runs} == {"dense"}
    sweep = [r for r in runs if r.tag == "lambda"]
    assert sorted((r.method, r.lr_ratio) for r in sweep) == sorted((m, lam) for m in ("krona+", "lora+") for lam in LAMBDAS)
    assert {r.split for r in sweep} == {"fraction:0.1"}
    patch = plan(
        datasets=["enmap_potsdam"],
        methods=["lora"],
        seeds=1,
        model="tiny",
        epochs=1,
        lr=1e-3,
        head="patch",
        lambda_sweep=False,
        quick=True,
    )
    assert [(r.split, r.batch_size, r.head) for r in patch] == [("blocks:32", 64, "patch")]


def test_summary_compares_krona_plus_with_fft_scratch_and_best_peft() -> None:
    from benchmarks.peft import summary_lines

    def row(method: str, oa: float, params: int, seed: int = 0) -> dict:
        return {
            "dataset": "indian_pines",
            "split": "fraction:0.1",
            "method": method,
            "seed": seed,
            "oa": oa,
            "trainable_params": params,
            "tag": "main",
        }

    rows = [
        row("full", 0.95, 1000),
        row("full", 0.97, 1000, 1),
        row("krona+", 0.955, 5),
        row("krona+", 0.955, 5, 1),
        row("lora", 0.96, 50),
        row("scratch", 0.80, 1000),
        row("svm", 0.805, 0),
    ]
    text = "\n".join(summary_lines(rows))
    line = next(x for x in text.splitlines() if x.startswith("| indian_pines"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == "lora 96.00 %"  # best PEFT by mean OA
    assert cells[2] == "-0.50"  # KronA+ 95.5 − FFT mean 96.0
    assert cells[3] == "0.50 %"  # 5 / 1000 trainable parameters
    assert cells[4] == "+15.50" and cells[5] == "80.50 %"


def test_geohsi_bench_says_where_the_benchmarks_are() -> None:
    r = run_cli("bench", "peft", "--quick")
    assert r.returncode == 2 and "python -m benchmarks peft --quick" in r.stderr and r.stderr.count("\n") == 1


def test_geohsi_bench_help_lists_every_benchmark() -> None:
    import re

    from benchmarks.__main__ import bench

    r = run_cli("bench", "--help")
    listed = set(re.findall(r"[a-z][a-z-]+", r.stdout.split("Commands:", 1)[1].split("Example:", 1)[0])) - {"docs"}
    assert listed >= set(bench.commands), sorted(set(bench.commands) - listed)


@pytest.mark.slow
def test_inference_benchmark_quick(tmp_path: Path, data_dir: Path) -> None:
    import json

    out = tmp_path / "inference.json"
    # tiny (random init): the smoke run checks the benchmark's plumbing; small's patch-mode test-set scoring took 4 min.
    r = run_benchmarks(
        "inference",
        "--quick",
        "--model",
        "tiny",
        "--workdir",
        tmp_path / "w",
        "--json",
        out,
        env={"GEOHSI_DATA_DIR": str(data_dir)},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["modes"]["fp32"]["dense_over_patch"] > 1 and set(res["dask"]) == {"patch", "dense"}
    for mode in ("patch", "dense"):
        assert 0 < res["dask"][mode]["outside_forward_share"] < 1
