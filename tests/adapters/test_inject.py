"""apply_adapter: target selection, freezing, summary, merging, configuration — on the stand-in model."""

from __future__ import annotations

import json

import pytest
import torch
from _adapter_toy import DIM, HIDDEN, make_toy, randomize_adapters
from torch import nn

from geohsi.adapters import (
    METHODS,
    AdapterLayer,
    adapter_config,
    adapter_layers,
    adapter_summary,
    apply_adapter,
    merge_adapter,
    trainable_parameter_names,
    unmerge_adapter,
)
from geohsi.adapters.inject import name_matches
from geohsi.errors import UsageError

ADAPTER_METHODS = ["lora", "lora+", "krona", "krona+", "lokr"]


@pytest.mark.parametrize(
    ("targets", "leaves"),
    [
        ("qv", {"attn.q", "attn.v"}),
        ("qkv", {"attn.q", "attn.k", "attn.v"}),
        ("attn", {"attn.q", "attn.k", "attn.v", "attn.proj"}),
        ("all-linear", {"attn.q", "attn.k", "attn.v", "attn.proj", "mlp.fc1", "mlp.fc2"}),
        (("mlp.fc1",), {"mlp.fc1"}),
        ("attn.q,mlp.fc2", {"attn.q", "mlp.fc2"}),
    ],
)
def test_presets_select_expected_layers(targets, leaves: set) -> None:
    model = make_toy(depth=3)
    summary = apply_adapter(model, "lora", targets)
    names = set(adapter_layers(model))
    assert names == {f"encoder.blocks.{i}.{leaf}" for i in range(3) for leaf in leaves}
    assert summary.adapted_layers == len(names)
    assert isinstance(model.head.fc, nn.Linear)  # the head is never adapted, even by all-linear


def test_glob_patterns() -> None:
    model = make_toy(depth=3)
    apply_adapter(model, "krona", ("blocks.0.attn.*", "encoder.blocks.2.mlp.fc?"))
    assert set(adapter_layers(model)) == {
        "encoder.blocks.0.attn.q",
        "encoder.blocks.0.attn.k",
        "encoder.blocks.0.attn.v",
        "encoder.blocks.0.attn.proj",
        "encoder.blocks.2.mlp.fc1",
        "encoder.blocks.2.mlp.fc2",
    }
    assert name_matches("a.attn.q", ["attn.q"]) and not name_matches("a.attn.qq", ["attn.q"])


@pytest.mark.parametrize("method", ADAPTER_METHODS)
def test_output_unchanged_at_init_and_merge(method: str, toy_input: torch.Tensor) -> None:
    model = make_toy()
    ref = model(toy_input)
    apply_adapter(model, method, "all-linear")
    torch.testing.assert_close(model(toy_input), ref, atol=0, rtol=0)
    randomize_adapters(model)
    unmerged = model(toy_input)
    assert (unmerged - ref).abs().max() > 1e-3
    assert merge_adapter(model) == 2 * 6
    torch.testing.assert_close(model(toy_input), unmerged, atol=1e-5, rtol=0)
    assert merge_adapter(model) == 0
    assert unmerge_adapter(model) == 12
    torch.testing.assert_close(model(toy_input), unmerged, atol=1e-5, rtol=0)


