"""SpectralMAE: exact masking ratio, loss on masked tubelets only, encoder on visible tokens only,
tubelet order, official key layout and backbone files that load strictly."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch

from geohsi.errors import UsageError
from geohsi.models import SpectralGPT, SpectralGPTClassifier, load_backbone, resolve_model_config
from geohsi.models.mae import SpectralMAE, masked_count, save_mae_backbone

REPO = Path(__file__).resolve().parents[2]


def _mae(seed: int = 0, **kw) -> SpectralMAE:
    torch.manual_seed(seed)
    return SpectralMAE("tiny", **kw).eval()


def _x(n: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 12, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("ratio", [0.9, 0.75, 0.5, 0.1])
def test_mask_count_is_exact_per_sample(ratio: float) -> None:
    mae = _mae(mask_ratio=ratio)
    s = mae.config.num_tokens
    ids, mask = mae.random_masking(16, generator=torch.Generator().manual_seed(3))
    assert mask.shape == (16, s)
    assert (mask.sum(1) == round(ratio * s)).all()
    # ids is a permutation per sample whose visible part is exactly the unmasked tokens
    assert (ids.sort(1).values == torch.arange(s)).all()
    keep = s - round(ratio * s)
    assert (mask.gather(1, ids[:, :keep]) == 0).all() and (mask.gather(1, ids[:, keep:]) == 1).all()
    # random per sample (3-D masking over all T·L tokens), reproducible under a seed
    assert len({tuple(m.tolist()) for m in mask}) > 1
    _, again = mae.random_masking(16, generator=torch.Generator().manual_seed(3))
    assert torch.equal(mask, again)
    groups = mask.reshape(16, mae.config.num_groups, -1).sum(-1)
    assert len(set(groups.flatten().tolist())) > 1 or ratio == 0.1  # not one fixed count per spectral group


def test_forward_masks_the_configured_count() -> None:
    mae = _mae()
    out = mae(_x(), generator=torch.Generator().manual_seed(0))
    assert int(out.mask.sum(1)[0]) == masked_count(64, 0.9) == 58
    assert out.latent.shape == (3, 6, 64)
    assert out.pred.shape == (3, 64, 3 * 8 * 8)


@pytest.mark.parametrize("ratio", [0.0, 1.0, 0.995, 0.005, -0.1])
def test_degenerate_ratios_are_refused(ratio: float) -> None:
    with pytest.raises(UsageError, match="mask-ratio"):
        SpectralMAE("tiny", mask_ratio=ratio)


@pytest.mark.parametrize("norm_pix", [True, False])
def test_loss_ignores_predictions_at_visible_tubelets(norm_pix: bool) -> None:
    mae = _mae(norm_pix_loss=norm_pix)
    x = _x()
    out = mae(x, generator=torch.Generator().manual_seed(0))
    vis = out.mask == 0
    pred = out.pred.clone()
    pred[vis] += 100.0
    assert torch.equal(mae.forward_loss(x, pred, out.mask), out.loss)
    pred = out.pred.clone()
    pred[~vis] += 0.5  # a masked tubelet's prediction does count
    assert mae.forward_loss(x, pred, out.mask) > out.loss + 0.1


def test_visible_tubelet_input_enters_the_loss_only_through_the_encoder() -> None:
    mae = _mae()
    x = _x()
    ids, mask = mae.random_masking(3, generator=torch.Generator().manual_seed(5))
    out = mae(x, ids_shuffle=ids)
    tok = int(ids[0, 0])  # a visible token of sample 0
    x2 = mae.unpatchify(mae.patchify(x).index_put((torch.tensor([0]), torch.tensor([tok])), torch.tensor(3.0), accumulate=True))
    assert not torch.equal(x, x2)
    # as a target it is invisible to the loss …
    assert torch.equal(mae.forward_loss(x2, out.pred, out.mask), out.loss)
    # … but the encoder reads it, so the predictions and the loss move
    out2 = mae(x2, ids_shuffle=ids)
    assert not torch.allclose(out2.latent[0], out.latent[0])
    assert out2.loss != out.loss


def test_encoder_never_sees_masked_tubelets() -> None:
    mae = _mae()
    x = _x()
    ids, mask = mae.random_masking(3, generator=torch.Generator().manual_seed(5))
    out = mae(x, ids_shuffle=ids)
    tubelets = mae.patchify(x)
    tubelets[mask.bool()] = torch.randn(int(mask.sum()), tubelets.shape[-1])
    out2 = mae(mae.unpatchify(tubelets), ids_shuffle=ids)
    assert torch.equal(out2.latent, out.latent)
    assert torch.equal(out2.pred, out.pred)
    assert out2.loss != out.loss  # the targets changed


def test_tubelets_follow_the_encoders_token_order() -> None:
    mae = _mae()
    x = _x(2)
    assert torch.equal(mae.unpatchify(mae.patchify(x)), x)
    conv = mae.encoder.patch_embed.proj
    via_conv = mae.encoder.patch_embed(x).reshape(2, 64, -1)
    via_tubelets = mae.patchify(x) @ conv.weight.reshape(conv.weight.shape[0], -1).T + conv.bias
    torch.testing.assert_close(via_tubelets, via_conv, rtol=1e-4, atol=1e-5)


def test_reconstruct_pastes_visible_tubelets() -> None:
    mae = _mae()
    x = _x()
    out = mae(x, generator=torch.Generator().manual_seed(0))
    rec = mae.reconstruct(x, out)
    vis = (out.mask == 0).unsqueeze(-1)
    torch.testing.assert_close(mae.patchify(rec) * vis, mae.patchify(x) * vis)


def _manifest() -> dict | None:
    env = os.environ.get("GEOHSI_REFERENCE_DIR")
    p = (Path(env) if env else REPO.parent / "shared" / "reference" / "spectralgpt") / "vit_b_manifest.json"
    return json.loads(p.read_text()) if p.is_file() else None


def test_official_state_dict_has_the_official_mae_key_layout() -> None:
    manifest = _manifest()
    if manifest is None:
        pytest.skip("vit_b_manifest.json not found; set GEOHSI_REFERENCE_DIR")
    # The official base MAE's keys with block indices folded; ours (any depth) must fold to the same set.
    official = {re.sub(r"blocks\.\d+\.", "blocks.#.", k) for k, *_ in manifest["models"]["mae_vit_base_patch8_96"]}
    mae = SpectralMAE("tiny", decoder_dim=32, decoder_depth=2, decoder_heads=2)
    ours = {re.sub(r"blocks\.\d+\.", "blocks.#.", k) for k in mae.official_state_dict()}
    assert ours == official
    assert mae.official_state_dict()["decoder_pred.weight"].shape == (3 * 8 * 8, 32)


def test_saved_backbone_loads_strictly_into_a_classifier(tmp_path: Path) -> None:
    mae = _mae(seed=4)
    with torch.no_grad():
        mae.norm.weight.uniform_(0.5, 1.5)  # not the init value, so a silent skip would show
    path = save_mae_backbone(mae, tmp_path / "b.safetensors", metadata={"note": "x"})
    clf = SpectralGPTClassifier("tiny", 5)
    load_backbone(path, clf.encoder, allow_missing=())  # strict: every encoder key present, nothing extra
    for k, v in mae.encoder.state_dict().items():
        assert torch.equal(clf.encoder.state_dict()[k], v), k
    load_backbone(path, clf, allow_missing=("head.fc.*",))  # norm.* → head.norm
    assert torch.equal(clf.head.norm.weight, mae.norm.weight)
    enc = load_backbone(path)  # config from the metadata
    assert isinstance(enc, SpectralGPT) and enc.config == resolve_model_config("tiny")
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        keys, meta = set(f.keys()), f.metadata()  # noqa: SIM118
    assert not any(k.startswith("decoder_") or k == "mask_token" for k in keys)
    assert meta["note"] == "x" and "geohsi_config" in meta
    with pytest.raises(Exception, match="already exists"):
        save_mae_backbone(mae, path)


def test_gradients_reach_encoder_and_decoder() -> None:
    mae = _mae().train()
    out = mae(_x(), generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    for name in (
        "encoder.patch_embed.proj.weight",
        "encoder.blocks.0.attn.q.weight",
        "norm.weight",
        "mask_token",
        "decoder_pos_embed_spatial",
        "decoder_pred.weight",
    ):
        g = dict(mae.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name
