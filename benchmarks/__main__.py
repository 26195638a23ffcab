"""``python -m benchmarks``: the benchmarks whose results go into docs/ (run from the repository root).

Commands: ``peft`` (the PEFT results table, docs/results.md), ``inference`` (inference throughput,
docs/performance.md), ``batch`` (one batch command vs single-scene commands, docs/performance.md), ``cross-sensor``
(docs/cross_sensor.md), ``backbones`` (s2 vs PCA backbone vs random init, docs/backbones.md), ``gpu`` (the GPU
check's measurements, benchmarks/gpu_check.sh), ``large-scene`` (a synthetic 1024² scene through classify), ``training-data`` (one epoch from 8–128 scenes
larger than memory, docs/performance.md), ``scene-held-out`` (the 18 EnMAP tiles as they come, whole tiles held out,
docs/results.md), ``ddp`` (training steps on 1 and N DistributedDataParallel ranks, docs/performance.md), ``store-codecs``
(size and read time of the scene cube under candidate Zarr codecs, docs/performance.md), ``object-storage`` (a scene
read from an S3 API server, a batch from a bucket vs from disk, docs/performance.md), ``assessment`` (sample + assess vs one full read of a
map, docs/assessment.md), ``sections`` (the
section-by-section model-side inference benchmark). They use geohsi's public API only; geohsi
itself never imports this package.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click


def _command() -> str:
    """The command line that produced a result, as the user typed it."""
    return "python -m benchmarks " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@click.group("benchmarks", context_settings={"help_option_names": ["-h", "--help"]})
def bench() -> None:
    """Benchmarks that print ratios measured in one run and write their results into docs/."""


@bench.command("peft")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("docs/results.md"),
    show_default=True,
    help="Markdown results (a CSV is written beside it).",
)
@click.option("--dataset", "datasets", multiple=True, default=("indian_pines", "enmap_potsdam"), show_default=True)
@click.option("--method", "methods", multiple=True, default=None, help="Subset of methods (repeatable) [default: all].")
@click.option("--seeds", default=3, show_default=True)
@click.option("--model", default="small", show_default=True, help="Backbone config (its default backbone is used).")
@click.option(
    "--head",
    type=click.Choice(["dense", "patch"]),
    default="dense",
    show_default=True,
    help="dense: segmentation of tiles (fits one session on 2 CPU cores); patch: one window per pixel (the paper).",
)
@click.option("--epochs", default=150, show_default=True)
@click.option("--lr", default=2e-3, show_default=True, help="Learning rate of the adapters and the linear probe.")
@click.option("--lr-full", default=5e-4, show_default=True, help="Learning rate of full fine-tuning and scratch.")
@click.option("--batch-size", type=int, default=None, help="Samples per step [default: 8 tiles dense, 64 windows patch].")
@click.option("--no-lambda-sweep", is_flag=True, help="Skip the λ ∈ {1, 4, 16, 64} sweep of LoRA+/KronA+.")
@click.option("--quick", is_flag=True, help="CI smoke run: tiny config, 1 seed, 1 epoch, first split, no sweep.")
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Keep ingested scenes here.")
@click.option(
    "--findings",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Markdown file appended as the Findings section.",
)
@click.option(
    "--from-csv",
    "from_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Run nothing: re-write --out from this CSV of a finished run (e.g. with --findings).",
)
def peft(
    out: Path,
    datasets,
    methods,
    seeds: int,
    model: str,
    head: str,
    epochs: int,
    lr: float,
    lr_full: float,
    batch_size: int | None,
    no_lambda_sweep: bool,
    quick: bool,
    workdir: Path | None,
    findings: Path | None,
    from_csv: Path | None,
) -> None:
    """Run the PEFT comparison of Ligan et al. 2025 on the benchmark scenes and write the results table."""
    from benchmarks.peft import METHODS, peft_table, render_from_csv

    findings_text = findings.read_text() if findings else ""
    if from_csv is not None:
        render_from_csv(from_csv, out, findings=findings_text)
        click.echo(f"wrote {out} from {from_csv}")
        return
    if quick:
        seeds, model, epochs = 1, "tiny", 1
    command = _command()
    peft_table(
        out_md=out,
        datasets=datasets,
        methods=methods or METHODS,
        seeds=seeds,
        model=model,
        epochs=epochs,
        lr=lr,
        lr_full=lr_full,
        head=head,
        batch_size=batch_size,
        lambda_sweep=not no_lambda_sweep,
        quick=quick,
        workdir=workdir,
        command=command,
        findings=findings_text,
        log=click.echo,
    )
    click.echo(f"wrote {out} and {out.with_suffix('.csv')}")


@bench.command("inference")
@click.option("--model", default="small", show_default=True, help="Backbone config (its shipped pretrained backbone is used).")
@click.option("--adapter", default="krona+", show_default=True, help="PEFT method of both modes.")
@click.option("--patch-epochs", type=int, default=None, help="Patch-mode training epochs [default: 2; --quick 1].")
@click.option("--dense-epochs", type=int, default=None, help="Dense-mode training epochs [default: 15; --quick 2].")
@click.option("--workers", default=2, show_default=True, help="Dask worker processes for the classify rows.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="bf16", show_default=True)
@click.option(
    "--large-scene",
    "large",
    is_flag=True,
    help="Also classify 1024² and 2048² × 224-band synthetic scenes (EnMAP bands) in dense mode, profiled, against the bare forward.",
)
@click.option("--quick", is_flag=True, help="Smoke run (≲ 2 min): per-class:5 splits, 1/2 epochs, short timings.")
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Keep scenes and bundles here.")
@click.option(
    "--docs",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the results into this Markdown page between <!-- bench:start --> and <!-- bench:end -->.",
)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write every number as JSON.")
def inference(
    model: str,
    adapter: str,
    patch_epochs: int | None,
    dense_epochs: int | None,
    workers: int,
    precision: str,
    large: bool,
    quick: bool,
    workdir: Path | None,
    docs: Path | None,
    json_out: Path | None,
) -> None:
    """Measure inference on this machine in one run: matmul peak, forward GFLOP/s, patch vs dense px/s, Dask overhead, OA.

    Trains a patch and a dense bundle with the same backbone and adapter on Indian Pines
    (fraction:0.1) and EnMAP, then times the model and the Dask classify graph with them. MFU is
    reported on CUDA machines only.

    \b
    Examples:
      python -m benchmarks inference --quick
      python -m benchmarks inference --large-scene --docs docs/performance.md --workdir /tmp/bench
    """
    import json

    from benchmarks.inference import large_scene, run, write_docs

    res = run(
        model=model,
        adapter=adapter,
        quick=quick,
        patch_epochs=patch_epochs,
        dense_epochs=dense_epochs,
        workers=workers,
        precision=precision,
        workdir=workdir,
        log=click.echo,
    )
    if large:
        dense = Path(res["info"]["workdir"]) / f"enmap_potsdam-dense-{model}-{adapter}"
        res["large_scene"] = [
            large_scene(dense, size=size, workers=workers, precision=precision, workdir=workdir, log=click.echo)
            for size in ((256,) if quick else (1024, 2048))
        ]
    if json_out:
        json_out.write_text(json.dumps(res, indent=1, default=str))
        click.echo(f"wrote {json_out}")
    if docs:
        write_docs(res, docs, _command())
        click.echo(f"wrote {docs}")


@bench.command("batch")
@click.option(
    "--bundle",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Bundle to map with [default: train one with geohsi train's defaults on the EnMAP mosaic, and report it].",
)
@click.option("--workers", default=2, show_default=True, help="Worker processes of the batch and of the equal-pixel scene.")
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Keep scenes, bundles and maps here.")
@click.option(
    "--docs",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the results into this Markdown page between <!-- batch:start --> and <!-- batch:end -->.",
)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write every number as JSON.")
def batch_cmd(bundle: Path | None, workers: int, workdir: Path | None, docs: Path | None, json_out: Path | None) -> None:
    """The 18 EnMAP tiles as one batch command vs 18 single-scene commands: wall times, ratio, forward share.

    \b
    Example:
      python -m benchmarks batch --docs docs/performance.md --json /tmp/batch.json
    """
    import json

    from benchmarks.batch import run, write_docs

    res = run(bundle, workers=workers, workdir=workdir, log=click.echo)
    click.echo(json.dumps(res, indent=1))
    if json_out:
        json_out.write_text(json.dumps(res, indent=1))
        click.echo(f"wrote {json_out}")
    if docs:
        write_docs(res, docs, _command())
        click.echo(f"wrote {docs}")


@bench.command("large-scene")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--size", default=1024, show_default=True, help="Scene edge in pixels (bands: the bundle's).")
@click.option("--chunks", type=int, default=None, help="Spatial chunk edge [default: geohsi classify's].")
@click.option("--workers", default=2, show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="bf16", show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Keep the synthetic scene and map here.")
@click.option("--bare-seconds", default=4.0, show_default=True, help="Seconds of each bare forward measurement.")
def large_scene_cmd(
    bundle: Path, size: int, chunks: int | None, workers: int, precision: str, workdir: Path | None, bare_seconds: float
) -> None:
    """Classify a SIZE×SIZE synthetic scene with BUNDLE's bands (Zarr, written chunk by chunk), profiled, against the bare forward.

    \b
    Example:
      python -m benchmarks large-scene runs/enmap-dense --size 1024
    """
    import json

    from benchmarks.inference import large_scene

    res = large_scene(bundle, size=size, chunks=chunks, workers=workers, precision=precision, workdir=workdir,
                      bare_seconds=bare_seconds, log=click.echo)  # fmt: skip
    click.echo(json.dumps(res))


@bench.command("sections", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def sections(ctx: click.Context) -> None:
    """The section-by-section model-side inference benchmark (peak, modes, steps, base, oa); ``-- --help`` for its flags."""
    from benchmarks.inference import main

    main(ctx.args)


@bench.command("cross-sensor")
@click.option("--workdir", type=click.Path(path_type=Path), required=True, help="Scenes, simulated scenes and bundles.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/cross_sensor.md"), show_default=True)
@click.option("--pair", "pairs", multiple=True, default=None, help="Subset of pairs (repeatable) [default: all].")
@click.option("--adapter", "adapters", multiple=True, default=("krona+", "lora", "full"), show_default=True)
@click.option("--seeds", default=3, show_default=True)
@click.option("--model", default="small", show_default=True)
@click.option("--epochs", type=int, default=None, help="[default: the dense head's 150]")
@click.option(
    "--sensor-augment", "sensor_augment", type=int, multiple=True, default=(0,), show_default=True,
    help="Train with geohsi train --sensor-augment N (repeatable: one set of rows per N).",
)  # fmt: skip
@click.option("--quick", is_flag=True, help="Smoke run: tiny model, 1 seed, 1 epoch, KronA+, first pair.")
def cross_sensor(
    workdir: Path, out: Path, pairs, adapters, seeds: int, model: str, epochs: int | None, sensor_augment, quick: bool
) -> None:
    """Train s2 bundles on a real scene, map it through another sensor's band table, and back (docs/cross_sensor.md)."""
    from benchmarks.cross_sensor import PAIRS, run

    if quick:
        pairs, adapters, seeds, model, epochs = (next(iter(PAIRS)),), ("krona+",), 1, "tiny", 1
    run(workdir=workdir, out=out, pairs=pairs or tuple(PAIRS), adapters=adapters, seeds=range(seeds), model=model,
        epochs=epochs, sensor_augment=sensor_augment, command=_command())  # fmt: skip


