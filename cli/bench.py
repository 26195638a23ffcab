"""``geohsi bench``: benchmarks whose results go into docs/ (PEFT results table, …)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click


@click.group("bench")
def bench() -> None:
    """Benchmarks that print ratios measured in one run and write their results into docs/."""


@bench.command("peft")
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/results.md"), show_default=True,
              help="Markdown results (a CSV is written beside it).")
@click.option("--dataset", "datasets", multiple=True, default=("indian_pines", "enmap_potsdam"), show_default=True)
@click.option("--method", "methods", multiple=True, default=None, help="Subset of methods (repeatable) [default: all].")
@click.option("--seeds", default=3, show_default=True)
@click.option("--model", default="small", show_default=True, help="Backbone config (its default backbone is used).")
@click.option("--epochs", default=20, show_default=True)
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--no-lambda-sweep", is_flag=True, help="Skip the λ ∈ {1, 4, 16, 64} sweep of LoRA+/KronA+.")
@click.option("--quick", is_flag=True, help="CI smoke run: tiny config, 1 seed, 1 epoch, first split, no sweep.")
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Keep ingested scenes here.")
@click.option("--findings", type=click.Path(exists=True, path_type=Path), default=None, help="Markdown file appended as the Findings section.")
def peft(out: Path, datasets, methods, seeds: int, model: str, epochs: int, lr: float, no_lambda_sweep: bool,
         quick: bool, workdir: Path | None, findings: Path | None) -> None:
    """Run the PEFT comparison of Ligan et al. 2025 on the benchmark scenes and write the results table."""
    from geohsi.bench import METHODS, peft_table

    if quick:
        seeds, model, epochs = 1, "tiny", 1
    command = "python benchmarks/peft_table.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith(".py") \
        else "geohsi " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    peft_table(out_md=out, datasets=datasets, methods=methods or METHODS, seeds=seeds, model=model, epochs=epochs,
               lr=lr, lambda_sweep=not no_lambda_sweep, quick=quick, workdir=workdir, command=command,
               findings=findings.read_text() if findings else "", log=click.echo)
    click.echo(f"wrote {out} and {out.with_suffix('.csv')}")
