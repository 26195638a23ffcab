"""Training configuration: the options a run shares, fine-tuning's and pretraining's own, and config files.

Three frozen dataclasses: :class:`RunConfig` holds what every training run has (backbone size, the
spectral front end and window geometry the model sees, batch, optimiser, precision, device,
seed) and checks it once; :class:`TrainConfig` (``geohsi train``) and :class:`PretrainConfig`
(``geohsi pretrain``) each nest one as ``run`` and add their own options.

Outside Python the options are one flat namespace — the CLI flags, a YAML/TOML ``--config`` file,
the ``train_config`` a bundle records, the sidecar of a pretrained backbone: :meth:`TrainConfig.from_dict`
and :meth:`TrainConfig.to_dict` (likewise for :class:`PretrainConfig`) read and write that flat form,
so bundles and config files keep the layout they always had.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
import os
import tomllib
import typing
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml

from geohsi.adapters.config import AdapterConfig, adapter_config_for
from geohsi.adapters.inject import METHODS, method_options
from geohsi.errors import GeohsiWarning, UsageError
from geohsi.heads import HEADS

#: the PEFT methods and baselines ``--adapter`` takes: :data:`geohsi.adapters.METHODS`, their one home.
ADAPTERS: tuple[str, ...] = METHODS

#: the model heads ``--head`` takes: the registry :data:`geohsi.heads.HEADS` (``dense``, ``patch``).
HEAD_NAMES: tuple[str, ...] = tuple(HEADS)


#: how an option's type reads in an error message.
_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _number(value: Any, base: type) -> int | float | None:
    """``value`` as a ``base`` (``int`` or ``float``): a real number (NumPy's too) or text that parses as one,
    a whole number where ``base`` is ``int``; ``None`` otherwise (booleans are not numbers)."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return base(value.strip())  # "16" exactly, "1e-3"
        with contextlib.suppress(ValueError):
            value = float(value)  # "1e3" for a whole number; text that is no number stays text
    if not isinstance(value, numbers.Real) or (base is int and not float(value).is_integer()):
        return None
    return base(value)


def _typed(kind: str, name: str, value: Any, hint: Any) -> Any:
    """``value`` as option ``name``'s type ``hint``: numbers written as text (YAML reads ``1e-3`` as
    text) become numbers, paths become text, a list of text becomes comma-separated text
    (``targets: [attn.q, attn.v]``); anything else of another type is refused.

    Raises:
        UsageError: a value of another type, naming the option and what it takes.
    """
    args = typing.get_args(hint)
    optional = type(None) in args
    if value is None and optional:
        return None
    base = next(a for a in args if a is not type(None)) if optional else hint
    if base not in _TYPE_WORDS:
        return value  # free-form mappings (``extra``)
    if base is bool and isinstance(value, bool | np.bool_):
        return bool(value)
    if base is str and isinstance(value, str | os.PathLike):
        return os.fspath(value)
    if base is str and isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)
    number = _number(value, base) if base in (int, float) else None
    if number is not None:
        return number
    raise UsageError(
        f"{kind} option {name} must be {_TYPE_WORDS[base]}{' or null' if optional else ''}, not {value!r}; "
        "fix it in the config file or the call"
    )


