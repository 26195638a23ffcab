"""Training data from many scenes: the 18 real EnMAP tiles as they come with their label tiles (paired by
name, warped when their grid differs), splits drawn jointly over scenes or holding whole scenes out,
sensors combined through Sentinel-2 bands, and samples streamed chunk by chunk."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.warp import Resampling, calculate_default_transform, reproject

from geohsi.errors import BandMismatchError, UsageError
from geohsi.ingestion import open_source
from geohsi.spectral.transform import SpectralTransform
from geohsi.spectral.windows import CachedCube, ChunkCache, WindowSource
from geohsi.splits import parse_split
from geohsi.training.config import resolve_train_config
from geohsi.training.data import LabelSource, load_training_data
from geohsi.training.finetune import train
from geohsi.training.loader import chunk_grouped_order, epoch_batches, epoch_order
from tests.conftest import run_cli

TINY = {"model": "tiny", "epochs": 1, "batch_size": 16, "adapter": "lora"}


def _tiles(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))


def _rasters(data_dir: Path) -> LabelSource:
    return LabelSource.from_options(str(data_dir / "enmap_potsdam" / "labels" / "*.tif"))


@pytest.fixture(scope="module")
def tiles(data_dir):
    return load_training_data(_tiles(data_dir), _rasters(data_dir))


def test_label_tiles_pair_by_name_and_read_as_they_are(tiles, data_dir) -> None:
    assert len(tiles.scenes) == 18 and [c.name for c in tiles.legend] == [f"class_{i}" for i in range(1, 7)]
    for s in tiles.scenes:
        with rasterio.open(data_dir / "enmap_potsdam" / "labels" / f"{s.name}.tif") as src:
            ref = src.read(1).astype(np.int64).reshape(-1)
        assert np.array_equal(s.index, np.flatnonzero(ref)) and np.array_equal(s.labels, ref[ref > 0]) and s.note == ""
    assert sum(s.index.size for s in tiles.scenes) == 5672


def test_class_names_name_store_labels_and_must_name_every_class(data_dir, ip_scene) -> None:
    """--class-names had been ignored for a store's labels (classes stayed class_1…), and two names for
    six raster classes left four of them class_3…class_6, with no message."""
    names = tuple(f"crop {i}" for i in range(1, 17))
    data = load_training_data([ip_scene], LabelSource.from_options(class_names=names))
    assert [c.name for c in data.legend] == list(names)
    with pytest.raises(
        UsageError, match=r"--class-names gives 2 names but the labels hold classes up to 16; give one name per class 1\.\.16"
    ):
        load_training_data([ip_scene], LabelSource.from_options(class_names=names[:2]))
    rasters = LabelSource.from_options(str(data_dir / "enmap_potsdam" / "labels" / "*.tif"), class_names=("a", "b"))
    with pytest.raises(UsageError, match="--class-names gives 2 names but the labels hold classes up to 6"):
        load_training_data(_tiles(data_dir)[:3], rasters)


def test_a_label_raster_on_another_grid_is_warped_with_nearest_neighbour(tmp_path, data_dir) -> None:
    tile = _tiles(data_dir)[3]
    (tmp_path / "labels").mkdir()
    with rasterio.open(data_dir / "enmap_potsdam" / "labels" / tile.name) as src:
        tf, w, h = calculate_default_transform(src.crs, "EPSG:3035", src.width, src.height, *src.bounds)
        out = np.zeros((h, w), np.float32)
        reproject(
            src.read(1),
            out,
            src_transform=src.transform,
            src_crs=src.crs,
            dst_transform=tf,
            dst_crs="EPSG:3035",
            resampling=Resampling.nearest,
        )
        ref = src.read(1)
        profile = dict(src.profile, crs="EPSG:3035", transform=tf, width=w, height=h)
    with rasterio.open(tmp_path / "labels" / tile.name, "w", **profile) as dst:
        dst.write(out, 1)
    said: list[str] = []
    data = load_training_data([tile], LabelSource.from_options(str(tmp_path / "labels" / "*.tif")), log=said.append)
    assert said == [f"labels {tmp_path / 'labels' / tile.name} reprojected onto the grid of {tile.stem} (nearest neighbour)"]
    got = np.zeros(ref.size, np.int64)
    got[data.scenes[0].index] = data.scenes[0].labels
    lab = ref.reshape(-1) > 0
    assert set(np.unique(got)) <= set(np.unique(ref).astype(int))  # never a blended, made-up class
    assert (got[lab] == ref.reshape(-1)[lab]).mean() > 0.9  # twice warped: the borders move, the classes stay


def test_scenes_split_holds_whole_scenes_out(tiles) -> None:
    split = tiles.split("scenes:0.7", seed=1)
    layout = split.scenes
    sides = [set(layout.to_local(getattr(split, s))[0].tolist()) for s in ("train", "val", "test")]
    assert all(not (a & b) for i, a in enumerate(sides) for b in sides[i + 1 :])  # no scene on two sides
    assert sides[2] and sides[0] and len(set().union(*sides)) <= 18
    share = split.train.size + split.val.size
    assert 0.55 < share / (share + split.test.size) < 0.85
    assert tiles.split("scenes:0.7", seed=1) == split and tiles.split("scenes:0.7", seed=2) != split


def test_pixel_splits_are_drawn_jointly_over_the_scenes(tiles, data_dir) -> None:
    split = tiles.split("per-class:10", seed=0)
    assert all(n == 10 for n in np.bincount(np.concatenate([split.train_labels, split.val_labels]))[1:])
    blocks = tiles.split("blocks:16", seed=0, window=5)
    layout = blocks.scenes
    assert layout.origins == tuple(sorted(layout.origins)) and all(o % 16 == 0 for o in layout.origins)
    for k, _, local in layout.groups(blocks.train):  # no training pixel within the gap of a held-out pixel of its scene
        held = np.concatenate([blocks.val, blocks.test])
        hk, hl = layout.to_local(held)
        w = layout.shapes[k][1]
        tr, te = np.divmod(local, w), np.divmod(hl[hk == k], w)
        if te[0].size:
            d = np.maximum(np.abs(tr[0][:, None] - te[0][None]), np.abs(tr[1][:, None] - te[1][None]))
            assert d.min() > 2
    with pytest.raises(UsageError, match=r"split scenes:0\.5 holds out whole scenes but training has 1"):
        load_training_data(_tiles(data_dir)[:1], _rasters(data_dir)).split("scenes:0.5")
    assert parse_split("scenes:0.7").train_share == 0.7


def test_training_spectra_are_the_training_pixels_read_in_place(tiles) -> None:
    """What ``--spectral lda`` is fitted on: the spectrum of every training pixel, read from its own
    tile, in the split's order; no validation or test pixel; a seeded subset when capped."""
    from geohsi.spectral.normalize import physical_cube

    split = tiles.split("scenes:0.7", seed=1, val_fraction=0.2)
    values, labels = tiles.spectra(split)
    assert values.shape[0] == split.train.size and np.array_equal(labels, split.train_labels)
    scene, local = split.scenes.to_local(split.train)
    for k in np.unique(scene):
        cube = np.asarray(physical_cube(tiles.scenes[k].ds).values)
        rows, cols = np.divmod(local[scene == k], tiles.scenes[k].shape[1])
        np.testing.assert_array_equal(values[scene == k], cube[:, rows, cols].T)
    held = set(split.scenes.to_local(np.concatenate([split.val, split.test]))[0].tolist())
    assert held and not held & set(scene.tolist())  # the held-out tiles are never read
    few, few_labels = tiles.spectra(split, max_pixels=100, seed=3)
    rows_of = {values[i].tobytes(): labels[i] for i in range(len(labels))}
    assert len(few) == 100 and all(rows_of[v.tobytes()] == c for v, c in zip(few, few_labels, strict=True))
    assert np.array_equal(tiles.spectra(split, max_pixels=100, seed=3)[0], few)


