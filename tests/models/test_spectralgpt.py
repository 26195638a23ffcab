"""Tests for the SpectralGPT encoder, its configs and the classification head (geohsi.models)."""

from __future__ import annotations

import pytest
import torch

from geohsi.errors import BandMismatchError, UsageError
from geohsi.models import (
    CONFIGS,
    ClassificationHead,
    SpectralGPT,
    SpectralGPTConfig,
    build_classifier,
    count_flops,
    count_parameters,
    resolve_model_config,
    spectralgpt_base,
    spectralgpt_small,
    spectralgpt_tiny,
)


def _numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["tiny", "small", "base"])
@pytest.mark.parametrize("sep", [True, False])
def test_count_parameters_matches_modules(name: str, sep: bool) -> None:
    cfg = resolve_model_config(name, sep_pos_embed=sep)
    with torch.device("meta"):  # no memory for ViT-B: only shapes are needed
        enc = SpectralGPT(cfg)
        clf = build_classifier(cfg, 7, head_hidden=32)
        clf0 = build_classifier(cfg, 7)
    assert count_parameters(cfg) == _numel(enc)
    assert count_parameters(cfg, num_classes=7, head_hidden=32) == _numel(clf)
    assert count_parameters(cfg, num_classes=7) == _numel(clf0)


def test_base_size_is_vit_b() -> None:
    n = count_parameters("base")
    assert n == 85_218_048  # ≈ 85.2 M; also checked against the modules above
    with torch.device("meta"):
        enc = spectralgpt_base(img_size=128)
    # Only the spatial position table grows with the input: 256 instead of 16 positions.
    assert _numel(enc) - n == (256 - 16) * 768
    # FLOPs: 64 tokens, ≈ 2 · params · tokens for the Linears plus the attention products.
    assert 2 * 64 * (n - 16 * 768 - 4 * 768) < count_flops("base") < 2 * 64 * n * 1.05


def test_config_roundtrip_and_validation() -> None:
    cfg = resolve_model_config("small", img_size=(32, 48), drop_path_rate=0.1)
    assert SpectralGPTConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.grid_size == (4, 6) and cfg.num_tokens == 4 * 24
    with pytest.raises(UsageError, match="patch_size"):
        SpectralGPTConfig(img_size=30)
    with pytest.raises(UsageError, match="t_patch"):
        SpectralGPTConfig(num_bands=13)
    with pytest.raises(UsageError, match="num_heads"):
        SpectralGPTConfig(embed_dim=100, num_heads=12)
    with pytest.raises(UsageError, match="unknown SpectralGPT config"):
        resolve_model_config("huge")
    with pytest.raises(UsageError, match="unknown SpectralGPT config"):
        SpectralGPTConfig.from_dict({**cfg.to_dict(), "cls_embed": True})
    with pytest.raises(UsageError, match="fields"):
        spectralgpt_tiny(dim=3)
    assert set(CONFIGS) >= {"tiny", "small", "base"}


def test_forward_shapes_and_names() -> None:
    torch.manual_seed(0)
    enc = spectralgpt_small(img_size=(32, 48), num_bands=24)
    x = torch.randn(2, 24, 32, 48)
    tok = enc.forward_features(x)
    assert enc.grid_size == (8, 4, 6) and enc.num_tokens == 8 * 24
    assert tok.shape == (2, enc.num_tokens, 192)
    assert enc.token_grid(tok).shape == (2, 8, 4, 6, 192)
    # Adapters target these exact module names.
    names = dict(enc.named_modules())
    for i in range(enc.config.depth):
        for sub in ("q", "k", "v", "proj"):
            assert isinstance(names[f"blocks.{i}.attn.{sub}"], torch.nn.Linear)


