"""LoRA: ΔW = (α/r)·B·A with peft's initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from geohsi.adapters import LoRALinear
from geohsi.errors import UsageError


def test_shapes_init_and_scaling() -> None:
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(40, 30), r=6, alpha=12)
    assert layer.lora_A.shape == (6, 40) and layer.lora_B.shape == (30, 6)
    assert layer.scaling == 2.0
    assert torch.equal(layer.lora_B, torch.zeros(30, 6))
    bound = 1 / math.sqrt(40)  # Kaiming-uniform with a=√5 → U(-1/√fan_in, 1/√fan_in)
    assert layer.lora_A.abs().max() <= bound
    assert layer.lora_A.abs().max() > bound / 2 and layer.lora_A.std() > bound / 4
    assert layer.zero_factors == ("B",)


def test_delta_weight_is_scaled_low_rank_product() -> None:
    layer = LoRALinear(nn.Linear(20, 12), r=3, alpha=6)
    with torch.no_grad():
        layer.lora_A.normal_()
        layer.lora_B.normal_()
    expected = 2.0 * layer.lora_B @ layer.lora_A
    torch.testing.assert_close(layer.delta_weight(), expected)
    assert torch.linalg.matrix_rank(layer.delta_weight()) == 3
    x = torch.randn(5, 20)
    torch.testing.assert_close(layer.adapter_forward(x), x @ expected.t(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("r", [0, -2, 2.5, True])
def test_rank_must_be_positive_int(r) -> None:
    with pytest.raises(UsageError, match="rank"):
        LoRALinear(nn.Linear(4, 4), r=r)
