"""Ingest: source files → one validated, georeferenced scene in a Zarr v3 store.

:func:`ingest` reads the sources lazily (:mod:`geohsi.io`), settles the georeference, attaches
labels aligned to the scene grid and class names, checks everything, and only then streams the
cube chunk by chunk into a temporary store that is renamed into place when complete
(:func:`geohsi.scene.write_scene`). A failed ingest leaves no store under the output name.
:func:`ingest_item` does the same for STAC items (read by :mod:`geohsi.io.stac`).

Modules: :mod:`~geohsi.ingestion.pipeline` (:func:`ingest`, :func:`ingest_item`, :func:`open_source`),
:mod:`~geohsi.ingestion.assembly` (one scene from the sources) and :mod:`~geohsi.ingestion.options`
(the options users write as text). Every name is importable from ``geohsi.ingestion`` itself.

.. versionadded:: 0.1
"""

from __future__ import annotations

from geohsi.ingestion.assembly import build_scene
from geohsi.ingestion.options import parse_class_names, parse_crs, parse_transform, parse_wavelengths
from geohsi.ingestion.pipeline import check_scene_out, ingest, ingest_item, open_source, open_tiles

__all__ = [
    "build_scene",
    "check_scene_out",
    "ingest",
    "ingest_item",
    "open_source",
    "open_tiles",
    "parse_class_names",
    "parse_crs",
    "parse_transform",
    "parse_wavelengths",
]
