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

from geohsi.errors import UsageError

_GLOB_CHARS = set("*?[")


def expand_scenes(patterns: Sequence[str | os.PathLike], from_list: str | os.PathLike | None = None) -> list[str]:
    """The scene paths of a batch: arguments and the lines of a list file, with globs expanded.

    A pattern with ``*``, ``?`` or ``[`` that names no existing path is expanded (sorted); list
    lines are paths relative to the working directory, blank lines and ``#`` comments are skipped.

    Args:
        patterns: paths or glob patterns.
        from_list: a text file of paths (or patterns), one per line.

    Returns:
        The paths, in order, each once.

    Raises:
        UsageError: a pattern matches nothing, or the list file cannot be read.
    """
    items = [str(p) for p in patterns]
    if from_list is not None:
        try:
            lines = Path(from_list).read_text().splitlines()
        except OSError as e:
            raise UsageError(f"cannot read --from-list {from_list}: {e.strerror or e}; give a text file of scene paths") from e
        items += [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    out: list[str] = []
    for it in items:
        if not Path(it).exists() and _GLOB_CHARS & set(it):
            found = sorted(glob.glob(it))
            if not found:
                raise UsageError(f"no file matches {it!r}; check the pattern (quote it so the shell does not expand it)")
            out += found
        else:
            out.append(it)
    return list(dict.fromkeys(out))


def scene_name(src: Any) -> str:
    """The output name of a scene: the STAC item id, else the file or store name without its suffix."""
    if hasattr(src, "assets") and hasattr(src, "id"):
        return str(src.id)
    p = Path(src)
    return p.stem if p.suffix else p.name


__all__ = ["expand_scenes", "scene_name"]
