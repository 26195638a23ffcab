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
    "ingest": "geohsi.ingest:ingest",
    "scene_info": "geohsi.ingest:scene_info",
    "read": "geohsi.io:read",
    "fetch_dataset": "geohsi.datasets.registry:fetch",
    "GeohsiError": "geohsi.errors:GeohsiError",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        module, attr = _API[name].split(":")
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'geohsi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
