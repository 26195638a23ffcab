"""Describe a model config (and an adapter on it) for ``geohsi info --model``.

Counts come from two independent sources and are both printed: the closed-form formulas
(:func:`~geohsi.models.spectralgpt.count_parameters`,
:func:`~geohsi.adapters.count_adapter_parameters`) and the model actually built (on the ``meta``
device, so ViT-B costs no memory).

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Any

import torch


def describe_model(
    name: str, *, adapter: str | None = None, num_classes: int = 16, input_size: int = 32, rank: int = 8
) -> dict[str, Any]:
    """Parameter counts and geometry of config ``name`` at ``input_size``, optionally with an adapter.

    Args:
        name: ``tiny``, ``small`` or ``base``.
        adapter: an adapter method (``lora``, ``krona+``, …, ``full``, ``linear``) or ``None``.
        num_classes: classes of the head.
        input_size: input edge in pixels.
        rank: LoRA/LoKr rank.

    Returns:
        An ordered mapping for printing.
    """
    from geohsi.models import build_classifier, count_flops, count_parameters, resolve_model_config

    cfg = resolve_model_config(name, img_size=input_size)
    with torch.device("meta"):
        model = build_classifier(cfg, num_classes)
    enc_built = sum(p.numel() for p in model.encoder.parameters())
    head_built = sum(p.numel() for p in model.head.parameters())
    info: dict[str, Any] = {
        "config": f"{name}: dim {cfg.embed_dim}, depth {cfg.depth}, heads {cfg.num_heads}, mlp ×{cfg.mlp_ratio:g}",
        "input": f"{cfg.num_bands} bands × {input_size}×{input_size} px, tubelets {cfg.t_patch}×{cfg.patch_size}×{cfg.patch_size}",
        "tokens": cfg.num_tokens,
        "encoder params (formula)": f"{count_parameters(cfg):,}",
        "encoder params (built)": f"{enc_built:,}",
        f"head params ({num_classes} classes)": f"{head_built:,}",
        "GFLOP per sample (forward)": round(count_flops(cfg) / 1e9, 3),
    }
    if adapter is not None:
        from geohsi.adapters import apply_adapter, count_adapter_parameters, method_options

        opts = method_options(adapter, rank=rank)
        formula = count_adapter_parameters(cfg, adapter, "qv", num_classes=num_classes, **opts)
        adapters_only = count_adapter_parameters(cfg, adapter, "qv", **opts)
        with torch.device("meta"):
            s = apply_adapter(model, adapter, "qv", **opts)
        info.update({
            "adapter": f"{adapter} on {', '.join(s.targets) or 'all'} ({s.adapted_layers} layers)",
            "adapter options": opts or "-",
            "adapter params (formula)": f"{adapters_only:,}",
            "trainable params incl. head (formula)": f"{formula:,}",
            "trainable params incl. head (built)": f"{s.trainable_params:,}",
            "% of backbone": f"{s.percent_of_backbone:.4f} %",
            "adapter file size (fp32)": f"{4 * s.trainable_params / 1e6:.3f} MB",
        })
    return info
