"""Patch-mode block prediction on the model's device (windows cut, resized and classified as torch ops)
equals the numpy window path (``windows_for_block`` + ``predict_proba``) on real Indian Pines and
EnMAP channels, whatever the halo and the chunking — chunks smaller than the halo included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geohsi.errors import UsageError
from geohsi.models.spectralgpt import build_classifier
from geohsi.prediction.patch import patch_block_probabilities, predict_proba
from geohsi.spectral.windows import overlap_reflect, pad_reflect_halo, windows_for_block

K = 5


def _pca12(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Standardised first 12 principal components of ``[N, B]`` pixels as ``[12, h, w]`` float32."""
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    z = x @ vt[:12].T
    return ((z - z.mean(0)) / z.std(0)).astype(np.float32).T.reshape(12, *hw)


@pytest.fixture(scope="module")
def channels(data_dir) -> dict[str, np.ndarray]:
    """Real 12-channel crops (IP 26 × 31, EnMAP 24 × 29), each with a NaN patch and NaN pixels."""
    import rasterio
    import scipy.io

    ip = scipy.io.loadmat(data_dir / "indian_pines" / "Indian_pines_corrected.mat")["indian_pines_corrected"]
    ip = _pca12(ip[60:86, 40:71].reshape(-1, ip.shape[2]).astype(np.float64), (26, 31))
    with rasterio.open(data_dir / "enmap_potsdam" / "images" / "enmap_potsdam_tile_128_0.tif") as src:
        en = src.read(window=((4, 28), (3, 32))).astype(np.float64)
    en = _pca12(en.reshape(en.shape[0], -1).T, (24, 29))
    for z in (ip, en):
        z[:, 5:8, 9:13] = np.nan
        z[3, 0, 0] = z[:, -1, 4] = np.nan
    return {"indian_pines": ip, "enmap": en}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_classifier("tiny", K).eval()


def _numpy_path(model, blk: np.ndarray, window: int, halo: int, batch: int) -> np.ndarray:
    """The numpy reference: windows cut and resized by ``windows_for_block``, classified by ``predict_proba``."""
    h, w = blk.shape[1] - 2 * halo, blk.shape[2] - 2 * halo
    out = np.full((K, h, w), np.nan, np.float32)
    rows, cols = np.nonzero(~np.isnan(blk[:, halo : halo + h, halo : halo + w]).any(0))
    win = windows_for_block(blk, rows, cols, window, 32, halo=halo)
    out[:, rows, cols] = predict_proba(model, win, batch_size=batch).T
    return out


@pytest.mark.parametrize("scene", ["indian_pines", "enmap"])
@pytest.mark.parametrize(("window", "halo"), [(15, 7), (15, 10), (9, 4), (31, 15)])
def test_device_path_equals_the_numpy_path(model, channels, scene: str, window: int, halo: int) -> None:
    blk = pad_reflect_halo(channels[scene], halo)
    got = patch_block_probabilities(blk, model, window=window, input_size=32, halo=halo, batch_size=64)
    ref = _numpy_path(model, blk, window, halo, 64)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert ok.sum() > 0.9 * ref.size
    np.testing.assert_allclose(got[ok], ref[ok], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(np.nanargmax(np.nan_to_num(got, nan=-1), 0), np.nanargmax(np.nan_to_num(ref, nan=-1), 0))


@pytest.mark.parametrize("scene", ["indian_pines", "enmap"])
def test_chunks_smaller_than_the_halo_give_the_whole_scene_map(model, channels, scene: str) -> None:
    """5-pixel chunks with a 7-pixel halo (read through the neighbours of the neighbours): the map
    assembled from the blocks equals the map of the whole padded scene."""
    import dask.array as da

    z, halo = channels[scene], 7
    whole = _numpy_path(model, pad_reflect_halo(z, halo), 15, halo, 128)
    arr = da.from_array(z, chunks=(12, 5, 5))
    blocks = overlap_reflect(arr, halo)
    ys, xs = np.cumsum((0,) + arr.chunks[1]), np.cumsum((0,) + arr.chunks[2])
    out = np.empty_like(whole)
    for i in range(len(arr.chunks[1])):
        for j in range(len(arr.chunks[2])):
            blk = np.asarray(blocks.blocks[0, i, j])
            assert blk.shape[1:] == (ys[i + 1] - ys[i] + 2 * halo, xs[j + 1] - xs[j] + 2 * halo)
            out[:, ys[i] : ys[i + 1], xs[j] : xs[j + 1]] = patch_block_probabilities(
                blk, model, window=15, input_size=32, halo=halo, batch_size=16
            )
    ok = ~np.isnan(whole)
    assert np.array_equal(np.isnan(out), ~ok)
    np.testing.assert_allclose(out[ok], whole[ok], rtol=0, atol=1e-5)


def test_a_halo_smaller_than_the_window_radius_is_refused(model, channels) -> None:
    with pytest.raises(UsageError, match="smaller than the window radius 7"):
        patch_block_probabilities(pad_reflect_halo(channels["enmap"], 5), model, window=15, input_size=32, halo=5)
