"""The head abstraction: registry, bundle records, geometry, and block prediction through the prediction layer."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from geohsi.errors import UsageError
from geohsi.heads import HEADS, DenseHead, Head, PatchHead, get_head
from geohsi.models import resolve_model_config
from geohsi.prediction import dense_block_probabilities, patch_block_probabilities
from geohsi.spectral.windows import pad_reflect_halo

WINDOW = {"size": 15, "input_size": 32, "padding": "reflect", "resize": "bilinear"}


def test_registry_names_both_modes_and_refuses_others() -> None:
    assert {"patch": PatchHead, "dense": DenseHead} == HEADS
    assert all(issubclass(h, Head) for h in HEADS.values())
    with pytest.raises(UsageError, match="unknown --head 'voxel'"):
        get_head("voxel")


@pytest.mark.parametrize(
    ("head", "record"),
    [
        (PatchHead(window=15, input_size=32, hidden=64), {"head": "patch", "head_hidden": 64}),
        (
            DenseHead(window=15, input_size=32, overlap=12, widths={"fuse_dim": 8, "decoder_dim": 4, "spectral_dim": 2}),
            {
                "head": "dense",
                "head_hidden": 0,
                "dense": {"tile": 32, "overlap": 12, "head_options": {"decoder_dim": 4, "fuse_dim": 8, "spectral_dim": 2}},
            },
        ),
    ],
)
def test_bundle_record_round_trips_and_heads_travel_in_graphs(head: Head, record: dict) -> None:
    assert head.record() == record
    assert get_head(record["head"]).from_record(record, WINDOW) == head
    again = pickle.loads(pickle.dumps(head))
    assert again == head and hash(again) == hash(head)  # picklable and hashable: the classify graph carries it


def test_patch_bundles_from_before_dense_mode_have_no_head_field() -> None:
    assert get_head("patch").from_record({"config": {}}, WINDOW) == PatchHead(window=15, input_size=32, hidden=0)


def test_geometry_per_mode() -> None:
    patch, dense = PatchHead(window=15), DenseHead(input_size=32)
    assert (patch.halo, dense.halo) == (7, 31)
    assert dense.overlap == 8 and dense.tile == 32  # default overlap: a quarter of the tile
    assert (patch.default_batch["cpu"], dense.default_batch["cpu"]) == (256, 16)
    assert patch.mlm_tasks == ["classification"] and dense.mlm_tasks == ["semantic-segmentation"]
    assert patch.mlm_output(5)["result"]["shape"] == [-1, 5] and dense.mlm_output(5)["result"]["shape"] == [-1, 5, 32, 32]
    with pytest.raises(UsageError, match="smaller than the 32-pixel tiles"):
        dense.check_scene(20, 40, "s.zarr", "b")
    with pytest.raises(UsageError, match="10×40 pixels, smaller than the 15-pixel windows of patch bundle b"):
        patch.check_scene(10, 40, "s.zarr", "b")


def test_build_model_gives_each_mode_its_model_and_resolved_widths() -> None:
    cfg = resolve_model_config("tiny")
    torch.manual_seed(0)
    clf = PatchHead().build_model(cfg, 5)
    seg = DenseHead().build_model(cfg, 5)
    x = torch.zeros(2, 12, 32, 32)
    assert clf(x).shape == (2, 5) and seg(x).shape == (2, 5, 32, 32)
    assert DenseHead().resolved(seg).widths == tuple(sorted(seg.head.widths.items()))


@pytest.mark.parametrize("mode", ["patch", "dense"])
def test_predict_block_is_the_prediction_layer(mode: str) -> None:
    rng = np.random.default_rng(0)
    core = rng.normal(size=(12, 40, 36)).astype("float32")
    core[:, 3, 4] = np.nan
    torch.manual_seed(0)
    head = PatchHead() if mode == "patch" else DenseHead()
    model = head.build_model(resolve_model_config("tiny"), 4).eval()
    blk = pad_reflect_halo(core, head.halo)
    got = head.predict_block(blk, model, halo=head.halo, origin=(0, 0), batch_size=64, device="cpu", precision="fp32")
    if mode == "patch":
        want = patch_block_probabilities(blk, model, window=15, input_size=32, halo=7, batch_size=64)
    else:
        want = dense_block_probabilities(blk, model, halo=31, tile=32, overlap=8, origin=(0, 0), batch_size=64)
    np.testing.assert_array_equal(got, want)
    assert got.shape == (4, 40, 36) and np.isnan(got[:, 3, 4]).all() and not np.isnan(got[:, 0, 0]).any()
    np.testing.assert_allclose(np.nansum(got, axis=0)[~np.isnan(got[0])], 1.0, rtol=1e-5)
