"""geohsi: hyperspectral scenes to georeferenced land-cover maps with SpectralGPT and PEFT adapters.

The public API mirrors the CLI: each ``geohsi COMMAND`` has a function of the same name here.
Heavy submodules are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name → "module:attribute"
_API = {
    "open_scene": "geohsi.scene:open_scene",
    "write_scene": "geohsi.scene:write_scene",
    "ingest": "geohsi.ingest",  # a callable module (see geohsi._callable)
    "scene_info": "geohsi.ingest:scene_info",
    "read": "geohsi.io:read",
    "fetch_dataset": "geohsi.datasets.registry:fetch",
    "train": "geohsi.train",  # a callable module (see geohsi._callable)
    "TrainConfig": "geohsi.train.config:TrainConfig",
    "evaluate": "geohsi.evaluate",  # a callable module (see geohsi._callable)
    "baseline": "geohsi.baseline",  # a callable module (see geohsi._callable)
    "load_bundle": "geohsi.bundle:load_bundle",
    "classify": "geohsi.classify",  # a callable module (see geohsi._callable)
    "classify_scene": "geohsi.classify:classify_scene",
    "make_split": "geohsi.datasets.splits:make_split",
    "classification_report": "geohsi.metrics:classification_report",
    "build_classifier": "geohsi.models.spectralgpt:build_classifier",
    "load_official_checkpoint": "geohsi.models.spectralgpt:load_official_checkpoint",
    "apply_adapter": "geohsi.adapters:apply_adapter",
    "pretrain": "geohsi.pretrain",  # a callable module (see geohsi._callable)
    "search": "geohsi.stac:search",
    "ingest_item": "geohsi.stac:ingest_item",
    "GeohsiError": "geohsi.errors:GeohsiError",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        module, _, attr = _API[name].partition(":")
        mod = importlib.import_module(module)
        return getattr(mod, attr) if attr else mod
    raise AttributeError(f"module 'geohsi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
