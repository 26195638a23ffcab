"""KronA: ΔW = s·(A ⊗ B), default square-ish factors, efficient reshape forward."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from geohsi.adapters import KronALinear, factorization, kron_apply
from geohsi.adapters.krona import kron_shapes
from geohsi.errors import UsageError


@pytest.mark.parametrize(
    ("dim", "factor", "expected"),
    [
        (768, -1, (24, 32)),
        (256, -1, (16, 16)),
        (128, -1, (8, 16)),
        (127, -1, (1, 127)),
        (1, -1, (1, 1)),
        (3072, -1, (48, 64)),
        (128, 4, (4, 32)),
        (128, 64, (64, 2)),  # a dividing factor is used as given, first
        (768, 5, (4, 192)),  # largest divisor ≤ 5
        (768, 100, (24, 32)),
    ],
)
def test_factorization(dim: int, factor: int, expected: tuple[int, int]) -> None:
    assert factorization(dim, factor) == expected


def test_factorization_matches_peft() -> None:
    peft_layer = pytest.importorskip("peft.tuners.lokr.layer")
    for dim in range(1, 400):
        for factor in (-1, 1, 2, 3, 5, 8, 16, 50):
            assert factorization(dim, factor) == tuple(peft_layer.factorization(dim, factor)), (dim, factor)


@pytest.mark.parametrize("bad", [0, -2])
def test_factorization_rejects_bad_factor(bad: int) -> None:
    with pytest.raises(UsageError, match="factor"):
        factorization(12, bad)


@pytest.mark.parametrize(("a", "b", "lead"), [((3, 4), (5, 2), (7,)), ((2, 2), (8, 6), (2, 3)), ((1, 6), (4, 1), ())])
def test_kron_apply_equals_materialised(a, b, lead) -> None:
    g = torch.Generator().manual_seed(0)
    ma, mb = torch.randn(*a, generator=g), torch.randn(*b, generator=g)
    x = torch.randn(*lead, a[1] * b[1], generator=g)
    torch.testing.assert_close(kron_apply(x, ma, mb), x @ torch.kron(ma, mb).t(), atol=1e-5, rtol=1e-5)


def test_default_shapes_vit_b() -> None:
    layer = KronALinear(nn.Linear(768, 768))
    assert layer.krona_A.shape == (24, 24) and layer.krona_B.shape == (32, 32)
    assert sum(p.numel() for p in layer.adapter_parameters()) == 1600
    # rectangular: fc1 768 → 3072
    assert kron_shapes(768, 3072) == ((48, 24), (64, 32))


def test_explicit_a_shape_and_errors() -> None:
    layer = KronALinear(nn.Linear(24, 48), a_shape=(6, 2))
    assert layer.krona_A.shape == (6, 2) and layer.krona_B.shape == (8, 12)
    with pytest.raises(UsageError, match="does not divide"):
        KronALinear(nn.Linear(24, 48), a_shape=(5, 2))
    with pytest.raises(UsageError, match="zero_init"):
        KronALinear(nn.Linear(24, 48), zero_init="C")


@pytest.mark.parametrize("zero", ["A", "B"])
def test_init_one_factor_zero(zero: str) -> None:
    torch.manual_seed(0)
    layer = KronALinear(nn.Linear(64, 64), zero_init=zero)
    f = layer.factors()
    rand = "B" if zero == "A" else "A"
    assert torch.equal(f[zero], torch.zeros_like(f[zero]))
    bound = 1 / math.sqrt(f[rand].shape[1])
    assert 0 < f[rand].abs().max() <= bound
    assert layer.zero_factors == (zero,)


def test_delta_weight_and_forward() -> None:
    lin = nn.Linear(24, 48)
    layer = KronALinear(lin, scale=0.5)
    with torch.no_grad():
        layer.krona_A.normal_()
        layer.krona_B.normal_()
    dw = 0.5 * torch.kron(layer.krona_A, layer.krona_B)
    torch.testing.assert_close(layer.delta_weight(), dw)
    x = torch.randn(3, 5, 24)
    torch.testing.assert_close(layer.adapter_forward(x), x @ dw.t(), atol=1e-5, rtol=1e-5)


def test_training_forward_never_materialises(monkeypatch) -> None:
    layer = KronALinear(nn.Linear(768, 768))
    with torch.no_grad():
        layer.krona_B.normal_()

    def boom(*args, **kwargs):
        raise AssertionError("torch.kron called in the training forward")

    monkeypatch.setattr(torch, "kron", boom)
    y = layer(torch.randn(2, 768))
    y.sum().backward()
    assert layer.krona_A.grad is not None and layer.krona_B.grad is not None
    assert layer.base_layer.weight.grad is None
