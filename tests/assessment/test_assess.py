"""``geohsi assess`` and :func:`geohsi.assessment.assess` (geohsi/assessment/assess.py): the worked example of
Olofsson et al. (2014) from a map raster and a points file, bad input (one line each), strata that are not the
map classes (Stehman 2014), and the census of a labelled scene."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from geohsi.assessment import assess, sample, stehman_estimate
from tests.assessment.conftest import CLASSES, COUNTS, MAPPED_PIXELS, SCALE, example_ids, example_points, write_class_tif
from tests.conftest import run_cli


def _ok(r) -> None:
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


def _one_line_error(r, *needles: str) -> str:
    """A failed command: non-zero exit, one line on stderr naming the problem, no traceback."""
    err = r.stderr.strip()
    assert r.returncode != 0, r.stdout
    assert err.count("\n") == 0 and err.startswith("geohsi: error:"), err
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in err, err
    return err


def _check_worked_example(rep: dict) -> None:
    """The paper's printed figures (to their printed precision) in a report; areas in hectares."""
    assert rep["estimator"].startswith("Olofsson") and rep["probability_sample"] is True
    assert rep["error_matrix"]["counts"] == COUNTS.tolist()
    assert rep["total_mapped_area_ha"] == pytest.approx(900_000)
    oa = rep["overall_accuracy"]
    assert round(oa["estimate"], 2) == 0.95 and round((oa["ci95"][1] - oa["ci95"][0]) / 2, 2) == 0.02
    printed = {  # name: (UA ± CI, PA ± CI (formula values where the print slipped, see test_estimators), area ± CI ha)
        "Deforestation": (0.88, 0.07, 0.75, 0.21, 21_158, 6_158),
        "Forest gain": (0.73, 0.10, 0.85, 0.25, 11_686, 3_756),
        "Stable forest": (0.93, 0.04, 0.93, 0.03, 285_770, 15_510),
        "Stable non-forest": (0.96, 0.02, 0.96, 0.02, 581_386, 16_282),
    }
    for c in rep["classes"]:
        ua, ua_ci, pa, pa_ci, area, area_ci = printed[c["name"]]
        half = {k: (c[k]["ci95"][1] - c[k]["ci95"][0]) / 2 for k in ("users_accuracy", "producers_accuracy", "area_ha")}
        assert (round(c["users_accuracy"]["estimate"], 2), round(half["users_accuracy"], 2)) == (ua, ua_ci), c["name"]
        assert (round(c["producers_accuracy"]["estimate"], 2), round(half["producers_accuracy"], 2)) == (pa, pa_ci), c["name"]
        assert (round(c["area_ha"]["estimate"]), round(half["area_ha"])) == (area, area_ci), c["name"]
    mapped = {c["name"]: c["mapped_area_ha"] for c in rep["classes"]}
    assert mapped == pytest.approx(dict(zip(CLASSES, MAPPED_PIXELS * 0.09, strict=True)))


def test_the_worked_example_comes_out_of_the_cli_from_a_map_and_a_points_file(example, tmp_path):
    tif, pts = example
    out = tmp_path / "report.json"
    r = run_cli("assess", tif, "--reference", pts, "--label-field", "ref", "--out", out)
    _ok(r)
    rep = json.loads(out.read_text())
    _check_worked_example(rep)
    assert rep["warnings"] == [] and "wrote" in r.stdout
    # the matrix CSV, the Markdown table and the PNG beside it
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    counts = [[int(float(r[c])) for c in CLASSES] for r in rows if r["table"] == "count"]
    assert counts == COUNTS.tolist()
    props = [[float(r[c]) for c in CLASSES] for r in rows if r["table"] == "area_proportion"]
    assert np.round(props, 4)[0].tolist() == [0.0176, 0.0, 0.0013, 0.0011]
    md = out.with_suffix(".md").read_text()
    assert "| Deforestation | 75 | 18,000.0 | 21,157.8 ± 6,157.6 | 0.880 ± 0.074 | 0.749 ± 0.213 |" in md
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_class_ids_and_a_points_file_in_another_crs_give_the_same_numbers(tmp_path):
    ids = example_ids()
    tif = write_class_tif(tmp_path / "change_map.tif", ids, CLASSES)
    pts = tmp_path / "points_wgs84.geojson"
    example_points(ids, names=False).to_crs("EPSG:4326").to_file(pts, driver="GeoJSON", engine="pyogrio")
    out = tmp_path / "report.json"
    _ok(run_cli("assess", tif, "--reference", pts, "--out", out))  # reprojected, not an error
    _check_worked_example(json.loads(out.read_text()))
    # a CSV with lon/lat columns, through the Python twin
    g = example_points(ids).to_crs("EPSG:4326")
    g.assign(lon=g.geometry.x, lat=g.geometry.y).drop(columns="geometry").to_csv(tmp_path / "points.csv", index=False)
    _check_worked_example(assess([tif], reference=tmp_path / "points.csv", log=lambda m: None))