@bench.command("backbones")
@click.option("--workdir", type=click.Path(path_type=Path), required=True, help="The scene and the bundles (reused).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/backbones.md"), show_default=True)
@click.option("--row", "rows", multiple=True, default=None, help="Subset of rows (repeatable) [default: all].")
@click.option("--seeds", default=3, show_default=True)
@click.option("--epochs", default=150, show_default=True)
@click.option("--quick", is_flag=True, help="Smoke run: tiny model (random backbones), 1 seed, 1 epoch, per-class:5.")
def backbones(workdir: Path, out: Path, rows, seeds: int, epochs: int, quick: bool) -> None:
    """The shipped s2 backbone vs the PCA one vs random init on Indian Pines per-class:10, patch mode (docs/backbones.md)."""
    from benchmarks.backbones import ROWS, run

    opts = {"model": "tiny", "split": "per-class:5", "epochs": 1} if quick else {"epochs": epochs}
    run(workdir=workdir, out=out, rows=rows or tuple(ROWS), seeds=range(1 if quick else seeds), command=_command(), **opts)


@bench.command("assessment")
@click.option("--size", default=10_000, show_default=True, help="Map edge in pixels (uint8 COG).")
@click.option("--n", "n", default=1000, show_default=True, help="Sample points.")
@click.option("--repeats", default=3, show_default=True, help="Timed rounds of every step (each step's minimum counts).")
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Keep the map and the points here.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write every number as JSON.")
def assessment_cmd(size: int, n: int, repeats: int, workdir: Path | None, json_out: Path | None) -> None:
    """A 1,000-point stratified sample + its assessment vs one full chunked read of a 10,000² class map (goal ≤ 2×)."""
    import json

    from benchmarks.assessment import run

    res = run(size=size, n=n, repeats=repeats, workdir=workdir, log=click.echo)
    click.echo(json.dumps({"command": _command(), **res}, indent=1))
    if json_out:
        json_out.write_text(json.dumps({"command": _command(), **res}, indent=1))
        click.echo(f"wrote {json_out}")


