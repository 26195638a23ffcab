"""geohsi.training.grid_tiles: the 18 real EnMAP tiles join into the mosaic ``geohsi ingest`` makes of them;
scattered, overlapping or held-out tiles stay apart; a bundle trained on joined tiles is evaluated on them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from geohsi.scene import cube, open_scene, scene_transform
from geohsi.training.data import LabelSource, load_training_data
from geohsi.training.grid_tiles import join_for_split, join_grid_tiles
from tests.conftest import run_cli


def _tiles(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))


def _rasters(pattern: Path | str) -> LabelSource:
    return LabelSource.from_options(str(pattern))


@pytest.fixture(scope="module")
def tiles(data_dir):
    return load_training_data(_tiles(data_dir), _rasters(data_dir / "enmap_potsdam" / "labels" / "*.tif"))


def test_the_enmap_tiles_join_into_the_ingested_mosaic(tiles, enmap_scene) -> None:
    said: list[str] = []
    joined = join_grid_tiles(tiles, log=said.append)
    assert len(joined.scenes) == 1 and len(said) == 1 and "18 scenes are tiles of one grid" in said[0]
    scene, mosaic = joined.scenes[0], open_scene(enmap_scene)
    assert scene.shape == (int(mosaic.sizes["y"]), int(mosaic.sizes["x"]))
    assert scene_transform(scene.ds).almost_equals(scene_transform(mosaic))
    np.testing.assert_array_equal(cube(scene.ds).values, cube(mosaic).values)  # the same pixels, gaps included
    store_labels = mosaic["labels"].values.reshape(-1)
    assert np.array_equal(store_labels[scene.index], scene.labels)  # each tile's labels at its place in the mosaic
    assert scene.index.size == sum(s.index.size for s in tiles.scenes) == 5672
    record = scene.record()
    assert [t["name"] for t in record["tiles"]] == [s.name for s in tiles.scenes]
    assert join_grid_tiles(tiles, log=said.append).scenes[0].labels_sha256 == scene.labels_sha256  # evaluate finds it again


def test_a_split_holding_out_whole_scenes_keeps_the_tiles_apart(tiles) -> None:
    assert join_for_split(tiles, "scenes:0.7", log=print) is tiles
    assert len(join_for_split(tiles, "fraction:0.1", log=lambda m: None).scenes) == 1


def test_scattered_or_overlapping_tiles_stay_apart(tiles, data_dir, tmp_path) -> None:
    corners = [s for s in tiles.scenes if s.name in ("enmap_potsdam_tile_64_0", "enmap_potsdam_tile_192_160")]
    scattered = type(tiles)(corners, tiles.legend, tiles.source)
    assert join_grid_tiles(scattered, log=print) is scattered  # a 5 × 6-tile union for 2 tiles
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for name in ("a", "b"):  # one tile twice: every pixel in two tiles
        shutil.copy(_tiles(data_dir)[0], tmp_path / "images" / f"{name}.tif")
        shutil.copy(data_dir / "enmap_potsdam" / "labels" / _tiles(data_dir)[0].name, tmp_path / "labels" / f"{name}.tif")
    twice = load_training_data(sorted((tmp_path / "images").glob("*.tif")), _rasters(tmp_path / "labels" / "*.tif"))
    assert join_grid_tiles(twice, log=print) is twice


def test_train_on_joined_tiles_and_evaluate_them(data_dir, tmp_path) -> None:
    labels = str(data_dir / "enmap_potsdam" / "labels" / "*.tif")
    images = str(data_dir / "enmap_potsdam" / "images" / "*.tif")
    args = ("--split", "fraction:0.1", "--model", "tiny", "--epochs", "1", "--out", tmp_path / "b", "--quiet")
    r = run_cli("train", images, "--labels", labels, *args)
    assert r.returncode == 0, r.stderr
    assert "18 scenes are tiles of one grid" in r.stderr
    meta = json.loads((tmp_path / "b" / "bundle.json").read_text())
    (joined,) = meta["train_config"]["scenes"]
    assert len(joined["tiles"]) == 18 and joined["shape"] == [192, 160]
    r = run_cli("evaluate", tmp_path / "b", images, "--labels", labels, "--out", tmp_path / "eval.json")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "eval.json").read_text())
    # the joined scene is recognised: its training pixels are left out and the score is the bundle's own
    assert m["n_test"] == meta["metrics"]["n_test"]
    assert m["overall_accuracy"] == pytest.approx(meta["metrics"]["overall_accuracy"])
    some = [str(p) for p in _tiles(data_dir)[:5]]  # part of the joined scene: its test pixels cannot be found
    r = run_cli("evaluate", tmp_path / "b", *some, "--labels", labels, "--out", tmp_path / "part.json")
    assert r.returncode != 0 and not (tmp_path / "part.json").exists()
    assert "evaluate all of those tiles together" in r.stderr and "Traceback" not in r.stderr
