"""The shared adapter wrapper: a frozen ``nn.Linear`` plus a trainable low-parameter update ΔW.

Every method (LoRA, KronA, LoKr) is a small subclass of :class:`AdapterLayer` that declares the
shapes of its factors, how they are initialised, ``delta_weight()`` and an efficient
``adapter_forward(x) = ΔW·x`` that never builds ΔW during training. Merging, unmerging, dropout,
dtype/device handling and the "+" learning-rate boost bookkeeping live here, once.

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from geohsi.errors import UsageError


class AdapterLayer(nn.Module):
    """A frozen ``nn.Linear`` (``base_layer``) with an additive low-parameter update ΔW.

    ``forward(x) = base_layer(x) + adapter_forward(dropout(x))`` while unmerged, and
    ``base_layer(x)`` once :meth:`merge` has folded ΔW into the base weight. ΔW is zero at
    initialisation, so an adapted model starts exactly as the pretrained one.

    Subclasses set :attr:`method`, :attr:`factor_names` and :attr:`zero_factors`, create their
    parameters with :meth:`_new_parameter` (which follows the wrapped layer's dtype and device) and
    implement :meth:`delta_weight` and :meth:`adapter_forward`.

    Args:
        base_layer: the pretrained linear layer; its parameters are frozen (``requires_grad=False``).
        dropout: dropout probability applied to the input of the adapter path only (0 disables it).

    Attributes:
        base_layer: the wrapped ``nn.Linear``.
        in_features: input width of the wrapped layer.
        out_features: output width of the wrapped layer.
        merged: whether ΔW is currently folded into ``base_layer.weight``.
        boost: short names (keys of :attr:`factor_names`) of the factors whose learning rate the
            "+" variants multiply by λ; empty for the plain methods. Set by
            :func:`geohsi.adapters.apply_adapter`, read by :func:`geohsi.adapters.param_groups`.

    Raises:
        UsageError: ``base_layer`` is not an ``nn.Linear`` or ``dropout`` is outside [0, 1).

    .. versionadded:: 0.1
    """

    #: the method's name as used by :func:`geohsi.adapters.apply_adapter`.
    method: ClassVar[str] = ""
    #: short factor name → parameter attribute name (e.g. ``{"A": "lora_A", "B": "lora_B"}``).
    factor_names: ClassVar[dict[str, str]] = {}

    def __init__(self, base_layer: nn.Linear, *, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise UsageError(f"{type(base_layer).__name__} cannot be adapted; {type(self).__name__} wraps nn.Linear layers only")
        if not 0.0 <= float(dropout) < 1.0:
            raise UsageError(f"adapter dropout={dropout} is outside [0, 1); pass a probability such as 0.1")
        self.base_layer = base_layer
        for p in self.base_layer.parameters():
            p.requires_grad_(False)
        self.in_features = base_layer.in_features
        self.out_features = base_layer.out_features
        self.dropout_p = float(dropout)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.boost: tuple[str, ...] = ()

    # ------------------------------------------------------------------ construction helpers
    def _new_parameter(self, *shape: int) -> nn.Parameter:
        """An uninitialised trainable tensor on the wrapped layer's device and dtype."""
        w = self.base_layer.weight
        return nn.Parameter(torch.empty(*shape, device=w.device, dtype=w.dtype))

    # ------------------------------------------------------------------ what subclasses define
    @classmethod
    def factor_shapes_for(cls, in_features: int, out_features: int, **cfg: object) -> dict[str, tuple[int, ...]]:
        """Factor shapes this method would create for a ``[out_features, in_features]`` layer.

        The one place a method's shape rule lives: construction and the closed-form parameter
        counts (:func:`geohsi.adapters.count_adapter_parameters`) both call it.

        Args:
            in_features: input width of the layer.
            out_features: output width of the layer.
            **cfg: the method's options (rank, factor shapes, …).

        Returns:
            Short factor name → shape.
        """
        raise NotImplementedError

    @property
    def scaling(self) -> float:
        """The scalar multiplying the factor product in ΔW (α/r for LoRA/LoKr, s for KronA)."""
        raise NotImplementedError

    @property
    def zero_factors(self) -> tuple[str, ...]:
        """Short names of the factors that are zero at initialisation (what makes ΔW = 0)."""
        raise NotImplementedError

    def delta_weight(self) -> torch.Tensor:
        """The dense update ΔW, shape ``[out_features, in_features]``, in the adapter's dtype.

        Materialises the full matrix: meant for merging and tests, not for the training forward.
        """
        raise NotImplementedError

    def adapter_forward(self, x: torch.Tensor) -> torch.Tensor:
        """ΔW·x for a batch ``x`` of shape ``[..., in_features]`` → ``[..., out_features]``.

        Subclasses compute this from the factors without materialising ΔW.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ shared behaviour
    @property
    def weight(self) -> torch.Tensor:
        """The wrapped layer's weight (includes ΔW while merged), for code that reads ``.weight``."""
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        """The wrapped layer's bias."""
        return self.base_layer.bias

    def factors(self) -> dict[str, nn.Parameter]:
        """The adapter's trainable factors by short name (only those this instance uses)."""
        return {k: getattr(self, v) for k, v in self.factor_names.items() if hasattr(self, v)}

    def adapter_parameters(self) -> list[nn.Parameter]:
        """All trainable adapter parameters (the wrapped layer's are excluded)."""
        return list(self.factors().values())

    def boosted_parameters(self) -> list[nn.Parameter]:
        """The parameters whose learning rate the "+" variants multiply by λ (see :attr:`boost`)."""
        f = self.factors()
        return [f[name] for name in self.boost if name in f]

    def _adapter_dtype(self) -> torch.dtype:
        return next(iter(self.factors().values())).dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``x`` of shape ``[..., in_features]``.

        Returns:
            ``[..., out_features]`` in the base layer's output dtype.
        """
        out = self.base_layer(x)
        if self.merged:
            return out
        h = self.dropout(x)
        dtype = self._adapter_dtype()
        if h.dtype != dtype and not torch.is_autocast_enabled(h.device.type):
            # e.g. fp32 adapter on a bf16 activations stream: compute the update in the adapter's dtype
            h = h.to(dtype)
        return out + self.adapter_forward(h).to(out.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ΔW into ``base_layer.weight`` so inference runs one plain matmul.

        Idempotent: merging a merged layer does nothing. :meth:`unmerge` subtracts the same ΔW
        (the factors are left untouched), so the round trip restores the weight up to one rounding
        of the weight's dtype.
        """
        if self.merged:
            return
        w = self.base_layer.weight
        w.add_(self.delta_weight().to(dtype=w.dtype, device=w.device))
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract ΔW from ``base_layer.weight`` again (no-op when not merged)."""
        if not self.merged:
            return
        w = self.base_layer.weight
        w.sub_(self.delta_weight().to(dtype=w.dtype, device=w.device))
        self.merged = False

    def set_boost(self, which: str) -> None:
        """Choose the factors the "+" variants train with a λ-times larger learning rate.

        Args:
            which: ``"zero"`` for the zero-initialised factor(s) (the LoRA+ rule), ``"none"`` for
                no boost, or a short factor name such as ``"A"`` or ``"B"``.

        Raises:
            UsageError: ``which`` names no factor of this layer.
        """
        if which == "none":
            self.boost = ()
        elif which == "zero":
            self.boost = tuple(self.zero_factors)
        else:
            present = self.factors()
            wanted = tuple(w.strip() for w in which.split(","))
            unknown = [w for w in wanted if w not in present]
            if unknown:
                raise UsageError(f"boost={which!r} names no factor of {self.method}; choose 'zero' or one of {sorted(present)}")
            self.boost = wanted

    def factor_shapes(self) -> dict[str, list[int]]:
        """Shapes of the factors by short name (JSON-able), e.g. ``{"A": [24, 24], "B": [32, 32]}``."""
        return {k: list(p.shape) for k, p in self.factors().items()}

    def extra_repr(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v)}" for k, v in self.factor_shapes().items())
        return f"in={self.in_features}, out={self.out_features}, {shapes}, scaling={self.scaling:g}, merged={self.merged}"


__all__ = ["AdapterLayer"]
