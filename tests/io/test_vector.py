"""Vector labels on the 18 real EnMAP Potsdam tiles: the land-cover raster vectorised into polygons and
into points, written as GeoPackages in EPSG:4326 with class names, rasterised back onto each tile's
grid (UTM 33N) — and the refusals, one line each."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.features import shapes
from shapely.geometry import Point, box, shape

from geohsi.errors import DataError, GeohsiWarning, GeoreferenceError, UsageError
from geohsi.io.vector import read_vector_labels
from geohsi.training.data import LabelSource, load_training_data
from tests.conftest import run_cli

NAMES = ["roof", "pavement", "low vegetation", "tree", "soil", "water"]  # ids 1..6 of the raster


def _landcover(data_dir: Path) -> tuple[np.ndarray, object, object]:
    with rasterio.open(data_dir / "enmap_potsdam" / "enmap_landcover_unstyled.tif") as src:
        return src.read(1).astype(np.int32), src.transform, src.crs


@pytest.fixture(scope="module")
def vectors(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The label raster as polygons (rasterio.features.shapes) and as one point per labelled pixel centre, in EPSG:4326."""
    lab, tf, crs = _landcover(data_dir)
    out = tmp_path_factory.mktemp("vectors")
    polys = [(shape(g), NAMES[int(v) - 1]) for g, v in shapes(lab, mask=lab > 0, transform=tf)]
    gpd.GeoDataFrame({"cover": [n for _, n in polys]}, geometry=[g for g, _ in polys], crs=crs).to_crs("EPSG:4326").to_file(
        out / "fields.gpkg", driver="GPKG"
    )
    rows, cols = np.nonzero(lab)
    xs, ys = rasterio.transform.xy(tf, rows, cols)
    points = gpd.GeoDataFrame(
        {"cover": [NAMES[int(v) - 1] for v in lab[rows, cols]]},
        geometry=[Point(x, y) for x, y in zip(xs, ys, strict=True)],
        crs=crs,
    )
    points.to_crs("EPSG:4326").to_file(out / "points.gpkg", driver="GPKG")
    return {"polygons": out / "fields.gpkg", "points": out / "points.gpkg"}


def _tiles(data_dir: Path) -> list[Path]:
    tiles = sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))
    assert len(tiles) == 18
    return tiles


def _agreement(data, data_dir: Path) -> dict[str, float]:
    """Per tile: share of the label tile's labelled pixels whose rasterised class (by name) is the same."""
    names = {c.id: c.name for c in data.legend}
    out = {}
    for s in data.scenes:
        with rasterio.open(data_dir / "enmap_potsdam" / "labels" / f"{s.name}.tif") as src:
            ref = src.read(1).astype(np.int64).reshape(-1)
        got = np.zeros(ref.size, np.int64)
        got[s.index] = [NAMES.index(names[int(i)]) + 1 for i in s.labels]
        out[s.name] = float((got[ref > 0] == ref[ref > 0]).mean())
    return out


@pytest.mark.parametrize(("kind", "floor"), [("polygons", 0.995), ("points", 1.0)])
def test_vector_labels_rasterise_onto_each_tile_like_the_raster(vectors, data_dir, kind, floor) -> None:
    data = load_training_data(_tiles(data_dir), LabelSource.from_options(vectors[kind], label_field="cover"))
    assert sorted(c.name for c in data.legend) == sorted(NAMES)  # names sorted → ids 1..6
    agree = _agreement(data, data_dir)
    assert min(agree.values()) >= floor, {k: v for k, v in agree.items() if v < floor}
    assert sum(s.index.size for s in data.scenes) == 5672  # every labelled pixel, all inside the tiles


