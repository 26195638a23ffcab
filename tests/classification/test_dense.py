"""Dense-mode classify: the Dask map does not depend on the chunking, equals the in-memory dense
prediction, and has no seams at tile or chunk borders."""

from __future__ import annotations

import dask
import numpy as np
import pytest

from geohsi.classification import predict_map
from geohsi.errors import UsageError
from geohsi.prediction.tiles import dense_block_probabilities, dense_halo


def _train_dense(scene, out, **kw):
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    cfg = resolve_train_config(
        **{
            "adapter": "krona+",
            "head": "dense",
            "model": "tiny",
            "epochs": 1,
            "split": "per-class:5",
            "device": "cpu",
            "batch_size": 64,
            "lr": 1e-3,
            **kw,
        }
    )
    return train(scene, cfg, out=out, progress=False, log=lambda m: None)


@pytest.fixture(scope="module")
def dense_bundle(tmp_path_factory, ip_scene):
    """A tiny krona+ dense bundle trained one epoch on Indian Pines."""
    return _train_dense(ip_scene, tmp_path_factory.mktemp("denseb") / "bundle")


def _in_memory(scene_path, bundle_path, precision: str = "fp32") -> np.ndarray:
    """The whole scene in memory as one block with a reflected halo: no Dask blocks, no cluster."""
    from geohsi.bundle import load_bundle
    from geohsi.scene import open_scene
    from geohsi.spectral.windows import pad_reflect_halo

    b = load_bundle(bundle_path)
    with dask.config.set(scheduler="synchronous"):
        ch = np.asarray(b.transform.apply(open_scene(scene_path)).values, dtype=np.float32)
    r = dense_halo(b.head.tile)
    return dense_block_probabilities(
        pad_reflect_halo(ch, r), b.build_model(merge=True), halo=r, tile=b.head.tile, overlap=b.head.overlap, precision=precision
    )


def _compute(lazy):
    with dask.config.set(scheduler="threads", num_workers=2):
        return lazy.values


def test_the_bundle_is_dense_and_the_graph_uses_the_dense_halo(ip_crop_geo, dense_bundle):
    from geohsi.bundle import load_bundle
    from geohsi.classification.plan import build_plan
    from geohsi.scene import open_scene

    b = load_bundle(dense_bundle)
    assert b.head.name == "dense" and b.head.tile == 32
    plan = build_plan(open_scene(ip_crop_geo), b, chunks=13)
    assert plan.radius == dense_halo(32) == 31
    assert plan.spec.head == b.head and plan.spec.head.overlap == 8 and plan.spec.head.input_size == 32
    assert plan.chunks_yx == ((13, 13, 13, 1), (13, 13, 13, 11))


