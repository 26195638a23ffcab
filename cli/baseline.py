"""``geohsi baseline``: SVM-RBF / random-forest reference on the same split as ``geohsi train``."""

from __future__ import annotations

from pathlib import Path

import click

from geohsi.cli.paths import PATH_OR_URL
from geohsi.cli.scenes import label_options, label_source, scene_options, selected_scenes


@click.command("baseline")
@click.argument("scenes", nargs=-1, metavar="SCENE...")
@scene_options("Fit on")
@label_options
@click.option("--method", type=click.Choice(["svm", "rf"]), default="svm", show_default=True)
@click.option("--split", default="per-class:10", show_default=True, help="per-class:N | fraction:F | blocks:S | scenes:F")
@click.option(
    "--features",
    type=click.Choice(["raw", "pca"]),
    default="raw",
    show_default=True,
    help="Centre-pixel spectrum (good bands) or the 12 PCA channels.",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--val-fraction",
    type=float,
    default=0.1,
    show_default=True,
    help="As the matching train run's: under blocks:S and scenes:F it decides which blocks or scenes are tested "
    "(its pixels are trained on here).",
)
@click.option("--window", default=15, show_default=True, help="Window of the matching train run (sets the blocks gap).")
@click.option("--out", type=PATH_OR_URL, default=None, help="metrics JSON path (+ CSV beside it).")
@click.option("--overwrite", is_flag=True)
def baseline(
    scenes: tuple[str, ...],
    from_list: Path | None,
    stac_url: str | None,
    collection: str | None,
    bbox: str | None,
    when: str | None,
    cql2: str | None,
    max_items: int,
    labels: str | None,
    label_field: str | None,
    layer: str | None,
    all_touched: bool,
    class_names: str | None,
    method: str,
    split: str,
    features: str,
    seed: int,
    val_fraction: float,
    window: int,
    out: Path | None,
    overwrite: bool,
) -> None:
    """Fit a classical classifier on the training pixels of SCENEs and score their test pixels.

    The scenes, labels and split are taken exactly as 'geohsi train' takes them, so the test pixels
    are those of a train run with the same options.

    \b
    Examples:
      geohsi baseline ip.zarr --method svm --split fraction:0.1 --out svm.json
      geohsi baseline 'images/*.tif' --labels 'labels/*.tif' --split scenes:0.7 --seed 1
    """
    from geohsi.training.baselines import baseline as fit_baseline

    sources = selected_scenes(scenes, from_list, stac_url, collection, bbox, when, cql2, max_items)
    r = fit_baseline(
        sources,
        labels=label_source(labels, label_field, layer, all_touched, class_names),
        method=method,
        split=split,
        features=features,
        seed=seed,
        val_fraction=val_fraction,
        window=window,
        out=out,
        overwrite=overwrite,
    )
    click.echo(
        f"{method} on {features} features, {split}, seed {seed}: OA {r['overall_accuracy']:.4f} "
        f"AA {r['average_accuracy']:.4f} κ {r['kappa']:.4f} (n = {r['n_test']}, fit {r['fit_seconds']:.1f} s)"
    )
