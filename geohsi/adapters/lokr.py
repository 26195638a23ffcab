"""LoKr: ΔW = (α/r)·(W₁ ⊗ W₂) with optionally low-rank factors, with LyCORIS / HF peft semantics.

Shapes follow HF peft's ``LoKrLayer`` for ``nn.Linear``: ``(l, k) = factorization(out, f)`` and
``(m, n) = factorization(in, f)`` (``f`` = ``decompose_factor``, -1 for the square-ish split),
``W₁`` is ``[l, m]`` and ``W₂`` is ``[k, n]`` (768×768 → 24×24 ⊗ 32×32).

* ``W₂`` is the low-rank product ``W₂ₐ·W₂_b`` (``[k, r]·[r, n]``) when ``r < max(k, n) / 2``, a full
  ``[k, n]`` matrix otherwise.
* ``W₁`` is full, unless ``decompose_both`` and ``r < max(l, m) / 2``, when it is ``W₁ₐ·W₁_b``.
* Scaling is α/r whatever the factors' form (as in peft).
* Initialisation ``init="peft"`` (peft's default ``init_weights=True``): ``W₁`` (or ``W₁ₐ``) zero,
  everything else Kaiming-uniform (``a=√5``). ``init="lycoris"`` (peft's ``init_weights="lycoris"``):
  ``W₂`` (or ``W₂_b``) zero, everything else Kaiming-uniform.

Unlike peft, the forward never materialises ΔW (``(W₁ ⊗ W₂)·x`` by the reshape form of
:func:`geohsi.adapters.krona.kron_apply`), and regularisation is the shared input dropout rather than
peft's rank/module dropout.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from geohsi.adapters.base import AdapterLayer
from geohsi.adapters.krona import factorization, kron_apply
from geohsi.adapters.lora import _check_rank
from geohsi.errors import UsageError


class LoKrLinear(AdapterLayer):
    """A frozen ``nn.Linear`` plus ΔW = (α/r)·(W₁ ⊗ W₂); see the module docstring for the rules.

    Args:
        base_layer: the pretrained linear layer (frozen).
        r: the rank of the low-rank factor(s).
        alpha: α; the update is scaled by α/r (peft's default α = 8).
        decompose_both: also factor ``W₁`` as ``W₁ₐ·W₁_b`` when ``r`` is small enough.
        decompose_factor: the split preference of :func:`~geohsi.adapters.krona.factorization`.
        init: ``"peft"`` (W₁ zero) or ``"lycoris"`` (W₂ zero).
        dropout: dropout probability on the adapter input.

    Raises:
        UsageError: ``r`` is not a positive integer, or ``init`` is unknown.

    .. versionadded:: 0.1
    """

    method: ClassVar[str] = "lokr"
    factor_names: ClassVar[dict[str, str]] = {
        "w1": "lokr_w1",
        "w1_a": "lokr_w1_a",
        "w1_b": "lokr_w1_b",
        "w2": "lokr_w2",
        "w2_a": "lokr_w2_a",
        "w2_b": "lokr_w2_b",
    }

    def __init__(
        self,
        base_layer: nn.Linear,
        r: int = 8,
        alpha: float = 8.0,
        *,
        decompose_both: bool = False,
        decompose_factor: int = -1,
        init: str = "peft",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(base_layer, dropout=dropout)
        if init not in ("peft", "lycoris"):
            raise UsageError(f"LoKr init={init!r} is unknown; choose 'peft' (W1 zero) or 'lycoris' (W2 zero)")
        shapes = self.factor_shapes_for(
            self.in_features, self.out_features, r=r, decompose_both=decompose_both, decompose_factor=decompose_factor
        )
        self.r = r
        self.alpha = float(alpha)
        self.decompose_both = bool(decompose_both)
        self.decompose_factor = int(decompose_factor)
        self.init = init
        for name, shape in shapes.items():
            setattr(self, self.factor_names[name], self._new_parameter(*shape))
        self.reset_parameters()

    @classmethod
    def factor_shapes_for(
        cls,
        in_features: int,
        out_features: int,
        *,
        r: int = 8,
        decompose_both: bool = False,
        decompose_factor: int = -1,
        **_: object,
    ) -> dict[str, tuple[int, ...]]:
        """Shapes of ``w1`` or ``w1_a``/``w1_b`` and ``w2`` or ``w2_a``/``w2_b`` (peft's rule)."""
        r = _check_rank(r, cls.method)
        out_l, out_k = factorization(out_features, decompose_factor)
        in_m, in_n = factorization(in_features, decompose_factor)
        shapes: dict[str, tuple[int, ...]] = {}
        if decompose_both and r < max(out_l, in_m) / 2:
            shapes["w1_a"], shapes["w1_b"] = (out_l, r), (r, in_m)
        else:
            shapes["w1"] = (out_l, in_m)
        if r < max(out_k, in_n) / 2:
            shapes["w2_a"], shapes["w2_b"] = (out_k, r), (r, in_n)
        else:
            shapes["w2"] = (out_k, in_n)
        return shapes

    @property
    def zero_factors(self) -> tuple[str, ...]:
        """``w1``/``w1_a`` for ``init="peft"``, ``w2``/``w2_b`` for ``init="lycoris"``."""
        f = self.factors()
        if self.init == "peft":
            return ("w1",) if "w1" in f else ("w1_a",)
        return ("w2",) if "w2" in f else ("w2_b",)

    def reset_parameters(self) -> None:
        """The :attr:`zero_factors` ← 0, every other factor ← Kaiming-uniform(a=√5)."""
        zero = set(self.zero_factors)
        for name, p in self.factors().items():
            if name in zero:
                nn.init.zeros_(p)
            else:
                nn.init.kaiming_uniform_(p, a=math.sqrt(5))

    @property
    def scaling(self) -> float:
        """α/r."""
        return self.alpha / self.r

    def kron_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The dense ``W₁`` ``[l, m]`` and ``W₂`` ``[k, n]`` (each small; products of the low-rank parts)."""
        f = self.factors()
        w1 = f["w1"] if "w1" in f else f["w1_a"] @ f["w1_b"]
        w2 = f["w2"] if "w2" in f else f["w2_a"] @ f["w2_b"]
        return w1, w2

    def delta_weight(self) -> torch.Tensor:
        """(α/r)·(W₁ ⊗ W₂), ``[out_features, in_features]`` (materialised: for merging and tests)."""
        w1, w2 = self.kron_factors()
        return torch.kron(w1, w2) * self.scaling

    def adapter_forward(self, x: torch.Tensor) -> torch.Tensor:
        """(α/r)·(W₁ ⊗ W₂)·x by the reshape form; ``x`` ``[..., in_features]``."""
        w1, w2 = self.kron_factors()
        return kron_apply(x, w1, w2) * self.scaling


__all__ = ["LoKrLinear"]