def test_sensors_combine_through_sentinel2_bands_and_pca_refuses(data_dir, tmp_path) -> None:
    from geohsi.scene import add_labels, write_scene
    from geohsi.spectral.simulate import simulate_sensor

    tile = _tiles(data_dir)[3]
    av = open_source(data_dir / "aviris_ng" / "ang20160910t185702_2rdn_img.hdr")
    own = load_training_data([tile], _rasters(data_dir)).scenes[0]
    grid = np.zeros(own.shape, np.int64)
    grid.reshape(-1)[own.index] = own.labels
    sim = simulate_sensor(open_source(tile), av["wavelength"].values, np.full(425, 5.5), good_band=av["good_band"].values)
    other = write_scene(add_labels(sim, grid), tmp_path / "as_aviris_ng.zarr")
    ingested = tmp_path / "own.zarr"
    write_scene(add_labels(open_source(tile), grid), ingested)
    both = load_training_data([ingested, other])
    t = SpectralTransform.fit_many([s.ds for s in both.scenes], "s2")
    a, b = (np.asarray(t.apply(s.ds).values) for s in both.scenes)
    ok = np.isfinite(a) & np.isfinite(b)
    assert float(np.median(np.abs(a - b)[ok])) < 0.05  # the same surface, two sensors, one model input
    with pytest.raises(
        BandMismatchError,
        match=r"PCA needs one band table, but .*as_aviris_ng\.zarr \(425 bands\) .*224 bands\) differ; train with --spectral s2",
    ):
        SpectralTransform.fit_many([s.ds for s in both.scenes], "pca")
    out = train(
        [ingested, other],
        resolve_train_config(spectral="s2", head="patch", split="fraction:0.5", **TINY),
        out=tmp_path / "b",
        progress=False,
        log=lambda m: None,
    )
    assert len(json.loads((out / "bundle.json").read_text())["train_config"]["scenes"]) == 2


