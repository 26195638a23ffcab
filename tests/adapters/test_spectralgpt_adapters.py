"""Adapters on the real SpectralGPT classifier: closed-form counts, init/merge/reload on ``tiny``, ViT-B file size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from geohsi.adapters import (
    METHODS,
    PRESETS,
    adapter_layers,
    apply_adapter,
    count_adapter_parameters,
    load_adapter,
    merge_adapter,
    param_groups,
    save_adapter,
)
from geohsi.errors import ModelError
from geohsi.models import CONFIGS, build_classifier, resolve_model_config

CLASSES = 16


def _meta_classifier(config: str, **overrides):
    # Parameter counting needs shapes only: the meta device builds ViT-B without allocating 340 MB.
    with torch.device("meta"):
        return build_classifier(config, CLASSES, **overrides)


def _backbone_id(config: str, **overrides) -> dict:
    return {"name": f"spectralgpt_{config}", "config": resolve_model_config(config, **overrides).to_dict()}


def test_paper_closed_forms_base_qv() -> None:
    # the numbers: 24 matrices of 768×768 (q and v of 12 blocks)
    assert count_adapter_parameters("base", "lora", "qv", r=8) == 24 * 8 * (768 + 768) == 294_912
    assert count_adapter_parameters("base", "krona", "qv") == 24 * (24 * 24 + 32 * 32) == 38_400
    assert count_adapter_parameters("base", "krona+", "qv", a_shape=(24, 24)) == 38_400
    head = 2 * 768 + 768 * CLASSES + CLASSES
    assert count_adapter_parameters("base", "krona+", "qv", num_classes=CLASSES) == 38_400 + head


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("method", METHODS)
def test_closed_form_counts_equal_real_counts(config: str, method: str) -> None:
    options = {"lora": [{}, {"r": 4}], "lokr": [{}, {"r": 2, "decompose_both": True}], "krona": [{}, {"factor": 4}]}
    for targets in PRESETS:
        for cfg in options.get(method.rstrip("+"), [{}]):
            for train_norms in (False, True):
                model = _meta_classifier(config)
                s = apply_adapter(model, method, targets, train_norms=train_norms, **cfg)
                kw = dict(train_norms=train_norms, **cfg)
                assert count_adapter_parameters(config, method, targets, num_classes=CLASSES, **kw) == s.trainable_params
                if method not in ("full", "linear") and not train_norms:
                    assert count_adapter_parameters(config, method, targets, **cfg) == s.adapter_params
                if method == "full":
                    break


@pytest.fixture(scope="module")
def tiny_input() -> torch.Tensor:
    return torch.randn(2, 12, 32, 32, generator=torch.Generator().manual_seed(0))


def _tiny(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_classifier("tiny", CLASSES, **overrides).eval()


def _randomize(model, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in adapter_layers(model).values():
            for p in layer.adapter_parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        for p in model.head.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


@pytest.mark.parametrize("method", ["lora", "lora+", "krona", "krona+", "lokr"])
def test_tiny_init_merge_reload(tmp_path: Path, tiny_input: torch.Tensor, method: str) -> None:
    model = _tiny()
    ref = model(tiny_input)
    apply_adapter(model, method, "qv")
    torch.testing.assert_close(model(tiny_input), ref, atol=0, rtol=0)

    model.train()
    model(tiny_input).square().sum().backward()
    adapter_ids = {id(p) for lay in adapter_layers(model).values() for p in lay.adapter_parameters()}
    for n, p in model.named_parameters():
        if p.grad is not None:
            assert id(p) in adapter_ids or n.startswith("head."), n
    model.eval()
    torch.optim.AdamW(param_groups(model, 1e-3))  # groups accepted by a real optimizer

    _randomize(model)
    unmerged = model(tiny_input)
    assert (unmerged - ref).abs().max() > 1e-4
    merge_adapter(model)
    torch.testing.assert_close(model(tiny_input), unmerged, atol=1e-5, rtol=0)

    ident = _backbone_id("tiny")
    save_adapter(model, tmp_path / "ad", backbone_id=ident)
    fresh = _tiny()
    load_adapter(fresh, tmp_path / "ad", backbone_id=ident, method=method)
    torch.testing.assert_close(fresh(tiny_input), unmerged, atol=1e-5, rtol=0)


def test_tiny_reload_refuses_other_depth(tmp_path: Path) -> None:
    model = _tiny()
    apply_adapter(model, "krona+", "qv")
    save_adapter(model, tmp_path / "ad", backbone_id=_backbone_id("tiny"))
    deeper = _tiny(depth=3)
    with pytest.raises(ModelError, match="depth: adapter 2 vs backbone 3") as e:
        load_adapter(deeper, tmp_path / "ad", backbone_id=_backbone_id("tiny", depth=3))
    assert "\n" not in str(e.value)
    with pytest.raises(ModelError, match="adapts 4 layers but this model has 6"):
        load_adapter(deeper, tmp_path / "ad", backbone_id={"name": "spectralgpt_tiny"})


def test_merge_unload_gives_backbone_layout(tiny_input: torch.Tensor) -> None:
    plain = _tiny()
    keys = set(plain.state_dict())
    model = _tiny()
    apply_adapter(model, "lokr", "attn")
    _randomize(model)
    out = model(tiny_input)
    merge_adapter(model, unload=True)
    assert set(model.state_dict()) == keys
    torch.testing.assert_close(model(tiny_input), out, atol=1e-5, rtol=0)


def test_krona_plus_vit_b_file_is_small(tmp_path: Path) -> None:
    model = _meta_classifier("base")
    summary = apply_adapter(model, "krona+", "qv")
    # Materialise storage (uninitialised: ~340 MB, no random init) and give the saved tensors values.
    model.to_empty(device="cpu")
    with torch.no_grad():
        for layer in adapter_layers(model).values():
            layer.reset_parameters()
        for p in model.head.parameters():
            p.normal_()
    out = save_adapter(model, tmp_path / "krona_plus", backbone_id=_backbone_id("base"))
    size = sum(f.stat().st_size for f in out.iterdir())
    assert summary.trainable_params == 38_400 + 2 * 768 + 768 * CLASSES + CLASSES
    assert size <= 300_000, f"{size:,} bytes"