def _option_names(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with their names spelled as the fields are (``batch-size`` → ``batch_size``)."""
    return {str(k).replace("-", "_"): v for k, v in options.items()}


def _typed_options(cls: type, kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (options of dataclass ``cls``) each checked by :func:`_typed` against its field's type."""
    hints = typing.get_type_hints(cls)
    return {k: _typed(kind, k, v, hints[k]) for k, v in values.items()}


def _check(checks: list[tuple[bool, str]]) -> None:
    for ok, msg in checks:
        if not ok:
            raise UsageError(msg)


@dataclass(frozen=True)
class RunConfig:
    """The options every training run shares (fine-tuning and pretraining).

    Attributes:
        model: backbone config name (``tiny``, ``small``, ``base``); ``small`` has a pretrained default
            backbone shipped with geohsi (see :mod:`geohsi.models.default`).
        spectral: ``pca`` (the paper), ``s2`` (resampling onto the Sentinel-2 bands) or ``lda`` (fine-tuning
            only: the training pixels' discriminant directions, then principal components; :mod:`geohsi.spectral.lda`).
        n_components: channels after PCA (12 = SpectralGPT's band count).
        norm: channel normalisation, ``standard`` or ``minmax``.
        window: per-pixel window edge in pixels (odd).
        input_size: model input edge: the window's resized edge, or the dense tile edge (a
            multiple of the patch size).
        batch_size: samples (windows or tiles) per optimisation step (``None``: the run's default,
            e.g. the head's for fine-tuning).
        lr: base (peak) learning rate (``None``: the run's default).
        weight_decay: AdamW weight decay.
        grad_clip: max global gradient norm (0 disables).
        augment: random flips / 90° rotations of training samples.
        seed: seed of the initialisation, sampling, shuffling and augmentation.
        precision: ``bf16`` autocast or ``fp32``.
        device: ``auto``, ``cpu`` or ``cuda``.

    Raises:
        UsageError: an invalid value (the message names the flag).

    .. versionadded:: 0.1
    """

    model: str = "small"
    spectral: str = "pca"
    n_components: int = 12
    norm: str = "standard"
    window: int = 15
    input_size: int = 32
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    augment: bool = True
    seed: int = 0
    precision: str = "bf16"
    device: str = "auto"

    def __post_init__(self) -> None:
        from geohsi.models.config import resolve_model_config

        resolve_model_config(self.model)  # an unknown config name fails here, before any data is read
        _check(
            [
                (self.spectral in ("pca", "s2", "lda"), f"unknown --spectral {self.spectral!r}; use pca, s2 or lda"),
                (
                    self.window >= 1 and self.window % 2 == 1,
                    f"--window must be a positive odd number of pixels, got {self.window}",
                ),
                (
                    self.input_size >= 8 and self.input_size % 8 == 0,
                    f"--input-size must be a positive multiple of 8 pixels (the model's patch edge), got {self.input_size}",
                ),
                (self.batch_size is None or self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
                (self.lr is None or self.lr > 0, f"--lr must be positive, got {self.lr}"),
                (self.weight_decay >= 0, f"weight_decay must be ≥ 0, got {self.weight_decay}"),
                (self.precision in ("bf16", "fp32"), f"--precision must be bf16 or fp32, got {self.precision!r}"),
                (self.device in ("auto", "cpu", "cuda"), f"--device must be auto, cpu or cuda, got {self.device!r}"),
            ]
        )


_RUN_FIELDS = tuple(f.name for f in fields(RunConfig))


class _NestsRun:
    """Flat-namespace (de)serialisation of a config dataclass that nests a :class:`RunConfig` as ``run``."""

    #: the name of the run's options in error messages ("training", "pretraining").
    _kind: ClassVar[str]
    #: the nested group's defaults where this kind of run differs from :class:`RunConfig`.
    _run_defaults: ClassVar[Mapping[str, Any]] = {}

    run: RunConfig

    def _fill_run(self, **defaults: Any) -> None:
        """Give the nested run the defaults of this kind of run where it has none (``None``)."""
        missing = {k: v for k, v in defaults.items() if getattr(self.run, k) is None}
        if missing:
            object.__setattr__(self, "run", dataclasses.replace(self.run, **missing))

    @classmethod
    def _own_fields(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "run"]  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Every option, flat (``{"adapter": …, "lr": …}``), JSON-able."""
        own = {n: getattr(self, n) for n in self._own_fields()}
        return {
            **dataclasses.asdict(self.run),
            **{k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in own.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """Build from flat options (unknown keys raise :class:`UsageError` naming them); a nested ``run`` mapping is accepted too."""
        norm = _option_names(d)
        nested = _option_names(norm.pop("run", None) or {})
        own_names, known = set(cls._own_fields()), set(_RUN_FIELDS) | set(cls._own_fields())
        unknown = sorted((set(norm) - known) | (set(nested) - set(_RUN_FIELDS)))
        if unknown:
            raise UsageError(f"unknown {cls._kind} option(s) {', '.join(unknown)}; known: {', '.join(sorted(known - {'extra'}))}")
        run = {**cls._run_defaults, **dict(nested), **{k: v for k, v in norm.items() if k in _RUN_FIELDS}}
        own = {k: v for k, v in norm.items() if k in own_names}
        return cls(run=RunConfig(**_typed_options(RunConfig, cls._kind, run)), **_typed_options(cls, cls._kind, own))  # type: ignore[call-arg]


@dataclass(frozen=True)
class TrainConfig(_NestsRun):
    """Everything that defines a fine-tuning run (``geohsi train``).

    Attributes:
        run: the options shared with pretraining (backbone size, front end, geometry, batch,
            optimiser, precision, device, seed).
        adapter: PEFT method (``lora``, ``lora+``, ``krona``, ``krona+``, ``lokr``) or a baseline
            (``full`` fine-tuning, ``linear`` probing).
        backbone: path of backbone weights (official ``.pth`` or our ``.safetensors``); ``None`` →
            the default backbone; ``random`` → train from scratch.
        split: ``per-class:N``, ``fraction:F``, ``blocks:S`` or ``scenes:F`` (whole scenes held out).
        val_fraction: share of the training side held out for validation / early stopping.
        epochs: maximum number of epochs (``None``: the head's default, see below).
        lr_ratio: λ of LoRA+/KronA+ (lr of the boosted factor = λ·lr).
        warmup_epochs: linear warm-up length before the cosine decay.
        rank: LoRA/LoKr rank.
        alpha: adapter α (``None`` → equal to the rank, i.e. scaling 1).
        targets: adapter target preset or comma-separated module-name patterns.
        head_hidden: hidden width of the MLP head (0 → a single Linear; patch mode).
        head: ``dense`` (the default: a segmentation head labels whole ``input_size`` tiles cut from
            the scene without resizing, trained on the sparse training labels, see
            :mod:`geohsi.heads.dense`; maps ≈ 300× faster) or ``patch`` (one window per pixel, the
            paper's protocol). In dense mode ``batch_size`` counts tiles and ``input_size`` is the
            tile edge. Epochs, batch and learning rate not given take the head's defaults
            (:meth:`geohsi.heads.Head.training_defaults`): dense 150 epochs, 8 tiles, lr 2e-3
            (5e-4 for ``full``), the protocol of ``docs/results.md``; patch 30 epochs, 64 windows,
            lr 1e-3, the paper's.
        tile_overlap: dense mode: pixels shared by neighbouring inference tiles (``None`` →
            ``input_size // 4``), recorded in the bundle for evaluate/classify.
        context_dropout: dense mode, training only: the share of tiles whose context (token) path
            the decoder drops, so that pixels are also labelled from their own spectra
            (:class:`~geohsi.models.decoder.DenseDecoder`); 0 (the default) drops none. Whole held-out
            scenes are where it pays (docs/results.md).
        patience: early-stopping patience in epochs on validation OA (0 disables); with no
            validation pixels (``val_fraction`` 0) on the training loss instead. With early
            stopping the best epoch's weights are kept, without it the final weights.
        loader: how samples reach the step (:mod:`geohsi.training.loader`): ``auto`` (scenes in
            memory when their model input fits 512 MB together, else streamed chunk by chunk by
            data-loader workers), ``memory`` or ``stream``.
        sensor_augment: ``s2`` runs: train also on the scene as this many random imaging
            spectrometers would see it (:func:`geohsi.spectral.simulate.random_sensor_resamplers`;
            each sample draws its version), so that the bundle maps other sensors as well as the
            training one (0: the scene only).
        extra: free-form notes recorded with the run.

    .. versionadded:: 0.1
    """

    _kind: ClassVar[str] = "training"

    run: RunConfig = field(default_factory=RunConfig)
    adapter: str = "krona+"
    backbone: str | None = None
    split: str = "per-class:10"
    val_fraction: float = 0.1
    epochs: int | None = None
    lr_ratio: float = 16.0
    warmup_epochs: int = 1
    rank: int = 8
    alpha: float | None = None
    targets: str = "qv"
    head_hidden: int = 0
    head: str = "dense"
    tile_overlap: int | None = None
    context_dropout: float = 0.0
    patience: int = 0
    sensor_augment: int = 0
    loader: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.head in HEADS:
            d = HEADS[self.head].training_defaults(self.adapter)
            if self.epochs is None:
                object.__setattr__(self, "epochs", d["epochs"])
            self._fill_run(batch_size=d["batch_size"], lr=d["lr"])
        if self.head in HEADS:
            self._drop_unused()
        _check(
            [
                (self.head in HEADS, f"unknown --head {self.head!r}; use one of {', '.join(HEADS)}"),
                (self.adapter in ADAPTERS, f"unknown adapter {self.adapter!r}; use one of {', '.join(ADAPTERS)}"),
                (self.epochs is not None and self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
                (self.lr_ratio > 0, f"--lr-ratio must be positive, got {self.lr_ratio}"),
                (self.rank >= 1, f"--rank must be at least 1, got {self.rank}"),
                (
                    self.tile_overlap is None or 0 <= self.tile_overlap < self.run.input_size,
                    f"--tile-overlap {self.tile_overlap} must be in [0, {self.run.input_size - 1}] for {self.run.input_size}-pixel tiles",
                ),
                (0 <= self.val_fraction < 1, f"--val-fraction must be in [0, 1), got {self.val_fraction}"),
                (0 <= self.context_dropout < 1, f"--context-dropout must be in [0, 1), got {self.context_dropout}"),
                (
                    self.context_dropout == 0 or self.head == "dense",
                    "--context-dropout is for the dense head (a patch model has no separate context path)",
                ),
                (self.sensor_augment >= 0, f"--sensor-augment must be ≥ 0, got {self.sensor_augment}"),
                (self.patience >= 0, f"--patience must be 0 (off) or a number of epochs, got {self.patience}"),
                (self.loader in ("auto", "memory", "stream"), f"unknown --loader {self.loader!r}; use auto, memory or stream"),
                (
                    self.sensor_augment == 0 or self.run.spectral == "s2",
                    "--sensor-augment needs --spectral s2 (a PCA model is bound to its training sensor)",
                ),
            ]
        )

    def _drop_unused(self) -> None:
        """Warn about options the method or head ignores and set them back to their defaults, so the bundle
        does not record them as used (they had been, silently). Not refused: a shared config file may carry
        them for another method."""
        ranked, plus = self.adapter.rstrip("+") in ("lora", "lokr"), self.adapter.endswith("+")
        unused = [
            ("rank", 8, not ranked, f"{self.adapter} has no rank (lora, lora+ and lokr do)"),
            ("alpha", None, not ranked, f"{self.adapter} has no alpha (lora, lora+ and lokr do)"),
            ("lr_ratio", 16.0, not plus, f"{self.adapter} has no λ (lora+ and krona+ do)"),
            ("tile_overlap", None, self.head != "dense", "the patch head has no tiles"),
            ("head_hidden", 0, self.head != "patch", "the dense head has no hidden classifier layer"),
        ]
        for name, default, ignored, why in unused:
            if ignored and getattr(self, name) != default:
                warnings.warn(f"{name} {getattr(self, name)} is ignored: {why}", GeohsiWarning, stacklevel=4)
                object.__setattr__(self, name, default)

    def adapter_config(self) -> AdapterConfig:
        """The :class:`~geohsi.adapters.AdapterConfig` of :attr:`adapter` with this run's rank, α and λ.

        Example:
            >>> TrainConfig(adapter="lora", rank=4).adapter_config()
            LoRAConfig(r=4, alpha=4.0, dropout=0.0)
        """
        options = method_options(self.adapter, rank=self.rank, alpha=self.alpha, lr_ratio=self.lr_ratio)
        return adapter_config_for(self.adapter, options)


@dataclass(frozen=True)
class PretrainConfig(_NestsRun):
    """Everything that defines a pretraining run (``geohsi pretrain``; recorded in the sidecar and the checkpoint).

    Attributes:
        run: the options shared with fine-tuning (defaults here: 256 windows per step, weight
            decay 0.05 on weight matrices, AdamW β = (0.9, 0.95)).
        steps: optimisation steps.
        warmup_steps: linear warm-up before the cosine decay to 0.
        mask_ratio: share of tubelets masked per sample.
        norm_pix_loss: standardise each target tubelet.
        decoder_dim: decoder width (``None``: :data:`geohsi.models.mae.DECODERS`).
        decoder_depth: decoder blocks (``None``: default).
        decoder_heads: decoder heads (``None``: default).
        holdout_per_scene: centre pixels per scene held out for validation and figures.
        eval_every: steps between validation losses.
        checkpoint_every: steps between checkpoints.

    .. versionadded:: 0.1
    """

    _kind: ClassVar[str] = "pretraining"
    _run_defaults: ClassVar[Mapping[str, Any]] = {"weight_decay": 0.05}

    run: RunConfig = field(default_factory=lambda: RunConfig(**PretrainConfig._run_defaults))
    steps: int = 1000
    warmup_steps: int = 50
    mask_ratio: float = 0.9
    norm_pix_loss: bool = True
    decoder_dim: int | None = None
    decoder_depth: int | None = None
    decoder_heads: int | None = None
    holdout_per_scene: int = 16
    eval_every: int = 50
    checkpoint_every: int = 50

    def __post_init__(self) -> None:
        self._fill_run(batch_size=256, lr=1e-3)
        _check(
            [
                (self.steps >= 1, f"--steps must be at least 1, got {self.steps}"),
                (self.warmup_steps >= 0, f"warmup_steps must be ≥ 0, got {self.warmup_steps}"),
                (self.holdout_per_scene >= 1, f"holdout_per_scene must be ≥ 1, got {self.holdout_per_scene}"),
                (self.eval_every >= 1 and self.checkpoint_every >= 1, "eval_every and checkpoint_every must be ≥ 1"),
                (
                    self.run.spectral != "lda",
                    "pretraining has no labels to fit --spectral lda on; pretrain with pca (lda runs fine-tune the pca backbone)",
                ),
            ]
        )


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) training config into a dict.

    The options are flat, or all in one ``train`` section (``train:`` in YAML, ``[train]`` in TOML).

    Raises:
        UsageError: missing file, unknown extension, a syntax error (with the parser's position), or
            options beside a ``train`` section.
    """
    from geohsi.storage import display, exists, is_url, read_text

    p = display(path)  # a URL stays one (it had been read as the local path "s3:/bucket/…")
    suffix = os.path.splitext(str(path).split("?", 1)[0])[1].lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise UsageError(f"config file {p} must be .yaml, .yml or .toml")
    if not (exists(path) and (is_url(path) or Path(path).is_file())):
        raise UsageError(f"config file {p} does not exist; pass an existing --config file")
    try:
        text = read_text(path)
        data = (yaml.safe_load(text) or {}) if suffix in (".yaml", ".yml") else tomllib.loads(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"cannot parse config file {p}: {' '.join(str(e).split())}") from e
    if not isinstance(data, dict):
        raise UsageError(f"config file {p} must hold a mapping of option: value")
    if not isinstance(data.get("train"), dict):
        return data
    outside = [k for k in data if k != "train"]
    if outside:  # a flat option beside the section would otherwise be ignored without a word
        raise UsageError(
            f"config file {p} has options outside its 'train' section ({', '.join(map(str, outside[:5]))}); "
            "move them into 'train' or write the file flat"
        )
    return data["train"]


def resolve_train_config(config_file: str | os.PathLike | None = None, **overrides: Any) -> TrainConfig:
    """Merge defaults ← config file ← explicit overrides (``None`` overrides are ignored).

    Args:
        config_file: a YAML/TOML file of options (flat, as the CLI flags).
        **overrides: options, flat (``adapter="lora", lr=2e-3``).

    Returns:
        The :class:`TrainConfig`.

    Raises:
        UsageError: an unknown option or an invalid value.

    .. versionadded:: 0.1
    """
    merged: dict[str, Any] = {}
    if config_file:
        merged.update(load_config_file(config_file))
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(merged)


__all__ = ["ADAPTERS", "HEAD_NAMES", "PretrainConfig", "RunConfig", "TrainConfig", "load_config_file", "resolve_train_config"]
