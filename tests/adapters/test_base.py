"""Shared AdapterLayer behaviour, checked on every method: zero init, merge round trip, dtype, dropout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geohsi.adapters import KronALinear, LoKrLinear, LoRALinear
from geohsi.adapters.base import AdapterLayer
from geohsi.errors import UsageError

FACTORIES = {
    "lora": lambda lin, **kw: LoRALinear(lin, r=4, alpha=8, **kw),
    "krona": lambda lin, **kw: KronALinear(lin, scale=2.0, **kw),
    "lokr": lambda lin, **kw: LoKrLinear(lin, r=2, alpha=4, **kw),
    "lokr-both": lambda lin, **kw: LoKrLinear(lin, r=1, alpha=3, decompose_both=True, **kw),
}


def _linear(out_f: int = 48, in_f: int = 24, dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(in_f, out_f).to(dtype)


def _randomize(layer: AdapterLayer, seed: int = 3) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.adapter_parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype) * 0.2)


@pytest.fixture(params=sorted(FACTORIES))
def make(request):
    return FACTORIES[request.param]


def test_output_unchanged_at_init(make) -> None:
    lin = _linear()
    x = torch.randn(5, 7, 24)
    ref = lin(x)
    layer = make(lin)
    assert torch.equal(layer.delta_weight(), torch.zeros(48, 24))
    assert torch.equal(layer(x), ref)


def test_base_frozen_adapter_trainable(make) -> None:
    layer = make(_linear())
    assert not any(p.requires_grad for p in layer.base_layer.parameters())
    assert layer.adapter_parameters() and all(p.requires_grad for p in layer.adapter_parameters())
    assert layer.weight is layer.base_layer.weight and layer.bias is layer.base_layer.bias
    # the wrapper's own parameters are the adapter's plus the frozen base layer's, nothing else
    own = {id(p) for p in layer.parameters()}
    assert own == {id(p) for p in layer.adapter_parameters()} | {id(p) for p in layer.base_layer.parameters()}


def test_forward_equals_dense_update(make) -> None:
    lin = _linear()
    layer = make(lin)
    _randomize(layer)
    x = torch.randn(4, 24)
    dense = nn.functional.linear(x, lin.weight + layer.delta_weight(), lin.bias)
    torch.testing.assert_close(layer(x), dense, atol=1e-5, rtol=0)
    assert (layer(x) - lin(x)).abs().max() > 1e-3  # the update is really there


def test_merge_unmerge_round_trip(make) -> None:
    lin = _linear()
    w0 = lin.weight.detach().clone()
    layer = make(lin)
    _randomize(layer)
    x = torch.randn(6, 3, 24)
    unmerged = layer(x)
    layer.merge()
    assert layer.merged
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=0)
    torch.testing.assert_close(lin.weight, w0 + layer.delta_weight(), atol=1e-6, rtol=0)
    layer.merge()  # idempotent: ΔW is not added twice
    torch.testing.assert_close(lin.weight, w0 + layer.delta_weight(), atol=1e-6, rtol=0)
    layer.unmerge()
    assert not layer.merged
    torch.testing.assert_close(lin.weight, w0, atol=1e-6, rtol=0)
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=0)
    layer.unmerge()  # no-op when not merged
    torch.testing.assert_close(lin.weight, w0, atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtype_follows_wrapped_layer(make, dtype: torch.dtype) -> None:
    layer = make(_linear(dtype=dtype))
    assert {p.dtype for p in layer.adapter_parameters()} == {dtype}
    _randomize(layer)
    x = torch.randn(2, 24, dtype=dtype)
    assert layer(x).dtype == dtype
    assert layer.delta_weight().dtype == dtype


def test_module_to_moves_adapter(make) -> None:
    layer = make(_linear()).to(torch.float64)
    assert {p.dtype for p in layer.parameters()} == {torch.float64}
    assert layer(torch.randn(2, 24, dtype=torch.float64)).dtype == torch.float64


def test_dropout_only_on_adapter_path(make) -> None:
    lin = _linear()
    layer = make(lin, dropout=0.5)
    x = torch.randn(64, 24)
    layer.train()
    # ΔW = 0: dropout on the adapter input cannot change the output
    assert torch.equal(layer(x), lin(x))
    _randomize(layer)
    torch.manual_seed(0)
    a = layer(x)
    torch.manual_seed(1)
    b = layer(x)
    assert not torch.allclose(a, b)  # training: stochastic adapter path
    layer.eval()
    torch.testing.assert_close(layer(x), nn.functional.linear(x, lin.weight + layer.delta_weight(), lin.bias), atol=1e-5, rtol=0)


def test_rejects_non_linear_and_bad_dropout() -> None:
    with pytest.raises(UsageError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(4, 4, 1))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="dropout"):
        LoRALinear(_linear(), dropout=1.0)


def test_set_boost(make) -> None:
    layer = make(_linear())
    layer.set_boost("zero")
    zero = [p for p in layer.adapter_parameters() if not p.detach().any()]
    assert {id(p) for p in layer.boosted_parameters()} == {id(p) for p in zero}
    layer.set_boost("none")
    assert layer.boosted_parameters() == []
    with pytest.raises(UsageError, match="names no factor"):
        layer.set_boost("nonexistent")
    assert "\n" not in str(pytest.raises(UsageError, layer.set_boost, "zz").value)


def test_bf16_autocast(make) -> None:
    lin = _linear()
    layer = make(lin)
    _randomize(layer)
    x = torch.randn(8, 24)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16
    assert all(p.grad is not None for p in layer.adapter_parameters())
    torch.testing.assert_close(y.float(), layer(x).detach(), atol=0.05, rtol=0.02)
