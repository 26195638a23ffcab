"""param_groups: LoRA+/KronA+ learning-rate ratios as a torch optimizer sees them."""

from __future__ import annotations

import pytest
import torch
from _adapter_toy import make_toy, randomize_adapters

from geohsi.adapters import adapter_layers, apply_adapter, param_groups
from geohsi.errors import UsageError


def _groups_by_name(opt: torch.optim.Optimizer) -> dict[str, dict]:
    return {g["name"]: g for g in opt.param_groups}


def _ids(params) -> set[int]:
    return {id(p) for p in params}


def _check_partition(model, opt) -> None:
    """Every trainable parameter is in exactly one group; no frozen one is."""
    seen = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(seen) == len(set(seen))
    assert set(seen) == {id(p) for p in model.parameters() if p.requires_grad}


def test_lora_plus_boosts_b() -> None:
    model = make_toy()
    apply_adapter(model, "lora+", "qv")
    opt = torch.optim.AdamW(param_groups(model, 2e-4, weight_decay=0.01))
    g = _groups_by_name(opt)
    assert g["boosted"]["lr"] / g["base"]["lr"] == 16.0
    assert g["base"]["lr"] == 2e-4 and g["base"]["weight_decay"] == g["boosted"]["weight_decay"] == 0.01
    layers = adapter_layers(model).values()
    assert _ids(g["boosted"]["params"]) == {id(m.lora_B) for m in layers}
    assert {id(m.lora_A) for m in layers} <= _ids(g["base"]["params"])
    assert _ids(model.head.parameters()) <= _ids(g["base"]["params"])
    _check_partition(model, opt)


@pytest.mark.parametrize(
    ("kwargs", "boosted"),
    [
        ({}, "krona_B"),  # default: the zero-initialised factor, B
        ({"boost": "A"}, "krona_A"),
        ({"zero_init": "A"}, "krona_A"),  # boost follows the zero factor
        ({"zero_init": "A", "boost": "B"}, "krona_B"),
    ],
)
def test_krona_plus_boost_selection(kwargs: dict, boosted: str) -> None:
    model = make_toy()
    apply_adapter(model, "krona+", "qv", lr_ratio=4, **kwargs)
    opt = torch.optim.SGD(param_groups(model, 1e-3))
    g = _groups_by_name(opt)
    assert g["boosted"]["lr"] == pytest.approx(4 * g["base"]["lr"], rel=0, abs=1e-15)
    assert _ids(g["boosted"]["params"]) == {id(getattr(m, boosted)) for m in adapter_layers(model).values()}
    _check_partition(model, opt)


def test_explicit_ratio_overrides_recorded_one() -> None:
    model = make_toy()
    apply_adapter(model, "lora+", "qv", lr_ratio=4)
    g = _groups_by_name(torch.optim.Adam(param_groups(model, 1e-3, lr_ratio=32)))
    assert g["boosted"]["lr"] / g["base"]["lr"] == 32


def test_sgd_step_moves_boosted_factor_lambda_times_faster(toy_input) -> None:
    model = make_toy()
    apply_adapter(model, "lora+", "qv", lr_ratio=16)
    randomize_adapters(model)
    layer = next(iter(adapter_layers(model).values()))
    a0, b0 = layer.lora_A.detach().clone(), layer.lora_B.detach().clone()
    opt = torch.optim.SGD(param_groups(model, 1e-2))
    model(toy_input).sum().backward()
    ga, gb = layer.lora_A.grad.clone(), layer.lora_B.grad.clone()
    opt.step()
    torch.testing.assert_close(layer.lora_A.detach(), a0 - 1e-2 * ga)
    torch.testing.assert_close(layer.lora_B.detach(), b0 - 16e-2 * gb)


@pytest.mark.parametrize("method", ["lora", "krona", "lokr", "linear", "full"])
def test_plain_methods_have_one_group(method: str) -> None:
    model = make_toy()
    apply_adapter(model, method, "qv")
    groups = param_groups(model, 1e-3)
    assert [g["name"] for g in groups] == ["base"]
    _check_partition(model, torch.optim.AdamW(groups))
    with pytest.raises(UsageError, match="lora\\+"):
        param_groups(model, 1e-3, lr_ratio=16)


def test_bad_values() -> None:
    model = make_toy()
    apply_adapter(model, "lora+", "qv")
    with pytest.raises(UsageError, match="positive"):
        param_groups(model, 0.0)
    with pytest.raises(UsageError, match="positive"):
        param_groups(model, 1e-3, lr_ratio=-1)
    frozen = make_toy()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(UsageError, match="no trainable"):
        param_groups(frozen, 1e-3)
