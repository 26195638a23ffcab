"""``geohsi evaluate``: score a model bundle on labelled scenes."""

from __future__ import annotations

from pathlib import Path

import click

from geohsi.cli.paths import PATH_OR_URL
from geohsi.cli.scenes import label_options, label_source, scene_options, selected_scenes


@click.command("evaluate")
@click.argument("bundle", type=PATH_OR_URL)
@click.argument("scenes", nargs=-1, metavar="SCENE...")
@scene_options("Evaluate on")
@label_options
@click.option(
    "--out", type=PATH_OR_URL, default=None, help="metrics JSON path; a .csv and a confusion-matrix .png are written beside it."
)
@click.option("--batch-size", default=256, show_default=True, help="Windows per forward (tiles for a dense bundle).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--backbone", default=None, help="New location of the backbone file, if it moved since training.")
@click.option("--overwrite", is_flag=True, help="Replace existing metric files.")
def evaluate(
    bundle: Path,
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
    out: Path | None,
    batch_size: int,
    device: str,
    backbone: str | None,
    overwrite: bool,
) -> None:
    """Score BUNDLE on labelled SCENEs: a training scene's test pixels, every labelled pixel of other scenes.

    Several scenes give one pooled report and a row per scene. Labels are taken as 'geohsi train'
    takes them (each store's, --labels 'labels/*.tif', or a vector file with --label-field).

    \b
    Examples:
      geohsi evaluate runs/latest ip.zarr --out runs/latest-eval/metrics.json
      geohsi evaluate runs/tiles 'images/*.tif' --labels fields.gpkg --label-field crop --out eval.json
    """
    from rich.console import Console
    from rich.table import Table

    from geohsi.evaluation import evaluate as evaluate_bundle
    from geohsi.evaluation import metrics_paths
    from geohsi.storage import redact

    sources = selected_scenes(scenes, from_list, stac_url, collection, bbox, when, cql2, max_items)
    source = label_source(labels, label_field, layer, all_touched, class_names)
    r = evaluate_bundle(
        bundle, sources, labels=source, out=out, overwrite=overwrite, batch_size=batch_size, device=device, backbone=backbone
    )
    where = sources[0] if len(sources) == 1 else f"{len(sources)} scenes"
    head = f"{bundle} on {where}: OA {r['overall_accuracy']:.4f}  AA {r['average_accuracy']:.4f}  κ {r['kappa']:.4f}"
    t = Table(title=redact(f"{head}  (n = {r['n_test']})"))  # a signed URL's token stays out of the output
    for c in ("class", "precision", "recall", "F1", "IoU", "support"):
        t.add_column(c)
    for name, m in r["per_class"].items():
        t.add_row(name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", f"{m['iou']:.3f}", str(m["support"]))
    Console(markup=False).print(t)  # class and scene names are data, not markup
    if "scenes" in r:
        s = Table(title="per scene")
        for c in ("scene", "scored", "OA", "AA", "κ", "n"):
            s.add_column(c, overflow="fold")  # a long scene name wraps, not '…' (18 tiles read alike at 80 columns)
        for row in r["scenes"]:
            s.add_row(
                row["name"],
                row["scored"],
                f"{row['overall_accuracy']:.4f}",
                f"{row['average_accuracy']:.4f}",
                f"{row['kappa']:.4f}",
                str(row["n_test"]),
            )
        Console(markup=False).print(s)
    if out is not None:
        click.echo("wrote " + ", ".join(metrics_paths(out)))
