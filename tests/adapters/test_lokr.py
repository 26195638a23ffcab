"""LoKr: (α/r)·(W₁ ⊗ W₂) with peft's shape, rank and initialisation rules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geohsi.adapters import LoKrLinear
from geohsi.errors import UsageError


@pytest.mark.parametrize(
    ("r", "both", "expected"),
    [
        (8, False, {"w1": (24, 24), "w2_a": (32, 8), "w2_b": (8, 32)}),  # 8 < 32/2: W2 low rank
        (16, False, {"w1": (24, 24), "w2": (32, 32)}),  # 16 ≥ 32/2: W2 full
        (4, True, {"w1_a": (24, 4), "w1_b": (4, 24), "w2_a": (32, 4), "w2_b": (4, 32)}),
        (12, True, {"w1": (24, 24), "w2_a": (32, 12), "w2_b": (12, 32)}),  # 12 ≥ 24/2: W1 stays full
    ],
)
def test_shapes(r: int, both: bool, expected: dict) -> None:
    layer = LoKrLinear(nn.Linear(768, 768), r=r, decompose_both=both)
    assert {k: tuple(v) for k, v in layer.factor_shapes().items()} == expected
    assert LoKrLinear.factor_shapes_for(768, 768, r=r, decompose_both=both) == expected


def test_decompose_factor() -> None:
    layer = LoKrLinear(nn.Linear(64, 32), r=1, decompose_factor=4)
    # out 32 → (4, 8), in 64 → (4, 16): W1 [4, 4], W2 [8, 16] low rank
    assert layer.factor_shapes() == {"w1": [4, 4], "w2_a": [8, 1], "w2_b": [1, 16]}


@pytest.mark.parametrize(("init", "zero"), [("peft", {"w1"}), ("lycoris", {"w2_b"})])
def test_init_conventions(init: str, zero: set) -> None:
    layer = LoKrLinear(nn.Linear(64, 64), r=2, init=init)
    zeros = {k for k, p in layer.factors().items() if not p.detach().any()}
    assert zeros == zero == set(layer.zero_factors)
    assert torch.equal(layer.delta_weight(), torch.zeros(64, 64))


def test_init_decompose_both_peft_zeroes_w1_a() -> None:
    layer = LoKrLinear(nn.Linear(768, 768), r=2, decompose_both=True)
    zeros = {k for k, p in layer.factors().items() if not p.detach().any()}
    assert zeros == {"w1_a"}


def test_delta_weight_and_forward() -> None:
    layer = LoKrLinear(nn.Linear(64, 48), r=2, alpha=3, decompose_both=True)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in layer.adapter_parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    f = layer.factors()
    w1 = f["w1_a"] @ f["w1_b"] if "w1_a" in f else f["w1"]
    w2 = f["w2_a"] @ f["w2_b"] if "w2_a" in f else f["w2"]
    dw = 1.5 * torch.kron(w1, w2)
    assert dw.shape == (48, 64)
    torch.testing.assert_close(layer.delta_weight(), dw)
    x = torch.randn(4, 64, generator=g)
    torch.testing.assert_close(layer.adapter_forward(x), x @ dw.t(), atol=1e-4, rtol=1e-5)


def test_forward_never_materialises(monkeypatch) -> None:
    layer = LoKrLinear(nn.Linear(768, 768))
    monkeypatch.setattr(torch, "kron", lambda *a, **k: (_ for _ in ()).throw(AssertionError("kron")))
    layer(torch.randn(2, 768)).sum().backward()
    assert layer.lokr_w1.grad is not None


def test_bad_options() -> None:
    with pytest.raises(UsageError, match="init"):
        LoKrLinear(nn.Linear(8, 8), init="xavier")
    with pytest.raises(UsageError, match="rank"):
        LoKrLinear(nn.Linear(8, 8), r=0)
