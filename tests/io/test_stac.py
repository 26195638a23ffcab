"""geohsi.io.stac and STAC ingest against a real STAC API (tests/stac_fixtures.py): items read as scenes equal the direct reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geohsi.errors import InputFormatError
from geohsi.ingestion import ingest, ingest_item
from geohsi.io.stac import build_item_scene
from geohsi.scene import cube, nodata_value, open_scene, scene_crs
from tests.conftest import run_cli


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
    out = ingest_item(ids, tmp_path / "stac.zarr", url=stac_api.url, collection="enmap-potsdam", chunks=64)
    direct = ingest(stac_api.tiles, tmp_path / "direct.zarr", chunks=64)
    _assert_same_scene(out, direct)
    ds = open_scene(out)
    assert ds.attrs["stac_items"] == ids and ds.attrs["acquisition_time"].startswith("2022-07-24T10:45:26")


def test_ingest_one_asset_per_band_equals_direct(stac_api, tmp_path):
    ids = [it["id"] for it in stac_api.bands]
    out = ingest_item(ids, tmp_path / "bands.zarr", url=stac_api.url, collection="enmap-bands")
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
        build_item_scene(pystac.Item.from_dict(d))


def _one_line_error(r) -> str:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("geohsi: error:")
    return lines[0]


def test_item_without_spectral_metadata(stac_api, tmp_path):
    line = _one_line_error(
        run_cli("ingest", "synthetic-000", "--from-stac", stac_api.url, "--collection", "synthetic", "--out", tmp_path / "x.zarr")
    )
    assert "synthetic-000" in line and "spectral" in line
    assert not (tmp_path / "x.zarr").exists()
