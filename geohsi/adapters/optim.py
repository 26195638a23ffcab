"""Optimizer parameter groups: the one place LoRA+ and KronA+ get their two learning rates.

LoRA+ (Hayou et al., 2024) trains ``B`` with ``λ·lr`` and ``A`` with ``lr``; KronA+ boosts the
zero-initialised Kronecker factor (``B`` by default) the same way. Which factors are boosted is
recorded on each adapter layer by :func:`geohsi.adapters.apply_adapter` (``boost=``); the head and
every other trainable parameter stay in the base group.

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Any

from torch import nn

from geohsi.adapters.inject import CONFIG_ATTR, adapter_layers
from geohsi.errors import UsageError


def param_groups(
    model: nn.Module, lr: float, *, lr_ratio: float | None = None, weight_decay: float = 0.0
) -> list[dict[str, Any]]:
    """Build the parameter groups of a torch optimizer for an adapted model.

    Args:
        model: a model prepared by :func:`~geohsi.adapters.apply_adapter` (any model works; without
            "+" adapters everything trainable lands in one group).
        lr: the base learning rate (adapters' non-boosted factors, head, norms).
        lr_ratio: λ, the boosted factors' learning-rate multiplier; None uses the value recorded by
            ``apply_adapter`` (default 16).
        weight_decay: weight decay of every group.

    Returns:
        ``[{"name": "base", "params": [...], "lr": lr, "weight_decay": wd}]`` plus, for LoRA+/KronA+,
        ``{"name": "boosted", "params": [...], "lr": λ·lr, "lr_ratio": λ, ...}``. Only parameters
        with ``requires_grad`` are included; empty groups are left out. Pass the list straight to
        e.g. ``torch.optim.AdamW``.

    Raises:
        UsageError: ``lr`` or ``lr_ratio`` is not positive, or ``lr_ratio`` is given for a method
            without boosted factors.

    Example:
        >>> opt = torch.optim.AdamW(param_groups(model, 1e-4))  # doctest: +SKIP

    .. versionadded:: 0.1
    """
    if not lr > 0:
        raise UsageError(f"learning rate {lr} must be positive")
    boosted = [p for layer in adapter_layers(model).values() for p in layer.boosted_parameters()]
    cfg = getattr(model, CONFIG_ATTR, None) or {}
    if lr_ratio is None:
        lr_ratio = float(cfg.get("options", {}).get("lr_ratio", 16.0))
    elif not boosted:
        method = cfg.get("method", "none")
        raise UsageError(f"lr_ratio={lr_ratio} has no effect: method {method!r} boosts no factor; use 'lora+' or 'krona+'")
    if not lr_ratio > 0:
        raise UsageError(f"lr_ratio={lr_ratio} must be positive (the paper uses 16)")

    boosted_ids = {id(p) for p in boosted if p.requires_grad}
    base = [p for p in model.parameters() if p.requires_grad and id(p) not in boosted_ids]
    fast = [p for p in model.parameters() if id(p) in boosted_ids]
    groups: list[dict[str, Any]] = []
    if base:
        groups.append({"name": "base", "params": base, "lr": lr, "weight_decay": weight_decay})
    if fast:
        groups.append(
            {"name": "boosted", "params": fast, "lr": lr * lr_ratio, "lr_ratio": lr_ratio, "weight_decay": weight_decay}
        )
    if not groups:
        raise UsageError("the model has no trainable parameter; call geohsi.adapters.apply_adapter(model, method) first")
    return groups


__all__ = ["param_groups"]
