"""KronA: a Kronecker-product update ΔW = s·(A ⊗ B) (Edalati et al., 2022), and the Kronecker helpers.

The update of a ``[out, in]`` weight is ``s·(A ⊗ B)`` with ``A`` ``[a1, a2]`` and ``B`` ``[b1, b2]``,
``a1·b1 = out`` and ``a2·b2 = in``. Applied to a vector, ``(A ⊗ B)·x = vec(A·X·Bᵀ)`` where ``X`` is
``x`` reshaped row-major to ``[a2, b2]`` — two small matmuls instead of an ``out × in`` product, so
the training forward never materialises ΔW (:func:`kron_apply`).

**Default factor shapes** (the rule, shared with LoKr): each of ``out`` and ``in`` is split by
:func:`factorization` into its divisor pair closest to the square root, the smaller member going to
``A``: ``(a1, b1) = factorization(out)``, ``(a2, b2) = factorization(in)``. For 768 × 768 that is
``A`` 24×24 and ``B`` 32×32 (1,600 parameters instead of 589,824). Pass ``a_shape`` to choose ``A``
explicitly (``B`` follows), or ``factor`` to move the split as LoKr's ``decompose_factor`` does.

**Initialisation**: ``B`` (the larger factor for the default shapes) is zero and ``A`` is
Kaiming-uniform (``a=√5``), mirroring LoRA's zero ``B``; ``zero_init="A"`` swaps the roles.
KronA+ boosts the learning rate of the zero-initialised factor by default (``boost="zero"``, see
:func:`geohsi.adapters.param_groups`): like LoRA+, the factor that starts at zero is the one whose
updates carry the feature learning, while the random factor only sets a fixed basis early on.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from geohsi.adapters.base import AdapterLayer
from geohsi.errors import UsageError


def factorization(dimension: int, factor: int = -1) -> tuple[int, int]:
    """Split ``dimension`` into two factors, with the semantics of LyCORIS / HF peft's LoKr helper.

    * ``factor`` > 0 and dividing ``dimension``: ``(factor, dimension // factor)`` (in that order).
    * ``factor == -1``: the divisor pair closest to √dimension, smaller first
      (768 → (24, 32), 256 → (16, 16), 127 → (1, 127)).
    * otherwise: the pair whose smaller member is the largest divisor ≤ ``factor``
      (768, 5 → (4, 192)), smaller first.

    Args:
        dimension: the number to split (≥ 1).
        factor: the preferred first factor, or -1 for the square-ish split.

    Returns:
        ``(m, n)`` with ``m·n == dimension``.

    Raises:
        UsageError: ``dimension`` < 1, or ``factor`` is neither -1 nor positive.

    .. versionadded:: 0.1
    """
    if dimension < 1:
        raise UsageError(f"cannot factorise dimension {dimension}; layer widths must be positive")
    if factor != -1 and factor < 1:
        raise UsageError(f"Kronecker factor={factor} is invalid; pass -1 (square-ish split) or a positive divisor")
    if factor > 0 and dimension % factor == 0:
        return factor, dimension // factor
    limit = dimension if factor == -1 else factor
    m, n = 1, dimension
    # Walk the divisors upwards; stop once the pair crosses √dimension or the divisor passes the limit.
    for d in range(2, dimension + 1):
        if m >= n:
            break
        if dimension % d:
            continue
        if d > limit:
            break
        m, n = d, dimension // d
    return (m, n) if m <= n else (n, m)


def kron_apply(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Compute ``(a ⊗ b)·x`` for a batch of vectors without forming ``a ⊗ b``.

    Args:
        x: ``[..., a2·b2]``.
        a: ``[a1, a2]``.
        b: ``[b1, b2]``.

    Returns:
        ``[..., a1·b1]``, equal to ``x @ torch.kron(a, b).T``.

    .. versionadded:: 0.1
    """
    a1, a2 = a.shape
    b1, b2 = b.shape
    lead = x.shape[:-1]
    xm = x.reshape(*lead, a2, b2)
    y = torch.matmul(a, torch.matmul(xm, b.t()))  # [..., a1, b1]
    return y.reshape(*lead, a1 * b1)


def kron_shapes(
    in_features: int, out_features: int, *, a_shape: Sequence[int] | None = None, factor: int = -1
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Shapes ``(a1, a2), (b1, b2)`` of the Kronecker factors of a ``[out, in]`` matrix.

    Args:
        in_features: input width (``a2·b2``).
        out_features: output width (``a1·b1``).
        a_shape: ``(a1, a2)`` chosen explicitly; must divide ``(out, in)``.
        factor: used when ``a_shape`` is None: ``(a1, b1) = factorization(out, factor)``,
            ``(a2, b2) = factorization(in, factor)``.

    Returns:
        ``((a1, a2), (b1, b2))``.

    Raises:
        UsageError: ``a_shape`` does not divide the layer's shape.

    .. versionadded:: 0.1
    """
    if a_shape is not None:
        if len(a_shape) != 2 or any(int(v) < 1 for v in a_shape):
            raise UsageError(f"a_shape={tuple(a_shape)} is invalid; pass two positive integers (a1, a2)")
        a1, a2 = int(a_shape[0]), int(a_shape[1])
        if out_features % a1 or in_features % a2:
            raise UsageError(
                f"a_shape=({a1}, {a2}) does not divide the {out_features}×{in_features} layer; "
                f"choose a1 dividing {out_features} and a2 dividing {in_features}"
            )
        return (a1, a2), (out_features // a1, in_features // a2)
    a1, b1 = factorization(out_features, factor)
    a2, b2 = factorization(in_features, factor)
    return (a1, a2), (b1, b2)


class KronALinear(AdapterLayer):
    """A frozen ``nn.Linear`` plus ΔW = s·(A ⊗ B); see the module docstring for shapes and init.

    Args:
        base_layer: the pretrained linear layer (frozen).
        a_shape: ``(a1, a2)`` of ``A``; None for the square-ish default (24×24 for 768×768).
        factor: split preference when ``a_shape`` is None (see :func:`factorization`).
        scale: s, the scalar multiplying ``A ⊗ B``.
        zero_init: which factor starts at zero, ``"B"`` (default) or ``"A"``.
        dropout: dropout probability on the adapter input.

    Raises:
        UsageError: the factor shapes do not divide the layer, or ``zero_init`` is not "A"/"B".

    .. versionadded:: 0.1
    """

    method: ClassVar[str] = "krona"
    factor_names: ClassVar[dict[str, str]] = {"A": "krona_A", "B": "krona_B"}

    def __init__(
        self,
        base_layer: nn.Linear,
        a_shape: Sequence[int] | None = None,
        *,
        factor: int = -1,
        scale: float = 1.0,
        zero_init: str = "B",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(base_layer, dropout=dropout)
        if zero_init not in ("A", "B"):
            raise UsageError(f"zero_init={zero_init!r} is invalid; choose 'A' or 'B' as the zero-initialised factor")
        shapes = self.factor_shapes_for(self.in_features, self.out_features, a_shape=a_shape, factor=factor)
        self.scale = float(scale)
        self.zero_init = zero_init
        self.krona_A = self._new_parameter(*shapes["A"])
        self.krona_B = self._new_parameter(*shapes["B"])
        self.reset_parameters()

    @classmethod
    def factor_shapes_for(
        cls, in_features: int, out_features: int, *, a_shape: Sequence[int] | None = None, factor: int = -1, **_: object
    ) -> dict[str, tuple[int, ...]]:
        """``{"A": (a1, a2), "B": (b1, b2)}`` by :func:`kron_shapes`."""
        a, b = kron_shapes(in_features, out_features, a_shape=a_shape, factor=factor)
        return {"A": a, "B": b}

    def reset_parameters(self) -> None:
        """The random factor ← Kaiming-uniform(a=√5), the ``zero_init`` factor ← 0 (ΔW = 0)."""
        rand, zero = (self.krona_A, self.krona_B) if self.zero_init == "B" else (self.krona_B, self.krona_A)
        nn.init.kaiming_uniform_(rand, a=math.sqrt(5))
        nn.init.zeros_(zero)

    @property
    def scaling(self) -> float:
        """s."""
        return self.scale

    @property
    def zero_factors(self) -> tuple[str, ...]:
        """The zero-initialised factor, ``("B",)`` by default — what KronA+ boosts by default."""
        return (self.zero_init,)

    def delta_weight(self) -> torch.Tensor:
        """s·(A ⊗ B), ``[out_features, in_features]`` (materialised: for merging and tests)."""
        return torch.kron(self.krona_A, self.krona_B) * self.scaling

    def adapter_forward(self, x: torch.Tensor) -> torch.Tensor:
        """s·(A ⊗ B)·x by the reshape form (:func:`kron_apply`); ``x`` ``[..., in_features]``."""
        return kron_apply(x, self.krona_A, self.krona_B) * self.scaling


__all__ = ["KronALinear", "factorization", "kron_apply", "kron_shapes"]
