"""``geohsi sample`` and :func:`geohsi.assessment.sample` (geohsi/assessment/sampling.py): what each point
records, strata pooled over a catalogue, sample-size planning, a uniform draw within each stratum across
chunks, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geohsi.assessment import allocate, sample, sample_size
from geohsi.assessment import sampling as sampling_mod
from tests.assessment.conftest import write_class_tif
from tests.conftest import run_cli

NAMES = ("water", "forest", "urban", "crop")


def _map(tmp_path: Path, name: str = "map.tif", seed: int = 0, shape=(60, 90), **kw) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(5), size=shape, p=[0.1, 0.5, 0.25, 0.1, 0.05]).astype("uint8")  # 0 = nodata
    return write_class_tif(tmp_path / name, ids, NAMES, **kw), ids


def _catalog(out_dir: Path, maps: list[Path]) -> Path:
    """A minimal batch catalogue as geohsi classify writes it (items beside it, ``map`` assets)."""
    links = []
    for m in maps:
        item = {"type": "Feature", "id": m.stem, "assets": {"map": {"href": f"./{m.name}"}}}
        (out_dir / f"{m.stem}.json").write_text(json.dumps(item))
        links.append({"rel": "item", "href": f"./{m.stem}.json"})
    cat = out_dir / "catalog.json"
    cat.write_text(json.dumps({"type": "Collection", "id": "maps", "links": links}))
    return cat


def test_every_point_records_its_map_pixel_coordinates_stratum_and_inclusion_probability(tmp_path):
    tif, ids = _map(tmp_path)
    out = tmp_path / "points.gpkg"
    r = run_cli("sample", tif, "--n", "40", "--seed", "3", "--out", out)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    import geopandas as gpd

    g = gpd.read_file(out)
    assert len(g) == 40 and g.crs == "EPSG:32633"
    assert sorted(g["point_id"]) == list(range(1, 41))
    assert (g["map"] == "map.tif").all() and (g["ref"].fillna("") == "").all()
    assert (ids[g["row"], g["col"]] == g["map_class_id"]).all() and (g["stratum_id"] == g["map_class_id"]).all()
    assert len(set(zip(g["row"], g["col"], strict=True))) == 40  # without replacement
    with rasterio.open(tif) as src:
        x, y = src.transform @ (g["col"] + 0.5, g["row"] + 0.5)
        from rasterio.warp import transform

        lon, lat = transform(src.crs, "EPSG:4326", x, y)
    np.testing.assert_allclose(g["x"], x) and np.testing.assert_allclose(g.geometry.x, x)
    np.testing.assert_allclose(g["lon"], lon) and np.testing.assert_allclose(g["lat"], lat)
    counts = np.bincount(ids.ravel(), minlength=5)
    assert (g["stratum_pixels"] == counts[g["stratum_id"]]).all()
    n_h = g.groupby("stratum_id").size()
    assert (g["inclusion_prob"] == n_h[g["stratum_id"]].to_numpy() / counts[g["stratum_id"]]).all()
    assert (g["stratum_area_ha"] == counts[g["stratum_id"]] * 90.0).all()  # 1000 m × 900 m pixels
    assert n_h.tolist() == allocate(40, counts[1:]).tolist()  # proportional (every stratum ≥ 2)
    assert "geohsi assess" in r.stdout


def test_strata_are_pooled_over_the_maps_of_a_catalogue(tmp_path):
    maps = [_map(tmp_path, f"tile_{k}.tif", seed=k, transform=rasterio.Affine(10, 0, 300_000 + 900 * k, 0, -10, 5_800_000))
            for k in range(3)]  # fmt: skip
    cat = _catalog(tmp_path, [m for m, _ in maps])
    res = sample(catalog=cat, n=100, allocation="min:10", out=tmp_path / "pts.csv", log=lambda m: None)
    pooled = sum(np.bincount(ids.ravel(), minlength=5) for _, ids in maps)
    assert [s["pixels"] for s in res.strata] == pooled[1:].tolist()
    assert [s["n"] for s in res.strata] == allocate(100, pooled[1:], "min:10").tolist()
    pts = res.points
    assert set(pts["map"]) == {"tile_0.tif", "tile_1.tif", "tile_2.tif"}
    for name, ids in ((m.name, i) for m, i in maps):
        sel = pts["map"] == name
        assert (ids[pts["row"][sel], pts["col"][sel]] == pts["map_class_id"][sel]).all()
    assert (pts["stratum_pixels"] == pooled[pts["stratum_id"]]).all()
    assert Path(tmp_path / "pts.csv").read_text().splitlines()[0].startswith("point_id,map,row,col,x,y,lon,lat")


def test_sample_size_from_a_target_standard_error(tmp_path):
    tif, ids = _map(tmp_path)
    out = tmp_path / "p.geojson"
    r = run_cli("sample", tif, "--target-se", "0.02", "--expected-ua", "0.85", "--expected-ua", "urban=0.7", "--out", out)
    assert r.returncode == 0, r.stderr
    counts = np.bincount(ids.ravel(), minlength=5)[1:]
    n = sample_size(counts, np.array([0.85, 0.85, 0.7, 0.85]), 0.02)
    import geopandas as gpd

    g = gpd.read_file(out)
    assert len(g) == n and g.crs == "EPSG:4326"  # GeoJSON: WGS 84, as its standard says


def test_the_same_seed_draws_the_same_sample(tmp_path):
    tif, _ = _map(tmp_path)
    a = sample([tif], n=30, seed=5, out=tmp_path / "a.csv", log=lambda m: None).points
    b = sample([tif], n=30, seed=5, out=tmp_path / "b.csv", log=lambda m: None).points
    c = sample([tif], n=30, seed=6, out=tmp_path / "c.csv", log=lambda m: None).points
    assert a[["row", "col"]].equals(b[["row", "col"]]) and not a[["row", "col"]].equals(c[["row", "col"]])


@pytest.mark.parametrize("candidates", [64, 2])
def test_each_pixel_of_a_stratum_is_equally_likely_across_chunks(tmp_path, monkeypatch, candidates):
    """Selection frequencies over 80 samples of a 48 × 48 map read in 16 × 16 chunks match n_h / N_h
    (chi-square); with 2 candidates per chunk, chunks that need more are read a second time."""
    from scipy.stats import chisquare

    from geohsi.assessment import maps as maps_mod

    rng = np.random.default_rng(0)
    ids = np.where(rng.random((48, 48)) < np.linspace(0.1, 0.9, 48)[None, :], 1, 2).astype("uint8")  # uneven per chunk
    tif = write_class_tif(tmp_path / "m.tif", ids, ("a", "b"))
    cmap = maps_mod.open_map(tif, chunks=16)
    monkeypatch.setattr(sampling_mod, "open_maps", lambda maps, catalog: [cmap])
    monkeypatch.setattr(sampling_mod, "write_points", lambda gdf, out, overwrite: Path(out))
    monkeypatch.setattr(sampling_mod, "CANDIDATES", candidates)
    rereads = []
    scan = sampling_mod.scan_map
    monkeypatch.setattr(sampling_mod, "scan_map", lambda m, **kw: rereads.append(kw.get("blocks")) or scan(m, **kw))
    hits, reps = np.zeros(ids.shape), 80
    for seed in range(reps):
        res = sample([tif], n=30, seed=seed, out=tmp_path / "x.csv", log=lambda m: None)
        hits[res.points["row"], res.points["col"]] += 1
    for k, stratum in zip((1, 2), res.strata, strict=True):
        mask = ids == k
        assert hits[mask].sum() == reps * stratum["n"]  # each sample: exactly n_h points of the stratum
        assert chisquare(hits[mask]).pvalue > 0.001, k  # … equally likely to be any of its pixels
    assert any(rereads) == (candidates == 2)


def test_a_zarr_map_and_a_map_without_a_legend(tmp_path):
    import xarray as xr

    from geohsi.scene import write_georef

    _, ids = _map(tmp_path)
    tf = rasterio.Affine(10, 0, 500_000, 0, -10, 4_000_000)
    y = 4_000_000 - 10 * (np.arange(ids.shape[0]) + 0.5)
    x = 500_000 + 10 * (np.arange(ids.shape[1]) + 0.5)
    ds = xr.Dataset({"classes": (("y", "x"), ids)}, coords={"y": y, "x": x})
    ds.attrs.update(class_ids=[1, 2, 3, 4], class_names=list(NAMES), class_colors=["#000000"] * 4)
    write_georef(ds, tf, "EPSG:32616").to_zarr(tmp_path / "m.zarr", zarr_format=3, consolidated=False)
    res = sample([tmp_path / "m.zarr"], n=20, out=tmp_path / "z.gpkg", log=lambda m: None)
    assert (ids[res.points["row"], res.points["col"]] == res.points["map_class_id"]).all()
    assert set(res.points["map_class"]) <= set(NAMES) and res.points.crs == "EPSG:32616"
    bare = write_class_tif(tmp_path / "bare.tif", ids, NAMES, tags=False)  # no class names: ids are discovered
    res = sample([bare], n=20, out=tmp_path / "b.gpkg", log=lambda m: None)
    assert set(res.points["map_class"]) <= {"class_1", "class_2", "class_3", "class_4"}


def _one_line_error(r, needle: str) -> None:
    err = r.stderr.strip()
    assert r.returncode != 0 and err.count("\n") == 0 and err.startswith("geohsi: error:") and "Traceback" not in err, err
    assert needle in err, err


def test_bad_sampling_requests_are_one_line_errors(tmp_path):
    from geohsi.errors import UsageError

    tif, _ = _map(tmp_path)
    _one_line_error(run_cli("sample", tif, "--out", tmp_path / "p.gpkg"), "--n N")
    with pytest.raises(UsageError, match=r"\.gpkg"):
        sample([tif], n=10, out=tmp_path / "p.shp", log=lambda m: None)
    with pytest.raises(UsageError, match="'cloud'"):
        sample([tif], target_se=0.01, expected_ua={"cloud": 0.9}, out=tmp_path / "p.gpkg", log=lambda m: None)
    with pytest.raises(UsageError, match="missing: water"):
        sample(
            [tif],
            target_se=0.01,
            expected_ua={"forest": 0.9, "urban": 0.9, "crop": 0.9},
            out=tmp_path / "p.gpkg",
            log=lambda m: None,
        )
    _one_line_error(run_cli("sample", tmp_path / "nope.tif", "--n", "5", "--out", tmp_path / "p.gpkg"), "does not exist")
    (tmp_path / "p.gpkg").write_text("x")
    _one_line_error(run_cli("sample", tif, "--n", "5", "--out", tmp_path / "p.gpkg"), "--overwrite")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--n", "20", "--label-field", "point_id"), "--label-field point_id is a column geohsi sample writes"),  # exit 70
        (("--n", "20", "--label-field", "Map_Class"), "is a column geohsi sample writes"),  # had blanked map_class
        (("--n", "20", "--label-field", "geometry"), "is a column geohsi sample writes"),  # had been written nowhere
        (("--n", "20", "--label-field", " "), "--label-field must name the reference field"),
        (("--target-se", "0.01", "--expected-ua", "nan"), "in [0, 1], got nan for every class"),  # exit 70
        (("--target-se", "0.01", "--expected-ua", "water=nan", "--expected-ua", "0.9"), "got nan for water"),
        (("--target-se", "0.01", "--expected-ua", "1"), "--target-se 0.01 with the --expected-ua given plans 1 point(s)"),
        (("--target-se", "0.05", "--expected-ua", "0.9", "--allocation", "bogus"), "error: unknown allocation 'bogus'"),
    ],
)
def test_a_reference_field_or_expected_accuracy_that_cannot_work_is_a_one_line_error(tmp_path, args, needle):
    tif, _ = _map(tmp_path)
    _one_line_error(run_cli("sample", tif, *args, "--out", tmp_path / "p.gpkg"), needle)
    assert not (tmp_path / "p.gpkg").exists()


def test_a_geojson_sample_is_named_after_its_file(tmp_path):
    """Its ``name`` (QGIS's layer name) had been the temporary file's, ``.p.geojson.tmp-…``."""
    tif, _ = _map(tmp_path)
    sample([tif], n=10, out=tmp_path / "plots 2026.geojson", log=lambda m: None)
    assert json.loads((tmp_path / "plots 2026.geojson").read_text())["name"] == "plots 2026"


def test_a_stratum_of_billions_of_pixels_is_split_over_its_chunks_as_a_simple_random_sample():
    """numpy's multivariate hypergeometric sampler refuses 10⁹ pixels or more (one 32,000² map); the
    split by ranks takes any size, and its chunk shares have the hypergeometric mean and variance."""
    rng = np.random.default_rng(0)
    counts = np.array([1_500_000_000, 0, 2_000_000_000, 500_000_000], np.int64)
    split = np.stack([sampling_mod._split_over_chunks(counts, 400, rng) for _ in range(2000)])
    assert (split.sum(axis=1) == 400).all() and (split[:, 1] == 0).all()
    share = counts / counts.sum()
    np.testing.assert_allclose(split.mean(axis=0), 400 * share, atol=1.0)
    np.testing.assert_allclose(split.var(axis=0), 400 * share * (1 - share), rtol=0.12)
    small = np.array([3, 5, 2])  # every pixel drawn: each chunk gives all of its pixels
    assert (sampling_mod._split_over_chunks(small, 10, rng) == small).all()


def test_a_negative_seed_is_a_one_line_error(tmp_path):
    tif, _ = _map(tmp_path)
    _one_line_error(run_cli("sample", tif, "--n", "5", "--seed", "-1", "--out", tmp_path / "p.gpkg"), "--seed")
    assert not (tmp_path / "p.gpkg").exists()


def test_overlapping_maps_are_said_and_each_point_is_assessed_on_its_own_map(tmp_path):
    """Two tiles that share half their ground: sample warns (the shared pixels weigh twice), and assess
    reads each point on the map it was drawn from, so a perfect reference gives an overall accuracy of 1."""
    import geopandas as gpd

    from geohsi.assessment import assess

    a = write_class_tif(tmp_path / "a.tif", np.ones((40, 40), "uint8"), ("left", "right"))
    shifted = rasterio.Affine(1000.0, 0, 400_000.0 + 20 * 1000.0, 0, -900.0, 5_800_000.0)
    b = write_class_tif(tmp_path / "b.tif", np.full((40, 40), 2, "uint8"), ("left", "right"), transform=shifted)
    with pytest.warns(UserWarning, match=r"1 pair\(s\) of maps overlap \(first: a.tif and b.tif\)"):
        drawn = sample([a, b], n=40, allocation="equal", out=tmp_path / "p.gpkg", log=lambda m: None)
    g = gpd.read_file(drawn.path)
    g["ref"] = g["map_class"]
    g.to_file(tmp_path / "labelled.gpkg", driver="GPKG", engine="pyogrio")
    rep = assess([a, b], reference=tmp_path / "labelled.gpkg", log=lambda m: None)
    assert rep["overall_accuracy"]["estimate"] == 1.0 and rep["estimator"].startswith("Olofsson")


def test_maps_of_other_pixel_sizes_are_a_one_line_error(tmp_path):
    tif, ids = _map(tmp_path)
    coarse = write_class_tif(tmp_path / "coarse.tif", ids, NAMES, transform=rasterio.Affine(3000.0, 0, 0, 0, -2700.0, 0))
    _one_line_error(run_cli("sample", tif, coarse, "--n", "5", "--out", tmp_path / "p.gpkg"), "differ in pixel area")


def test_a_class_of_one_pixel_is_said_at_design_time(tmp_path):
    """Its one point can have no variance; assess had asked for 2 points of it, which the map cannot give."""
    from geohsi.errors import GeohsiWarning

    ids = np.full((40, 40), 1, np.uint8)
    ids[20:, :] = 2
    ids[5, 5] = 3
    tif = write_class_tif(tmp_path / "rare.tif", ids, ("forest", "crop", "water"))
    with pytest.warns(GeohsiWarning, match=r"map class\(es\) water cover 1 pixel: one point each"):
        sample([tif], n=20, out=tmp_path / "p.gpkg", log=lambda m: None)


def test_sample_ends_with_the_assess_command_that_follows(tmp_path: Path) -> None:
    """The closing hint had been "geohsi assess ... --reference P"; it is now a command that runs as printed."""
    import shlex

    import geopandas as gpd

    tif, _ = _map(tmp_path, "my map.tif")
    r = run_cli("sample", "my map.tif", "--n", "40", "--label-field", "truth", "--out", "pts.gpkg", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    command = r.stdout.strip().splitlines()[-1].split("then: ", 1)[1]
    assert command == "geohsi assess 'my map.tif' --reference pts.gpkg --label-field truth --out report.json"
    pts = gpd.read_file(tmp_path / "pts.gpkg")
    pts["truth"] = pts["map_class"]  # the labeller agrees with the map
    pts.to_file(tmp_path / "pts.gpkg", driver="GPKG", layer="points")
    done = run_cli(*shlex.split(command)[1:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "report.json").read_text())["overall_accuracy"]["estimate"] == 1.0
