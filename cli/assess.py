"""``geohsi assess``: accuracy and error-adjusted class areas from labelled reference points."""

from __future__ import annotations

from pathlib import Path

import click

from geohsi.cli.paths import PATH_OR_URL


@click.command("assess")
@click.argument("maps", nargs=-1, metavar="[MAP]...", type=PATH_OR_URL)
@click.option("--catalog", type=PATH_OR_URL, default=None, help="A batch's catalog.json: every map of it.")
@click.option(
    "--reference",
    type=PATH_OR_URL,
    default=None,
    help="Labelled points (.gpkg/.geojson/.csv from geohsi sample, any CRS: reprojected to the maps').",
)
@click.option(
    "--reference-scene",
    type=PATH_OR_URL,
    default=None,
    help="Instead of points: a labelled scene store; every labelled pixel is a reference (a census, NOT a probability sample).",
)
@click.option("--label-field", default="ref", show_default=True, help="The points' reference field: class names or ids.")
@click.option(
    "--map-field",
    default=None,
    help="Use this field as each point's map class (e.g. map_class, recorded by geohsi sample) instead of reading the maps.",
)
@click.option(
    "--strata",
    "strata",
    multiple=True,
    type=PATH_OR_URL,
    help="The map(s) the sample was stratified on, when not the assessed maps: Stehman's (2014) estimator. Repeatable.",
)
@click.option(
    "--out",
    type=PATH_OR_URL,
    required=True,
    help="report.json; report.csv (error matrix), report.md and report.png are written beside it.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing report files.")
def assess(
    maps: tuple[Path, ...],
    catalog: Path | None,
    reference: Path | None,
    reference_scene: Path | None,
    label_field: str,
    map_field: str | None,
    strata: tuple[Path, ...],
    out: Path,
    overwrite: bool,
) -> None:
    """Estimate map accuracy and error-adjusted class areas, with 95 % confidence intervals, from labelled points.

    The error matrix is weighted by the sampling design (the strata recorded by geohsi sample, the
    --strata maps, or else the maps' classes): overall, user's and producer's accuracy and each
    class's area come with standard errors and 95 % confidence intervals (estimate ± 1.96 SE),
    following Olofsson et al. (2014), or Stehman (2014) when the strata are not the map classes.

    \b
    Workflow (classify a batch → sample → label in QGIS → assess):
      geohsi classify 'tiles/*.tif' --out-dir maps/
      geohsi sample --catalog maps/catalog.json --n 600 --allocation min:50 --out points.gpkg
      # open points.gpkg in QGIS, fill 'ref' with the class seen on better imagery (name or id)
      geohsi assess --catalog maps/catalog.json --reference points.gpkg --out report.json

    \b
    Examples:
      geohsi assess --catalog maps/catalog.json --reference points.gpkg --out report.json
      geohsi assess map.tif --reference points.gpkg --label-field ref --map-field map_class --out report.json
      geohsi assess new_map.tif --reference points.gpkg --strata old_map.tif --out report.json
      geohsi assess map.tif --reference-scene labelled.zarr --out census.json
    """
    from rich.console import Console
    from rich.table import Table

    from geohsi.assessment.assess import assess as assess_maps
    from geohsi.assessment.report import is_census, plus_minus

    r = assess_maps(
        maps,
        reference=reference,
        reference_scene=reference_scene,
        catalog=catalog,
        label_field=label_field,
        map_field=map_field,
        strata=list(strata) or None,
        out=out,
        overwrite=overwrite,
        log=lambda m: None,
    )
    ha = r["total_mapped_area_ha"] is not None
    census = is_census(r)
    oa = r["overall_accuracy"]
    t = Table(title=f"{r['estimator']}; n = {r['n_points']}; overall accuracy {plus_minus(oa)}")
    third = "labelled px" if census else f"adjusted {'ha' if ha else 'px'} ± 95 % CI"
    for c in ("class", f"mapped {'ha' if ha else 'px'}", third, "user's", "producer's"):
        t.add_column(c, justify="left" if c == "class" else "right")
    for c in r["classes"]:
        mapped = c["mapped_area_ha"] if ha else c["mapped_pixels"]
        t.add_row(
            c["name"],
            f"{mapped:,.1f}",
            f"{c['n_reference']:,}" if census else plus_minus(c["area_ha"] if ha else c["area_pixels"], 1),
            plus_minus(c["users_accuracy"]),
            plus_minus(c["producers_accuracy"]),
        )
    Console(stderr=True, markup=False).print(t)  # class names are data, not markup
    if r.get("note"):
        click.echo(r["note"], err=True)
    click.echo(f"wrote {out} (+ .csv, .md, .png)")
