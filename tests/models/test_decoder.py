"""Dense head and SpectralGPTSegmenter: shapes, gradient flow, adapters, cost formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from geohsi.adapters import apply_adapter, merge_adapter
from geohsi.errors import UsageError
from geohsi.models import count_flops
from geohsi.models.decoder import SpectralGPTSegmenter, build_segmenter, dense_head_flops


@pytest.mark.parametrize("size", [32, 48, 64])
def test_output_is_one_logit_map_per_class_at_full_resolution(size: int) -> None:
    torch.manual_seed(0)
    m = build_segmenter("tiny", 7, img_size=size).eval()
    out = m(torch.randn(3, 12, size, size))
    assert out.shape == (3, 7, size, size)
    assert torch.isfinite(out).all()


def test_gradients_reach_the_head_the_input_and_the_adapter() -> None:
    torch.manual_seed(0)
    m = build_segmenter("tiny", 4)
    apply_adapter(m, "lora", "qv", r=4, alpha=4.0)
    x = torch.randn(2, 12, 32, 32, requires_grad=True)
    target = torch.randint(0, 4, (2, 32, 32))
    F.cross_entropy(m(x), target).backward()
    trainable = {n: p for n, p in m.named_parameters() if p.requires_grad}
    assert any(n.startswith("head.") for n in trainable)
    assert {n for n in trainable if n.startswith("encoder.")} == {
        f"encoder.blocks.{i}.attn.{q}.lora_{f}" for i in range(2) for q in "qv" for f in "AB"
    }
    for n, p in trainable.items():
        assert p.grad is not None, n
    # every head parameter and the adapter's non-zero-initialised path receive a signal
    assert all(p.grad.abs().sum() > 0 for n, p in trainable.items() if n.startswith("head."))
    # B starts at zero (so A's gradient is zero); B's gradient is what starts adapting the encoder
    assert all(p.grad.abs().sum() > 0 for n, p in trainable.items() if n.endswith("lora_B"))
    assert x.grad.abs().sum() > 0
    # frozen backbone weights get no gradient
    assert m.encoder.blocks[0].mlp.fc1.weight.grad is None


def test_each_pixel_depends_on_its_own_spectrum_and_on_its_neighbours() -> None:
    torch.manual_seed(0)
    m = build_segmenter("tiny", 3).eval()
    x = torch.randn(1, 12, 32, 32)
    base = m(x)
    y = x.clone()
    y[0, :, 10, 10] += 3.0  # one pixel's spectrum
    d = (m(y) - base).abs().sum(1)[0]
    assert d[10, 10] > 0  # the spectral branch: the pixel itself
    assert d[0, 31] > 0  # the token path: attention spreads a change over the tile


def test_merged_adapter_gives_the_same_maps() -> None:
    torch.manual_seed(0)
    m = build_segmenter("tiny", 5).eval()
    apply_adapter(m, "krona", "qv")
    for p in m.parameters():  # give the zero-initialised factor a value so the merge matters
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    x = torch.randn(2, 12, 32, 32)
    with torch.inference_mode():
        before = m(x)
    merge_adapter(m, unload=True)
    with torch.inference_mode():
        torch.testing.assert_close(m(x), before, atol=1e-5, rtol=1e-4)


def test_dense_flops_per_pixel_are_300_times_below_patch_mode_at_the_default_overlap() -> None:
    from geohsi.prediction.tiles import default_overlap

    stride = 32 - default_overlap(32)
    for cfg in ("tiny", "small", "base"):
        patch = count_flops(cfg)  # one encoder forward per pixel
        dense = (count_flops(cfg) + dense_head_flops(cfg, 16)) / stride**2  # one tile per stride² pixels
        assert patch / dense >= 300, cfg
    assert dense_head_flops("small", 16) < 0.1 * count_flops("small")


def test_bad_widths_are_refused() -> None:
    with pytest.raises(UsageError, match="widths"):
        SpectralGPTSegmenter("tiny", 3, decoder_dim=0)
    with pytest.raises(UsageError, match="num_classes"):
        SpectralGPTSegmenter("tiny", 0)
    with pytest.raises(UsageError, match="context dropout"):
        SpectralGPTSegmenter("tiny", 3, context_dropout=1.0)
    with pytest.raises(UsageError, match="spectral branch"):
        SpectralGPTSegmenter("tiny", 3, spectral_dim=0, context_dropout=0.5)


def test_context_dropout_drops_the_context_of_whole_tiles_in_training_only() -> None:
    torch.manual_seed(0)
    plain = build_segmenter("tiny", 3).eval()
    torch.manual_seed(0)
    m = build_segmenter("tiny", 3, head_options={"context_dropout": 0.5})
    no_context = build_segmenter("tiny", 3).eval()
    no_context.load_state_dict(m.state_dict())
    torch.nn.init.zeros_(no_context.head.context.weight)
    torch.nn.init.zeros_(no_context.head.context.bias)  # the token path adds nothing: spectra alone
    x = torch.randn(32, 12, 32, 32)
    with torch.no_grad():
        full, alone = m.eval()(x), no_context(x)
        assert torch.equal(full, plain(x))  # inference never drops, and the option changes no weight
        trained = m.train()(x)
    kept = torch.isclose(trained, full, atol=1e-5).flatten(1).all(1)
    dropped = torch.isclose(trained, alone, atol=1e-5).flatten(1).all(1)
    assert (kept ^ dropped).all()  # each tile either keeps its whole context or loses all of it
    assert 4 <= int(dropped.sum()) <= 28  # about half of the 32 tiles lose it


def test_bilinear_matrix_matches_interpolate() -> None:
    from geohsi.models.decoder import bilinear_matrix

    t = torch.randn(2, 5, 4, 6)
    ref = F.interpolate(t, size=(32, 48), mode="bilinear", align_corners=False)
    got = torch.einsum("yi,xj,ncij->ncyx", bilinear_matrix(4, 32), bilinear_matrix(6, 48), t)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
