"""Bundles written before the redesign (geohsi at 6ca9c0f) load and predict exactly as that version did.

The fixtures in ``tests/data/bundles-0.1`` (a patch KronA+ and a dense LoRA bundle, tiny config,
random backbone stored in the bundle) and their expected outputs on a 40 × 50 crop of Indian Pines
were written by that version; ``tests/data/bundles-0.1/make_expected.py`` says how.
"""

from __future__ import annotations

import json
from pathlib import Path

import dask
import numpy as np
import pytest

import geohsi

FIXTURES = Path(__file__).parent / "data" / "bundles-0.1"
NAMES = ("patch-krona+", "dense-lora")


@pytest.fixture(scope="module")
def crop(tmp_path_factory, data_dir):
    import scipy.io

    from geohsi.scene import add_labels, make_scene, write_scene

    d = data_dir / "indian_pines"
    cube = scipy.io.loadmat(d / "Indian_pines_corrected.mat")["indian_pines_corrected"].transpose(2, 0, 1)
    gt = scipy.io.loadmat(d / "Indian_pines_gt.mat")["indian_pines_gt"]
    ys, xs = slice(20, 60), slice(30, 80)
    return write_scene(
        add_labels(make_scene(cube[:, ys, xs].copy()), gt[ys, xs]), tmp_path_factory.mktemp("crop") / "crop.zarr", chunks=16
    )


@pytest.mark.parametrize("name", NAMES)
def test_old_bundle_maps_and_scores_as_before(name, crop):
    expected = np.load(FIXTURES / "expected.npz")
    bundle = FIXTURES / name
    with dask.config.set(scheduler="synchronous"):
        labels = geohsi.predict_map(crop, bundle).compute().values
        confidence = geohsi.predict_map(crop, bundle, what="confidence").compute().values
    np.testing.assert_array_equal(labels, expected[f"{name}/labels"])
    np.testing.assert_allclose(confidence, expected[f"{name}/confidence"], rtol=0, atol=1e-6)
    report = geohsi.evaluate(bundle, crop)
    want = json.loads((FIXTURES / f"{name}.evaluate.json").read_text())
    # κ is computed in exact integer arithmetic since 0.3: the same value, other last digits
    assert report["kappa"] == pytest.approx(want.pop("kappa"), rel=1e-13, abs=0)
    assert {k: v for k, v in report.items() if k != "kappa"} == want


@pytest.mark.parametrize("name", NAMES)
def test_old_bundle_metadata_reads_back(name):
    from geohsi.bundle import load_bundle

    b = load_bundle(FIXTURES / name)
    assert b.head.name == name.split("-")[0]
    assert len(b.classes) == 16 and b.classes[0].name == "class_1"
