"""The default backbone used by ``geohsi train`` when ``--backbone`` is omitted.

Until geohsi ships a pretrained backbone (``geohsi pretrain``), there is none: the training loop
then initialises the backbone randomly and says so loudly. ``GEOHSI_BACKBONE`` may name a weights
file to use by default instead.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from pathlib import Path


def default_backbone_path(model: str) -> Path | None:
    """Path of the default backbone weights for config ``model``, or ``None`` when there is none."""
    env = os.environ.get("GEOHSI_BACKBONE")
    if env:
        return Path(env)
    return None
