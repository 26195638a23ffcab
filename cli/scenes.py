"""The scene selectors and label options commands share (classify, train, evaluate, baseline).

:func:`scene_options` adds ``--from-list`` and the ``--stac`` search flags to a command whose
``SCENE...`` argument takes paths and globs; :func:`selected_scenes` turns them into the list the
library function takes. :func:`label_options` adds ``--labels`` (label rasters by stem, or one
vector file), ``--label-field``, ``--layer``, ``--all-touched`` and ``--class-names``;
:func:`label_source` builds the :class:`~geohsi.training.data.LabelSource`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from geohsi.cli.paths import PATH_OR_URL


def scene_options(verb: str) -> Callable[[Callable], Callable]:
    """``--from-list`` and ``--stac URL -c C [--bbox --datetime --filter --max-items]`` (``verb``: what is done to the items)."""

    def wrap(fn: Callable) -> Callable:
        for opt in reversed(
            [
                click.option(
                    "--from-list",
                    type=PATH_OR_URL,
                    default=None,
                    help="Text file of scene paths or globs, one per line (# comments).",
                ),
                click.option(
                    "--stac",
                    "stac_url",
                    default=None,
                    metavar="URL",
                    help=f"{verb} the items of a STAC API search (URL or preset).",
                ),
                click.option("--collection", "-c", default=None, help="With --stac: the collection to search."),
                click.option("--bbox", default=None, help="With --stac: W,S,E,N in degrees."),
                click.option("--datetime", "when", default=None, help="With --stac: instant or interval A/B (RFC 3339)."),
                click.option("--filter", "cql2", default=None, help="With --stac: CQL2 filter, e.g. 'eo:cloud_cover < 20'."),
                click.option(
                    "--max-items", default=100, show_default=True, type=int, help="With --stac: at most this many items."
                ),
            ]
        ):
            fn = opt(fn)
        return fn

    return wrap


def given_on_command_line(name: str) -> bool:
    """Whether the option ``name`` of the running command was given on the command line (not its default)."""
    return click.get_current_context().get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def selected_scenes(
    scenes: tuple[str, ...],
    from_list: Path | None,
    stac_url: str | None,
    collection: str | None,
    bbox: str | None,
    when: str | None,
    cql2: str | None,
    max_items: int,
) -> list[Any]:
    """The scenes the selectors name: paths and globs, the list file's lines, then the STAC items."""
    from geohsi.errors import UsageError
    from geohsi.io.sources import expand_scenes

    given = [flag for flag, v in (("--collection", collection), ("--bbox", bbox), ("--datetime", when), ("--filter", cql2),
                                  ("--max-items", given_on_command_line("max_items"))) if v]  # fmt: skip
    if given and stac_url is None:
        raise UsageError(f"{', '.join(given)} select(s) STAC items and need --stac URL; give the API, or leave them out")
    sources: list[Any] = expand_scenes(scenes, from_list)
    if stac_url is not None:
        from geohsi.catalog import search

        sources += search(stac_url, collection, bbox=bbox, datetime=when, filter=cql2, max_items=max_items)
    return sources


def label_options(fn: Callable) -> Callable:
    """``--labels``, ``--label-field``, ``--layer``, ``--all-touched`` and ``--class-names``."""
    for opt in reversed(
        [
            click.option(
                "--labels",
                default=None,
                help="Labels for every scene: label rasters paired by file stem ('labels/*.tif', warped onto each scene "
                "with nearest neighbour when grids differ), or one vector file (GeoPackage, GeoJSON, Shapefile, "
                "FlatGeobuf) of polygons/points in any CRS [default: each scene store's labels].",
            ),
            click.option(
                "--label-field", default=None, help="With vector --labels: the attribute holding the class (names or ids)."
            ),
            click.option("--layer", default=None, help="With vector --labels: the layer (when the file has several)."),
            click.option(
                "--all-touched",
                is_flag=True,
                help="With vector --labels: label every pixel a polygon touches (default: pixels whose centre it contains).",
            ),
            click.option(
                "--class-names",
                default=None,
                help="Comma list: names of classes 1..K (label rasters, integer ids), or the order of named vector classes.",
            ),
        ]
    ):
        fn = opt(fn)
    return fn


def label_source(
    labels: str | None, label_field: str | None, layer: str | None, all_touched: bool, class_names: str | None
) -> Any:
    """The :class:`~geohsi.training.data.LabelSource` the label options describe."""
    from geohsi.training.data import LabelSource

    names = [n.strip() for n in class_names.split(",")] if class_names else None
    return LabelSource.from_options(labels, label_field=label_field, layer=layer, all_touched=all_touched, class_names=names)


__all__ = ["label_options", "label_source", "scene_options", "selected_scenes"]
