"""What every reader shares: a lazy Dask cube over a windowed reader, and the token naming its graph.

The format modules import these from here, not from :mod:`geohsi.io` (which imports the format
modules to dispatch to them), so no module of the package imports its parent.

.. versionadded:: 0.3
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np


def lazy_cube(source: Any, chunks: Sequence[int], name: str) -> da.Array:
    """Wrap an array-like with ``shape``/``dtype``/``__getitem__`` (reads a window) in Dask.

    Args:
        source: object whose ``__getitem__(tuple_of_slices)`` returns a numpy block. It must be
            picklable and cheap (hold paths, not open handles) so that Dask workers can use it.
        chunks: Dask chunk sizes per axis (``-1`` = whole axis).
        name: a deterministic name (content token) so identical reads share a graph key.

    Returns:
        A Dask array of ``source.shape`` / ``source.dtype``.
    """
    meta = np.empty((0,) * len(source.shape), dtype=source.dtype)
    return da.from_array(source, chunks=tuple(chunks), name=name, lock=False, fancy=False, asarray=False, meta=meta)


def file_token(*paths: str | os.PathLike, extra: Any = None) -> str:
    """A short token from file paths, sizes and mtimes (names Dask graphs of file reads)."""
    from dask.base import tokenize

    from geohsi.storage import stamp

    return tokenize([stamp(p) for p in paths], extra)


__all__ = ["file_token", "lazy_cube"]
