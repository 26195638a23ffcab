"""Fixtures of the adapter tests: the stand-in classifier and an input batch."""

from __future__ import annotations

import pytest
import torch
from _adapter_toy import ToyClassifier, make_toy


@pytest.fixture
def toy() -> ToyClassifier:
    return make_toy()


@pytest.fixture
def toy_input() -> torch.Tensor:
    return torch.randn(3, 6, 5, generator=torch.Generator().manual_seed(7))