@bench.command("scene-held-out")
@click.option("--seeds", default=3, show_default=True)
@click.option("--model", default="small", show_default=True)
@click.option("--epochs", default=150, show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Keep the mosaic and bundles here.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/results.md"), show_default=True)
def scene_held_out(seeds: int, model: str, epochs: int, workdir: Path | None, out: Path) -> None:
    """The 18 EnMAP tiles as they come vs the mosaic, and whole tiles held out: KronA+ vs full FT vs SVM (docs/results.md).

    \b
    Example:
      python -m benchmarks scene-held-out --workdir /tmp/sho
    """
    import os

    from benchmarks.scene_held_out import run, write

    data_dir = Path(os.environ.get("GEOHSI_DATA_DIR", "../shared/data"))
    rows = run(data_dir, seeds=seeds, model=model, epochs=epochs, workdir=workdir, log=click.echo)
    click.echo(f"wrote {write(rows, out, _command())}")


@bench.command("ddp")
@click.option("--ranks", "counts", multiple=True, type=int, default=(1, 2), show_default=True, help="Rank counts (repeatable).")
@click.option("--model", default="small", show_default=True)
@click.option("--batch-size", default=16, show_default=True, help="The global batch (tiles).")
@click.option("--steps", default=20, show_default=True, help="Timed steps (after two warm-up steps).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/performance.md"), show_default=True)
def ddp(counts: tuple[int, ...], model: str, batch_size: int, steps: int, device: str, out: Path) -> None:
    """Fine-tuning steps on 1 and N DistributedDataParallel ranks: samples/s and the all-reduce's share (docs/performance.md).

    \b
    Example:
      python -m benchmarks ddp --ranks 1 --ranks 2
    """
    from benchmarks.ddp import markdown, run
    from benchmarks.inference import replace_section

    rows = run(tuple(counts), model=model, batch=batch_size, steps=steps, device=device)
    for r in rows:
        click.echo(json.dumps(r))
    start, end = "<!-- ddp:start -->", "<!-- ddp:end -->"
    block = markdown(rows, _command(), model=model, batch=batch_size, device=device)
    replace_section(out, start, end, f"{start}\n{block}{end}", heading="## Distributed training")
    click.echo(f"wrote the ddp section of {out}")


