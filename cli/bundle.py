"""``geohsi bundle``: model-bundle tools (``stac``: describe a bundle as a STAC MLM Item)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from geohsi.cli.paths import PATH_OR_URL


@click.group("bundle")
def bundle() -> None:
    """Model-bundle tools."""


@bundle.command("stac")
@click.argument("bundle_dir", metavar="BUNDLE", type=PATH_OR_URL)
@click.option("--out", "-o", type=PATH_OR_URL, default=None, help="Write the item here (default: stdout).")
@click.option("--id", "item_id", default=None, help="Item id (default: geohsi-<method>-<bundle hash>).")
@click.option("--href", default=None, help="Base href of the bundle in the catalogue (default: its local path).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def stac(bundle_dir: Path, out: Path | None, item_id: str | None, href: str | None, overwrite: bool) -> None:
    """Write a STAC Item (Machine Learning Model extension) describing BUNDLE.

    The item lists the input bands with wavelengths, normalisation, output classes, framework,
    adapter method and size and the backbone; it is validated against the MLM schema first.

    \b
    Examples:
      geohsi bundle stac runs/ip-krona --out ip-krona.item.json
    """
    from geohsi.export.stac import bundle_stac

    item = bundle_stac(bundle_dir, out, item_id=item_id, href=href, overwrite=overwrite)
    if out is None:
        click.echo(json.dumps(item, indent=1))
    else:
        click.echo(f"wrote {out} ({item['id']})", err=True)
