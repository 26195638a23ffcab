"""How the fixtures of this folder were made — run with geohsi at commit 6ca9c0f (before the redesign).

The two bundles were trained on Indian Pines ingested with ``geohsi ingest Indian_pines_corrected.mat
--labels Indian_pines_gt.mat --crs none --out ip.zarr``:

    geohsi train ip.zarr --adapter krona+ --model tiny --backbone random --head patch \
        --split fraction:0.1 --epochs 1 --seed 0 --out patch-krona+
    geohsi train ip.zarr --adapter lora --model tiny --backbone random --head dense \
        --split fraction:0.1 --epochs 2 --seed 0 --out dense-lora

This script then records what that version made of them on a 40 × 50 crop of the scene (rows 20–59,
columns 30–79, with its labels): the lazy class map and the max probability (``expected.npz``) and
the ``evaluate`` report (``NAME.evaluate.json``). ``tests/test_bundle_compat.py`` checks that the
current version reproduces them.

Usage: python make_expected.py DATA_DIR WORK_DIR
"""

import json
import sys
from pathlib import Path

import dask
import numpy as np
import scipy.io

import geohsi
from geohsi.scene import add_labels, make_scene, write_scene

here = Path(__file__).resolve().parent
data, work = Path(sys.argv[1]), Path(sys.argv[2])
cube = scipy.io.loadmat(data / "indian_pines/Indian_pines_corrected.mat")["indian_pines_corrected"].transpose(2, 0, 1)
gt = scipy.io.loadmat(data / "indian_pines/Indian_pines_gt.mat")["indian_pines_gt"]
ys, xs = slice(20, 60), slice(30, 80)
scene = write_scene(add_labels(make_scene(cube[:, ys, xs].copy()), gt[ys, xs]), work / "crop.zarr", chunks=16, overwrite=True)
expected = {}
for name in ("patch-krona+", "dense-lora"):
    b = here / name
    with dask.config.set(scheduler="synchronous"):
        expected[f"{name}/labels"] = geohsi.classify(scene, b).compute().values
        expected[f"{name}/confidence"] = geohsi.classify(scene, b, what="confidence").compute().values
    (here / f"{name}.evaluate.json").write_text(json.dumps(geohsi.evaluate(b, scene), indent=1) + "\n")
np.savez_compressed(here / "expected.npz", **expected)
