"""Parameter-efficient fine-tuning of SpectralGPT: LoRA, LoRA+, KronA, KronA+, LoKr.

One config class per method on a shared base, registered once (:mod:`~geohsi.adapters.config`:
``LoRAConfig``, ``KronAPlusConfig``, …, as peft's), one wrapper base (:mod:`~geohsi.adapters.base`),
one small module per method (:mod:`~geohsi.adapters.lora`, :mod:`~geohsi.adapters.krona`,
:mod:`~geohsi.adapters.lokr`),
injection and the method switch (:mod:`~geohsi.adapters.inject`), the "+" learning-rate groups
(:mod:`~geohsi.adapters.optim`) and adapter files (:mod:`~geohsi.adapters.weights`).

Typical use::

    model = build_classifier("base", num_classes=16)
    print(apply_adapter(model, "krona+", "qv"))
    opt = torch.optim.AdamW(param_groups(model, lr=1e-3))
    ...
    save_adapter(model, "run/adapter", backbone_id={"name": "spectralgpt_base"})

.. versionadded:: 0.1
"""

from __future__ import annotations

from geohsi.adapters.base import AdapterLayer
from geohsi.adapters.config import (
    ADAPTER_CONFIGS,
    METHODS,
    AdapterConfig,
    FullConfig,
    KronAConfig,
    KronAPlusConfig,
    LinearConfig,
    LoKrConfig,
    LoRAConfig,
    LoRAPlusConfig,
    adapter_config_for,
)
from geohsi.adapters.inject import (
    PRESETS,
    AdapterSummary,
    adapter_config,
    adapter_layers,
    adapter_summary,
    apply_adapter,
    count_adapter_parameters,
    describe_adapter,
    merge_adapter,
    method_options,
    trainable_parameter_names,
    unmerge_adapter,
)
from geohsi.adapters.krona import KronALinear, factorization, kron_apply
from geohsi.adapters.lokr import LoKrLinear
from geohsi.adapters.lora import LoRALinear
from geohsi.adapters.optim import param_groups
from geohsi.adapters.weights import load_adapter, read_adapter_config, save_adapter

__all__ = [
    "ADAPTER_CONFIGS",
    "METHODS",
    "PRESETS",
    "AdapterConfig",
    "AdapterLayer",
    "AdapterSummary",
    "FullConfig",
    "KronAConfig",
    "KronALinear",
    "KronAPlusConfig",
    "LinearConfig",
    "LoKrConfig",
    "LoKrLinear",
    "LoRAConfig",
    "LoRALinear",
    "LoRAPlusConfig",
    "adapter_config",
    "adapter_config_for",
    "adapter_layers",
    "adapter_summary",
    "apply_adapter",
    "count_adapter_parameters",
    "describe_adapter",
    "factorization",
    "kron_apply",
    "load_adapter",
    "merge_adapter",
    "method_options",
    "param_groups",
    "read_adapter_config",
    "save_adapter",
    "trainable_parameter_names",
    "unmerge_adapter",
]
