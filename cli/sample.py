"""``geohsi sample``: a stratified random sample of map pixels to label, over one map or a whole batch."""

from __future__ import annotations

from pathlib import Path

import click

from geohsi.cli.paths import PATH_OR_URL


def _expected(values: tuple[str, ...]) -> dict[str, float] | None:
    """``CLASS=UA`` pairs (a bare ``UA`` applies to every class) → ``{class: UA}``."""
    from geohsi.errors import UsageError

    out: dict[str, float] = {}
    for v in values:
        key, sep, num = v.rpartition("=")
        try:
            out[key.strip() if sep else "*"] = float(num)
        except ValueError:
            raise UsageError(f"--expected-ua takes CLASS=UA or UA (a number in [0, 1]), got '{v}'") from None
    return out or None


@click.command("sample")
@click.argument("maps", nargs=-1, metavar="[MAP]...", type=PATH_OR_URL)
@click.option("--catalog", type=PATH_OR_URL, default=None, help="A batch's catalog.json: every map of it, strata pooled.")
@click.option("--n", "n", type=int, default=None, help="Total number of sample points.")
@click.option(
    "--target-se",
    type=float,
    default=None,
    help="Instead of --n: the standard error of overall accuracy to reach; n = (Σ W_h S_h / S)², S_h = √(U_h(1−U_h)) "
    "(Olofsson et al. 2014, eq. 13).",
)
@click.option(
    "--expected-ua",
    multiple=True,
    metavar="CLASS=UA",
    help="Anticipated user's accuracy of a class (name or id), repeatable; a bare UA applies to every class. "
    "Needed by --target-se and neyman.",
)
@click.option(
    "--allocation",
    default="proportional",
    show_default=True,
    help="Points per stratum: proportional, equal, min:K (at least K each, rest proportional) or neyman. "
    "Every stratum gets at least 2.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same maps and seed → same sample).")
@click.option("--label-field", default="ref", show_default=True, help="Name of the empty reference field to fill in.")
@click.option("--out", type=PATH_OR_URL, required=True, help="Points file: .gpkg (GeoPackage, for QGIS), .geojson or .csv.")
@click.option("--overwrite", is_flag=True, help="Replace an existing points file.")
def sample(
    maps: tuple[Path, ...],
    catalog: Path | None,
    n: int | None,
    target_se: float | None,
    expected_ua: tuple[str, ...],
    allocation: str,
    seed: int,
    label_field: str,
    out: Path,
    overwrite: bool,
) -> None:
    """Draw a stratified random sample of pixels (strata = map classes) from class maps, ready to label.

    Reads each MAP (COG or Zarr written by 'geohsi classify') chunk by chunk, pools the classes of
    all maps into strata, allocates the points and draws each stratum's points at random. Every
    point records its map, pixel, coordinates (map CRS and lon/lat), stratum, map class and
    inclusion probability, and an empty reference field to fill in.

    \b
    Workflow (classify a batch → sample → label in QGIS → assess):
      geohsi classify 'tiles/*.tif' --out-dir maps/
      geohsi sample --catalog maps/catalog.json --n 600 --allocation min:50 --out points.gpkg
      # open points.gpkg in QGIS, fill 'ref' with the class seen on better imagery (name or id)
      geohsi assess --catalog maps/catalog.json --reference points.gpkg --out report.json

    \b
    Examples:
      geohsi sample --catalog maps/catalog.json --n 600 --allocation min:50 --out points.gpkg
      geohsi sample map.tif --target-se 0.01 --expected-ua 0.9 --expected-ua water=0.95 --out points.gpkg
    """
    from rich.console import Console
    from rich.table import Table

    from geohsi.assessment.sampling import sample as sample_maps

    res = sample_maps(
        maps,
        out=out,
        catalog=catalog,
        n=n,
        target_se=target_se,
        expected_ua=_expected(expected_ua),
        allocation=allocation,
        seed=seed,
        label_field=label_field,
        overwrite=overwrite,
        log=lambda m: None,
    )
    t = Table(title=f"{res.n} points over {len(res.maps)} map(s), allocation {allocation}")
    for c in ("stratum", "pixels", "share", "points", "inclusion probability"):
        t.add_column(c, justify="right" if c != "stratum" else "left")
    for s in res.strata:
        t.add_row(s["name"], f"{s['pixels']:,}", f"{s['share']:.2%}", str(s["n"]), f"{s['inclusion_probability']:.3g}")
    Console(stderr=True, markup=False).print(t)  # class names are data, not markup
    click.echo(
        f"wrote {res.path}; label its '{label_field}' field, then: {_assess_command(maps, catalog, res.path, label_field)}"
    )


def _assess_command(maps: tuple[Path, ...], catalog: Path | None, points: Path, label_field: str) -> str:
    """The ``geohsi assess`` command that follows, on the maps just sampled (it had been "geohsi assess ... --reference P")."""
    import shlex

    words = [*map(str, maps), *(["--catalog", str(catalog)] if catalog is not None else []), "--reference", str(points)]
    words += [] if label_field == "ref" else ["--label-field", label_field]
    return "geohsi assess " + " ".join(shlex.quote(w) for w in words) + " --out report.json"