def test_class_names_order_the_ids_and_all_touched_labels_more(vectors, data_dir) -> None:
    vec = read_vector_labels(vectors["polygons"], "cover", class_names=NAMES)
    assert [(c.id, c.name) for c in vec.legend] == [(i + 1, n) for i, n in enumerate(NAMES)]
    lab, tf, crs = _landcover(data_dir)
    centre = vec.rasterize(crs, tf, lab.shape)
    assert np.array_equal(centre, lab)  # the polygons trace the pixels: the centre rule gives the raster back
    # a field smaller than a pixel, off every pixel centre: the centre rule labels nothing, all-touched its pixel
    sliver = gpd.GeoDataFrame({"cover": ["soil"]}, geometry=[box(tf.c + 3, tf.f - 27, tf.c + 12, tf.f - 18)], crs=crs)
    sliver.to_file(vectors["polygons"].with_name("sliver.gpkg"), driver="GPKG")
    for all_touched, n in ((False, 0), (True, 1)):
        v = read_vector_labels(vectors["polygons"].with_name("sliver.gpkg"), "cover", all_touched=all_touched)
        assert int((v.rasterize(crs, tf, lab.shape) > 0).sum()) == n


def test_the_bundle_records_the_label_source(vectors, data_dir, tmp_path) -> None:
    r = run_cli(
        "train",
        *map(str, _tiles(data_dir)[:6]),
        "--labels",
        vectors["points"],
        "--label-field",
        "cover",
        "--model",
        "tiny",
        "--epochs",
        "1",
        "--split",
        "fraction:0.5",
        "--out",
        tmp_path / "b",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert "12 of 18" not in r.stderr  # features outside the six tiles are counted:
    assert "features of" in r.stderr and "lie outside every scene" in r.stderr
    tc = json.loads((tmp_path / "b" / "bundle.json").read_text())["train_config"]
    assert tc["labels"]["kind"] == "vector" and tc["labels"]["field"] == "cover" and tc["labels"]["rule"] == "pixel centre"
    # the six tiles lie on one grid: recorded as the one scene they were joined into, each tile within it
    (joined,) = tc["scenes"]
    assert len(tc["labels"]["sha256"]) == 64 and len(joined["tiles"]) == 6
    assert {s["name"] for s in joined["tiles"]} == {p.stem for p in _tiles(data_dir)[:6]}
    assert all(s["crs"] == "EPSG:32633" and len(s["identity"]) == 64 for s in [joined, *joined["tiles"]])
    # evaluate finds the joined scene's test pixels whatever order the tiles come in (reversed, they had been
    # refused as "trained as one of the 6 tiles joined into …")
    from geohsi.evaluation import evaluate
    from geohsi.training.data import LabelSource

    held_out = json.loads((tmp_path / "b" / "metrics.json").read_text())["n_test"]
    source = LabelSource.from_options(vectors["points"], label_field="cover")
    for order in (_tiles(data_dir)[:6], _tiles(data_dir)[:6][::-1]):
        assert evaluate(tmp_path / "b", order, labels=source)["n_test"] == held_out


def _gpkg(tmp_path: Path, values: list, *, crs: str = "EPSG:32633", x0: float = 364095.0, y0: float = 5809950.0) -> Path:
    pts = [Point(x0 + 30 * i, y0) for i in range(len(values))]
    path = tmp_path / "v.gpkg"
    gpd.GeoDataFrame({"crop": values}, geometry=pts, crs=crs).to_file(path, driver="GPKG")
    return path


def test_bad_vector_labels_are_one_line_each(tmp_path, data_dir) -> None:
    tiles = _tiles(data_dir)[:2]
    with pytest.raises(UsageError, match=r"v\.gpkg has no field 'kind'; its fields are 'crop'; pass one with --label-field"):
        load_training_data(tiles, LabelSource.from_options(_gpkg(tmp_path, ["a", "b"]), label_field="kind"))
    with pytest.warns(
        GeohsiWarning, match=r"2 of 4 features have no class in 'crop' \(empty, NaN or 0\) or no geometry; skipped"
    ):
        read_vector_labels(_gpkg(tmp_path, ["a", None, "", "b"]), "crop")
    with pytest.raises(DataError, match=r"no feature has a class in field 'crop' \(2 empty, NaN or 0\)"):
        read_vector_labels(_gpkg(tmp_path, [None, ""]), "crop")
    far = _gpkg(tmp_path, ["a", "b"], x0=500000.0, y0=4000000.0)
    with pytest.raises(
        DataError,
        match=r"no feature of .*v\.gpkg \(500000, 4e\+06, 500030, 4e\+06 in EPSG:32633\) falls on .*scenes \(enmap_potsdam_tile",
    ):
        load_training_data(tiles, LabelSource.from_options(far, label_field="crop"))
    with pytest.raises(UsageError, match="need --label-field"):
        LabelSource.from_options(far)


def test_class_ids_kept_as_text_are_ids_and_class_names_must_cover_them(tmp_path) -> None:
    """GeoJSON/CSV/Shapefile often keep ids as text: "1", "2", "10" had become names in string order (class 2 was
    "10"); and --class-names shorter than the ids had been dropped without a word (class_<id>)."""
    legend = read_vector_labels(_gpkg(tmp_path, ["1", "2", "10", "2", " 3.0 "]), "crop").legend
    assert legend.ids.tolist() == [1, 2, 3, 10] and list(legend.names) == ["class_1", "class_2", "class_3", "class_10"]
    with pytest.warns(GeohsiWarning, match="1 of 3 features have no class"):
        names = read_vector_labels(_gpkg(tmp_path, ["1", "2", ""]), "crop", class_names=["wheat", "maize"]).legend
    assert list(names.names) == ["wheat", "maize"]
    with pytest.raises(UsageError, match=r"--class-names gives 1 names but the labels hold classes up to 336"):
        read_vector_labels(_gpkg(tmp_path, [100, 336]), "crop", class_names=["x"])
    with pytest.raises(UsageError, match=r"--class-names gives 2 names but the labels hold classes up to 3"):
        read_vector_labels(_gpkg(tmp_path, [1, 2, 3]), "crop", class_names=["wheat", "maize"])
    assert list(read_vector_labels(_gpkg(tmp_path, ["1a", "2"]), "crop").legend.names) == ["1a", "2"]  # names stay names
    assert list(read_vector_labels(_gpkg(tmp_path, ["١", "٢"]), "crop").legend.names) == ["١", "٢"]  # not ASCII: names
    with pytest.raises(DataError, match="not class ids 1..65535"):  # not names in string order
        read_vector_labels(_gpkg(tmp_path, ["2", "99999999999999999999"]), "crop")


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the label raster lacks a CRS on purpose
def test_a_label_raster_without_crs_is_refused_for_a_georeferenced_scene(tmp_path, data_dir) -> None:
    tile = _tiles(data_dir)[0]
    (tmp_path / "labels").mkdir()
    with rasterio.open(data_dir / "enmap_potsdam" / "labels" / tile.name) as src:
        profile = {k: v for k, v in src.profile.items() if k not in ("crs", "transform")}
        with rasterio.open(tmp_path / "labels" / tile.name, "w", **profile) as dst:
            dst.write(src.read())
    with pytest.raises(
        GeoreferenceError, match=r"labels .*enmap_potsdam_tile_128_0\.tif have no CRS but scene .* is in EPSG:32633"
    ):
        load_training_data([tile], LabelSource.from_options(str(tmp_path / "labels" / "*.tif")))


def test_ingest_rasterises_vector_labels_into_the_store(vectors, data_dir, tmp_path) -> None:
    from geohsi.scene import open_scene, scene_legend

    tiles = _tiles(data_dir)
    r = run_cli(
        "ingest",
        *map(str, tiles),
        "--labels",
        vectors["polygons"],
        "--label-field",
        "cover",
        "--class-names",
        ",".join(NAMES),
        "--out",
        tmp_path / "m.zarr",
    )
    assert r.returncode == 0, r.stderr
    ds = open_scene(tmp_path / "m.zarr")
    assert [(c.id, c.name) for c in scene_legend(ds)] == [(i + 1, n) for i, n in enumerate(NAMES)]
    lab, tf, _ = _landcover(data_dir)
    col, row = ~tf @ (float(ds.x[0]), float(ds.y[0]))
    r0, c0 = int(row), int(col)
    assert np.array_equal(ds["labels"].values, lab[r0 : r0 + ds.sizes["y"], c0 : c0 + ds.sizes["x"]])
    r = run_cli("ingest", str(tiles[0]), "--labels", vectors["polygons"], "--out", tmp_path / "n.zarr")
    assert r.returncode == 2 and "need --label-field NAME" in r.stderr and not (tmp_path / "n.zarr").exists()
