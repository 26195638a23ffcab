"""save_adapter / load_adapter: tiny files, exact reload, refusal of foreign backbones and damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _adapter_toy import make_toy, randomize_adapters

from geohsi.adapters import adapter_config, adapter_layers, apply_adapter, load_adapter, read_adapter_config, save_adapter
from geohsi.adapters.weights import CONFIG_NAME, WEIGHTS_NAME
from geohsi.errors import InputFormatError, ModelError, OutputError, UsageError

TOY_ID = {"name": "toy", "config": {"depth": 2, "dim": 24}, "sha256": "ab" * 32}

CASES = [
    ("lora", "qv", {"r": 2, "alpha": 4}),
    ("lora", "qv", {"train_norms": True}),
    ("lora+", "attn", {"lr_ratio": 8}),
    ("krona", "all-linear", {"scale": 2.0}),
    ("krona+", "qv", {"boost": "A", "zero_init": "A"}),
    ("lokr", "qkv", {"r": 1, "decompose_both": True}),
    ("linear", "qv", {}),
    ("full", "qv", {}),
]


def _trained(method: str, targets, cfg: dict, **kw):
    model = make_toy(**kw)
    apply_adapter(model, method, targets, **cfg)
    randomize_adapters(model)
    if method == "full":
        with torch.no_grad():
            for p in model.encoder.parameters():
                p.add_(0.01)
    return model


@pytest.mark.parametrize(("method", "targets", "cfg"), CASES, ids=[c[0] for c in CASES])
def test_save_load_round_trip(tmp_path: Path, toy_input: torch.Tensor, method: str, targets, cfg: dict) -> None:
    model = _trained(method, targets, cfg)
    expected = model(toy_input)
    out = save_adapter(model, tmp_path / "ad", backbone_id=TOY_ID)
    assert sorted(p.name for p in out.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind

    from safetensors.torch import load_file

    names = set(load_file(str(out / WEIGHTS_NAME)))
    assert names == {n for n, p in model.named_parameters() if p.requires_grad}
    if method != "full":
        assert all(n.startswith("head.") or ".attn." in n or ".mlp." in n or ".norm" in n for n in names)
        assert not any(n.endswith("base_layer.weight") for n in names)  # frozen backbone not saved

    fresh = make_toy()
    assert not torch.allclose(fresh(toy_input), expected)
    summary = load_adapter(fresh, out, backbone_id=TOY_ID, method=method)
    assert summary.method == method
    torch.testing.assert_close(fresh(toy_input), expected, atol=0, rtol=0)
    assert adapter_config(fresh) == adapter_config(model)
    assert [n for n, p in fresh.named_parameters() if p.requires_grad] == [
        n for n, p in model.named_parameters() if p.requires_grad
    ]


def test_merged_model_saves_factors(tmp_path: Path, toy_input: torch.Tensor) -> None:
    model = _trained("krona+", "qv", {})
    expected = model(toy_input)
    from geohsi.adapters import merge_adapter

    merge_adapter(model)
    save_adapter(model, tmp_path / "ad", backbone_id=TOY_ID)
    fresh = make_toy()
    load_adapter(fresh, tmp_path / "ad", backbone_id=TOY_ID)
    assert not any(m.merged for m in adapter_layers(fresh).values())
    torch.testing.assert_close(fresh(toy_input), expected, atol=1e-5, rtol=0)


def test_config_json_contents(tmp_path: Path) -> None:
    model = _trained("krona+", "qv", {"lr_ratio": 12})
    save_adapter(model, tmp_path / "ad", backbone_id=TOY_ID)
    meta = read_adapter_config(tmp_path / "ad")
    assert meta["adapter"]["method"] == "krona+"
    assert meta["adapter"]["options"]["lr_ratio"] == 12.0
    assert meta["backbone"] == TOY_ID
    assert meta["tensors"]["encoder.blocks.0.attn.q.krona_A"] == {"shape": [4, 4], "dtype": "float32"}


def _one_line_model_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(
    ("other", "match"),
    [
        ({**TOY_ID, "sha256": "cd" * 32}, "sha256 differs"),
        ({**TOY_ID, "name": "other"}, "name differs"),
        ({**TOY_ID, "config": {"depth": 3, "dim": 24}}, "depth: adapter 2 vs backbone 3"),
        ({"config": {"depth": 2, "dim": 32}}, "dim"),
        ({"url": "x", "name": "toy"}, None),  # name equal: accepted
    ],
)
def test_backbone_identity_checked(tmp_path: Path, other: dict, match: str | None) -> None:
    save_adapter(_trained("lora", "qv", {}), tmp_path / "ad", backbone_id=TOY_ID)
    fresh = make_toy()
    if match is None:
        load_adapter(fresh, tmp_path / "ad", backbone_id=other)
        return
    with pytest.raises(ModelError, match=match) as e:
        load_adapter(fresh, tmp_path / "ad", backbone_id=other)
    assert "another backbone" in _one_line_model_error(e)
    assert not adapter_layers(fresh) and not hasattr(fresh, "geohsi_adapter")


def test_no_common_identity_key(tmp_path: Path) -> None:
    save_adapter(_trained("lora", "qv", {}), tmp_path / "ad", backbone_id={"name": "toy"})
    with pytest.raises(ModelError, match="identifies its backbone"):
        load_adapter(make_toy(), tmp_path / "ad", backbone_id={"sha256": "ab" * 32})


@pytest.mark.parametrize("depth", [1, 3])
def test_different_depth_refused_even_with_same_name(tmp_path: Path, depth: int) -> None:
    save_adapter(_trained("krona+", "qv", {}), tmp_path / "ad", backbone_id={"name": "toy"})
    fresh = make_toy(depth=depth)
    with pytest.raises(ModelError, match="adapts 4 layers but this model has") as e:
        load_adapter(fresh, tmp_path / "ad", backbone_id={"name": "toy"})
    _one_line_model_error(e)
    assert not adapter_layers(fresh) and not hasattr(fresh, "geohsi_adapter")


def test_different_head_refused(tmp_path: Path) -> None:
    save_adapter(_trained("lora", "qv", {}), tmp_path / "ad", backbone_id=TOY_ID)
    fresh = make_toy(classes=5)
    with pytest.raises(ModelError, match=r"head\.fc\.(bias|weight) has shape \(3") as e:
        load_adapter(fresh, tmp_path / "ad", backbone_id=TOY_ID)
    _one_line_model_error(e)
    assert not adapter_layers(fresh)


def test_method_mismatch_refused(tmp_path: Path) -> None:
    save_adapter(_trained("lora+", "qv", {}), tmp_path / "ad", backbone_id=TOY_ID)
    with pytest.raises(ModelError, match="holds a 'lora\\+' adapter, not 'krona\\+'") as e:
        load_adapter(make_toy(), tmp_path / "ad", backbone_id=TOY_ID, method="krona+")
    _one_line_model_error(e)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_weights_refused(tmp_path: Path, damage: str) -> None:
    out = save_adapter(_trained("krona+", "qv", {}), tmp_path / "ad", backbone_id=TOY_ID)
    w = out / WEIGHTS_NAME
    data = bytearray(w.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-7] ^= 0x10  # one bit in the last tensor's bytes: safetensors alone would not notice
    else:
        data = bytearray()
    w.write_bytes(bytes(data))
    fresh = make_toy()
    with pytest.raises(ModelError, match="truncated or corrupted") as e:
        load_adapter(fresh, out, backbone_id=TOY_ID)
    _one_line_model_error(e)
    assert not adapter_layers(fresh)


def test_damaged_config_refused(tmp_path: Path) -> None:
    out = save_adapter(_trained("lora", "qv", {}), tmp_path / "ad", backbone_id=TOY_ID)
    cfg = out / CONFIG_NAME
    text = cfg.read_text()
    cfg.write_text(text[: len(text) // 2])
    with pytest.raises(ModelError, match="corrupted") as e:
        load_adapter(make_toy(), out, backbone_id=TOY_ID)
    _one_line_model_error(e)
    cfg.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelError, match="not a geohsi adapter"):
        load_adapter(make_toy(), out, backbone_id=TOY_ID)
    meta = json.loads(text)
    meta["version"] = 99
    cfg.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="version 99"):
        load_adapter(make_toy(), out, backbone_id=TOY_ID)


def test_tensor_list_must_match_config(tmp_path: Path) -> None:
    out = save_adapter(_trained("lora", "qv", {}), tmp_path / "ad", backbone_id=TOY_ID)
    meta = json.loads((out / CONFIG_NAME).read_text())
    meta["tensors"].pop("head.fc.bias")
    (out / CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="does not match the tensor list"):
        load_adapter(make_toy(), out, backbone_id=TOY_ID)


def test_damaged_config_structure_refused(tmp_path: Path) -> None:
    out = save_adapter(_trained("lokr", "qv", {}), tmp_path / "ad", backbone_id=TOY_ID)
    meta = json.loads((out / CONFIG_NAME).read_text())
    meta["adapter"]["layers"] = ["not", "a", "dict"]
    (out / CONFIG_NAME).write_text(json.dumps(meta))
    fresh = make_toy()
    with pytest.raises(ModelError, match="no valid adapter.'layers' entry") as e:
        load_adapter(fresh, out, backbone_id=TOY_ID)
    _one_line_model_error(e)
    assert not adapter_layers(fresh)
    meta["adapter"]["layers"] = {f"encoder.blocks.{i}.attn.{w}": None for i in range(2) for w in "qv"}
    (out / CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(ModelError):
        load_adapter(fresh, out, backbone_id=TOY_ID)
    assert not adapter_layers(fresh)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="does not exist"):
        load_adapter(make_toy(), tmp_path / "nope", backbone_id=TOY_ID)
    out = save_adapter(_trained("lora", "qv", {}), tmp_path / "ad", backbone_id=TOY_ID)
    (out / WEIGHTS_NAME).unlink()
    with pytest.raises(InputFormatError, match=WEIGHTS_NAME):
        load_adapter(make_toy(), out, backbone_id=TOY_ID)


def test_save_guards(tmp_path: Path) -> None:
    model = _trained("lora", "qv", {})
    save_adapter(model, tmp_path / "ad", backbone_id=TOY_ID)
    with pytest.raises(OutputError, match="already exists"):
        save_adapter(model, tmp_path / "ad", backbone_id=TOY_ID)
    save_adapter(model, tmp_path / "ad", backbone_id={"name": "toy2"}, overwrite=True)
    assert read_adapter_config(tmp_path / "ad")["backbone"] == {"name": "toy2"}
    with pytest.raises(UsageError, match="backbone_id"):
        save_adapter(model, tmp_path / "x", backbone_id={"depth": 2})
    with pytest.raises(UsageError, match="JSON"):
        save_adapter(model, tmp_path / "x", backbone_id={"name": object()})
    with pytest.raises(UsageError, match="carries no adapter"):
        save_adapter(make_toy(), tmp_path / "y", backbone_id=TOY_ID)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_load_onto_adapted_model_refused(tmp_path: Path) -> None:
    save_adapter(_trained("lora", "qv", {}), tmp_path / "ad", backbone_id=TOY_ID)
    model = make_toy()
    apply_adapter(model, "krona")
    with pytest.raises(UsageError, match="already carries"):
        load_adapter(model, tmp_path / "ad", backbone_id=TOY_ID)