def test_token_order_is_spectral_major_row_major() -> None:
    """Perturbing one tubelet changes exactly the token ``t·L + i·(W/p) + j`` of the embedding."""
    torch.manual_seed(0)
    enc = spectralgpt_tiny(img_size=(32, 40)).eval()
    x = torch.randn(1, 12, 32, 40)
    t, i, j = 2, 1, 3  # bands 6–8, rows 8–15, columns 24–31
    y = x.clone()
    y[:, 3 * t : 3 * t + 3, 8 * i : 8 * i + 8, 8 * j : 8 * j + 8] += 1.0
    with torch.no_grad():
        diff = (enc.embed_tokens(y) - enc.embed_tokens(x)).abs().amax(-1)[0]
        grid_diff = enc.token_grid(enc.embed_tokens(y) - enc.embed_tokens(x)).abs().amax(-1)[0]
    changed = torch.nonzero(diff > 0).flatten().tolist()
    assert changed == [t * 20 + i * 5 + j]
    assert torch.nonzero(grid_diff > 0).tolist() == [[t, i, j]]


def test_input_validation() -> None:
    enc = spectralgpt_tiny()
    with pytest.raises(BandMismatchError, match="10 channels"):
        enc(torch.zeros(1, 10, 32, 32))
    with pytest.raises(UsageError, match="48×32"):
        enc(torch.zeros(1, 12, 48, 32))
    with pytest.raises(UsageError, match="shape"):
        enc(torch.zeros(12, 32, 32))


def test_head_pooling_modes() -> None:
    torch.manual_seed(0)
    tokens = torch.randn(3, 64, 16)
    mean = ClassificationHead(16, 4, pool="mean")
    official = ClassificationHead(16, 4, pool="official")
    official.load_state_dict(mean.state_dict())
    torch.testing.assert_close(mean.pool_tokens(tokens), tokens.mean(1))
    torch.testing.assert_close(official.pool_tokens(tokens), tokens[:, 1:].sum(1) / 63)
    # Pre-logits are the normalised pooled vector: zero mean, unit variance per sample.
    f = mean(tokens, pre_logits=True)
    torch.testing.assert_close(f.mean(-1), torch.zeros(3), atol=1e-5, rtol=0)
    mlp = ClassificationHead(16, 4, hidden=8, dropout=0.1)
    assert isinstance(mlp.fc, torch.nn.Sequential) and mlp(tokens).shape == (3, 4)
    assert {k for k, _ in mlp.named_parameters()} == {
        "norm.weight",
        "norm.bias",
        "fc.0.weight",
        "fc.0.bias",
        "fc.3.weight",
        "fc.3.bias",
    }
    with pytest.raises(UsageError, match="pool"):
        ClassificationHead(16, 4, pool="max")
    with pytest.raises(UsageError, match="num_classes"):
        ClassificationHead(16, 0)


def test_classifier_forward_and_drop_path() -> None:
    torch.manual_seed(0)
    clf = build_classifier("tiny", 5, head_hidden=16, drop_path_rate=0.5)
    x = torch.randn(4, 12, 32, 32)
    assert clf(x).shape == (4, 5)
    rates = [b.drop_path.p for b in clf.encoder.blocks]
    assert rates == pytest.approx([0.0, 0.5])
    clf.eval()
    with torch.no_grad():
        torch.testing.assert_close(clf(x), clf(x))  # eval: deterministic
    clf.train()
    with torch.no_grad():
        a = clf.forward_features(x)
        torch.manual_seed(1)
        b = clf.forward_features(x)
    assert not torch.equal(a, b)  # training: stochastic depth active
    # Gradients reach the encoder through the head.
    clf(x).sum().backward()
    assert clf.encoder.blocks[0].attn.q.weight.grad is not None


def test_bf16_autocast_close_to_fp32() -> None:
    torch.manual_seed(0)
    enc = spectralgpt_tiny().eval()
    x = torch.randn(2, 12, 32, 32)
    seen: list[torch.dtype] = []
    with torch.no_grad():
        ref = enc(x)
        hook = enc.blocks[0].attn.q.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = enc(x)
        hook.remove()
    # The Linears run in bf16; the residual stream stays fp32 (fp32 + bf16 promotes to fp32).
    assert seen == [torch.bfloat16] and low.dtype == torch.float32
    rel = (low - ref).norm() / ref.norm()
    assert rel < 2e-2