def test_pairing_problems_are_one_line(tmp_path, data_dir) -> None:
    (tmp_path / "other_name.tif").write_bytes((data_dir / "enmap_potsdam" / "labels" / _tiles(data_dir)[0].name).read_bytes())
    with pytest.raises(UsageError, match=r"no label raster named like scene\(s\) enmap_potsdam_tile_128_0 among --labels"):
        load_training_data(_tiles(data_dir)[:1], LabelSource.from_options(str(tmp_path / "*.tif")))
    with pytest.raises(UsageError, match=r"no file matches '.*nothing/\*\.tif'"):
        load_training_data(_tiles(data_dir)[:1], LabelSource.from_options(str(tmp_path / "nothing" / "*.tif")))
    with pytest.raises(UsageError, match="have one name 'enmap_potsdam_tile_128_0'"):
        load_training_data([_tiles(data_dir)[0], _tiles(data_dir)[0]], _rasters(data_dir))


def test_a_cached_cube_reads_what_the_scene_holds(data_dir) -> None:
    ds = open_source(_tiles(data_dir)[0], chunks=12)
    channels = SpectralTransform.fit(ds, "pca").apply(ds)
    cube, full = (
        CachedCube(channels.data, cache=ChunkCache(max_bytes=3 * 12 * 12 * 12 * 4)),
        np.asarray(channels.values, np.float32),
    )
    for ys, xs in ((slice(0, 32), slice(0, 32)), (slice(5, 17), slice(11, 30)), (slice(30, 32), slice(0, 1))):
        np.testing.assert_array_equal(cube[:, ys, xs], full[:, ys, xs])
    assert len(cube.cache._items) <= 3
    idx = np.array([0, 33, 31 * 32 + 31, 500])
    np.testing.assert_array_equal(WindowSource(cube, 7, 16).windows(idx), WindowSource(full, 7, 16).windows(idx))
    # streamed training reads raw bands and maps only the window's pixels (PixelMap): the same channels
    from geohsi.scene import cube as raw_cube

    pm = t.pixel_map(ds) if (t := SpectralTransform.fit(ds, "pca")) else None
    mapped = CachedCube(raw_cube(ds).data[pm.bands], pm, ChunkCache())
    assert mapped.shape == full.shape
    np.testing.assert_allclose(mapped[:, 3:29, 5:31], full[:, 3:29, 5:31], atol=1e-5)
    np.testing.assert_allclose(np.asarray(mapped.lazy.compute()), full, atol=1e-5)


def test_a_streamed_epoch_visits_chunks_one_after_another() -> None:
    keys = np.repeat(np.arange(6), [5, 1, 7, 3, 2, 4])
    order = chunk_grouped_order(keys, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(keys.size))
    assert np.count_nonzero(np.diff(keys[order])) == 5  # each chunk's samples come together
    assert not np.array_equal(order, chunk_grouped_order(keys, np.random.default_rng(1)))


