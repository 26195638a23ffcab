"""Where a command's scenes come from: paths, glob patterns and list files, and the name of each.

``geohsi classify`` (a batch) and ``geohsi train`` take the same scene selectors: files read in
place, globs (quoted, so the shell leaves them to geohsi), ``--from-list FILE`` and ``--stac URL``
items (expanded by :func:`geohsi.catalog.search`); :func:`scene_name` names a scene in messages and
output files.

.. versionadded:: 0.2
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geohsi.errors import GeohsiError, UsageError
from geohsi.storage import display, filesystem, is_url, name, read_bytes, remote_errors, scheme

_GLOB_CHARS = set("*?[")


def expand_scenes(patterns: Sequence[str | os.PathLike], from_list: str | os.PathLike | None = None) -> list[str]:
    """The scene paths of a batch: arguments and the lines of a list file, with globs expanded.

    A pattern with ``*``, ``?`` or ``[`` that names no existing path is expanded (sorted), and so is
    a bucket URL with them in its path (an ``http(s)`` URL is taken as it is: its ``?`` starts a query); list
    lines are paths relative to the working directory, blank lines and ``#`` comments are skipped.

    Args:
        patterns: paths or glob patterns.
        from_list: a text file of paths (or patterns), one per line.

    Returns:
        The paths, in order, each once.

    Raises:
        UsageError: a pattern matches nothing, or the list file cannot be read or lists nothing.
    """
    items = [str(p) for p in patterns]
    if from_list is not None:
        try:
            lines = read_bytes(from_list).decode().splitlines()
        except (OSError, GeohsiError, UnicodeDecodeError) as e:
            why = getattr(e, "strerror", None) or e
            raise UsageError(f"cannot read --from-list {display(from_list)}: {why}; give a text file of scene paths") from e
        listed = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
        if not listed and not items:  # the batch had said "no scenes given; pass … --from-list FILE", though one was
            raise UsageError(
                f"--from-list {display(from_list)} lists no scene; give one path or URL per line ('#' starts a comment)"
            )
        items += listed
    out: list[str] = []
    for it in items:
        if is_url(it):
            found = _glob_url(it) if _is_url_pattern(it) else [it]
            if not found:
                raise UsageError(
                    f"no object matches {display(it)!r}; check the pattern (quote it so the shell does not expand it)"
                )
            out += found
        elif not Path(it).exists() and _GLOB_CHARS & set(it):
            found = sorted(glob.glob(it))
            if not found:
                raise UsageError(f"no file matches {it!r}; check the pattern (quote it so the shell does not expand it)")
            out += found
        else:
            out.append(it)
    return list(dict.fromkeys(out))


def _is_url_pattern(url: str) -> bool:
    """A bucket URL with ``*``, ``?`` or ``[`` in its path. An ``http(s)`` URL is never one: its ``?``
    starts a query (a signed or SAS URL), and a web server lists no objects to match."""
    return scheme(url) not in ("http", "https") and bool(_GLOB_CHARS & set(url))


def _glob_url(pattern: str) -> list[str]:
    """The objects a URL pattern matches, as URLs, sorted."""
    fs, path = filesystem(pattern)
    with remote_errors(pattern, "list"):
        found = sorted(fs.glob(path))
    return [f"{scheme(pattern)}://{f}" for f in found]  # bucket filesystems list keys without their scheme


def scene_name(src: Any) -> str:
    """The output name of a scene: the STAC item id, else the file or store name without its suffix."""
    if hasattr(src, "assets") and hasattr(src, "id"):
        return str(src.id)
    p = Path(name(src))
    return p.stem if p.suffix else p.name


__all__ = ["expand_scenes", "scene_name"]
