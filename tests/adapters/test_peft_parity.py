"""Parity with HF peft (test-only dependency): identical factor values give identical outputs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from geohsi.adapters import adapter_layers, apply_adapter

peft = pytest.importorskip("peft")


class Stack(nn.Module):
    """A stack of Linears with non-linearities, rectangular where it can be."""

    def __init__(self) -> None:
        super().__init__()
        self.l0 = nn.Linear(48, 64)
        self.l1 = nn.Linear(64, 64)
        self.l2 = nn.Linear(64, 24)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.tanh(self.l1(torch.tanh(self.l0(x)))))


TARGETS = ["l0", "l1", "l2"]


def _pair() -> tuple[Stack, Stack]:
    torch.manual_seed(0)
    ours = Stack()
    return ours, copy.deepcopy(ours)


def _fill(tensors: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(t.shape, generator=g) * 0.3 for k, t in tensors.items()}


@pytest.mark.parametrize(("r", "alpha"), [(4, 8), (8, 4)])
def test_lora_parity(r: int, alpha: float) -> None:
    ours, theirs = _pair()
    apply_adapter(ours, "lora", TARGETS, head=None, r=r, alpha=alpha)
    theirs = peft.inject_adapter_in_model(peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=TARGETS), theirs)
    x = torch.randn(5, 48, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(ours(x), theirs(x), atol=0, rtol=0)  # both start as the base model

    for i, (name, layer) in enumerate(adapter_layers(ours).items()):
        p = getattr(theirs, name)
        assert p.lora_A["default"].weight.shape == layer.lora_A.shape
        assert p.lora_B["default"].weight.shape == layer.lora_B.shape
        assert p.scaling["default"] == layer.scaling
        vals = _fill({"A": layer.lora_A, "B": layer.lora_B}, seed=i)
        with torch.no_grad():
            layer.lora_A.copy_(vals["A"])
            layer.lora_B.copy_(vals["B"])
            p.lora_A["default"].weight.copy_(vals["A"])
            p.lora_B["default"].weight.copy_(vals["B"])
    out, ref = ours(x), theirs(x)
    assert (ref - Stack.forward(_pair()[0], x)).abs().max() > 1e-2  # the adapters changed the output
    assert (out - ref).abs().max() <= 1e-6


LOKR_CASES = [
    dict(r=2, alpha=4),  # W2 low rank
    dict(r=16, alpha=8),  # W2 full (r ≥ max(k, n)/2)
    dict(r=1, alpha=2, decompose_both=True),  # both low rank
    dict(r=2, alpha=1, decompose_factor=4),
]


@pytest.mark.parametrize("cfg", LOKR_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_lokr_parity(cfg: dict) -> None:
    ours, theirs = _pair()
    apply_adapter(ours, "lokr", TARGETS, head=None, **cfg)
    theirs = peft.inject_adapter_in_model(peft.LoKrConfig(target_modules=TARGETS, **cfg), theirs)
    x = torch.randn(5, 48, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(ours(x), theirs(x), atol=0, rtol=0)

    for i, (name, layer) in enumerate(adapter_layers(ours).items()):
        p = getattr(theirs, name)
        assert p.scaling["default"] == layer.scaling
        values = _fill(layer.factors(), seed=10 + i)
        for short, attr in layer.factor_names.items():
            peft_dict = getattr(p, attr)
            if short not in values:
                assert "default" not in peft_dict, f"{name}: peft has {attr}, we do not"
                continue
            theirs_p = peft_dict["default"]
            ours_p = getattr(layer, attr)
            assert theirs_p.shape == ours_p.shape, (name, attr)
            # same initialisation convention: the same factor starts at zero
            assert bool(theirs_p.detach().any()) == bool(ours_p.detach().any()), (name, attr)
            with torch.no_grad():
                theirs_p.copy_(values[short])
                ours_p.copy_(values[short])
        torch.testing.assert_close(layer.delta_weight(), p.get_delta_weight("default"), atol=1e-6, rtol=0)
    out, ref = ours(x), theirs(x)
    assert (ref - Stack.forward(_pair()[0], x)).abs().max() > 1e-2
    assert (out - ref).abs().max() <= 1e-6