def test_worker_processes_cut_the_same_batches(data_dir, tmp_path) -> None:
    """Streamed (two loader workers) or in this process: batch k is the same tensor."""
    from geohsi.heads import get_head

    data = load_training_data(_tiles(data_dir)[:4], _rasters(data_dir))
    split = data.split("fraction:0.5")
    t = SpectralTransform.fit_many([s.ds for s in data.scenes], "pca")
    cubes = [CachedCube(t.apply(s.ds).data) for s in data.scenes]
    pos = data.legend.positions()
    targets = np.asarray([pos[int(c)] for c in split.train_labels])
    samples = (
        get_head("dense")
        .from_options(window=15, input_size=16)
        .training_samples(cubes, split, targets, seed=0, epochs=1, log=print)
    )
    order = epoch_order(samples, 0, 0, stream=True)
    here = list(epoch_batches(samples, 0, order, batch_size=4, seed=0, augment=True, workers=0))
    there = list(epoch_batches(samples, 0, order, batch_size=4, seed=0, augment=True, workers=2))
    assert len(here) == len(there) > 2
    for (x1, y1), (x2, y2) in zip(here, there, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_train_and_evaluate_on_the_tiles_as_they_come(data_dir, tmp_path) -> None:
    labels = str(data_dir / "enmap_potsdam" / "labels" / "*.tif")
    images = str(data_dir / "enmap_potsdam" / "images" / "*.tif")
    r = run_cli(
        "train",
        images,
        "--labels",
        labels,
        "--split",
        "scenes:0.7",
        "--model",
        "tiny",
        "--epochs",
        "1",
        "--out",
        tmp_path / "b",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert "in 18 scenes" in r.stderr
    meta = json.loads((tmp_path / "b" / "bundle.json").read_text())
    r = run_cli("evaluate", tmp_path / "b", images, "--labels", labels, "--out", tmp_path / "eval.json", env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "eval.json").read_text())
    # each row names its tile in a log 80 columns wide (they had all been cut to 'enmap_potsdam_tile_…')
    first_cells = "".join(line.split("│")[1].strip() for line in r.stdout.splitlines() if line.startswith("│"))
    assert all(row["name"] in first_cells for row in m["scenes"]), r.stdout
    # every tile's training pixels are left out: the pooled score is the bundle's own test score
    assert m["n_test"] == meta["metrics"]["n_test"] and m["overall_accuracy"] == pytest.approx(
        meta["metrics"]["overall_accuracy"]
    )
    rows = m["scenes"]
    assert len(rows) == len({r["name"] for r in rows}) and {r["scored"] for r in rows} == {"the training split's test pixels"}
    assert sum(r["n_test"] for r in rows) == m["n_test"]

    # a tile whose every labelled pixel trained the bundle: said so, not "no valid labelled pixels"
    stems = sorted(p.stem for p in (data_dir / "enmap_potsdam" / "images").glob("*.tif"))
    trained_only = sorted(set(stems) - {r["name"] for r in rows})[0]
    d = data_dir / "enmap_potsdam"
    r = run_cli("evaluate", tmp_path / "b", d / "images" / f"{trained_only}.tif", "--labels", labels)
    assert r.returncode == 9 and "Traceback" not in r.stderr, r.stderr  # DataError
    assert (
        f"every labelled pixel of {d / 'images' / trained_only}.tif trained or validated the bundle (split scenes:0.7)"
        in r.stderr
    )

    # a test tile's image with its top half masked (another date, clouds), the same labels: the
    # masked test pixels are left out, not classified from nodata and scored
    tested = max(rows, key=lambda row: row["n_test"])
    masked = tmp_path / "masked"
    (masked / "labels").mkdir(parents=True)
    (masked / "labels" / f"{tested['name']}.tif").write_bytes((d / "labels" / f"{tested['name']}.tif").read_bytes())
    with rasterio.open(d / "images" / f"{tested['name']}.tif") as src:
        cube, profile = src.read(), src.profile
    cube[:, : cube.shape[1] // 2] = profile["nodata"]
    with rasterio.open(masked / f"{tested['name']}.tif", "w", **profile) as dst:
        dst.write(cube)
    r = run_cli(
        "evaluate",
        tmp_path / "b",
        masked / f"{tested['name']}.tif",
        "--labels",
        masked / "labels" / "*.tif",
        "--out",
        tmp_path / "m.json",
    )
    assert r.returncode == 0, r.stderr
    left_out = re.search(r"(\d+) of the (\d+) test pixels of .* are nodata in this image; they are not scored", r.stderr)
    assert left_out and int(left_out[2]) == tested["n_test"] and 0 < int(left_out[1]) < tested["n_test"], r.stderr
    scored = json.loads((tmp_path / "m.json").read_text())["n_test"]
    assert scored == tested["n_test"] - int(left_out[1])
    with rasterio.open(d / "labels" / f"{tested['name']}.tif") as lab:
        assert scored <= np.count_nonzero(lab.read(1)[lab.height // 2 :])  # only the unmasked half can be scored

    # a tile with its labels corrected by one pixel: a warning where its training pixels now count, none
    # for a tile held out whole (it taught the bundle nothing)
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    for name in (tested["name"], trained_only):
        with rasterio.open(d / "labels" / f"{name}.tif") as src:
            lab, profile = src.read(1), src.profile
        lab[tuple(np.argwhere(lab > 0)[0])] = 0
        with rasterio.open(fixed / f"{name}.tif", "w", **profile) as dst:
            dst.write(lab, 1)
    for name, warned in ((tested["name"], False), (trained_only, True)):
        r = run_cli("evaluate", tmp_path / "b", d / "images" / f"{name}.tif", "--labels", fixed / f"{name}.tif")
        assert r.returncode == 0 and ("with other labels than it trained with" in r.stderr) is warned, r.stderr


def _small_store(path: Path, *, x0: float = 500_000.0, size: int = 40, nodata_rows: int = 0) -> Path:
    """A 4-band reflectance store of ``size``² 10 m pixels in UTM 33N, its first ``nodata_rows`` rows nodata."""
    from affine import Affine

    from geohsi.scene import make_scene, write_scene

    data = np.random.default_rng(0).random((4, size, size)).astype("float32") + 0.1
    data[:, :nodata_rows] = -9999.0
    ds = make_scene(
        data, wavelength=[500, 600, 700, 800], crs="EPSG:32633", transform=Affine(10, 0, x0, 0, -10, 5_000_000), nodata=-9999.0
    )
    write_scene(ds, path)
    return path


def _polygons(path: Path, boxes: list[tuple[float, float, float, float]], classes: list, **kw) -> Path:
    import geopandas as gpd
    from shapely.geometry import box

    gpd.GeoDataFrame({"cls": classes}, geometry=[box(*b) for b in boxes], crs="EPSG:32633").to_file(path, **kw)
    return path


def test_vector_class_names_ignore_case_and_spacing_and_unplaced_classes_are_said(tmp_path) -> None:
    """'Water', 'water ' and 'WATER' are one class (a warning says so); a polygon smaller than a pixel
    labels no pixel and its class is named in the log, as is a scene no feature reaches."""
    from geohsi.errors import GeohsiWarning
    from geohsi.io.vector import read_vector_labels

    a = _small_store(tmp_path / "a.zarr")
    far = _small_store(tmp_path / "far.zarr", x0=900_000.0)
    y = 5_000_000.0
    boxes = [(500_000, y - 100, 500_100, y), (500_100, y - 100, 500_200, y), (500_200, y - 100, 500_300, y),
             (500_000, y - 200, 500_100, y - 100), (500_301, y - 303, 500_304, y - 301)]  # fmt: skip
    labels = _polygons(tmp_path / "v.gpkg", boxes, ["Water", "water ", "WATER", "Forest", "tiny"])
    with pytest.warns(
        GeohsiWarning,
        match=r"spells 1 class\(es\) in several ways \(e.g. 'WATER', 'Water', 'water'\); each is taken as one class",
    ):
        notes: list[str] = []
        data = load_training_data([a, far], LabelSource.from_options(labels, label_field="cls"), log=notes.append)
    assert data.legend.names == ["Forest", "WATER", "tiny"]
    counts = np.bincount(data.scenes[0].labels)
    assert counts[1] == 100 and counts[2] == 300 and counts[3:].sum() == 0
    assert any("class(es) tiny of" in n and "label no valid pixel" in n for n in notes), notes
    assert any("1 scene(s) get no labelled pixel" in n and "far" in n for n in notes), notes
    with pytest.warns(GeohsiWarning, match="several ways"):
        named = read_vector_labels(labels, "cls", class_names=["forest", "water", "Tiny"])
    assert named.legend.names == ["forest", "water", "Tiny"] and sorted(set(named.frame["class_id"])) == [1, 2, 3]
    with pytest.raises(UsageError, match=r"--class-names lists one class twice \('water' and 'Water '\)"):
        read_vector_labels(labels, "cls", class_names=["water", "Water ", "forest", "tiny"])


def test_a_class_whose_features_all_lie_outside_the_scenes_is_said_so(tmp_path) -> None:
    """Its message had blamed polygons smaller than a pixel (and advised --all-touched, to points too)."""
    a = _small_store(tmp_path / "a.zarr")
    y = 5_000_000.0
    boxes = [(500_000, y - 100, 500_100, y), (700_000, y - 100, 700_100, y), (500_301, y - 303, 500_304, y - 301)]
    labels = _polygons(tmp_path / "v.gpkg", boxes, ["forest", "away", "tiny"])
    notes: list[str] = []
    load_training_data([a], LabelSource.from_options(labels, label_field="cls"), log=notes.append)
    assert any("class(es) away of" in n and "all their features lie outside every scene" in n for n in notes), notes
    assert any("class(es) tiny of" in n and "smaller than a pixel" in n for n in notes), notes
    assert not any("away" in n and "smaller than a pixel" in n for n in notes), notes


def test_scenes_that_each_hold_a_class_of_their_own_cannot_be_held_out_whatever_the_seed(tmp_path) -> None:
    """Each such scene trains (so its class is learnt): the message had advised another seed, which never helps."""
    from geohsi.errors import DataError

    a, b = _small_store(tmp_path / "a.zarr"), _small_store(tmp_path / "b.zarr", x0=600_000.0)
    y = 5_000_000.0
    labels = _polygons(tmp_path / "v.gpkg", [(500_000, y - 100, 500_100, y), (600_000, y - 100, 600_100, y)], ["wheat", "maize"])
    data = load_training_data([a, b], LabelSource.from_options(labels, label_field="cls"))
    for seed in range(4):
        with pytest.raises(
            DataError, match=r"leaves no test pixels .*; use more scenes or fraction:F \(a scene holding a class"
        ) as e:
            data.split("scenes:0.5", seed=seed)
        assert "seed" not in str(e.value)


def test_features_only_on_nodata_and_overlapping_scenes_under_a_spatial_split(tmp_path) -> None:
    from geohsi.errors import DataError, GeohsiWarning

    a = _small_store(tmp_path / "a.zarr", nodata_rows=10)
    y = 5_000_000.0
    on_nodata = _polygons(tmp_path / "n.gpkg", [(500_000, y - 100, 500_400, y)], ["water"])
    with pytest.raises(DataError, match=r"reach the scenes .* but label no valid pixel: they lie on nodata pixels"):
        load_training_data([a], LabelSource.from_options(on_nodata, label_field="cls"), log=lambda m: None)
    b = _small_store(tmp_path / "b.zarr", x0=500_050.0)  # the same ground, 5 pixels east
    cover = _polygons(tmp_path / "c.gpkg", [(500_000, y - 400, 500_250, y), (500_250, y - 400, 500_450, y)], ["p", "q"])
    data = load_training_data([a, b], LabelSource.from_options(cover, label_field="cls"), log=lambda m: None)
    with pytest.warns(GeohsiWarning, match=r"1 pair\(s\) of scenes overlap on the ground \(first: a and b\); split scenes:0.5"):
        data.split("scenes:0.5", seed=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.split("fraction:0.5", seed=0)  # a random split mixes the scenes anyway: nothing to say


def test_two_classes_of_one_name_are_refused_before_training(ip_scene, tmp_path) -> None:
    """The report refuses repeated class names after the last epoch; the data loader refuses them first."""
    import shutil

    import zarr

    from geohsi.errors import DataError

    store = shutil.copytree(ip_scene, tmp_path / "indian_pines.zarr")
    g = zarr.open_group(str(store), mode="r+")
    names = list(g["labels"].attrs["class_names"])
    names[8] = names[0]  # class 9 named like class 1
    g["labels"].attrs["class_names"] = names
    zarr.consolidate_metadata(str(store))
    with pytest.raises(DataError, match=r"classes 1 and 9 are both named 'Alfalfa'"):
        load_training_data([store], log=lambda m: None)


def test_two_training_images_under_one_label_map_are_told_apart_by_evaluate(ip_scene, tmp_path) -> None:
    """Two dates of one site share a label map (one digest): the last training scene had been taken for both, so
    evaluating the date that trained the bundle scored its training pixels as test pixels (OA on 10,249 pixels)."""
    from geohsi.errors import DataError
    from geohsi.evaluation import evaluate
    from geohsi.scene import open_scene, write_scene

    ds = open_scene(ip_scene)
    later = ds.copy()
    later["reflectance"] = (ds["reflectance"] * 1.03).astype(ds["reflectance"].dtype)
    date2 = write_scene(later, tmp_path / "ip_date2.zarr")
    b = train([ip_scene, date2], out=tmp_path / "b", split="scenes:0.5", val_fraction=0.0, progress=False,
              log=lambda m: None, **TINY)  # fmt: skip
    split = json.loads((tmp_path / "b" / "bundle.json").read_text())["train_config"]["scenes"]
    assert len(split) == 2 and split[0]["labels_sha256"] == split[1]["labels_sha256"]
    n = int((ds["labels"].values > 0).sum())
    both = evaluate(b, [ip_scene, date2])
    assert both["n_test"] == n  # the held-out date's pixels, not both dates' (20,498 before)
    assert [r["n_test"] for r in both.get("scenes", [both])] == [n]  # the date that trained the bundle scores nothing
    outcomes = []
    for s in (ip_scene, date2):
        try:
            outcomes.append(evaluate(b, s)["n_test"])
        except DataError as e:
            assert "trained or validated the bundle (split scenes:0.5): none was held out" in str(e)
            outcomes.append(0)
    assert sorted(outcomes) == [0, n]  # before: both n, the training date scored on its training pixels


def test_evaluate_reads_the_training_vector_file_in_the_bundles_class_order(tmp_path) -> None:
    """Trained with --class-names in an order of the user's, the same file evaluated without it had its classes
    numbered by name: another digest, so every labelled pixel was scored, training pixels included."""
    from affine import Affine

    from geohsi.evaluation import evaluate
    from geohsi.scene import make_scene, write_scene

    cube = np.random.default_rng(0).random((16, 40, 40)).astype("float32") + 0.1
    a = write_scene(make_scene(cube, wavelength=np.linspace(450, 2400, 16), crs="EPSG:32633",
                               transform=Affine(10, 0, 500_000, 0, -10, 5_000_000)), tmp_path / "a.zarr")  # fmt: skip
    y = 5_000_000.0
    boxes = [(500_000 + 80 * i, y - 400, 500_080 + 80 * i, y) for i in range(5)]
    labels = _polygons(tmp_path / "v.gpkg", boxes, ["water", "forest", "water", "forest", "urban"])
    source = LabelSource.from_options(labels, label_field="cls", class_names=("water", "urban", "forest"))
    b = train(a, labels=source, out=tmp_path / "b", split="fraction:0.5", progress=False, log=lambda m: None, **TINY)
    held_out = json.loads((tmp_path / "b" / "metrics.json").read_text())["n_test"]
    plain = LabelSource.from_options(labels, label_field="cls")  # no --class-names: the bundle's order is used
    assert evaluate(b, a, labels=plain)["n_test"] == held_out < int(load_training_data([a], plain).scenes[0].labels.size)
    with pytest.raises(UsageError, match=r"--class-names names classes of vector labels; evaluate reports the bundle"):
        evaluate(b, a, labels=LabelSource.from_options(class_names=("x", "y")))