def test_merge_and_unload_restores_plain_layout(toy_input: torch.Tensor) -> None:
    model = make_toy()
    keys = set(model.state_dict())
    apply_adapter(model, "krona+", "qv")
    randomize_adapters(model)
    out = model(toy_input)
    merge_adapter(model, unload=True)
    assert not adapter_layers(model) and set(model.state_dict()) == keys
    assert not hasattr(model, "geohsi_adapter")
    torch.testing.assert_close(model(toy_input), out, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_gradients_reach_only_adapter_and_head(method: str, toy_input: torch.Tensor) -> None:
    model = make_toy().train()
    apply_adapter(model, method, "qv")
    randomize_adapters(model)  # non-zero factors so every factor receives a gradient
    model(toy_input).square().sum().backward()
    adapter_ids = {id(p) for lay in adapter_layers(model).values() for p in lay.adapter_parameters()}
    for name, p in model.named_parameters():
        should = method == "full" or id(p) in adapter_ids or name.startswith("head.")
        assert p.requires_grad == should, name
        if should:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


def test_zero_factor_gets_gradient_at_init(toy_input: torch.Tensor) -> None:
    model = make_toy().train()
    apply_adapter(model, "lora", "qv")
    model(toy_input).sum().backward()
    for layer in adapter_layers(model).values():
        assert layer.lora_B.grad.abs().sum() > 0  # training can start from ΔW = 0


def test_train_norms_and_linear_full() -> None:
    model = make_toy()
    apply_adapter(model, "lora", "qv", train_norms=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    norms = {f"encoder.blocks.{i}.norm{j}.{w}" for i in range(2) for j in (1, 2) for w in ("weight", "bias")}
    assert norms <= trainable and set(trainable_parameter_names(model)) == trainable

    model = make_toy()
    s = apply_adapter(model, "linear")
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        n for n, _ in model.named_parameters() if n.startswith("head.")
    }
    assert s.adapted_layers == 0 and s.targets == ()

    model = make_toy()
    s = apply_adapter(model, "full")
    assert all(p.requires_grad for p in model.parameters()) and s.trainable_params == s.total_params


def test_summary_numbers_and_rendering() -> None:
    model = make_toy()
    backbone = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("head."))
    head = sum(p.numel() for p in model.head.parameters())
    s = apply_adapter(model, "krona+", "qv")
    per_layer = 4 * 4 + 6 * 6  # 24 = 4·6 on both sides: A [4, 4], B [6, 6]
    assert s.adapter_params == 2 * 2 * per_layer
    assert s.head_params == head and s.trainable_params == s.adapter_params + head
    assert s.total_params == backbone + head + s.adapter_params
    assert s.backbone_params == backbone
    # the adapter's share of the encoder (the paper's "% params") never includes the head
    assert s.adapter_percent == pytest.approx(100 * s.adapter_params / backbone)
    assert s.trainable_percent == pytest.approx(100 * s.trainable_params / s.total_params)
    rows = dict(s.rows())
    assert list(rows) == ["adapter", "adapter weights", "head weights", "total trainable", "adapter file"]
    assert rows["adapter"] == "krona+ on attn.q, attn.v of blocks 0–1 (4 layers): factors A 4×4, B 6×6; λ 16"
    assert rows["adapter weights"] == f"{s.adapter_params} ({s.adapter_percent:.2f} % of the {backbone / 1e3:.3g} k encoder)"
    assert rows["head weights"] == f"{head:,}"
    assert rows["total trainable"].startswith(f"{s.trainable_params:,} of {s.total_params:,} weights (")
    assert rows["adapter file"] == f"≈ {4 * s.trainable_params / 1e3:.1f} kB (fp32 weights)"
    text = str(s)
    assert text.splitlines() == [f"{k:<15}  {v}" for k, v in rows.items()]  # one labelled line each
    from rich.console import Console

    console = Console(record=True, width=140)
    console.print(s)
    shown = console.export_text()
    assert f"{s.adapter_params:,}" in shown and "head weights" in shown
    d = json.loads(json.dumps(s.to_dict()))
    assert d["adapted_layers"] == 4 and d["head_params"] == head and d["adapter_percent"] == pytest.approx(s.adapter_percent)


@pytest.mark.parametrize(
    ("method", "kwargs", "label", "value"),
    [
        ("lora", {"r": 2}, "adapter", "lora on attn.q, attn.v of blocks 0–1 (4 layers): rank 2, α 8; factors A 2×24, B 24×2"),
        ("full", {}, "encoder weights", "(all of the"),
        ("linear", {}, "adapter", "linear probe: the encoder is frozen, the head trained"),
    ],
)
def test_summary_speaks_of_each_method_in_its_own_terms(method: str, kwargs: dict, label: str, value: str) -> None:
    s = apply_adapter(make_toy(), method, "qv", **kwargs)
    assert value in dict(s.rows())[label]
    assert dict(s.rows())["head weights"] == f"{sum(p.numel() for p in make_toy().head.parameters()):,}"


