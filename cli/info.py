"""``geohsi info``: describe a scene store, a model bundle, a class map, or a model config (+ adapter)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from geohsi.cli.paths import PATH_OR_URL
from geohsi.cli.scenes import given_on_command_line


def _fmt(v: Any) -> str:
    if isinstance(v, float):  # 10 digits: map coordinates to the centimetre (6 had rounded northings by up to 5 m)
        return f"{v:.10g}"
    if isinstance(v, (list, tuple)) and len(v) > 12:
        return f"{', '.join(map(_fmt, v[:6]))}, … ({len(v)} values)"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(_fmt, v)) if v else "-"
    if v is None:
        return "-"
    return str(v)


def render_mapping(title: str, info: dict[str, Any], console: Console) -> None:
    """Print a flat mapping as a two-column table; list-of-dict values become their own tables."""
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    nested: list[tuple[str, list[dict[str, Any]]]] = []
    for k, v in info.items():
        if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            nested.append((k, v))
        elif isinstance(v, dict):
            for a, b in v.items():
                if isinstance(b, list) and b and all(isinstance(r, dict) for r in b):
                    nested.append((f"{k} {a}", b))
                else:
                    table.add_row(f"{k} {a}", _fmt(b))
        else:
            table.add_row(k, _fmt(v))
    console.print(table)
    for k, rows in nested:
        sub = Table(title=k)
        for col in rows[0]:
            sub.add_column(str(col))
        for r in rows:
            sub.add_row(*(_fmt(r.get(c)) for c in rows[0]))
        console.print(sub)


@click.command("info")
@click.argument("path", required=False, type=PATH_OR_URL)
@click.option("--model", "model_name", default=None, help="Describe a model config (tiny, small, base) instead.")
@click.option("--adapter", default=None, help="With --model: count trainable parameters for this adapter method.")
@click.option("--num-classes", default=16, show_default=True, help="With --model: classes of the head.")
@click.option("--input-size", default=32, show_default=True, help="With --model: input edge in pixels.")
@click.option("--rank", default=8, show_default=True, help="With --adapter: LoRA/LoKr rank.")
@click.option(
    "--head",
    type=click.Choice(["patch", "dense"]),
    default="dense",
    show_default=True,
    help="With --model: the head counted (dense: the segmentation decoder, 'geohsi train''s default; patch: the paper's).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full description as JSON (a bundle: its bundle.json record).")
def info(
    path: Path | None,
    model_name: str | None,
    adapter: str | None,
    num_classes: int,
    input_size: int,
    rank: int,
    head: str,
    as_json: bool,
) -> None:
    """Describe PATH (a scene .zarr, a model bundle, or a class map .tif/.zarr), or a model config with --model.

    A map shows its legend, grid and what it was made from, and the pixels and hectares of each
    class (pixel counts, not error-adjusted areas: see 'geohsi sample' and 'geohsi assess').

    \b
    Examples:
      geohsi info scene.zarr
      geohsi info runs/latest
      geohsi info maps/scene.tif
      geohsi info runs/latest --json
      geohsi info --model small --adapter krona+ --head dense
    """
    from geohsi.inspection import info as describe

    model_options = [
        f"--{n.replace('_', '-')}" for n in ("num_classes", "input_size", "rank", "head") if given_on_command_line(n)
    ]
    if path is not None and model_name is None and model_options:
        raise click.UsageError(
            f"{', '.join(model_options)} describe a model config: give them with --model NAME, not with {path}"
        )
    described = describe(
        path,
        model=model_name,
        adapter=adapter,
        num_classes=num_classes,
        input_size=input_size,
        rank=rank,
        head=head,
        record=as_json,
    )
    if as_json:
        click.echo(json.dumps(described, indent=1, ensure_ascii=False, default=str))
        return
    render_mapping(f"model {model_name}" if model_name is not None else str(path), described, Console(markup=False))
