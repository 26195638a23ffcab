"""The default backbone used by ``geohsi train`` when ``--backbone`` is omitted.

geohsi ships one pretrained backbone, ``weights/spectralgpt_small_geohsi.safetensors``: the
``small`` encoder pretrained by ``geohsi pretrain`` (spectral MAE) on the unlabelled pixels of Indian
Pines, EnMAP Potsdam, AVIRIS-NG and Jasper Ridge. ``weights/spectralgpt_small_geohsi.json`` beside
it records the command that reproduces it, the data, the per-scene spectral transforms and the
losses (see ``docs/pretraining.md``). Its sha256 is checked once per process before first use.

``tiny`` (tests) and ``base`` have no shipped weights: the training loop then initialises the
backbone randomly and says so loudly. ``GEOHSI_BACKBONE`` names a weights file that overrides the
default for every config.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from pathlib import Path

from geohsi.errors import ModelError
from geohsi.files import file_sha256

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: config name → (file in :data:`WEIGHTS_DIR`, sha256 of its bytes).
SHIPPED: dict[str, tuple[str, str]] = {
    "small": ("spectralgpt_small_geohsi.safetensors", "41296223a4092aa556427dc2f94917b4a9d4de9f774638d316915d13d8e84946")
}

_verified: dict[Path, bool] = {}


def default_backbone_path(model: str) -> Path | None:
    """Path of the default backbone weights for config ``model``, or ``None`` when there is none.

    Args:
        model: backbone config name (``tiny``, ``small``, ``base``).

    Returns:
        ``GEOHSI_BACKBONE`` when set; else the shipped weights for ``model`` (sha256-checked);
        else ``None``.

    Raises:
        ModelError: the shipped file is missing (an install without package data) or does not
            match its sha256 (corrupted).

    .. versionadded:: 0.1
    """
    env = os.environ.get("GEOHSI_BACKBONE")
    if env:
        return Path(env)
    if model not in SHIPPED:
        return None
    name, sha = SHIPPED[model]
    path = WEIGHTS_DIR / name
    if not path.is_file():
        raise ModelError(
            f"the default {model!r} backbone {path} is missing from this installation; reinstall geohsi with its "
            "package data, or pass --backbone PATH / set GEOHSI_BACKBONE"
        )
    if not _verified.get(path):
        got = file_sha256(path)  # ≈ 7 MB, once per process
        if got != sha:
            raise ModelError(
                f"the default {model!r} backbone {path} has sha256 {got[:12]}…, expected {sha[:12]}… (corrupted); "
                "reinstall geohsi, or pass --backbone PATH / set GEOHSI_BACKBONE"
            )
        _verified[path] = True
    return path
