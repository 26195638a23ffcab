"""Official-checkpoint loading, golden equality with the official model, and backbone I/O.

Reference files come from ``shared/reference/spectralgpt`` (override with ``GEOHSI_REFERENCE_DIR``):
the two tiny golden fixtures (official module state_dict + input + outputs) and the ViT-B manifest
(key names and shapes of the four official constructors).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geohsi.errors import InputFormatError, ModelError, OutputError
from geohsi.models import (
    KNOWN_CHECKPOINTS,
    SpectralGPT,
    build_classifier,
    load_backbone,
    load_official_checkpoint,
    load_state_dict_checked,
    save_backbone,
    spectralgpt_base,
    spectralgpt_tiny,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ref_dir() -> Path:
    env = os.environ.get("GEOHSI_REFERENCE_DIR")
    d = Path(env) if env else REPO.parent / "shared" / "reference" / "spectralgpt"
    if not (d / "tiny_golden_sep_pos_embed.npz").is_file():
        if env:
            pytest.fail(f"GEOHSI_REFERENCE_DIR={d} has no SpectralGPT golden fixtures")
        pytest.skip(f"SpectralGPT reference files not found at {d}; set GEOHSI_REFERENCE_DIR")
    return d


def _golden(ref_dir: Path, layout: str) -> dict[str, torch.Tensor]:
    z = np.load(ref_dir / f"tiny_golden_{layout}_pos_embed.npz")
    return {k: torch.from_numpy(z[k]) for k in z.files}


def _state_dict(g: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("state_dict/") :]: v for k, v in g.items() if k.startswith("state_dict/")}


def _save_pth(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------------------- golden equality


@pytest.mark.parametrize("layout,sep", [("sep", True), ("joint", False)])
def test_golden_tokens_and_official_logits(ref_dir: Path, tmp_path: Path, layout: str, sep: bool) -> None:
    g = _golden(ref_dir, layout)
    path = _save_pth({"model": _state_dict(g), "epoch": 0}, tmp_path / "official.pth")
    model = build_classifier("tiny", 5, pool="official", sep_pos_embed=sep).eval()
    # Strict: nothing may be missing — the fixture has the official norm and 5-class head.
    load_official_checkpoint(path, model, allow_missing=())
    with torch.no_grad():
        tokens = model.forward_features(g["input"])
        pooled = model.forward_head(tokens, pre_logits=True)
        logits = model.forward_head(tokens)
    assert (tokens - g["tokens"]).abs().max() <= 1e-5
    assert (pooled - g["pooled_normed"]).abs().max() <= 1e-5
    assert (logits - g["logits"]).abs().max() <= 1e-5

    # geohsi's default pooling averages every token: the official logits are then NOT reproduced.
    mean_model = build_classifier("tiny", 5, sep_pos_embed=sep).eval()
    load_official_checkpoint(path, mean_model, allow_missing=())
    with torch.no_grad():
        mean_logits = mean_model(g["input"])
    torch.testing.assert_close(mean_model.forward_features(g["input"]), tokens)
    assert (mean_logits - g["logits"]).abs().max() > 1e-3


def test_sep_checkpoint_into_joint_model_is_exact(ref_dir: Path) -> None:
    g = _golden(ref_dir, "sep")
    # Separate spatial + spectral tables compose exactly into the joint layout.
    joint = load_state_dict_checked(spectralgpt_tiny(sep_pos_embed=False).eval(), {"model": _state_dict(g)})
    with torch.no_grad():
        assert (joint(g["input"]) - g["tokens"]).abs().max() <= 1e-5


def test_fused_qkv_and_module_prefix(ref_dir: Path, tmp_path: Path) -> None:
    sd = _state_dict(_golden(ref_dir, "sep"))
    fused = {}
    for k, v in sd.items():
        if ".attn.k." in k or ".attn.v." in k:
            continue
        if ".attn.q." in k:
            parts = [sd[k], sd[k.replace(".q.", ".k.")], sd[k.replace(".q.", ".v.")]]
            fused[k.replace(".q.", ".qkv.")] = torch.cat(parts, 0)
        else:
            fused[k] = v
    ddp = {"state_dict": {f"module.{k}": v for k, v in fused.items()}}
    enc = load_official_checkpoint(_save_pth(ddp, tmp_path / "ddp.pth"), "tiny", allow_missing=())
    g = _golden(ref_dir, "sep")
    with torch.no_grad():
        assert (enc.eval()(g["input"]) - g["tokens"]).abs().max() <= 1e-5


def test_larger_input_resamples_spatial_positions(ref_dir: Path, tmp_path: Path) -> None:
    sd = _state_dict(_golden(ref_dir, "sep"))
    path = _save_pth({"model": sd}, tmp_path / "ck.pth")
    enc = load_official_checkpoint(path, spectralgpt_tiny(img_size=64))
    assert enc.pos_embed_spatial.shape == (1, 64, 64)
    torch.testing.assert_close(enc.pos_embed_temporal.data, sd["pos_embed_temporal"])
    assert enc(torch.zeros(1, 12, 64, 64)).shape == (1, 4 * 64, 64)


# ------------------------------------------------------------------------------- ViT-B manifest


@pytest.fixture(scope="module")
def manifest(ref_dir: Path) -> dict:
    return json.loads((ref_dir / "vit_b_manifest.json").read_text())


@pytest.fixture(scope="module")
def base32() -> SpectralGPT:
    torch.manual_seed(0)
    return spectralgpt_base()  # sep position embeddings, 32×32: 4×4 grid


def _random_state_dict(entries: list, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=gen) for k, shape, _ in entries}


def _reference_resample(pos: torch.Tensor, side: int, new: int) -> torch.Tensor:
    """[1, side², D] row-major grid → [1, new², D], built index by index (independent of the loader)."""
    d = pos.shape[-1]
    grid = torch.empty(1, d, side, side)
    for y in range(side):
        for x in range(side):
            grid[0, :, y, x] = pos[0, y * side + x]
    out = F.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False)
    return torch.stack([out[0, :, y, x] for y in range(new) for x in range(new)])[None]


@pytest.mark.parametrize("name,side", [("mae_vit_base_patch8_96", 12), ("mae_vit_base_patch8_128", 16)])
def test_vit_b_mae_manifest_loads_strictly(manifest: dict, base32: SpectralGPT, tmp_path: Path, name: str, side: int) -> None:
    entries = manifest["models"][name]
    sd = _random_state_dict(entries, seed=side)
    path = _save_pth({"model": sd, "args": argparse.Namespace(mask_ratio=0.9), "epoch": 199}, tmp_path / f"{name}.pth")
    ck = sd
    enc = load_official_checkpoint(path, base32, allow_missing=())
    assert enc is base32
    torch.testing.assert_close(enc.pos_embed_spatial.data, _reference_resample(ck["pos_embed_spatial"], side, 4))
    torch.testing.assert_close(enc.pos_embed_temporal.data, ck["pos_embed_temporal"])
    for key in ("patch_embed.proj.weight", "blocks.0.attn.q.weight", "blocks.11.attn.v.bias", "blocks.11.mlp.fc2.weight"):
        assert torch.equal(enc.state_dict()[key], ck[key]), key


@pytest.mark.parametrize("name,side", [("finetune_vit_base_patch8_96", 12), ("finetune_vit_base_patch8_128", 16)])
def test_vit_b_finetune_manifest_loads_strictly(manifest: dict, tmp_path: Path, name: str, side: int) -> None:
    sd = _random_state_dict(manifest["models"][name], seed=side + 1)
    path = _save_pth({"model": sd}, tmp_path / f"{name}.pth")
    # Given a config name, the loader builds the joint-pos_embed layout the checkpoint needs.
    enc = load_official_checkpoint(path, "base", allow_missing=())
    assert not enc.config.sep_pos_embed and enc.pos_embed.shape == (1, 64, 768)
    per_group = sd["pos_embed"].reshape(4, side * side, 768)
    for t in range(4):  # each spectral group's spatial table resampled on its own
        expected = _reference_resample(per_group[t][None], side, 4)[0]
        torch.testing.assert_close(enc.pos_embed.data[0, 16 * t : 16 * (t + 1)], expected)
    assert torch.equal(enc.blocks[5].mlp.fc1.weight.data, sd["blocks.5.mlp.fc1.weight"])

    # The same file into a separate-layout model is refused with the fix in the message.
    with pytest.raises(ModelError) as e:
        load_official_checkpoint(path, spectralgpt_tiny())
    assert "sep_pos_embed=False" in _one_line_error(e)


# ------------------------------------------------------------------------------- refusals


@pytest.fixture()
def tiny_sd(ref_dir: Path) -> dict[str, torch.Tensor]:
    return _state_dict(_golden(ref_dir, "sep"))


def test_wrong_shape_rejected(tiny_sd: dict, tmp_path: Path) -> None:
    tiny_sd["blocks.1.mlp.fc1.weight"] = torch.zeros(128, 64)
    path = _save_pth({"model": tiny_sd}, tmp_path / "bad.pth")
    with pytest.raises(ModelError) as e:
        load_official_checkpoint(path, "tiny")
    msg = _one_line_error(e)
    assert str(path) in msg and "1 wrong-shaped" in msg and "blocks.1.mlp.fc1.weight (128, 64) vs (256, 64)" in msg


def test_missing_and_unexpected_rejected_with_truncated_list(tiny_sd: dict, tmp_path: Path) -> None:
    for k in [k for k in tiny_sd if k.startswith("blocks.1.")]:
        del tiny_sd[k]
    tiny_sd["blocks.0.attn.rel_pos"] = torch.zeros(3)
    path = _save_pth({"model": tiny_sd}, tmp_path / "partial.pth")
    with pytest.raises(ModelError) as e:
        load_official_checkpoint(path, "tiny")
    msg = _one_line_error(e)
    assert "16 missing [blocks.1.norm1.weight" in msg and "(+12 more)" in msg
    assert "1 unexpected [blocks.0.attn.rel_pos]" in msg


def test_pickled_object_rejected(tiny_sd: dict, tmp_path: Path) -> None:
    path = _save_pth({"model": tiny_sd, "sampler": Path("/tmp")}, tmp_path / "pickled.pth")
    with pytest.raises(ModelError) as e:
        load_official_checkpoint(path, "tiny")
    msg = _one_line_error(e)
    assert "not a plain weights file" in msg and "will not unpickle" in msg and "pathlib" in msg


def test_unreadable_and_absent_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"<html>404</html>")
    with pytest.raises(ModelError) as e:
        load_official_checkpoint(junk, "tiny")
    assert "not a readable PyTorch checkpoint" in _one_line_error(e)
    with pytest.raises(InputFormatError, match="does not exist"):
        load_official_checkpoint(tmp_path / "nope.pth", "tiny")
    bad_st = tmp_path / "junk.safetensors"
    bad_st.write_bytes(b"\x00" * 16)
    with pytest.raises(ModelError, match="safetensors"):
        load_backbone(bad_st, "tiny")


def test_head_mapping_and_allowed_missing(tiny_sd: dict, tmp_path: Path) -> None:
    path = _save_pth({"model": tiny_sd}, tmp_path / "ck.pth")
    # Same class count: official norm/head land in head.norm/head.fc.
    clf = load_official_checkpoint(path, build_classifier("tiny", 5), allow_missing=())
    assert torch.equal(clf.head.fc.weight.data, tiny_sd["head.weight"])
    assert torch.equal(clf.head.norm.weight.data, tiny_sd["norm.weight"])
    # Another class count: the head does not fit, it is dropped and reported missing unless allowed.
    with pytest.raises(ModelError) as e:
        load_official_checkpoint(path, build_classifier("tiny", 9), allow_missing=())
    assert "2 missing [head.fc.weight, head.fc.bias]" in _one_line_error(e)
    clf9 = load_official_checkpoint(path, build_classifier("tiny", 9, head_hidden=32))
    assert torch.equal(clf9.head.norm.bias.data, tiny_sd["norm.bias"])


# ------------------------------------------------------------------------------- geohsi safetensors


def test_save_and_load_backbone_roundtrip(tiny_sd: dict, tmp_path: Path) -> None:
    clf = build_classifier("tiny", 5, pool="official")
    load_official_checkpoint(_save_pth({"model": tiny_sd}, tmp_path / "ck.pth"), clf, allow_missing=())
    out = save_backbone(clf, tmp_path / "backbone.safetensors", include_head=True)
    from safetensors.torch import load_file

    keys = set(load_file(out))
    assert keys == set(tiny_sd)  # exactly the official key layout
    # Config travels in the metadata: no config argument needed.
    enc = load_backbone(out)
    clf2 = load_backbone(out, build_classifier("tiny", 5, pool="official"), allow_missing=())
    x = torch.randn(2, 12, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), clf.encoder(x), rtol=0, atol=0)
        torch.testing.assert_close(clf2(x), clf(x), rtol=0, atol=0)
    with pytest.raises(OutputError, match="overwrite"):
        save_backbone(enc, out)
    save_backbone(enc, out, overwrite=True)
    assert set(load_file(out)) == {k for k in tiny_sd if not k.startswith(("norm.", "head."))}
    # A .pth without stored config needs one.
    with pytest.raises(ModelError, match="pass config"):
        load_backbone(tmp_path / "ck.pth")


def test_known_checkpoints_table() -> None:
    assert {v["file"] for v in KNOWN_CHECKPOINTS.values()} == {"SpectralGPT.pth", "SpectralGPT+.pth"}
    for v in KNOWN_CHECKPOINTS.values():
        assert v["url"].startswith("https://zenodo.org/records/") and v["url"].endswith(v["file"])
        assert v["input_size"] in (96, 128) and v["config"] == "base"


@pytest.mark.parametrize("img_size", [(32, 64), (16, 64)])
def test_a_non_square_backbone_loads_back_as_it_was_saved(tmp_path: Path, img_size: tuple[int, int]) -> None:
    """The saved config gives the source grid: 2 × 8 positions are not read as 4 × 4 and resampled."""
    from geohsi.models import resolve_model_config

    torch.manual_seed(0)
    enc = SpectralGPT(resolve_model_config("tiny", img_size=img_size))
    with torch.no_grad():
        enc.pos_embed_spatial.normal_()
    back = load_backbone(save_backbone(enc, tmp_path / "nsq.safetensors"))
    x = torch.randn(1, 12, *img_size)
    with torch.no_grad():
        torch.testing.assert_close(back(x), enc(x), rtol=0, atol=0)


def test_a_joint_position_embedding_is_refused_for_another_number_of_spectral_groups() -> None:
    """An official fine-tune layout (4 spectral groups) loaded into a model of other bands would put
    positions in the wrong groups whenever the sizes happened to divide: it is refused in one line."""
    from geohsi.models import resolve_model_config

    sd = SpectralGPT(resolve_model_config("tiny", img_size=128, sep_pos_embed=False)).state_dict()
    for bands, size in ((3, 32), (48, 64), (6, 32)):
        model = SpectralGPT(resolve_model_config("tiny", sep_pos_embed=False, num_bands=bands, img_size=size))
        with pytest.raises(ModelError, match=rf"laid out for 4 spectral groups, the model has {bands // 3}"):
            load_state_dict_checked(model, sd)
    load_state_dict_checked(SpectralGPT(resolve_model_config("tiny", sep_pos_embed=False, img_size=64)), sd)
