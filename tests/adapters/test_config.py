"""The adapter methods as config classes: one per method, registered once, round-tripped through a dict,
equal to what a bundle records; apply_adapter takes a config as it takes a name."""

from __future__ import annotations

import pytest
import torch

from geohsi.adapters import (
    ADAPTER_CONFIGS,
    METHODS,
    AdapterConfig,
    KronAPlusConfig,
    LoRAConfig,
    adapter_config,
    adapter_config_for,
    apply_adapter,
)
from geohsi.errors import UsageError
from geohsi.models import build_classifier
from geohsi.training.config import ADAPTERS


def test_the_methods_are_declared_once() -> None:
    assert METHODS == tuple(ADAPTER_CONFIGS) == ADAPTERS == ("lora", "lora+", "krona", "krona+", "lokr", "full", "linear")
    assert all(cls.method == name for name, cls in ADAPTER_CONFIGS.items())


@pytest.mark.parametrize("method", METHODS)
def test_every_config_round_trips_through_its_dict(method: str) -> None:
    cfg = adapter_config_for(method)
    assert AdapterConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["method"] == method
    assert set(cfg.layer_kwargs()) <= set(cfg.options())


def test_plus_methods_add_the_ratio_to_their_base_options_and_check_it() -> None:
    assert list(KronAPlusConfig().options()) == ["a_shape", "factor", "scale", "zero_init", "dropout", "lr_ratio", "boost"]
    assert KronAPlusConfig(lr_ratio=8).lr_ratio == 8.0 and isinstance(KronAPlusConfig(lr_ratio=8).lr_ratio, float)
    assert "lr_ratio" not in KronAPlusConfig().layer_kwargs()
    with pytest.raises(UsageError, match="lr_ratio=0 must be positive"):
        adapter_config_for("lora+", {"lr_ratio": 0})
    with pytest.raises(UsageError, match=r"option\(s\) r do not apply to method 'krona'; its options are: a_shape"):
        adapter_config_for("krona", {"r": 4})
    with pytest.raises(UsageError, match="adapter method 'dora' is unknown; choose one of lora, lora\\+"):
        adapter_config_for("dora")


def test_apply_adapter_takes_a_config_as_it_takes_a_name() -> None:
    torch.manual_seed(0)
    by_name, by_config = build_classifier("tiny", 3), build_classifier("tiny", 3)
    s1 = apply_adapter(by_name, "lora", "qv", r=4, alpha=4.0)
    s2 = apply_adapter(by_config, LoRAConfig(r=4, alpha=4.0), "qv")
    assert adapter_config(by_name) == adapter_config(by_config) and s1.adapter_params == s2.adapter_params
    assert adapter_config(by_config)["options"] == LoRAConfig(r=4, alpha=4.0).options()  # what a bundle records
    with pytest.raises(UsageError, match="in its config, not as keywords"):
        apply_adapter(build_classifier("tiny", 3), LoRAConfig(), "qv", r=2)
