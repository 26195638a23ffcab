"""Dense per-block inference: partition-invariant maps, seam-free blending, halo checks, and the
overlap-add path (each tile run once) giving the same map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geohsi.errors import UsageError
from geohsi.models.decoder import build_segmenter
from geohsi.prediction.runtime import ForwardTimer
from geohsi.prediction.tiles import (
    blend_accumulated,
    dense_block_accumulate,
    dense_block_probabilities,
    dense_halo,
    hann_weight,
    predict_dense,
    summed_area_table,
)
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


def _by_blocks(
    model, scene: np.ndarray, chunks: tuple[tuple[int, ...], tuple[int, ...]], overlap: int, timer: ForwardTimer | None = None
) -> np.ndarray:
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
                blk, model, halo=r, overlap=overlap, origin=(int(ys[i]), int(xs[j])), batch_size=5, timer=timer
            )
    return out


def _overlap_add(model, scene: np.ndarray, chunks, overlap: int, timer: ForwardTimer) -> np.ndarray:
    """The map from each block's own tiles (dense_block_accumulate), blended with its neighbours' margins."""
    import dask.array as da

    r = dense_halo(32)
    blocks = overlap_reflect(da.from_array(scene, chunks=((12,), *chunks)), r)
    ys, xs = np.cumsum((0,) + chunks[0]), np.cumsum((0,) + chunks[1])
    sums = {
        (i, j): dense_block_accumulate(np.asarray(blocks.blocks[0, i, j]), model, halo=r, scene_shape=scene.shape[1:],
                                       overlap=overlap, origin=(int(ys[i]), int(xs[j])), batch_size=5, timer=timer)
        for i in range(len(chunks[0])) for j in range(len(chunks[1]))
    }  # fmt: skip
    out = np.empty((6,) + scene.shape[1:], np.float32)
    for (i, j), own in sums.items():
        assert own.shape[1:] == (min(ys[i + 1] + 31, scene.shape[1]) - ys[i], min(xs[j + 1] + 31, scene.shape[2]) - xs[j])
        near = [(a, b) for (a, b) in sums if a <= i and b <= j]
        out[:, ys[i] : ys[i + 1], xs[j] : xs[j + 1]] = blend_accumulated(
            [sums[n] for n in near], [(int(ys[a] - ys[i]), int(xs[b] - xs[j])) for a, b in near], (chunks[0][i], chunks[1][j])
        )
    return out


@pytest.mark.parametrize("overlap", [8, 16])
def test_overlap_add_runs_each_tile_once_and_gives_the_same_map(model, ip_crop_channels: np.ndarray, overlap: int) -> None:
    scene = ip_crop_channels
    once = ForwardTimer()
    whole = dense_block_probabilities(
        pad_reflect_halo(scene, dense_halo(32)), model, halo=dense_halo(32), overlap=overlap, timer=once
    )
    labels = np.nan_to_num(whole, nan=-1).argmax(0)
    for chunks in [((16,) * 4 + (6,), (16,) * 5 + (10,)), ((9, 61), (33, 1, 56)), ((70,), (90,)), ((40, 30), (45, 45))]:
        by_blocks, added = ForwardTimer(), ForwardTimer()
        summed = _overlap_add(model, scene, chunks, overlap, added)
        np.testing.assert_allclose(summed, whole, atol=2e-6, rtol=0)
        assert np.array_equal(np.isnan(summed), np.isnan(whole))
        assert (np.nan_to_num(summed, nan=-1).argmax(0) == labels).all(), chunks
        assert added.inputs == once.inputs, chunks  # every tile of the scene's tiling, once
        if len(chunks[0]) > 1:  # the per-block path runs the tiles on block borders twice
            _by_blocks(model, scene, chunks, overlap, timer=by_blocks)
            assert by_blocks.inputs > once.inputs


def test_overlap_add_of_an_all_invalid_scene_is_nan() -> None:
    m = build_segmenter("tiny", 3).eval()
    blk = np.full((12, 40 + 62, 40 + 62), np.nan, np.float32)
    timer = ForwardTimer()
    own = dense_block_accumulate(blk, m, halo=31, scene_shape=(40, 40), timer=timer)
    assert timer.calls == 0 and own.shape == (4, 40, 40)
    assert np.isnan(blend_accumulated([own], [(0, 0)], (40, 40))).all()


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


def test_summed_area_table_counts_every_box_of_a_mask():
    rng = np.random.default_rng(0)
    mask = rng.random((13, 17)) < 0.3
    sat = summed_area_table(mask)
    assert sat.shape == (14, 18) and sat.dtype == np.int64
    y0, x0 = rng.integers(0, 13, 200), rng.integers(0, 17, 200)
    y1, x1 = y0 + rng.integers(0, 13 - y0 + 1), x0 + rng.integers(0, 17 - x0 + 1)
    boxes = sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]
    assert boxes.tolist() == [int(mask[a:b, c:d].sum()) for a, b, c, d in zip(y0, y1, x0, x1, strict=True)]