def test_points_outside_every_map(example, tmp_path):
    tif, pts = example
    import geopandas as gpd

    g = gpd.read_file(pts)
    g.geometry = g.geometry.translate(xoff=1e6)
    g.to_file(tmp_path / "far.gpkg", driver="GPKG", engine="pyogrio")
    _one_line_error(
        run_cli("assess", tif, "--reference", tmp_path / "far.gpkg", "--out", tmp_path / "r.json"), "outside every map"
    )


def test_reference_field_missing_or_empty(example, tmp_path):
    tif, pts = example
    _one_line_error(
        run_cli("assess", tif, "--reference", pts, "--label-field", "truth", "--out", tmp_path / "r.json"),
        "'truth'",
        "--label-field",
    )
    import geopandas as gpd

    g = gpd.read_file(pts).assign(ref="")
    g.to_file(tmp_path / "unlabelled.gpkg", driver="GPKG", engine="pyogrio")
    _one_line_error(run_cli("assess", tif, "--reference", tmp_path / "unlabelled.gpkg", "--out", tmp_path / "r.json"), "is empty")
    assert not (tmp_path / "r.json").exists()


def test_unknown_class_names(example, tmp_path):
    tif, pts = example
    import geopandas as gpd

    g = gpd.read_file(pts)
    g.loc[:3, "ref"] = "Cloud"
    g.to_file(tmp_path / "cloudy.gpkg", driver="GPKG", engine="pyogrio")
    err = _one_line_error(
        run_cli("assess", tif, "--reference", tmp_path / "cloudy.gpkg", "--out", tmp_path / "r.json"), "'Cloud'"
    )
    assert "Forest gain" in err  # names the classes there are


def test_a_stratum_with_fewer_than_2_points_is_said_and_leaves_its_intervals_out(example, tmp_path):
    tif, pts = example
    import geopandas as gpd

    g = gpd.read_file(pts)
    keep = np.ones(len(g), bool)
    keep[np.flatnonzero(np.repeat(np.arange(4), COUNTS.sum(axis=1)) == 1)[1:]] = False  # 1 point left in 'Forest gain'
    g[keep].to_file(tmp_path / "thin.gpkg", driver="GPKG", engine="pyogrio")
    out = tmp_path / "r.json"
    r = run_cli("assess", tif, "--reference", tmp_path / "thin.gpkg", "--out", out)
    _ok(r)
    said = [ln for ln in r.stderr.splitlines() if ln.startswith("geohsi: warning:")]
    assert len(said) == 1 and "'Forest gain' has 1 sample point" in said[0] and "variance cannot be estimated" in said[0]
    rep = json.loads(out.read_text())
    assert any("has 1 sample point" in w for w in rep["warnings"])
    assert rep["overall_accuracy"]["se"] is None and rep["overall_accuracy"]["estimate"] is not None
    assert all(c["area_ha"]["ci95"] == [None, None] for c in rep["classes"])
    assert sum(c["area_ha"]["estimate"] for c in rep["classes"]) == pytest.approx(900_000)
    assert "has 1 sample point" in out.with_suffix(".md").read_text()


def test_unlabelled_points_are_left_out_with_a_warning(example, tmp_path):
    tif, pts = example
    import geopandas as gpd

    g = gpd.read_file(pts)
    g.loc[::50, "ref"] = None
    g.to_file(tmp_path / "partial.gpkg", driver="GPKG", engine="pyogrio")
    with pytest.warns(UserWarning, match="13 of 640 points"):
        rep = assess([tif], reference=tmp_path / "partial.gpkg", log=lambda m: None)
    assert rep["n_points"] == 627 and rep["n_points_file"] == 640