@bench.command("object-storage")
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Keep the mosaic, bundle and maps here.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/performance.md"), show_default=True)
def object_storage(workdir: Path | None, out: Path) -> None:
    """A scene read from an S3 API server (requests to open, bytes fetched ÷ stored) and a batch from a bucket vs disk.

    \b
    Example:
      python -m benchmarks object-storage --workdir /tmp/s3bench
    """
    import os

    from benchmarks.inference import replace_section
    from benchmarks.object_storage import markdown, run

    data_dir = Path(os.environ.get("GEOHSI_DATA_DIR", "../shared/data"))
    res = run(data_dir, workdir=workdir, log=click.echo)
    start, end = "<!-- object-storage:start -->", "<!-- object-storage:end -->"
    replace_section(out, start, end, f"{start}\n{markdown(res, _command())}{end}", heading="## Object storage")
    click.echo(f"wrote the object-storage section of {out}")


@bench.command("store-codecs")
@click.option("--repeats", default=5, show_default=True, help="Reads per scene and codec (the best counts).")
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Keep the ingested scenes here.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/performance.md"), show_default=True)
def store_codecs(repeats: int, workdir: Path | None, out: Path) -> None:
    """Size and read time of the scene cube under candidate Zarr codecs, on the shared real scenes (docs/performance.md).

    \b
    Example:
      python -m benchmarks store-codecs --workdir /tmp/codecs
    """
    import os

    from benchmarks.inference import replace_section
    from benchmarks.store_codecs import markdown, run

    data_dir = Path(os.environ.get("GEOHSI_DATA_DIR", "../shared/data"))
    rows = run(data_dir, repeats=repeats, workdir=workdir, log=click.echo)
    start, end = "<!-- store-codecs:start -->", "<!-- store-codecs:end -->"
    replace_section(out, start, end, f"{start}\n{markdown(rows, _command())}{end}", heading="## How scene stores are compressed")
    click.echo(f"wrote the store-codecs section of {out}")


