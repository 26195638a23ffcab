"""``geohsi ingest``: source files → a georeferenced Zarr scene (thin shell over :func:`geohsi.ingest`)."""

from __future__ import annotations

from pathlib import Path

import click

from geohsi.cli.paths import PATH_OR_URL


def _nm(v: float | None) -> str:
    return "unknown" if v is None else f"{v:.3g} nm"


@click.command("ingest")
@click.argument("srcs", nargs=-1, required=True, type=PATH_OR_URL)
@click.option("--out", "-o", required=True, type=PATH_OR_URL, help="Output scene store (SCENE.zarr).")
@click.option(
    "--labels",
    type=PATH_OR_URL,
    default=None,
    help="Class-id raster (.mat, GeoTIFF, ENVI), 0 = unlabelled, cropped onto the scene grid when georeferenced; or a vector "
    "file (GeoPackage, GeoJSON, Shapefile, FlatGeobuf) of polygons/points in any CRS, rasterised onto the grid (--label-field).",
)
@click.option("--label-field", default=None, help="With vector --labels: the attribute holding the class (names or ids).")
@click.option("--layer", default=None, help="With vector --labels: the layer (when the file has several).")
@click.option(
    "--all-touched",
    is_flag=True,
    help="With vector --labels: label every pixel a polygon touches (default: pixel centres inside).",
)
@click.option(
    "--class-names",
    default=None,
    help="Class names: a file (one per line, or CSV id,name[,#rrggbb]) or a comma list 'roof,tree,…'.",
)
@click.option(
    "--crs", default=None, help="'none' for an explicit pixel grid, or EPSG:XXXX (with --transform) to georeference a bare array."
)
@click.option(
    "--transform",
    default=None,
    help="Grid of a bare array: 'a,b,c,d,e,f' in affine order (pixel width, 0, left x, 0, -pixel height, "
    "top y), or 'gdal:c,a,b,f,d,e'.",
)
@click.option("--chunks", default=256, show_default=True, type=int, help="Spatial chunk edge in pixels (all bands in one chunk).")
@click.option("--var", default=None, help="Variable holding the cube (MATLAB/NetCDF/Zarr); the largest 3-D array by default.")
@click.option("--label-var", default=None, help="Variable holding the labels in a .mat labels file.")
@click.option(
    "--wavelengths",
    default=None,
    help="Band centres (and widths): a CSV with wavelength[,fwhm] columns, a text file or a comma list; nm, or µm when "
    "a column name says so (wavelength_um) or every centre is below 30.",
)
@click.option(
    "--fwhm",
    default=None,
    help="Band widths (FWHM), a comma list, one per band, in the unit of --wavelengths (nm without it); overrides the file's.",
)
@click.option(
    "--band-axis",
    type=click.IntRange(0, 2),
    default=None,
    help="Axis holding the bands: MATLAB as size() prints it (default: the last); NetCDF/Zarr: the "
    "position of the variable's band dimension (default: detected).",
)
@click.option(
    "--nodata",
    default=None,
    help="Stored value marking pixels without data (in any band), replacing the files' own: e.g. 0 for a MATLAB cube's "
    "background; 'none' when the value a file declares is real data.",
)
@click.option("--sensor", default=None, help="Sensor name recorded in the scene.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output store.")
@click.option(
    "--from-stac",
    "from_stac",
    default=None,
    help="SRCS are STAC item ids (or item URLs) in this STAC API (URL or catalogue preset); tiles are mosaicked.",
)
@click.option("--collection", default=None, help="The STAC collection holding the item ids (with --from-stac).")
def ingest(
    srcs: tuple[Path, ...],
    out: Path,
    labels: Path | None,
    label_field: str | None,
    layer: str | None,
    all_touched: bool,
    class_names: str | None,
    crs: str | None,
    transform: str | None,
    chunks: int,
    var: str | None,
    label_var: str | None,
    wavelengths: str | None,
    fwhm: str | None,
    band_axis: int | None,
    nodata: str | None,
    sensor: str | None,
    overwrite: bool,
    from_stac: str | None = None,
    collection: str | None = None,
) -> None:
    """Bring ENVI, GeoTIFF (one or many tiles), NetCDF/Zarr or MATLAB files into one Zarr scene.

    Several GeoTIFF SRCs are mosaicked onto one grid (same CRS, resolution and bands). The output is
    written under a temporary name and renamed when complete, so a failed ingest leaves nothing.

    \b
    Examples:
      geohsi ingest Indian_pines_corrected.mat --labels Indian_pines_gt.mat --crs none --out ip.zarr
      geohsi ingest images/*.tif --labels enmap_landcover_unstyled.tif --out potsdam.zarr
      geohsi ingest images/*.tif --labels fields.gpkg --label-field crop --out potsdam.zarr
      geohsi ingest ang20160910t185702_2rdn_img --out aviris.zarr
      geohsi ingest cube.mat --crs EPSG:32633 --transform 30,0,362175,0,-30,5809965 --out cube.zarr
      geohsi ingest ITEM_ID --from-stac http://127.0.0.1:8080 --collection enmap --out scene.zarr
    """
    from rich.console import Console
    from rich.text import Text

    from geohsi.ingestion import ingest as ingest_scene
    from geohsi.inspection import info

    path = ingest_scene(
        list(srcs),
        out,
        labels=labels,
        label_field=label_field,
        layer=layer,
        all_touched=all_touched,
        class_names=class_names,
        crs=crs,
        transform=transform,
        chunks=chunks,
        overwrite=overwrite,
        var=var,
        label_var=label_var,
        sensor=sensor,
        wavelengths=wavelengths,
        fwhm=fwhm,
        band_axis=band_axis,
        nodata=nodata,
        from_stac=from_stac,
        collection=collection,
    )
    info = info(path, stats=False)
    b, h, w = info["shape"]
    bt = info["band_table"]
    lines = [
        f"{path}  {info['variable']} {b} bands × {h} × {w} {info['dtype']}",
        f"  CRS {info['crs'] or 'none (pixel grid)'}"
        + (f", {info['resolution'][0]:g} × {info['resolution'][1]:g} map units/pixel" if info["resolution"] else ""),
        f"  wavelengths {bt['min_nm']:.1f}–{bt['max_nm']:.1f} nm, median spacing {_nm(bt['median_spacing_nm'])}, "
        f"median FWHM {_nm(bt['median_fwhm_nm'])}"
        if bt["min_nm"] is not None
        else "  wavelengths unknown",
    ]
    if info["bad_bands"]:
        lines.append(
            f"  bad bands {len(info['bad_bands'])}: {info['bad_bands'][:10]}{' …' if len(info['bad_bands']) > 10 else ''}"
        )
    if info["nodata"] is not None:
        lines.append(f"  nodata {info['nodata']:g}")
    if info["labels"]:
        lab = info["labels"]
        lines.append(f"  labels {len(lab['classes'])} classes, {lab['labelled_pixels']:,} labelled pixels")
    # Text, not markup: a path or variable name may hold brackets
    Console().print(Text.assemble(("wrote", "bold green"), " ", "\n".join(lines)), highlight=False)
