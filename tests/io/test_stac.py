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


@pytest.mark.parametrize(
    ("option", "flag"),
    [({"fwhm": [10.0]}, "--fwhm"), ({"band_axis": 0}, "--band-axis"), ({"label_field": "crop"}, "--label-field"),
     ({"all_touched": True}, "--all-touched"), ({"units": "DN"}, "--units")],
)  # fmt: skip
def test_options_a_stac_item_does_not_take_are_refused_before_any_request(tmp_path, option, flag):
    """They had been ignored without a word (only --labels, --crs, --wavelengths … were refused)."""
    from geohsi.errors import UsageError

    with pytest.raises(UsageError, match=f"{flag} do not apply to STAC items"):
        ingest("item-1", tmp_path / "x.zarr", from_stac="http://127.0.0.1:9/unreachable", **option)
    assert not (tmp_path / "x.zarr").exists()


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


def _stac10_item(folder: Path, *, eo_on_item: bool) -> Path:
    """A STAC 1.0 item file beside its COG (relative href), eo:bands on the item or on the asset,
    the asset's scale, offset and nodata in its raster:bands."""
    import rasterio
    from rasterio.transform import from_origin

    arr = np.full((3, 4, 4), 5000, np.int16)
    arr[:, 0, 0] = -9999
    with rasterio.open(folder / "cube.tif", "w", driver="GTiff", width=4, height=4, count=3, dtype="int16",
                       crs="EPSG:32633", transform=from_origin(300_000, 5_800_000, 30, 30)) as f:  # fmt: skip
        f.write(arr)
    eo = [{"name": f"b{i}", "center_wavelength": 0.5 + 0.01 * i, "full_width_half_max": 0.01} for i in range(3)]
    asset = {"href": "cube.tif", "roles": ["data"], "type": "image/tiff; application=geotiff",
             "raster:bands": [{"scale": 0.0001, "offset": -0.1, "nodata": -9999, "data_type": "int16"}] * 3}  # fmt: skip
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "it", "geometry": None, "links": [],
            "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                                "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
            "properties": {"datetime": "2024-06-01T10:00:00Z", "proj:epsg": 32633, **({"eo:bands": eo} if eo_on_item else {})},
            "assets": {"data": asset if eo_on_item else {**asset, "eo:bands": eo}}}  # fmt: skip
    path = folder / ("item.json" if eo_on_item else "asset_item.json")
    path.write_text(json.dumps(item))
    return path


def test_item_level_eo_bands_keep_the_assets_scale_nodata_and_relative_href(tmp_path):
    """STAC 1.0 puts eo:bands on the item and raster:bands on the asset: both places give one scene."""
    import pystac

    scenes = [build_item_scene(pystac.Item.from_file(_stac10_item(tmp_path, eo_on_item=on))) for on in (True, False)]
    for ds in scenes:
        v = cube(ds)
        assert (v.attrs["scale_factor"], v.attrs["add_offset"], nodata_value(ds)) == (0.0001, -0.1, -9999.0)
        np.testing.assert_allclose(ds["wavelength"].values, [500, 510, 520])
    np.testing.assert_array_equal(cube(scenes[0]).values, cube(scenes[1]).values)


def test_assets_of_other_resolutions_are_one_line(tmp_path):
    import pystac
    import rasterio
    from rasterio.transform import from_origin

    from geohsi.errors import GeoreferenceError

    assets = {}
    for name, res, n, wl in (("b10", 10, 8, 0.49), ("b20", 20, 4, 0.70)):
        with rasterio.open(tmp_path / f"{name}.tif", "w", driver="GTiff", width=n, height=n, count=1, dtype="int16",
                           crs="EPSG:32633", transform=from_origin(300_000, 5_800_000, res, res)) as f:  # fmt: skip
            f.write(np.ones((1, n, n), np.int16))
        assets[name] = {"href": str(tmp_path / f"{name}.tif"), "roles": ["data"], "type": "image/tiff; application=geotiff",
                        "eo:bands": [{"name": name, "center_wavelength": wl, "full_width_half_max": 0.02}],
                        "proj:shape": [n, n], "proj:transform": [res, 0, 300_000, 0, -res, 5_800_000]}  # fmt: skip
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "mixed", "geometry": None, "links": [],
            "properties": {"datetime": "2024-06-01T10:00:00Z", "proj:epsg": 32633}, "assets": assets}  # fmt: skip
    with pytest.raises(GeoreferenceError, match=r"assets 'b10' and 'b20' lie on different grids.*--assets"):
        build_item_scene(pystac.Item.from_dict(item))