# 5 and 13 < halo 31 (a block's halo spans several neighbours and reflects across them), odd sizes,
# a chunking that splits a tile in two, and one chunk for the whole scene.
@pytest.mark.parametrize("chunks", [5, 13, 17, 24, 64])
def test_dense_map_is_the_same_whatever_the_chunking(ip_crop_geo, dense_bundle, chunks):
    from geohsi.bundle import load_bundle

    ref = _in_memory(ip_crop_geo, dense_bundle)
    b = load_bundle(dense_bundle)
    p = _compute(predict_map(ip_crop_geo, b, what="probabilities", chunks=chunks, batch_size=7))
    labels = _compute(predict_map(ip_crop_geo, b, chunks=chunks))
    invalid = np.isnan(ref[0])
    assert invalid.sum() >= 35 and (~invalid).sum() > 1500  # the crop's nodata patch and scatter
    assert p.shape == ref.shape == (len(b.classes), 40, 50)
    assert np.array_equal(np.isnan(p), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(p), np.nan_to_num(ref), atol=1e-5, rtol=0)
    expected = np.where(invalid, 0, b.class_ids[np.nan_to_num(ref, nan=-1).argmax(0)])
    assert len(np.unique(expected[~invalid])) > 1  # a non-trivial map, so agreement means something
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize("chunks", [13, 40])
def test_spectral_transform_on_the_device_gives_the_in_memory_map(ip_crop_geo, dense_bundle, chunks):
    """Raw bands in the halo'd blocks, channels made inside each task (the GPU-worker graph): the same
    map as the whole scene in memory; 13-px chunks sit well inside the 31-px dense halo."""
    from geohsi.bundle import load_bundle

    ref = _in_memory(ip_crop_geo, dense_bundle)
    p = _compute(
        predict_map(ip_crop_geo, load_bundle(dense_bundle), what="probabilities", chunks=chunks, spectral_on_device=True)
    )
    assert np.array_equal(np.isnan(p), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(p), np.nan_to_num(ref), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(np.nan_to_num(p, nan=-1).argmax(0), np.nan_to_num(ref, nan=-1).argmax(0))


def test_bf16_weights_agree_with_fp32(ip_crop_geo, dense_bundle):
    """bf16 classify (weights converted once in the worker) labels like fp32 on nearly every pixel."""
    from geohsi.bundle import load_bundle
    from geohsi.classification.worker import model_cache

    b = load_bundle(dense_bundle)
    fp32 = _compute(predict_map(ip_crop_geo, b, chunks=24))
    bf16 = _compute(predict_map(ip_crop_geo, b, chunks=24, precision="bf16"))
    import torch

    # the threads scheduler: this process's cache; the key's last item is a moved backbone (none here)
    model, _ = model_cache().models[(b.hash, "cpu", "bf16", None)]
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    valid = fp32 > 0
    assert np.array_equal(bf16 > 0, valid)
    assert (bf16[valid] == fp32[valid]).mean() >= 0.98


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """A 48 × 80 scene of two constant halves (columns < 37 and ≥ 37), both labelled, and a dense bundle for it."""
    from geohsi.scene import add_labels, make_scene, write_scene

    h, w, edge, nb = 48, 80, 37, 24
    wl = np.linspace(450, 2400, nb)
    a, b = 3000 + 2000 * np.sin(wl / 300), 3000 + 2000 * np.cos(wl / 250)
    # exactly constant halves (no noise: standardised PCA components would blow noise up to unit scale)
    cube = np.broadcast_to(np.where(np.arange(w)[None, None, :] < edge, a[:, None, None], b[:, None, None]), (nb, h, w))
    labels = np.where(np.arange(w)[None, :] < edge, 1, 2).repeat(h, 0).astype(np.uint8)
    d = tmp_path_factory.mktemp("halves")
    scene = write_scene(add_labels(make_scene(cube.astype(np.uint16), wavelength=wl), labels), d / "halves.zarr", chunks=16)
    # patience → the best validation epoch's weights (training keeps the final ones otherwise); this toy
    # model's last epochs blur the boundary by a few pixels, which is not what this test is about
    bundle = _train_dense(scene, d / "bundle", epochs=8, split="per-class:20", lr=3e-3, patience=8)
    return scene, bundle, edge


def test_two_constant_halves_give_a_straight_boundary_at_every_chunking(halves):
    scene, bundle, edge = halves
    maps = {c: _compute(predict_map(scene, bundle, chunks=c)) for c in (80, 20, 29, 7)}
    for c, m in maps.items():
        assert (m == m[0]).all(), f"rows differ with {c}-px chunks: the boundary is not straight"
        cols = np.flatnonzero(np.diff(m[0].astype(int)))
        assert len(cols) == 1 and abs(cols[0] + 1 - edge) <= 2, (c, cols)
        np.testing.assert_array_equal(m, maps[80])
    # no seam: inside each half the probabilities change smoothly (no jump at tile or chunk borders)
    p = _compute(predict_map(scene, bundle, what="probabilities", chunks=20))
    assert np.abs(np.diff(p, axis=2)[:, :, : edge - 6]).max() < 0.05
    assert np.abs(np.diff(p, axis=1)).max() < 0.05


def test_a_scene_smaller_than_a_tile_is_a_one_line_error(tmp_path, dense_bundle):
    from geohsi.bundle import load_bundle
    from geohsi.datasets.registry import indian_pines_bands
    from geohsi.scene import make_scene, write_scene

    wl, fw = indian_pines_bands()
    small = write_scene(make_scene(np.full((200, 20, 40), 1000, np.uint16), wavelength=wl, fwhm=fw), tmp_path / "s.zarr")
    with pytest.raises(UsageError, match=r"20×40 pixels, smaller than the 32-pixel tiles") as e:
        predict_map(small, load_bundle(dense_bundle))
    assert "\n" not in str(e.value)


def test_profile_of_a_run_counts_each_tile_once_and_accounts_for_the_workers_time(ip_crop_geo, dense_bundle, tmp_path):
    """``classify(profile_report=...)`` on a real two-worker cluster: the model ran exactly the tiles of the
    whole scene's tiling (overlap-add: none twice at the 24-px chunk borders), the stages and idle time
    make up the run's capacity, and Dask's performance report is written."""
    from geohsi.bundle import load_bundle
    from geohsi.classification import classify
    from geohsi.prediction.runtime import ForwardTimer
    from geohsi.scene import open_scene
    from geohsi.spectral.windows import pad_reflect_halo

    b = load_bundle(dense_bundle)
    with dask.config.set(scheduler="synchronous"):
        ch = np.asarray(b.transform.apply(open_scene(ip_crop_geo)).values, dtype=np.float32)
    whole = ForwardTimer()
    dense_block_probabilities(pad_reflect_halo(ch, 31), b.build_model(merge=True), halo=31, overlap=b.head.overlap, timer=whole)
    res = classify(ip_crop_geo, tmp_path / "map.zarr", dense_bundle, workers=2, chunks=24, progress=False,
                   profile_report=tmp_path / "report.html", log=lambda m: None)  # fmt: skip
    prof = res.profile
    assert prof.model_inputs == whole.inputs > 0
    assert prof.tile_forwards_per_pixel == pytest.approx(whole.inputs * 32**2 / (40 * 50))
    assert prof.seconds["model forward"] > 0 and prof.seconds["read + decompress"] > 0 and prof.seconds["parts write"] > 0
    assert sum(prof.shares.values()) == pytest.approx(1.0) and prof.threads == 2
    assert "<title>Dask Performance Report</title>" in (tmp_path / "report.html").read_text()


def test_profile_flag_prints_the_stages_and_is_refused_for_a_batch(ip_crop_geo, dense_bundle, tmp_path):
    from tests.conftest import run_cli

    r = run_cli("classify", ip_crop_geo, "--bundle", dense_bundle, "--out", tmp_path / "m.zarr", "--workers", "1",
                "--no-progress", "--profile")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "model forward" in r.stderr and "tile forwards per map pixel" in r.stderr and "idle" in r.stderr
    r = run_cli("classify", ip_crop_geo, ip_crop_geo, "--bundle", dense_bundle, "--out-dir", tmp_path / "maps", "--profile")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--profile" in r.stderr and "one scene" in r.stderr


def test_a_profile_report_never_replaces_a_file_it_was_not_allowed_to(ip_crop_geo, dense_bundle, tmp_path):
    """The report had been written over any path given, the scene or the map just written included, exit 0."""
    from geohsi.classification import classify
    from geohsi.errors import OutputError, UsageError

    kept = tmp_path / "notes.html"
    kept.write_text("mine")
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        classify(ip_crop_geo, tmp_path / "m.zarr", dense_bundle, profile_report=kept, log=lambda m: None)
    for other in (tmp_path / "m.tif", tmp_path / "scene.tif"):
        with pytest.raises(UsageError, match="name it REPORT.html"):
            classify(ip_crop_geo, tmp_path / "m.tif", dense_bundle, profile_report=other, log=lambda m: None)
    assert kept.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.html"]


def test_a_scene_smaller_than_a_patch_window_names_the_bundle_not_an_option(tmp_path, ip_bundle):
    """classify has no --window: the patch bundle fixes it, so the message says what to do instead."""
    from geohsi.bundle import load_bundle
    from geohsi.datasets.registry import indian_pines_bands
    from geohsi.scene import make_scene, write_scene

    wl, fw = indian_pines_bands()
    small = write_scene(make_scene(np.full((200, 5, 8), 1000, np.uint16), wavelength=wl, fwhm=fw), tmp_path / "s.zarr")
    with pytest.raises(UsageError, match=r"5×8 pixels, smaller than the 15-pixel windows of patch bundle") as e:
        predict_map(small, load_bundle(ip_bundle))
    assert "--window" not in str(e.value) and "\n" not in str(e.value)


def test_a_scene_without_a_valid_pixel_maps_with_a_warning(tmp_path, ip_bundle):
    from geohsi.classification import classify
    from geohsi.datasets.registry import indian_pines_bands
    from geohsi.errors import GeohsiWarning
    from geohsi.scene import make_scene, write_scene

    wl, fw = indian_pines_bands()
    empty = make_scene(np.zeros((200, 24, 24), np.uint16), wavelength=wl, fwhm=fw, nodata=0)
    scene = write_scene(empty, tmp_path / "empty.zarr")
    with pytest.warns(GeohsiWarning, match=r"has no classified pixel: every pixel of the scene is nodata or invalid"):
        res = classify(scene, bundle=ip_bundle, out=tmp_path / "m.zarr", workers=1, progress=False, log=lambda m: None)
    assert res.mapped_pixels == 0 and (tmp_path / "m.zarr").exists()
