"""``geohsi classify``: map scenes with a model bundle on a Dask cluster → COG or Zarr maps.

One scene with ``--out`` runs :func:`geohsi.classify`; several scenes, ``--out-dir``,
``--from-list`` or ``--stac`` run :func:`geohsi.classify_many` (one cluster session, a STAC
catalogue and a summary).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from geohsi.cli.paths import PATH_OR_URL
from geohsi.cli.scenes import given_on_command_line, scene_options, selected_scenes

if TYPE_CHECKING:
    from geohsi.classification.job import ClassifyResult
    from geohsi.classification.records import BatchResult


@click.command("classify")
@click.argument("scenes", nargs=-1, metavar="[SCENE]...")
@click.option(
    "--bundle",
    "bundles",
    type=PATH_OR_URL,
    multiple=True,
    help="Model bundle from 'geohsi train' (default: runs/latest). Repeatable in a batch: each scene uses the first "
    "bundle that fits its bands.",
)
@click.option(
    "--backbone",
    type=click.Path(path_type=Path),
    default=None,
    help="New location of the bundle's backbone file, if it moved since training (every worker must see it there).",
)
@click.option(
    "--out",
    type=PATH_OR_URL,
    default=None,
    help="One scene: map.tif (Cloud-Optimized GeoTIFF; needs a CRS) or map.zarr (georeferenced Zarr).",
)
@click.option(
    "--out-dir",
    type=PATH_OR_URL,
    default=None,
    help="A batch: NAME.tif|.zarr, NAME.png and NAME.json (STAC item) per scene, catalog.json and summary.json.",
)
@scene_options("Map")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "tif", "zarr"]),
    default="auto",
    show_default=True,
    help="Batch map format: auto = COG for georeferenced scenes, Zarr for pixel grids.",
)
@click.option(
    "--probabilities",
    type=PATH_OR_URL,
    default=None,
    help="One scene: also write per-class probabilities: .tif (uint8, value/254) or .zarr (float16).",
)
@click.option("--with-probabilities", is_flag=True, help="Batch: also write NAME.probabilities.tif|.zarr per scene.")
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
@click.option(
    "--gpus",
    default=None,
    metavar="IDS",
    help="GPUs of the local cluster with --device cuda, one worker each, e.g. 0,2 [default: every visible GPU].",
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
    "--scenes-in-flight",
    type=int,
    default=None,
    help="Batch: scenes on the cluster at once (bounds memory) [default: twice the worker threads].",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Reuse chunks completed by an interrupted run of the same command.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (a batch redoes every scene).")
@click.option(
    "--profile",
    is_flag=True,
    help="One scene: print where the time went (read, rechunk + halo, transform, model forward, tiles + blending, writes, idle).",
)
@click.option(
    "--profile-report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="One scene: also write Dask's performance report (HTML) here; implies --profile.",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Show progress (one scene): a bar on a terminal, a plain line every GEOHSI_PROGRESS_INTERVAL s (30) in a log.",
)
def classify(
    scenes: tuple[str, ...],
    bundles: tuple[Path, ...],
    backbone: Path | None,
    out: Path | None,
    out_dir: Path | None,
    from_list: Path | None,
    stac_url: str | None,
    collection: str | None,
    bbox: str | None,
    when: str | None,
    cql2: str | None,
    max_items: int,
    fmt: str,
    probabilities: Path | None,
    with_probabilities: bool,
    confidence: bool,
    scheduler: str | None,
    workers: int | None,
    device: str,
    gpus: str | None,
    precision: str,
    chunks: int | None,
    batch_size: int | None,
    scenes_in_flight: int | None,
    resume: bool,
    overwrite: bool,
    profile: bool,
    profile_report: Path | None,
    progress: bool,
) -> None:
    """Classify every pixel of each SCENE with a model bundle, in parallel on Dask, into georeferenced maps.

    A SCENE is a geohsi scene store or any file 'geohsi ingest' reads (GeoTIFF/COG, ENVI .hdr,
    NetCDF, .mat), read in place; globs work. One SCENE with --out writes one map; several, or
    --out-dir, --from-list or --stac, run a batch in one cluster session: a map, quicklook and
    STAC item per scene, catalog.json (a STAC Collection) and summary.json with class areas.
    A failed scene is listed in the summary and the batch goes on (exit code 10 at the end).

    Chunk results land in a hidden .NAME.parts.zarr beside each output as they finish, so rerunning
    an interrupted command computes only the missing chunks, and a batch skips complete maps.

    \b
    Examples:
      geohsi classify enmap.zarr --bundle runs/latest --out map.tif --confidence
      geohsi classify 'tiles/*.tif' scene.mat --bundle enmap_b --bundle ip_b --out-dir maps/
      geohsi classify --stac http://127.0.0.1:8080 -c enmap-potsdam --bbox 13.0,52.3,13.2,52.45 --out-dir maps/
      geohsi classify /data/big.zarr --out /data/map.tif --scheduler tcp://10.0.0.5:8786 --device cuda   # absolute paths
      geohsi classify big.zarr --out map.tif --device cuda --gpus 0,2
    """
    batch = out_dir is not None or from_list is not None or stac_url is not None or len(scenes) > 1
    _check_usage(
        batch, scenes, bundles, out, out_dir, fmt, probabilities, with_probabilities, profile or profile_report is not None,
        _batch_only(collection, bbox, when, cql2, scenes_in_flight),
    )  # fmt: skip
    from geohsi.classification.options import MapOptions

    options = MapOptions(
        backbone=None if backbone is None else str(backbone),
        confidence=confidence,
        scheduler=scheduler,
        workers=workers,
        device=device,
        gpus=gpus,
        precision=precision,
        chunks=chunks,
        batch_size=batch_size,
        resume=resume,
        overwrite=overwrite,
    )
    if not batch:
        from geohsi.classification.run import classify as classify_scene

        single = classify_scene(
            scenes[0],
            out,
            bundles[0] if bundles else None,
            probabilities=probabilities,
            progress=progress,
            profile=profile,
            profile_report=profile_report,
            **options.keywords(),
        )
        _print_result(single)
        return
    from geohsi.classification.batch import classify_many

    sources = selected_scenes(scenes, from_list, stac_url, collection, bbox, when, cql2, max_items)
    res = classify_many(
        sources,
        list(bundles) or None,
        out_dir,
        format=fmt,
        with_probabilities=with_probabilities,
        scenes_in_flight=scenes_in_flight,
        **options.keywords(),
    )
    _print_summary(res)
    res.raise_for_failures()


def _batch_only(collection: str | None, bbox: str | None, when: str | None, cql2: str | None, in_flight: int | None) -> list[str]:
    """The STAC selectors and batch pacing given (``--max-items`` only when typed: it has a default)."""
    given = (("--collection", collection), ("--bbox", bbox), ("--datetime", when), ("--filter", cql2),
             ("--max-items", given_on_command_line("max_items") or None), ("--scenes-in-flight", in_flight))  # fmt: skip
    return [flag for flag, v in given if v is not None]


def _check_usage(
    batch: bool,
    scenes: tuple[str, ...],
    bundles: tuple[Path, ...],
    out: Path | None,
    out_dir: Path | None,
    fmt: str,
    probabilities: Path | None,
    with_probabilities: bool,
    profile: bool,
    batch_only: list[str],
) -> None:
    """Refuse option combinations that fit neither one scene with --out nor a batch with --out-dir."""
    from geohsi.errors import UsageError

    if out is not None and out_dir is not None:
        raise UsageError("give --out (one scene) or --out-dir (a batch), not both")
    if not batch:
        if not scenes:
            raise UsageError("no scene given; pass SCENE --out map.tif, or several scenes / --stac URL with --out-dir DIR")
        if out is None:
            raise UsageError("missing --out map.tif|map.zarr (or --out-dir DIR for a batch)")
        for flag, given in (("--with-probabilities", with_probabilities), ("--format", fmt != "auto")):
            if given:
                raise UsageError(f"{flag} applies to --out-dir batches; with --out use --probabilities PATH and the suffix")
        if len(bundles) > 1:
            raise UsageError("one scene takes one --bundle; several are for --out-dir batches")
        if batch_only:  # they choose and pace the scenes of a batch; one scene is mapped whole
            raise UsageError(f"{', '.join(batch_only)} select or pace STAC items of a batch (--stac URL --out-dir DIR), "
                             "and do not clip a scene; drop them for one scene with --out")  # fmt: skip
        return
    if profile:
        raise UsageError("--profile and --profile-report apply to one scene with --out; profile one scene of the batch")
    if out_dir is None:
        many = f"{len(scenes)} scenes need" if len(scenes) > 1 else "a STAC search or --from-list is a batch: it needs"
        raise UsageError(f"{many} --out-dir DIR (--out names one map)")
    if probabilities is not None:
        raise UsageError("--probabilities PATH names one file; a batch takes --with-probabilities")


def _print_result(res: ClassifyResult) -> None:
    """One line on what a single-scene run did, then the files it wrote."""
    from rich.console import Console

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


def _print_summary(res: BatchResult) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{len(res.scenes)} scene(s) → {res.out_dir}", show_lines=False)
    for col in ("scene", "status", "valid px", "s", "px/s", "largest classes (ha / %)"):
        table.add_column(col, overflow="fold")
    for s in res.scenes:
        top = sorted(s.classes, key=lambda c: -c["pixels"])[:3]
        classes = ", ".join(
            f"{c['name']} {c['area_ha']:,.1f} ha / {c['percent']:.0f}%"
            if c["area_ha"] is not None
            else f"{c['name']} {c['percent']:.0f}%"
            for c in top
            if c["pixels"]
        )
        table.add_row(
            s.name,
            s.status if s.status != "failed" else Text.assemble(("failed", "red"), f": {s.message}"),
            f"{s.valid_pixels:,}" if s.valid_pixels else "",
            f"{s.seconds:.1f}" if s.seconds else "",
            f"{s.pixels_per_second:,.0f}" if s.pixels_per_second else "",
            classes,
        )
    con = Console(stderr=True, soft_wrap=True, markup=False)  # scene and class names are data, not markup
    con.print(table)
    share = res.forward_share
    counts = ", ".join(f"{n} {k}" for k, n in res.counts().items())
    con.print(
        f"{counts} in {res.seconds:.1f} s"
        + (f", {res.model_tasks} model tasks" if res.model_tasks is not None else "")
        + (f", {share:.0%} of worker time in the model" if share is not None else "")
    )
    if res.catalog is not None:
        click.echo(f"wrote {res.catalog}")
    if res.summary is not None:
        click.echo(f"wrote {res.summary}")
