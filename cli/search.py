"""``geohsi search``: find scenes in a STAC API (thin shell over :func:`geohsi.search`)."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _list_catalogs(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--list-catalogs``: print the named catalogues (built-in presets and the user's file), then exit."""
    if not value or ctx.resilient_parsing:
        return
    from geohsi.catalog import catalogs_path, load_catalogs

    for name, entry in load_catalogs().items():
        default = f" (collection {entry['collection']})" if entry["collection"] else ""
        click.echo(f"{name}\t{entry['url']}{default}\t{entry['description']} [{entry['source']}]")
    click.echo(f"add your own under [catalogs.NAME] in {catalogs_path()}")
    ctx.exit(0)


@click.command("search")
@click.option(
    "--list-catalogs",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_list_catalogs,
    help="List the catalogue names --url accepts (built-in presets and your catalogs.toml), then exit.",
)
@click.option("--url", required=True, help="STAC API root URL, or a catalogue preset name (see --list-catalogs).")
@click.option("--collection", "-c", default=None, help="Collection to search (a preset may give a default).")
@click.option("--bbox", default=None, help="W,S,E,N in degrees (WGS84).")
@click.option("--intersects", type=click.Path(path_type=Path), default=None, help="GeoJSON file with one geometry.")
@click.option("--datetime", "when", default=None, help="Instant or interval A/B (RFC 3339; '..' for an open end).")
@click.option("--query", "-q", multiple=True, help="Query-extension expression, e.g. 'eo:cloud_cover<20' (repeatable).")
@click.option("--filter", "cql2", default=None, help="CQL2 filter, text ('eo:cloud_cover < 20') or JSON.")
@click.option("--max-items", default=100, show_default=True, type=int, help="Stop after this many items.")
@click.option("--page-size", default=None, type=int, help="Items per request (server default when unset).")
@click.option("--timeout", default=20.0, show_default=True, type=float, help="Seconds per request.")
@click.option("--json", "as_json", is_flag=True, help="Print a GeoJSON FeatureCollection of the items (for scripts).")
def search(
    url: str,
    collection: str | None,
    bbox: str | None,
    intersects: Path | None,
    when: str | None,
    query: tuple[str, ...],
    cql2: str | None,
    max_items: int,
    page_size: int | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Search a STAC API for scenes and list them (id, datetime, cloud cover, bands, assets).

    --url takes an API URL or a named catalogue: built-in presets (dlr-enmap, emit,
    planetary-computer, earth-search) or entries of ~/.config/geohsi/catalogs.toml.

    \b
    Examples:
      geohsi search --url http://127.0.0.1:8080 -c enmap-potsdam --bbox 13.0,52.3,13.2,52.45
      geohsi search --url dlr-enmap --datetime 2024-06-01/2024-08-31 --filter "eo:cloud_cover < 10"
      geohsi search --url http://127.0.0.1:8080 -c enmap-potsdam --json | jq '.features[].id'
    """
    from geohsi.catalog import item_summary
    from geohsi.catalog import search as search_items

    items = search_items(
        url,
        collection,
        bbox=bbox,
        intersects=intersects,
        datetime=when,
        query=list(query) or None,
        filter=cql2,
        max_items=max_items,
        page_size=page_size,
        timeout=timeout,
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "numberReturned": len(items),
                    "features": [it.to_dict(transform_hrefs=False) for it in items],
                }
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(items)} item(s)", show_lines=False)
    for col in ("id", "datetime", "cloud %", "bands", "λ nm", "assets"):
        table.add_column(col, overflow="fold")
    for it in items:
        s = item_summary(it)
        cc = s["cloud_cover"]
        rng = s["wavelength_range_nm"]
        assets = s["assets"]
        table.add_row(
            s["id"],
            s["datetime"] or "",
            "" if cc is None else (f"{cc:g}" if isinstance(cc, (int, float)) else str(cc)),
            str(s["bands"] or ""),
            f"{rng[0]:.0f}–{rng[1]:.0f}" if rng else "",
            ", ".join(assets[:4]) + (f" (+{len(assets) - 4})" if len(assets) > 4 else ""),
        )
    Console(markup=False).print(table)  # item ids are data, not markup
