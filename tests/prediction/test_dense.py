"""Dense per-block inference: partition-invariant maps, seam-free blending, halo checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geohsi.errors import UsageError
from geohsi.models.dense import build_segmenter
from geohsi.prediction.dense import dense_block_probabilities, dense_halo, hann_weight, predict_dense
from geohsi.spectral.windows import overlap_reflect, pad_reflect_halo


@pytest.fixture(scope="module")
def ip_crop_channels(data_dir) -> np.ndarray:
    """A 70 × 90 crop of real Indian Pines, standardised PCA-12 channels, with a nodata patch."""
    import scipy.io

    cube = scipy.io.loadmat(data_dir / "indian_pines" / "Indian_pines_corrected.mat")["indian_pines_corrected"]
    x = cube[40:110, 30:120].reshape(-1, cube.shape[2]).astype(np.float64)
    x = (x - x.mean(0)) / x.std(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    z = x @ vt[:12].T
    z = ((z - z.mean(0)) / z.std(0)).astype(np.float32).T.reshape(12, 70, 90)
    z[:, 30:34, 50:57] = np.nan
    return z


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_segmenter("tiny", 6).eval()


def _by_blocks(model, scene: np.ndarray, chunks: tuple[tuple[int, ...], tuple[int, ...]], overlap: int) -> np.ndarray:
    """The map assembled from the blocks of a Dask partition, each with its halo (as map_blocks sees them)."""
    import dask.array as da

    r = dense_halo(32)
    arr = da.from_array(scene, chunks=((12,), *chunks))
    blocks = overlap_reflect(arr, r)
    ys, xs = np.cumsum((0,) + chunks[0]), np.cumsum((0,) + chunks[1])
    out = np.empty((6,) + scene.shape[1:], np.float32)
    for i in range(len(chunks[0])):
        for j in range(len(chunks[1])):
            blk = np.asarray(blocks.blocks[0, i, j])
            out[:, ys[i] : ys[i + 1], xs[j] : xs[j + 1]] = dense_block_probabilities(
                blk, model, halo=r, overlap=overlap, origin=(int(ys[i]), int(xs[j])), batch_size=5
            )
    return out


@pytest.mark.parametrize(
    ("overlap", "partitions"),
    [(8, [((16,) * 4 + (6,), (16,) * 5 + (10,)), ((9, 61), (33, 1, 56))]), (16, [((23, 23, 24), (50, 40))])],
)
def test_map_is_the_same_whatever_the_chunking(model, ip_crop_channels: np.ndarray, overlap: int, partitions) -> None:
    scene = ip_crop_channels
    whole = dense_block_probabilities(pad_reflect_halo(scene, dense_halo(32)), model, halo=dense_halo(32), overlap=overlap)
    invalid = np.isnan(scene).any(0)
    assert np.isnan(whole[:, invalid]).all() and not np.isnan(whole[:, ~invalid]).any()
    np.testing.assert_allclose(whole.sum(0)[~invalid], 1.0, atol=1e-5)
    labels = np.nan_to_num(whole, nan=-1).argmax(0)
    assert len(np.unique(labels[~invalid])) > 1  # a non-trivial map, so agreement means something
    for chunks in partitions:
        got = _by_blocks(model, scene, chunks, overlap)
        np.testing.assert_allclose(got, whole, atol=2e-6, rtol=0)
        assert (np.nan_to_num(got, nan=-1).argmax(0) == labels).all(), chunks
    np.testing.assert_allclose(predict_dense(model, scene, overlap=overlap, block=40), whole, atol=2e-6, rtol=0)


def test_two_constant_halves_give_a_straight_boundary_without_seams() -> None:
    """Train a tiny dense model on a two-halves scene, then map it with chunks that cut across tiles."""
    from geohsi.heads.dense import TileSampler, cut_tiles, dense_loss

    rng = np.random.default_rng(0)
    h, w, edge = 48, 80, 37
    a, b = rng.standard_normal(12), rng.standard_normal(12)
    scene = np.where(np.arange(w)[None, None, :] < edge, a[:, None, None], b[:, None, None]).astype(np.float32)
    scene = np.broadcast_to(scene, (12, h, w)).copy()
    truth = (np.arange(w) >= edge).astype(np.int64)[None, :].repeat(h, 0)
    idx = rng.choice(h * w, 200, replace=False)  # sparse labels, as in real scenes
    sampler = TileSampler((h, w), 32, idx, truth.reshape(-1)[idx])
    torch.manual_seed(0)
    m = build_segmenter("tiny", 2)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for step in range(20):
        o = sampler.epoch_origins(0, step)[:6]
        loss = dense_loss(m(torch.from_numpy(cut_tiles(scene, o, 32))), torch.from_numpy(sampler.targets(o)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    for block in (48, 20, 29):
        p = predict_dense(m, scene, overlap=8, block=block)
        labels = p.argmax(0)
        assert (labels == labels[0]).all(), f"rows differ with {block}-px blocks: the boundary is not straight"
        cols = np.flatnonzero(np.diff(labels[0]))
        assert len(cols) == 1 and abs(cols[0] + 1 - edge) <= 2, cols
        # no seam: along each column the probabilities vary only with the tile grid, smoothly
        assert np.abs(np.diff(p, axis=1)).max() < 0.05


def test_hann_weight_is_positive_and_sums_to_a_constant_at_half_overlap() -> None:
    wgt = hann_weight(32)
    assert wgt.min() > 0 and wgt.max() <= 1
    w1 = wgt[16]
    total = w1[:16] + w1[16:]  # two tiles shifted by 16 px
    np.testing.assert_allclose(total, total[0], rtol=1e-6)


def test_a_halo_too_small_is_refused(model) -> None:
    blk = np.zeros((12, 40 + 2 * 8, 40 + 2 * 8), np.float32)
    with pytest.raises(UsageError, match="dense_halo"):
        dense_block_probabilities(blk, model, halo=8)
    with pytest.raises(UsageError, match="overlap"):
        dense_block_probabilities(blk, model, halo=8, overlap=32)


def test_an_all_invalid_block_is_nan_without_running_the_model() -> None:
    class Boom(torch.nn.Module):
        config = type("C", (), {"input_size": (32, 32)})()
        head = type("H", (), {"num_classes": 3})()

        def forward(self, x):  # pragma: no cover - must not run
            raise AssertionError("model ran on an all-invalid block")

    blk = np.full((12, 10 + 62, 12 + 62), np.nan, np.float32)
    out = dense_block_probabilities(blk, Boom(), halo=31)
    assert out.shape == (3, 10, 12) and np.isnan(out).all()
