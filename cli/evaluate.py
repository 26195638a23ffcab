"""``geohsi evaluate``: score a model bundle on a labelled scene."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("evaluate")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("scene", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="metrics JSON path; a .csv and a confusion-matrix .png are written beside it.",
)
@click.option("--batch-size", default=256, show_default=True, help="Windows per forward.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--backbone", default=None, help="New location of the backbone file, if it moved since training.")
@click.option("--overwrite", is_flag=True, help="Replace existing metric files.")
def evaluate(
    bundle: Path, scene: Path, out: Path | None, batch_size: int, device: str, backbone: str | None, overwrite: bool
) -> None:
    """Score BUNDLE on SCENE: its test pixels if SCENE is the training scene, else all labelled pixels.

    \b
    Example:
      geohsi evaluate runs/latest ip.zarr --out runs/latest-eval/metrics.json
    """
    from rich.console import Console
    from rich.table import Table

    import geohsi

    r = geohsi.evaluate(bundle, scene, out=out, overwrite=overwrite, batch_size=batch_size, device=device, backbone=backbone)
    t = Table(
        title=f"{bundle} on {scene}: OA {r['overall_accuracy']:.4f}  AA {r['average_accuracy']:.4f}  κ {r['kappa']:.4f}  (n = {r['n_test']})"
    )
    for c in ("class", "precision", "recall", "F1", "IoU", "support"):
        t.add_column(c)
    for name, m in r["per_class"].items():
        t.add_row(name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", f"{m['iou']:.3f}", str(m["support"]))
    Console().print(t)
    if out is not None:
        Console().print(f"wrote {out}, {Path(out).with_suffix('.csv')}, {Path(out).with_suffix('.png')}")
