"""``geohsi classify``: classify a scene with a model bundle on a Dask cluster → COG or Zarr map."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("classify")
@click.argument("scene", type=click.Path(path_type=Path))
@click.option(
    "--bundle", type=click.Path(path_type=Path), default=None, help="Model bundle from 'geohsi train' (default: runs/latest)."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="map.tif (Cloud-Optimized GeoTIFF; needs a CRS) or map.zarr (georeferenced Zarr).",
)
@click.option(
    "--probabilities",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write per-class probabilities: .tif (uint8, value/254) or .zarr (float16).",
)
@click.option(
    "--confidence",
    is_flag=True,
    help="Also write the max-probability band (NAME.confidence.tif beside a .tif map; a variable of a .zarr map).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Attach to a running Dask scheduler (tcp://HOST:PORT) instead of starting a local cluster.",
)
@click.option("--workers", type=int, default=None, help="Worker processes of the local cluster [default: one per core].")
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Run the model on CPU or CUDA workers (falls back to the CPU with a warning without a GPU).",
)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option(
    "--chunks", type=int, default=None, help="Spatial chunk edge in pixels, one task per chunk [default: 128 patch / 256 dense]."
)
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Windows (patch) / tiles (dense) per forward [default: 256 / 16 on CPU, auto-tuned on CUDA].",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Reuse chunks completed by an interrupted run of the same command.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show Dask's progress bar.")
def classify(
    scene: Path,
    bundle: Path | None,
    out: Path,
    probabilities: Path | None,
    confidence: bool,
    scheduler: str | None,
    workers: int | None,
    device: str,
    precision: str,
    chunks: int | None,
    batch_size: int | None,
    resume: bool,
    overwrite: bool,
    progress: bool,
) -> None:
    """Classify every pixel of SCENE with a model bundle, in parallel on Dask, into a georeferenced map.

    Chunk results land in a hidden .NAME.parts.zarr beside the output as they finish, so rerunning
    an interrupted command computes only the missing chunks; the COG is built once at the end.

    \b
    Examples:
      geohsi classify enmap.zarr --bundle runs/latest --out map.tif --confidence
      geohsi classify ip.zarr --out map.zarr --probabilities probs.zarr
      geohsi classify big.zarr --out map.tif --scheduler tcp://10.0.0.5:8786 --device cuda
    """
    from rich.console import Console

    import geohsi

    res = geohsi.classify(
        scene,
        out,
        bundle,
        probabilities=probabilities,
        confidence=confidence,
        scheduler=scheduler,
        workers=workers,
        device=device,
        precision=precision,
        chunks=chunks,
        batch_size=batch_size,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
    )
    con = Console(stderr=True, soft_wrap=True)
    rate = f", {res.valid_pixels / res.seconds:,.0f} px/s" if res.seconds > 0 and res.valid_pixels else ""
    share = res.forward_share
    con.print(
        f"classified {res.computed} of {res.n_chunks} chunks in {res.seconds:.1f} s{rate}"
        + (f", {share:.0%} of worker time in the model" if share is not None else "")
        + (f" ({res.reused} reused from an interrupted run)" if res.reused else "")
    )
    for p in res.outputs:
        click.echo(f"wrote {p}")
