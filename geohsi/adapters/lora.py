"""LoRA: a rank-r update ΔW = (α/r)·B·A (Hu et al., 2021), with HF peft's initialisation.

LoRA+ (Hayou et al., 2024) is the same module trained with lr(B) = λ·lr(A); the learning rates are
set by :func:`geohsi.adapters.param_groups`, not here.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from geohsi.adapters.base import AdapterLayer
from geohsi.errors import UsageError


def _check_rank(r: object, method: str) -> int:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise UsageError(f"{method} rank r={r!r} is invalid; pass a positive integer such as r=8")
    return r


class LoRALinear(AdapterLayer):
    """A frozen ``nn.Linear`` plus ΔW = (α/r)·B·A.

    ``A`` ``[r, in_features]`` is Kaiming-uniform (``a=√5``, as ``nn.Linear`` and HF peft), ``B``
    ``[out_features, r]`` is zero, so ΔW = 0 at initialisation. The forward computes
    ``(α/r)·(x·Aᵀ)·Bᵀ`` in two thin matmuls.

    Args:
        base_layer: the pretrained linear layer (frozen).
        r: the rank.
        alpha: α; the update is scaled by α/r (HF peft's default α = 8).
        dropout: dropout probability on the adapter input.

    Raises:
        UsageError: ``r`` is not a positive integer or ``dropout`` is outside [0, 1).

    .. versionadded:: 0.1
    """

    method: ClassVar[str] = "lora"
    factor_names: ClassVar[dict[str, str]] = {"A": "lora_A", "B": "lora_B"}

    def __init__(self, base_layer: nn.Linear, r: int = 8, alpha: float = 8.0, *, dropout: float = 0.0) -> None:
        super().__init__(base_layer, dropout=dropout)
        shapes = self.factor_shapes_for(self.in_features, self.out_features, r=r)
        self.r = r
        self.alpha = float(alpha)
        self.lora_A = self._new_parameter(*shapes["A"])
        self.lora_B = self._new_parameter(*shapes["B"])
        self.reset_parameters()

    @classmethod
    def factor_shapes_for(cls, in_features: int, out_features: int, *, r: int = 8, **_: object) -> dict[str, tuple[int, ...]]:
        """``{"A": (r, in_features), "B": (out_features, r)}``; see :meth:`AdapterLayer.factor_shapes_for`."""
        r = _check_rank(r, cls.method)
        return {"A": (r, in_features), "B": (out_features, r)}

    def reset_parameters(self) -> None:
        """A ← Kaiming-uniform(a=√5), B ← 0 (ΔW = 0)."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    @property
    def scaling(self) -> float:
        """α/r."""
        return self.alpha / self.r

    @property
    def zero_factors(self) -> tuple[str, ...]:
        """``("B",)``: the factor LoRA+ trains with the λ-times larger learning rate."""
        return ("B",)

    def delta_weight(self) -> torch.Tensor:
        """(α/r)·B·A, ``[out_features, in_features]``."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def adapter_forward(self, x: torch.Tensor) -> torch.Tensor:
        """(α/r)·x·Aᵀ·Bᵀ for ``x`` ``[..., in_features]``."""
        return (x @ self.lora_A.t()) @ self.lora_B.t() * self.scaling


__all__ = ["LoRALinear"]
