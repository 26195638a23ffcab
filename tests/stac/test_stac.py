"""geohsi.stac against a real STAC API (stac-fastapi-geoparquet on 127.0.0.1, see conftest.py)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from geohsi import stac
from geohsi.errors import DataError, InputFormatError, ModelError
from geohsi.ingest import ingest
from geohsi.scene import cube, nodata_value, open_scene, scene_crs
from tests.conftest import run_cli


def _intersects(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


# --------------------------------------------------------------------------- search


def test_bbox_returns_exactly_the_tiles_it_touches(stac_api):
    ref = stac_api.enmap[7]["bbox"]
    cx, cy = (ref[0] + ref[2]) / 2, (ref[1] + ref[3]) / 2
    box = [cx - 0.001, cy - 0.001, cx + 0.001, cy + 0.001]
    expected = {it["id"] for it in stac_api.enmap if _intersects(it["bbox"], box)}
    got = {it.id for it in stac.search(stac_api.url, "enmap-potsdam", bbox=",".join(map(str, box)), max_items=None)}
    assert stac_api.enmap[7]["id"] in got
    assert got == expected and 0 < len(got) < 18


def test_datetime_interval_and_cql2_filter(stac_api):
    got = [it.id for it in stac.search(stac_api.url, "synthetic", datetime="2023-01-05/2023-01-09", max_items=None)]
    assert sorted(got) == [f"synthetic-{i:03d}" for i in range(4, 9)]
    low = {it.id for it in stac.search(stac_api.url, "synthetic", filter="eo:cloud_cover < 5", max_items=None)}
    assert low == {f"synthetic-{i:03d}" for i in range(5)}
    enmap_day = stac.search(stac_api.url, "enmap-potsdam", datetime="2022-07-24", max_items=None)
    assert len(enmap_day) == 18


def test_paging_over_many_pages(stac_api):
    items = stac.search(stac_api.url, "synthetic", page_size=7, max_items=None)
    ids = [it.id for it in items]
    assert len(ids) == 60 and len(set(ids)) == 60  # 9 pages of 7 followed through `next` links
    assert len(stac.search(stac_api.url, "synthetic", page_size=7, max_items=25)) == 25


def test_cli_json_parses_and_table_prints(stac_api):
    r = run_cli("search", "--url", stac_api.url, "--collection", "synthetic", "--page-size", "7", "--max-items", "25", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 25
    assert doc["features"][0]["id"] == "synthetic-000"
    r = run_cli("search", "--url", stac_api.url, "--collection", "enmap-potsdam", "--max-items", "3", env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "enmap_potsdam_tile" in r.stdout and "224" in r.stdout


def test_catalogue_presets_from_config(tmp_path, monkeypatch, stac_api):
    cfg = tmp_path / "catalogs.toml"
    cfg.write_text(f'[catalogs.local]\nurl = "{stac_api.url}"\ncollection = "enmap-potsdam"\n')
    monkeypatch.setenv("GEOHSI_CATALOGS", str(cfg))
    assert stac.resolve_catalog("local") == (stac_api.url, "enmap-potsdam")
    assert "dlr-enmap" in stac.load_catalogs() and stac.load_catalogs()["local"]["source"] == str(cfg)
    assert len(stac.search("local", max_items=None)) == 18


# --------------------------------------------------------------------------- ingest


def _assert_same_scene(a_path: Path, b_path: Path) -> None:
    a, b = open_scene(a_path), open_scene(b_path)
    va, vb = cube(a), cube(b)
    assert va.dtype == vb.dtype and va.shape == vb.shape
    np.testing.assert_array_equal(va.values, vb.values)
    assert scene_crs(a) == scene_crs(b)
    assert tuple(a.rio.transform()) == tuple(b.rio.transform())
    np.testing.assert_array_equal(a["wavelength"].values, b["wavelength"].values)
    np.testing.assert_array_equal(a["fwhm"].values, b["fwhm"].values)
    np.testing.assert_array_equal(a["good_band"].values, b["good_band"].values)
    np.testing.assert_array_equal(a["band_name"].values, b["band_name"].values)
    assert nodata_value(a) == nodata_value(b) == -32768.0


def test_ingest_items_equals_direct_geotiff_mosaic(stac_api, tmp_path):
    ids = [it["id"] for it in stac_api.enmap]
    out = stac.ingest_item(ids, tmp_path / "stac.zarr", url=stac_api.url, collection="enmap-potsdam", chunks=64)
    direct = ingest(stac_api.tiles, tmp_path / "direct.zarr", chunks=64)
    _assert_same_scene(out, direct)
    ds = open_scene(out)
    assert ds.attrs["stac_items"] == ids and ds.attrs["acquisition_time"].startswith("2022-07-24T10:45:26")


def test_ingest_one_asset_per_band_equals_direct(stac_api, tmp_path):
    ids = [it["id"] for it in stac_api.bands]
    out = stac.ingest_item(ids, tmp_path / "bands.zarr", url=stac_api.url, collection="enmap-bands")
    direct = ingest(stac_api.tiles[:2], tmp_path / "direct.zarr")
    _assert_same_scene(out, direct)


def test_cli_ingest_from_stac(stac_api, tmp_path):
    item = stac_api.enmap[0]["id"]
    r = run_cli("ingest", item, "--from-stac", stac_api.url, "--collection", "enmap-potsdam", "--out", tmp_path / "one.zarr")
    assert r.returncode == 0, r.stderr
    _assert_same_scene(tmp_path / "one.zarr", ingest(stac_api.tiles[0], tmp_path / "direct.zarr"))


def test_netcdf_swath_asset_is_refused_in_one_line(stac_api):
    import pystac

    d = json.loads(json.dumps(stac_api.enmap[0]))
    d["assets"]["image"]["href"] = "/data/EMIT_L2A_RFL_001_20230101T000000.nc"
    d["assets"]["image"]["type"] = "application/x-netcdf"
    with pytest.raises(InputFormatError, match="netCDF.*GLT"):
        stac.build_item_scene(pystac.Item.from_dict(d))


# --------------------------------------------------------------------------- errors through the CLI


def _one_line_error(r) -> str:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("geohsi: error:")
    return lines[0]


def test_unreachable_api_fails_fast(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    t0 = time.perf_counter()
    r = run_cli("search", "--url", f"http://127.0.0.1:{port}", "--collection", "x", "--timeout", "3")
    assert time.perf_counter() - t0 < 30
    assert "cannot be reached" in _one_line_error(r)


def test_unknown_collection(stac_api):
    line = _one_line_error(run_cli("search", "--url", stac_api.url, "--collection", "no-such-thing"))
    assert "no-such-thing" in line and "enmap-potsdam" in line


def test_item_without_spectral_metadata(stac_api, tmp_path):
    line = _one_line_error(run_cli("ingest", "synthetic-000", "--from-stac", stac_api.url, "--collection", "synthetic",
                                   "--out", tmp_path / "x.zarr"))
    assert "synthetic-000" in line and "spectral" in line
    assert not (tmp_path / "x.zarr").exists()


def test_bbox_with_no_items(stac_api):
    line = _one_line_error(run_cli("search", "--url", stac_api.url, "--collection", "enmap-potsdam", "--bbox", "-60,-30,-59,-29"))
    assert "no items" in line and "enmap-potsdam" in line
    with pytest.raises(DataError):
        stac.search(stac_api.url, "enmap-potsdam", bbox=[-60, -30, -59, -29])


# --------------------------------------------------------------------------- bundles and maps


@pytest.fixture(scope="session")
def tiny_bundle(ip_scene, tmp_path_factory) -> Path:
    from geohsi.train.config import resolve_train_config
    from geohsi.train.loop import train

    out = tmp_path_factory.mktemp("bundle") / "ip-krona"
    train(ip_scene, resolve_train_config(adapter="krona+", epochs=1, split="per-class:5", model="tiny"), out=out, progress=False)
    return out


def test_bundle_item_validates_against_mlm_schema(tiny_bundle):
    from geohsi.bundle import load_bundle

    item = stac.bundle_item(tiny_bundle)
    stac.validate_mlm(item)
    b = load_bundle(tiny_bundle)
    p = item["properties"]
    assert p["mlm:framework"] == "PyTorch" and p["mlm:hyperparameters"]["adapter_method"] == "krona+"
    assert p["mlm:hyperparameters"]["adapter_trainable_parameters"] > 0
    wl = [round(band["center_wavelength"] * 1000, 6) for band in item["assets"]["model"]["eo:bands"]]
    np.testing.assert_allclose(wl, b.meta.spectral["input_wavelengths"])
    assert [c["name"] for c in p["mlm:output"][0]["classification:classes"]] == b.classes.names
    assert len(p["mlm:input"][0]["value_scaling"]) == p["mlm:input"][0]["input"]["shape"][1] == 12
    broken = json.loads(json.dumps(item))
    broken["properties"]["mlm:input"][0]["value_scaling"][0] = {"type": "z-score", "mean": 0.0}
    with pytest.raises(ModelError, match="mlm:input"):
        stac.validate_mlm(broken)


def test_patch_bundle_item_describes_windows_in_and_logits_per_window_out(tiny_bundle):
    p = stac.bundle_item(tiny_bundle)["properties"]
    assert p["mlm:tasks"] == ["classification"]
    assert p["mlm:input"][0]["input"]["shape"] == [-1, 12, 32, 32] and p["mlm:input"][0]["resize_type"] == "interpolation-linear"
    assert p["mlm:output"][0]["result"] == {"shape": [-1, 16], "dim_order": ["batch", "class"], "data_type": "float32"}


def test_cli_bundle_stac_on_a_dense_bundle_describes_tiles_and_per_pixel_logits(tmp_path):
    # a dense bundle written before the head abstraction (tests/data/bundles-0.1): 32-px tiles, 16 classes
    bundle = Path(__file__).resolve().parents[1] / "data" / "bundles-0.1" / "dense-lora"
    r = run_cli("bundle", "stac", bundle, "--out", tmp_path / "item.json")
    assert r.returncode == 0, r.stderr
    item = json.loads((tmp_path / "item.json").read_text())
    stac.validate_mlm(item)
    p = item["properties"]
    assert p["mlm:tasks"] == ["semantic-segmentation"]
    (inp,), (out,) = p["mlm:input"], p["mlm:output"]
    assert inp["input"] == {"shape": [-1, 12, 32, 32], "dim_order": ["batch", "channel", "height", "width"], "data_type": "float32"}
    assert inp["resize_type"] is None and "tiles of 32×32 pixels" in inp["description"] and "stride 24 px" in inp["description"]
    assert out["result"] == {"shape": [-1, 16, 32, 32], "dim_order": ["batch", "class", "height", "width"], "data_type": "float32"}
    assert out["tasks"] == ["semantic-segmentation"] and len(out["classification:classes"]) == 16
    assert p["mlm:hyperparameters"]["head"] == "dense"


def test_cli_bundle_stac(tiny_bundle, tmp_path):
    r = run_cli("bundle", "stac", tiny_bundle, "--out", tmp_path / "item.json")
    assert r.returncode == 0, r.stderr
    item = json.loads((tmp_path / "item.json").read_text())
    stac.validate_mlm(item)
    assert "mlm:model" in item["assets"]["model"]["roles"]


def test_map_item(tiny_bundle, stac_api, tmp_path):
    import rasterio

    src = stac_api.tiles[0]
    with rasterio.open(src) as s:
        profile = {"driver": "GTiff", "width": s.width, "height": s.height, "count": 1, "dtype": "uint8",
                   "crs": s.crs, "transform": s.transform, "nodata": 0}
    with rasterio.open(tmp_path / "map.tif", "w", **profile) as dst:
        dst.write(np.ones((1, profile["height"], profile["width"]), "uint8"))
    item = stac.map_item(tmp_path / "map.tif", tiny_bundle)
    assert item["properties"]["proj:code"] == "EPSG:32633" and item["properties"]["label:type"] == "raster"
    assert len(item["assets"]["map"]["classification:classes"]) == 16
    np.testing.assert_allclose(item["bbox"], stac_api.enmap[0]["bbox"])
