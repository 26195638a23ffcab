"""``geohsi baseline``: SVM-RBF / random-forest reference on the same split as ``geohsi train``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("baseline")
@click.argument("scene", type=click.Path(path_type=Path))
@click.option("--method", type=click.Choice(["svm", "rf"]), default="svm", show_default=True)
@click.option("--split", default="per-class:10", show_default=True, help="per-class:N | fraction:F | blocks:S")
@click.option(
    "--features",
    type=click.Choice(["raw", "pca"]),
    default="raw",
    show_default=True,
    help="Centre-pixel spectrum (good bands) or the 12 PCA channels.",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--window", default=15, show_default=True, help="Window of the matching train run (sets the blocks gap).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="metrics JSON path (+ CSV beside it).")
@click.option("--overwrite", is_flag=True)
def baseline(
    scene: Path, method: str, split: str, features: str, seed: int, window: int, out: Path | None, overwrite: bool
) -> None:
    """Fit a classical classifier on SCENE's training pixels and score its test pixels.

    \b
    Example:
      geohsi baseline ip.zarr --method svm --split fraction:0.1 --out svm.json
    """
    import geohsi

    r = geohsi.baseline(
        scene, method=method, split=split, features=features, seed=seed, window=window, out=out, overwrite=overwrite
    )
    click.echo(
        f"{method} on {features} features, {split}, seed {seed}: OA {r['overall_accuracy']:.4f} "
        f"AA {r['average_accuracy']:.4f} κ {r['kappa']:.4f} (n = {r['n_test']}, fit {r['fit_seconds']:.1f} s)"
    )
