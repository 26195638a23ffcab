"""One config class per PEFT method, on a shared base, registered once (as peft's ``LoraConfig`` & co).

Each method's options are the fields of a frozen dataclass: ``LoRAConfig(r=8, alpha=8.0)``,
``KronAConfig(a_shape=None, factor=-1, ...)``; the ``+`` variants (LoRA+, KronA+) add ``lr_ratio``
(λ, the learning-rate ratio of the boosted factor) and ``boost`` to their base method's fields.
:data:`ADAPTER_CONFIGS` maps a method name to its class (:func:`register_adapter` fills it), and
:data:`METHODS` — the names ``geohsi train --adapter`` takes — comes from it, so a method is
declared in one place. ``to_dict``/``from_dict`` give the ``{"method": …, **options}`` record; a
bundle stores the options under ``adapter.options`` (:func:`~geohsi.adapters.apply_adapter`), and
bundles written before these classes existed carry exactly those keys, so they keep loading.

Example:
    >>> cfg = AdapterConfig.from_dict({"method": "krona+", "lr_ratio": 8})
    >>> cfg
    KronAPlusConfig(a_shape=None, factor=-1, scale=1.0, zero_init='B', dropout=0.0, lr_ratio=8.0, boost='zero')
    >>> cfg.to_dict()["method"]
    'krona+'

.. versionadded:: 0.3
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from geohsi.errors import UsageError

#: method name → its config class, in the order ``--adapter`` lists them.
ADAPTER_CONFIGS: dict[str, type[AdapterConfig]] = {}


def register_adapter(cls: type[AdapterConfig]) -> type[AdapterConfig]:
    """Class decorator: make ``cls`` the config of ``cls.method``."""
    ADAPTER_CONFIGS[cls.method] = cls
    return cls


@dataclass(frozen=True)
class AdapterConfig:
    """The shared base: a method name and its options (the dataclass fields).

    Attributes:
        method: the method's name (a class attribute).
        layer_options: the fields the method's adapter layer takes (the rest steer the optimiser).
    """

    method: ClassVar[str] = ""
    layer_options: ClassVar[tuple[str, ...]] = ()

    def options(self) -> dict[str, Any]:
        """The options as a dict, in field order (what a bundle records)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def layer_kwargs(self) -> dict[str, Any]:
        """The options the adapter layer is built with."""
        return {k: v for k, v in self.options().items() if k in self.layer_options}

    def to_dict(self) -> dict[str, Any]:
        """``{"method": …, **options}``, JSON-able."""
        return {"method": self.method, **self.options()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AdapterConfig:
        """The config of ``d["method"]`` with ``d``'s other keys as its options (see :func:`adapter_config_for`)."""
        rest = dict(d)
        return adapter_config_for(str(rest.pop("method", "")), rest)


@register_adapter
@dataclass(frozen=True)
class LoRAConfig(AdapterConfig):
    """LoRA (Hu et al. 2021): ``ΔW = (α / r) · B A``, rank ``r``."""

    method: ClassVar[str] = "lora"
    layer_options: ClassVar[tuple[str, ...]] = ("r", "alpha", "dropout")
    r: int = 8
    alpha: float = 8.0
    dropout: float = 0.0


@register_adapter
@dataclass(frozen=True)
class LoRAPlusConfig(LoRAConfig):
    """LoRA+ (Hayou et al. 2024): LoRA with ``B`` learning ``lr_ratio`` times faster."""

    method: ClassVar[str] = "lora+"
    lr_ratio: float = 16.0
    boost: str = "zero"

    def __post_init__(self) -> None:
        _check_ratio(self)


@register_adapter
@dataclass(frozen=True)
class KronAConfig(AdapterConfig):
    """KronA (Edalati et al. 2022): ``ΔW = scale · (A ⊗ B)``, factor shapes from ``a_shape`` or ``factor``."""

    method: ClassVar[str] = "krona"
    layer_options: ClassVar[tuple[str, ...]] = ("a_shape", "factor", "scale", "zero_init", "dropout")
    a_shape: list[int] | None = None
    factor: int = -1
    scale: float = 1.0
    zero_init: str = "B"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.a_shape is not None:
            object.__setattr__(self, "a_shape", [int(v) for v in self.a_shape])


@register_adapter
@dataclass(frozen=True)
class KronAPlusConfig(KronAConfig):
    """KronA+ (Ligan et al. 2025): KronA with the zero-initialised factor learning ``lr_ratio`` times faster."""

    method: ClassVar[str] = "krona+"
    lr_ratio: float = 16.0
    boost: str = "zero"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_ratio(self)


@register_adapter
@dataclass(frozen=True)
class LoKrConfig(AdapterConfig):
    """LoKr (Yeh et al. 2024, as in peft): a Kronecker product with low-rank factors."""

    method: ClassVar[str] = "lokr"
    layer_options: ClassVar[tuple[str, ...]] = ("r", "alpha", "decompose_both", "decompose_factor", "init", "dropout")
    r: int = 8
    alpha: float = 8.0
    decompose_both: bool = False
    decompose_factor: int = -1
    init: str = "peft"
    dropout: float = 0.0


@register_adapter
@dataclass(frozen=True)
class FullConfig(AdapterConfig):
    """Full fine-tuning: every weight trains (no adapter layer, no option)."""

    method: ClassVar[str] = "full"


@register_adapter
@dataclass(frozen=True)
class LinearConfig(AdapterConfig):
    """Linear probing: only the head trains (no adapter layer, no option)."""

    method: ClassVar[str] = "linear"


#: the PEFT methods and baselines, in ``--adapter`` order.
METHODS: tuple[str, ...] = tuple(ADAPTER_CONFIGS)


def _check_ratio(cfg: LoRAPlusConfig | KronAPlusConfig) -> None:
    ratio = float(cfg.lr_ratio)
    if not ratio > 0:
        raise UsageError(f"lr_ratio={cfg.lr_ratio} must be positive (the paper uses 16)")
    object.__setattr__(cfg, "lr_ratio", ratio)


def adapter_config_for(method: str, options: Mapping[str, Any] | None = None) -> AdapterConfig:
    """The config of ``method`` with ``options`` (the rest at their defaults).

    Raises:
        UsageError: an unknown method, or options the method does not take (its options are listed).
    """
    cls = ADAPTER_CONFIGS.get(method)
    if cls is None:
        raise UsageError(f"adapter method {method!r} is unknown; choose one of {', '.join(METHODS)}")
    options = dict(options or {})
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        hint = ", ".join(sorted(allowed)) or "none"
        raise UsageError(f"option(s) {', '.join(unknown)} do not apply to method {method!r}; its options are: {hint}")
    return cls(**options)


__all__ = [
    "ADAPTER_CONFIGS",
    "METHODS",
    "AdapterConfig",
    "FullConfig",
    "KronAConfig",
    "KronAPlusConfig",
    "LinearConfig",
    "LoKrConfig",
    "LoRAConfig",
    "LoRAPlusConfig",
    "adapter_config_for",
    "register_adapter",
]
