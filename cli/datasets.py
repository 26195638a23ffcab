"""``geohsi datasets``: list, fetch and ingest the standard benchmark scenes."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from geohsi.cli.paths import PATH_OR_URL


@click.group("datasets")
def datasets() -> None:
    """List, fetch and ingest the standard benchmark scenes.

    Files are looked up in GEOHSI_DATA_DIR first and downloaded (sha256-checked) only when absent.
    """


@datasets.command("list")
def list_() -> None:
    """List the known datasets and whether their files are available locally."""
    from geohsi.datasets.registry import DATASETS, locate

    table = Table(title="geohsi datasets")
    for col in ("name", "title", "classes", "files", "local"):
        table.add_column(col)
    for ds in DATASETS.values():
        have = sum(locate(f, verify=False) is not None for f in ds.files)
        table.add_row(ds.name, ds.title, str(len(ds.class_names) or "-"), str(len(ds.files)), f"{have}/{len(ds.files)}")
    Console(markup=False).print(table)


@datasets.command("fetch")
@click.argument("name")
@click.option(
    "--dir",
    "download_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Download directory for missing files (default ~/.cache/geohsi/data).",
)
def fetch(name: str, download_dir: Path | None) -> None:
    """Make the files of dataset NAME available (verify checksums, download what is missing)."""
    from geohsi.datasets.registry import fetch as fetch_

    paths = fetch_(name, download_dir)
    for rel, p in paths.items():
        click.echo(f"{rel}\t{p}")


@datasets.command("ingest")
@click.argument("name")
@click.option("--out", required=True, type=PATH_OR_URL, help="Output scene store (.zarr).")
@click.option(
    "--dir",
    "download_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Download directory for missing files.",
)
@click.option("--chunks", default=256, show_default=True, help="Spatial chunk edge in pixels.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output store.")
def ingest(name: str, out: Path, download_dir: Path | None, chunks: int, overwrite: bool) -> None:
    """Fetch dataset NAME and ingest it as a scene with its classes, colours and wavelengths."""
    from geohsi.datasets.registry import ingest_dataset

    path = ingest_dataset(name, out, download_dir=download_dir, chunks=chunks, overwrite=overwrite)
    click.echo(f"wrote {path}")