def test_summary_counts_trained_norms_on_their_own_line() -> None:
    s = apply_adapter(make_toy(), "krona", "qv", train_norms=True)
    norms = 2 * 2 * 2 * DIM  # two blocks, two LayerNorms, weight + bias
    assert s.encoder_trained_params == norms and dict(s.rows())["norm weights"].startswith(f"{norms:,} ")
    assert s.trainable_params == s.adapter_params + s.head_params + norms


def test_adapter_summary_recounts_a_recorded_configuration_without_weights() -> None:
    model = make_toy()
    trained = apply_adapter(model, "lokr", "attn", r=2, decompose_both=True)
    with torch.device("meta"):
        recounted = adapter_summary(make_toy(), adapter_config(model))
    assert recounted == trained


def test_adapter_config_is_json_and_complete() -> None:
    model = make_toy()
    apply_adapter(model, "krona+", "qv", a_shape=(2, 3), scale=4.0, lr_ratio=8, boost="A", dropout=0.1)
    cfg = json.loads(json.dumps(adapter_config(model)))
    assert cfg["method"] == "krona+" and cfg["preset"] == "qv" and cfg["targets"] == ["attn.q", "attn.v"]
    assert cfg["options"] == {
        "a_shape": [2, 3],
        "factor": -1,
        "scale": 4.0,
        "zero_init": "B",
        "dropout": 0.1,
        "lr_ratio": 8.0,
        "boost": "A",
    }
    assert cfg["layers"]["encoder.blocks.0.attn.q"] == {"A": [2, 3], "B": [DIM // 2, DIM // 3]}
    # the returned dict is a copy
    adapter_config(model)["method"] = "x"
    assert adapter_config(model)["method"] == "krona+"


def test_rectangular_layers() -> None:
    model = make_toy()
    apply_adapter(model, "lokr", ("mlp.fc1",), r=1)
    layer = adapter_layers(model)["encoder.blocks.0.mlp.fc1"]
    assert layer.delta_weight().shape == (HIDDEN, DIM)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: apply_adapter(m, "dora"), "unknown"),
        (lambda m: apply_adapter(m, "lora", "qvk"), "not a preset"),
        (lambda m: apply_adapter(m, "lora", ("attn.nope",)), "match no nn.Linear"),
        (lambda m: apply_adapter(m, "krona", "qv", r=8), "do not apply"),
        (lambda m: apply_adapter(m, "lora", "qv", lr_ratio=16), "do not apply"),
        (lambda m: apply_adapter(m, "lora+", "qv", lr_ratio=0), "positive"),
        (lambda m: apply_adapter(m, "krona", "qv", a_shape=(5, 5)), "does not divide"),
        (lambda m: apply_adapter(m, "krona+", "qv", boost="C"), "names no factor"),
        (lambda m: apply_adapter(m, "lora", ()), "empty"),
    ],
)
def test_errors_are_one_line_usage_errors(call, match: str) -> None:
    model = make_toy()
    keys = set(model.state_dict())
    with pytest.raises(UsageError, match=match) as e:
        call(model)
    assert "\n" not in str(e.value)
    assert set(model.state_dict()) == keys and not adapter_layers(model)  # nothing was injected
    assert not hasattr(model, "geohsi_adapter")
    assert all(p.requires_grad for p in model.parameters())


def test_refuses_second_adapter() -> None:
    model = make_toy()
    apply_adapter(model, "lora")
    with pytest.raises(UsageError, match="already carries"):
        apply_adapter(model, "krona")


def test_adapter_layers_are_adapter_layers() -> None:
    model = make_toy()
    apply_adapter(model, "lokr", "attn")
    assert all(isinstance(m, AdapterLayer) and m.method == "lokr" for m in adapter_layers(model).values())
