"""The default backbone used by ``geohsi train`` when ``--backbone`` is omitted.

geohsi ships two pretrained ``small`` backbones, one per spectral front end, each the encoder of a
``geohsi pretrain`` run (spectral MAE) on the unlabelled pixels of the shared scenes:

* ``weights/spectralgpt_small_geohsi.safetensors`` — ``--spectral pca``: per-scene PCA channels of
  Indian Pines, EnMAP Potsdam, AVIRIS-NG and Jasper Ridge;
* ``weights/spectralgpt_small_geohsi_s2.safetensors`` — ``--spectral s2``: the 12 Sentinel-2 bands
  resampled from every shared scene whose bands cover them (Indian Pines, EnMAP Potsdam,
  AVIRIS-NG; Jasper Ridge has no wavelengths and the drone cube is VNIR only), so channel *i*
  means the same band on every sensor, as in the official SpectralGPT weights.

The ``NAME.json`` beside each records the command that reproduces it, the data, the per-scene
spectral transforms and the losses (see ``docs/pretraining.md``). A file's sha256 is checked once
per process before first use.

``tiny`` (tests) and ``base`` have no shipped weights: the training loop then initialises the
backbone randomly and says so loudly. ``GEOHSI_BACKBONE`` names a weights file that overrides the
default for every config and front end.

.. versionadded:: 0.1
.. versionchanged:: 0.2
   One default per spectral front end (``s2`` backbone added).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from geohsi.errors import ModelError
from geohsi.files import file_sha256

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: (config name, spectral front end) → (file in :data:`WEIGHTS_DIR`, sha256 of its bytes).
SHIPPED: dict[tuple[str, str], tuple[str, str]] = {
    ("small", "pca"): (
        "spectralgpt_small_geohsi.safetensors",
        "41296223a4092aa556427dc2f94917b4a9d4de9f774638d316915d13d8e84946",
    ),
    ("small", "s2"): (
        "spectralgpt_small_geohsi_s2.safetensors",
        "977a2c7a5fe869fa031103104c9cce4ab34b00c5ecb6cc03a36e0af58e10bb2b",
    ),
}

_verified: dict[Path, bool] = {}


def backbone_front_end(spectral: str) -> str:
    """The front end of the backbone that a run with ``spectral`` channels fine-tunes.

    ``lda`` runs fine-tune the PCA backbone: their channels are discriminant directions and then
    principal components of the same spectra, and no backbone is pretrained on discriminants
    (pretraining has no labels).

    .. versionadded:: 0.3
    """
    return "pca" if spectral == "lda" else spectral


def default_backbone_path(model: str, spectral: str = "pca") -> Path | None:
    """Path of the default backbone weights for config ``model`` and a front end, or ``None`` when there is none.

    Args:
        model: backbone config name (``tiny``, ``small``, ``base``).
        spectral: the spectral front end it will be fine-tuned with (``pca``, ``lda`` or ``s2``): the
            backbone pretrained on the same kind of channels (:func:`backbone_front_end`).

    Returns:
        ``GEOHSI_BACKBONE`` when set; else the shipped weights for ``(model, spectral)``
        (sha256-checked); else ``None``.

    Raises:
        ModelError: the shipped file is missing (an install without package data) or does not
            match its sha256 (corrupted).

    .. versionadded:: 0.1
    """
    env = os.environ.get("GEOHSI_BACKBONE")
    if env:
        return Path(env)
    spectral = backbone_front_end(spectral)
    if (model, spectral) not in SHIPPED:
        return None
    name, sha = SHIPPED[(model, spectral)]
    path = WEIGHTS_DIR / name
    if not path.is_file():
        raise ModelError(
            f"the default {model!r} {spectral} backbone {path} is missing from this installation; reinstall geohsi with its "
            "package data, or pass --backbone PATH / set GEOHSI_BACKBONE"
        )
    if not _verified.get(path):
        got = file_sha256(path)  # ≈ 7 MB, once per process
        if got != sha:
            raise ModelError(
                f"the default {model!r} {spectral} backbone {path} has sha256 {got[:12]}…, expected {sha[:12]}… (corrupted); "
                "reinstall geohsi, or pass --backbone PATH / set GEOHSI_BACKBONE"
            )
        _verified[path] = True
    return path


def pretraining_config(path: str | os.PathLike) -> dict[str, Any] | None:
    """The options a ``geohsi pretrain`` backbone was pretrained with (``model``, ``spectral``, …), from
    the pretraining record in its safetensors metadata; ``None`` when the file has none or is unreadable
    (an official ``.pth`` checkpoint, a damaged file)."""
    if Path(path).suffix != ".safetensors":
        return None
    try:
        from safetensors import safe_open

        with safe_open(Path(path), framework="pt", device="cpu") as f:
            record = (f.metadata() or {}).get("geohsi_pretraining")
        config = json.loads(record)["config"] if record else None
    except Exception:  # noqa: BLE001 — safetensors' own error is a bare Exception: unreadable says nothing
        return None
    return config if isinstance(config, dict) else None


def pretrained_front_end(path: str | os.PathLike) -> str | None:
    """The spectral front end (``pca``/``s2``) a ``geohsi pretrain`` backbone was pretrained with.

    Args:
        path: a backbone weights file.

    Returns:
        The ``spectral`` of the pretraining record in the safetensors metadata; ``s2`` for the
        official SpectralGPT checkpoints' ``.pth`` (pretrained on Sentinel-2 bands); ``None`` when
        the file does not say (another safetensors file, an unreadable record).
    """
    if Path(path).suffix != ".safetensors":
        return "s2"
    spectral = (pretraining_config(path) or {}).get("spectral")
    return str(spectral) if spectral in ("pca", "s2") else None
