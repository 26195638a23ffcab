"""Training configuration: one frozen dataclass, loadable from YAML/TOML, overridable by flags.

The fully resolved config is saved in the model bundle so a run can be reproduced exactly.

.. versionadded:: 0.1
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from geohsi.errors import UsageError

ADAPTERS: tuple[str, ...] = ("lora", "lora+", "krona", "krona+", "lokr", "full", "linear")
#: Model heads: per-pixel window classification (the paper) or dense segmentation of tiles.
HEADS: tuple[str, ...] = ("patch", "dense")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a fine-tuning run.

    Attributes:
        adapter: PEFT method (``lora``, ``lora+``, ``krona``, ``krona+``, ``lokr``) or a baseline
            (``full`` fine-tuning, ``linear`` probing).
        model: backbone config name (``tiny``, ``small``, ``base``); ``small`` has a pretrained default
            backbone shipped with geohsi (see :mod:`geohsi.models.default`).
        backbone: path of backbone weights (official ``.pth`` or our ``.safetensors``); ``None`` →
            the default backbone.
        spectral: ``pca`` (the paper) or ``s2`` (resampling onto the Sentinel-2 bands).
        n_components: channels after PCA (12 = SpectralGPT's band count).
        norm: channel normalisation, ``standard`` or ``minmax``.
        window: per-pixel window edge in pixels (odd).
        input_size: model input edge after resizing the window (multiple of the patch size).
        split: ``per-class:N``, ``fraction:F`` or ``blocks:S``.
        val_fraction: share of the training side held out for validation / early stopping.
        epochs: maximum number of epochs.
        batch_size: samples per optimisation step.
        lr: base learning rate (adapter factor A / all non-boosted parameters).
        lr_ratio: λ of LoRA+/KronA+ (lr of the boosted factor = λ·lr).
        weight_decay: AdamW weight decay.
        warmup_epochs: linear warm-up length before the cosine decay.
        rank: LoRA/LoKr rank.
        alpha: adapter α (``None`` → equal to the rank, i.e. scaling 1).
        targets: adapter target preset or comma-separated module-name patterns.
        head_hidden: hidden width of the MLP head (0 → a single Linear; patch mode).
        head: ``patch`` (one window per pixel, the paper's protocol) or ``dense`` (a segmentation
            head labels whole ``input_size`` tiles cut from the scene without resizing; trained on
            the sparse training labels, see :mod:`geohsi.train.dense`). In dense mode
            ``batch_size`` counts tiles and ``input_size`` is the tile edge.
        tile_overlap: dense mode: pixels shared by neighbouring inference tiles (``None`` →
            ``input_size // 4``), recorded in the bundle for evaluate/classify.
        precision: ``bf16`` autocast or ``fp32``.
        device: ``auto``, ``cpu`` or ``cuda``.
        grad_clip: max global gradient norm (0 disables).
        patience: early-stopping patience in epochs on validation OA (0 disables). With early
            stopping the best validation epoch's weights are kept, without it the final weights.
        augment: random flips / 90° rotations of training windows.
        seed: seed for the split, initialisation, shuffling and augmentation.
    """

    adapter: str = "krona+"
    model: str = "small"
    backbone: str | None = None
    spectral: str = "pca"
    n_components: int = 12
    norm: str = "standard"
    window: int = 15
    input_size: int = 32
    split: str = "per-class:10"
    val_fraction: float = 0.1
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    lr_ratio: float = 16.0
    weight_decay: float = 0.01
    warmup_epochs: int = 1
    rank: int = 8
    alpha: float | None = None
    targets: str = "qv"
    head_hidden: int = 0
    head: str = "patch"
    tile_overlap: int | None = None
    precision: str = "bf16"
    device: str = "auto"
    grad_clip: float = 1.0
    patience: int = 0
    augment: bool = True
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.adapter not in ADAPTERS:
            raise UsageError(f"unknown adapter {self.adapter!r}; use one of {', '.join(ADAPTERS)}")
        if self.spectral not in ("pca", "s2"):
            raise UsageError(f"unknown --spectral {self.spectral!r}; use pca or s2")
        if self.window < 1 or self.window % 2 == 0:
            raise UsageError(f"--window must be a positive odd number of pixels, got {self.window}")
        if self.epochs < 1:
            raise UsageError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise UsageError(f"--lr must be positive, got {self.lr}")
        if not self.lr_ratio > 0:
            raise UsageError(f"--lr-ratio must be positive, got {self.lr_ratio}")
        if self.rank < 1:
            raise UsageError(f"--rank must be at least 1, got {self.rank}")
        if self.precision not in ("bf16", "fp32"):
            raise UsageError(f"--precision must be bf16 or fp32, got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UsageError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if self.head not in HEADS:
            raise UsageError(f"unknown --head {self.head!r}; use one of {', '.join(HEADS)}")
        if self.tile_overlap is not None and not 0 <= self.tile_overlap < self.input_size:
            raise UsageError(f"--tile-overlap {self.tile_overlap} must be in [0, {self.input_size - 1}] for {self.input_size}-pixel tiles")
        if not 0 <= self.val_fraction < 1:
            raise UsageError(f"val_fraction must be in [0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a dict (unknown keys raise :class:`UsageError` naming them)."""
        names = {f.name for f in fields(cls)}
        norm = {k.replace("-", "_"): v for k, v in d.items()}
        unknown = sorted(set(norm) - names)
        if unknown:
            raise UsageError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(sorted(names - {'extra'}))}")
        return cls(**norm)


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) training config into a dict.

    Raises:
        UsageError: missing file, unknown extension or a syntax error (with the parser's position).
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file {p} does not exist; pass an existing --config file")
    try:
        if p.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(p.read_text()) or {}
        elif p.suffix == ".toml":
            data = tomllib.loads(p.read_text())
        else:
            raise UsageError(f"config file {p} must be .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"cannot parse config file {p}: {' '.join(str(e).split())}") from e
    if not isinstance(data, dict):
        raise UsageError(f"config file {p} must hold a mapping of option: value")
    return data.get("train", data) if isinstance(data.get("train"), dict) else data


def resolve_train_config(config_file: str | os.PathLike | None = None, **overrides: Any) -> TrainConfig:
    """Merge defaults ← config file ← explicit overrides (``None`` overrides are ignored)."""
    merged: dict[str, Any] = {}
    if config_file:
        merged.update(load_config_file(config_file))
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(merged)