def test_a_stratum_whose_points_are_all_unlabelled_stays_in_the_population(tmp_path):
    """The design comes from every point the sample drew: a stratum left unlabelled keeps its area
    (taken as mapped, said in a warning, no intervals), instead of vanishing from the map's total."""
    import geopandas as gpd

    ids = np.repeat(np.arange(1, 5), [2000, 1500, 3000, 3500]).reshape(100, 100).astype("uint8")
    tif = write_class_tif(tmp_path / "m.tif", ids, CLASSES)
    drawn = sample([tif], n=80, seed=1, out=tmp_path / "p.gpkg", log=lambda m: None)
    g = gpd.read_file(drawn.path)
    g["ref"] = np.where(g["stratum"] == CLASSES[0], "", g["stratum"])
    g.to_file(tmp_path / "labelled.gpkg", driver="GPKG", engine="pyogrio")
    with pytest.warns(UserWarning) as said:
        rep = assess([tif], reference=tmp_path / "labelled.gpkg", log=lambda m: None)
    assert any("no sample point" in str(w.message) for w in said) and any("left out" in str(w.message) for w in said)
    mapped = np.array([c["mapped_area_ha"] for c in rep["classes"]])
    adjusted = np.array([c["area_ha"]["estimate"] for c in rep["classes"]])
    np.testing.assert_allclose(mapped, np.array([2000, 1500, 3000, 3500]) * 90.0)  # 1000 m × 900 m pixels
    np.testing.assert_allclose(adjusted, mapped)  # every labelled point agrees with its map class
    assert rep["classes"][0]["area_ha"]["ci95"] == [None, None] and rep["n_points"] < 80


def test_outputs_are_not_replaced_without_overwrite(example, tmp_path):
    from geohsi.errors import OutputError

    tif, pts = example
    out = tmp_path / "r.json"
    assess([tif], reference=pts, out=out, log=lambda m: None)
    out.with_suffix(".md").write_text("mine")
    _one_line_error(run_cli("assess", tif, "--reference", pts, "--out", out), "already exists", "--overwrite")
    with pytest.raises(OutputError):
        assess([tif], reference=pts, out=out, log=lambda m: None)
    assert out.with_suffix(".md").read_text() == "mine"  # nothing was touched
    assess([tif], reference=pts, out=out, overwrite=True, log=lambda m: None)
    assert "Deforestation" in out.with_suffix(".md").read_text()


def test_an_output_that_is_an_input_is_refused_even_with_overwrite(example, tmp_path):
    """``--reference labels.csv --out labels.json --overwrite`` had written the error matrix over the labelled points;
    ``sample --catalog catalog.json --out catalog.json --overwrite`` had replaced the batch's catalogue."""
    import geopandas as gpd

    tif, pts = example
    labels = tmp_path / "labels.csv"  # the labelled points as a CSV of lon/lat
    gdf = gpd.read_file(pts).to_crs(4326)
    gdf.drop(columns="geometry").assign(lon=gdf.geometry.x, lat=gdf.geometry.y).to_csv(labels, index=False)
    _ok(run_cli("assess", tif, "--reference", labels, "--out", tmp_path / "r.json"))  # a reference it reads
    before = labels.read_bytes()
    for flag in ((), ("--overwrite",)):  # without --overwrite it had said "pass --overwrite to replace it"
        _one_line_error(
            run_cli("assess", tif, "--reference", labels, "--out", tmp_path / "labels.json", *flag),
            "labels.csv beside it, which is also an input",
        )
    assert labels.read_bytes() == before and not (tmp_path / "labels.json").exists()
    (tmp_path / "t.json").write_text(json.dumps({"assets": {"map": {"href": f"./{tif.name}"}}}))
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"type": "Collection", "links": [{"rel": "item", "href": "./t.json"}]}))
    kept = catalog.read_bytes()
    for flag in ((), ("--overwrite",)):
        _one_line_error(run_cli("sample", "--catalog", catalog, "--n", "20", "--out", catalog, *flag),
                        f"--out {catalog} is also an input")  # fmt: skip
    assert catalog.read_bytes() == kept