@bench.command("training-data")
@click.option(
    "--scenes", "counts", multiple=True, type=int, default=(8, 32, 128), show_default=True, help="Scene counts (repeatable)."
)
@click.option("--bases", default=4, show_default=True, help="Distinct 1024² stores written (the others are links).")
@click.option("--size", default=1024, show_default=True, help="Scene edge in pixels.")
@click.option("--loader", type=click.Choice(["auto", "memory", "stream"]), default="auto", show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Keep the stores here (reused by a rerun).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/performance.md"), show_default=True)
def training_data(counts: tuple[int, ...], bases: int, size: int, loader: str, workdir: Path | None, out: Path) -> None:
    """One training epoch from 8, 32 and 128 scenes larger than memory together: peak RSS and data wait (docs/performance.md).

    \b
    Example:
      python -m benchmarks training-data --workdir /tmp/td
    """
    from benchmarks.inference import replace_section
    from benchmarks.training_data import run, table

    rows = run(tuple(counts), bases=bases, size=size, loader=loader, workdir=workdir, log=click.echo)
    start, end = "<!-- training-data:start -->", "<!-- training-data:end -->"
    replace_section(out, start, end, f"{start}\n{table(rows, _command())}{end}", heading="## Training from many scenes")
    click.echo(f"wrote the training-data section of {out}")


@bench.command("gpu")
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("gpu_check_out"), show_default=True, help="Folder for gpu_check.json."
)
@click.option("--dry-run", is_flag=True, help="Run the same measurements on the CPU with tiny sizes (what CI runs).")
def gpu(out: Path, dry_run: bool) -> None:
    """The GPU benchmark of benchmarks/gpu_check.sh: matmul peak, MFU, px/s, Dask ÷ bare forward, training steps/s."""
    from benchmarks.gpu import run

    run(out=out, dry_run=dry_run)


if __name__ == "__main__":
    bench(prog_name="python -m benchmarks")
