"""geohsi: hyperspectral scenes to georeferenced land-cover maps with SpectralGPT and PEFT adapters.

The public API mirrors the CLI: each ``geohsi COMMAND`` has a plain function here that does the
same job (``geohsi.classify(...)`` writes the map files ``geohsi classify --out`` writes,
``geohsi.classify_many(...)`` maps a batch as ``geohsi classify --out-dir`` does;
``geohsi.predict_map(...)`` is the lazy map). Stage packages have noun names
(:mod:`geohsi.ingestion`, :mod:`geohsi.training`, :mod:`geohsi.evaluation`,
:mod:`geohsi.classification`, :mod:`geohsi.catalog`, …) so that no module shadows a function.

Heavy submodules (torch, dask) are imported on first use of a name.

.. versionadded:: 0.1
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from geohsi.version import __version__ as __version__

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load lazily below
    from geohsi.adapters import apply_adapter
    from geohsi.assessment import assess, sample
    from geohsi.bundle import load_bundle
    from geohsi.catalog import search
    from geohsi.classification import MapOptions, classify, classify_many, predict_map
    from geohsi.datasets.registry import fetch as fetch_dataset
    from geohsi.datasets.registry import ingest_dataset
    from geohsi.errors import GeohsiError
    from geohsi.evaluation import evaluate
    from geohsi.export.stac import bundle_stac
    from geohsi.ingestion import ingest, ingest_item, open_source
    from geohsi.inspection import info
    from geohsi.io import read
    from geohsi.metrics import classification_report
    from geohsi.models import build_classifier, load_official_checkpoint
    from geohsi.scene import open_scene, write_scene
    from geohsi.splits import make_split
    from geohsi.training import PretrainConfig, TrainConfig, baseline, pretrain, resolve_train_config, train

#: public name → "module:attribute"
_API: dict[str, str] = {
    "open_scene": "geohsi.scene:open_scene",
    "write_scene": "geohsi.scene:write_scene",
    "read": "geohsi.io:read",
    "ingest": "geohsi.ingestion:ingest",
    "ingest_item": "geohsi.ingestion:ingest_item",
    "open_source": "geohsi.ingestion:open_source",
    "info": "geohsi.inspection:info",
    "fetch_dataset": "geohsi.datasets.registry:fetch",
    "ingest_dataset": "geohsi.datasets.registry:ingest_dataset",
    "make_split": "geohsi.splits:make_split",
    "train": "geohsi.training:train",
    "TrainConfig": "geohsi.training:TrainConfig",
    "resolve_train_config": "geohsi.training:resolve_train_config",
    "sample": "geohsi.assessment:sample",
    "assess": "geohsi.assessment:assess",
    "pretrain": "geohsi.training:pretrain",
    "PretrainConfig": "geohsi.training:PretrainConfig",
    "baseline": "geohsi.training:baseline",
    "evaluate": "geohsi.evaluation:evaluate",
    "load_bundle": "geohsi.bundle:load_bundle",
    "bundle_stac": "geohsi.export.stac:bundle_stac",
    "classify": "geohsi.classification:classify",
    "classify_many": "geohsi.classification:classify_many",
    "MapOptions": "geohsi.classification:MapOptions",
    "predict_map": "geohsi.classification:predict_map",
    "search": "geohsi.catalog:search",
    "classification_report": "geohsi.metrics:classification_report",
    "build_classifier": "geohsi.models:build_classifier",
    "load_official_checkpoint": "geohsi.models:load_official_checkpoint",
    "apply_adapter": "geohsi.adapters:apply_adapter",
    "GeohsiError": "geohsi.errors:GeohsiError",
}

__all__ = [
    "GeohsiError",
    "MapOptions",
    "PretrainConfig",
    "TrainConfig",
    "apply_adapter",
    "assess",
    "baseline",
    "build_classifier",
    "bundle_stac",
    "classification_report",
    "classify",
    "classify_many",
    "evaluate",
    "fetch_dataset",
    "info",
    "ingest",
    "ingest_dataset",
    "ingest_item",
    "load_bundle",
    "load_official_checkpoint",
    "make_split",
    "open_scene",
    "open_source",
    "predict_map",
    "pretrain",
    "read",
    "resolve_train_config",
    "sample",
    "search",
    "train",
    "write_scene",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        module, _, attr = _API[name].partition(":")
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'geohsi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