@pytest.mark.parametrize("name", ["r.csv", "r.MD", "r.png"])
def test_an_out_named_like_a_sibling_is_refused_before_any_work(example, tmp_path, name):
    """The JSON would be written under the sibling's name, then the sibling over it (with --overwrite: the JSON lost)."""
    tif, pts = example
    _one_line_error(
        run_cli("assess", tif, "--reference", pts, "--out", tmp_path / name, "--overwrite"), "names the JSON report", "r.json"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["change_map.tif", "points.gpkg"]


def test_class_names_with_brackets_and_pipes_are_printed_and_tabled_as_written(tmp_path):
    """Names are data: rich markup dropped ``[lake]`` and failed on ``[/]`` (after the files were written),
    and a ``|`` split a Markdown row into one column too many."""
    names = ("Water [lake]", "Forest [/]", "Built-up [bold]x", "Crop|field")
    ids = example_ids()
    tif = write_class_tif(tmp_path / "map.tif", ids, names)
    example_points(ids, names=False).to_file(tmp_path / "points.gpkg", driver="GPKG", engine="pyogrio")
    r = run_cli("assess", tif, "--reference", tmp_path / "points.gpkg", "--out", tmp_path / "r.json", env={"COLUMNS": "200"})
    _ok(r)
    for n in names:
        assert n in r.stderr
    md = (tmp_path / "r.md").read_text().splitlines()
    rows = [ln for ln in md if ln.startswith("| ")]
    columns = {len(ln.replace("\\|", "").split("|")) for ln in rows[:5]}  # the class table: header and 4 classes
    assert len(columns) == 1, rows[:5]
    assert "| Crop\\|field |" in "\n".join(md)


def test_neither_or_both_references_is_a_usage_error(example, tmp_path):
    from geohsi.errors import UsageError

    tif, pts = example
    _one_line_error(run_cli("assess", tif, "--out", tmp_path / "r.json"), "--reference")
    with pytest.raises(UsageError, match="one of them"):
        assess([tif], reference=pts, reference_scene=pts)


# --------------------------------------------------------------------------- a sample drawn by geohsi sample


def _two_maps(tmp_path: Path, rng) -> tuple[Path, Path, np.ndarray]:
    """A 60 × 80 'old' map, a 'new' map that differs on 15 % of pixels, and the truth (20 % off the old map)."""
    old = rng.integers(1, 4, (6, 8)).repeat(10, 0).repeat(10, 1).astype("uint8")
    new = np.where(rng.random(old.shape) < 0.15, rng.integers(1, 4, old.shape), old).astype("uint8")
    truth = np.where(rng.random(old.shape) < 0.2, rng.integers(1, 4, old.shape), old)
    names = ("water", "forest", "urban")
    return write_class_tif(tmp_path / "old.tif", old, names), write_class_tif(tmp_path / "new.tif", new, names), truth


def _label(points_path: Path, truth: np.ndarray, out: Path) -> Path:
    import geopandas as gpd

    g = gpd.read_file(points_path)
    g["ref"] = [("water", "forest", "urban")[truth[r, c] - 1] for r, c in zip(g["row"], g["col"], strict=True)]
    g.to_file(out, driver="GPKG", engine="pyogrio")
    return out


def test_a_sample_designed_on_another_map_uses_stehmans_estimator(tmp_path):
    rng = np.random.default_rng(7)
    old, new, truth = _two_maps(tmp_path, rng)
    drawn = sample([old], n=120, allocation="equal", seed=3, out=tmp_path / "pts.gpkg", log=lambda m: None)
    labelled = _label(drawn.path, truth, tmp_path / "labelled.gpkg")
    rep = assess([new], reference=labelled, log=lambda m: None)  # strata recorded in the file: old's classes
    assert rep["estimator"].startswith("Stehman") and "not the map classes" in rep["design"]
    g = drawn.points.sort_values("point_id")
    import rasterio

    with rasterio.open(new) as src:
        m_new = src.read(1)
    strata = g["stratum_id"].to_numpy() - 1
    ref = truth[g["row"], g["col"]] - 1
    direct = stehman_estimate(strata, m_new[g["row"], g["col"]] - 1, ref, np.bincount(rasterio.open(old).read(1).ravel())[1:], 3)
    assert rep["overall_accuracy"]["estimate"] == pytest.approx(direct.overall)
    assert [c["area_pixels"]["estimate"] for c in rep["classes"]] == pytest.approx(direct.area * 4800)
    assert [c["users_accuracy"]["se"] for c in rep["classes"]] == pytest.approx(direct.users_se)
    assert sum(c["area_pixels"]["estimate"] for c in rep["classes"]) == pytest.approx(4800)
    assert [c["mapped_pixels"] for c in rep["classes"]] == np.bincount(m_new.ravel())[1:].tolist()
    # the same with the design given as --strata (points without design columns): the same numbers
    import geopandas as gpd

    bare = gpd.read_file(labelled)[["ref", "geometry"]]
    bare.to_file(tmp_path / "bare.gpkg", driver="GPKG", engine="pyogrio")
    out = tmp_path / "stehman.json"
    _ok(run_cli("assess", new, "--reference", tmp_path / "bare.gpkg", "--strata", old, "--out", out))
    again = json.loads(out.read_text())
    assert again["estimator"] == rep["estimator"]
    assert again["overall_accuracy"]["estimate"] == pytest.approx(rep["overall_accuracy"]["estimate"])
    assert again["overall_accuracy"]["se"] == pytest.approx(rep["overall_accuracy"]["se"])


def test_the_recorded_map_class_skips_reading_the_maps_and_gives_the_same_report(tmp_path):
    rng = np.random.default_rng(11)
    old, _, truth = _two_maps(tmp_path, rng)
    drawn = sample([old], n=90, allocation="min:20", seed=1, out=tmp_path / "pts.gpkg", log=lambda m: None)
    labelled = _label(drawn.path, truth, tmp_path / "labelled.gpkg")
    read = assess([old], reference=labelled, log=lambda m: None)
    recorded = assess([old], reference=labelled, map_field="map_class", log=lambda m: None)
    assert read["estimator"].startswith("Olofsson") and recorded["estimator"] == read["estimator"]
    assert recorded["classes"] == read["classes"] and recorded["overall_accuracy"] == read["overall_accuracy"]
    assert read["strata"] == [{"id": s["id"], "name": s["name"], "pixels": s["pixels"], "n": s["n"]} for s in drawn.strata]


# --------------------------------------------------------------------------- census of a labelled scene


def test_every_labelled_pixel_of_a_scene_as_reference_is_a_census_not_a_sample(tmp_path):
    from affine import Affine

    from geohsi.scene import add_labels, make_scene, write_scene

    rng = np.random.default_rng(5)
    tf = Affine(30.0, 0, 366_000.0, 0, -30.0, 5_809_000.0)
    classes = rng.integers(1, 4, (40, 50)).astype("uint8")
    labels = np.where(rng.random(classes.shape) < 0.3, np.where(rng.random(classes.shape) < 0.8, classes, 1 + classes % 3), 0)
    tif = write_class_tif(tmp_path / "map.tif", classes, ("roof", "tree", "water"), transform=tf)
    cube = rng.random((3, 40, 50)).astype("float32")
    scene = write_scene(
        add_labels(make_scene(cube, crs="EPSG:32633", transform=tf), labels, ["roof", "tree", "water"]), tmp_path / "s.zarr"
    )
    out = tmp_path / "census.json"
    r = run_cli("assess", tif, "--reference-scene", scene, "--out", out, env={"COLUMNS": "200"})
    _ok(r)
    rep = json.loads(out.read_text())
    assert (
        rep["probability_sample"] is False
        and "NOT a probability sample" in rep["note"]
        and "NOT a probability sample" in r.stderr
    )
    lab = labels > 0
    expected = np.bincount((classes[lab] - 1) * 3 + labels[lab] - 1, minlength=9).reshape(3, 3)
    assert rep["error_matrix"]["counts"] == expected.tolist()
    assert rep["overall_accuracy"]["estimate"] == pytest.approx(np.trace(expected) / expected.sum())
    assert rep["overall_accuracy"]["se"] is None
    # no area estimates: the labelled pixels are not a sample of the map's pixels
    assert all(c[k] is None for c in rep["classes"] for k in ("area_ha", "area_pixels", "area_proportion"))
    assert [c["n_reference"] for c in rep["classes"]] == expected.sum(axis=0).tolist()
    md = out.with_suffix(".md").read_text()
    assert "NOT a probability sample" in md and "± 95 % CI" not in md and "half-width" not in md
    assert "area proportions" not in md and "area estimates" not in md and "shares of the labelled pixels" in md
    tables = {row["table"] for row in csv.DictReader(out.with_suffix(".csv").open())}
    assert tables == {"count", "labelled_share"}
    assert "labelled px" in r.stderr and "± 95 % CI" not in r.stderr


def test_scale_of_the_example_raster():
    assert (np.bincount(example_ids().ravel())[1:] * SCALE).tolist() == MAPPED_PIXELS.tolist()
