"""geohsi.export.stac: bundles as MLM Items (schema-valid, head-specific input/output), maps as labelled raster Items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geohsi.errors import ModelError
from geohsi.export.stac import bundle_item, bundle_stac, map_item, validate_mlm
from tests.conftest import run_cli


@pytest.fixture(scope="session")
def tiny_bundle(ip_scene, tmp_path_factory) -> Path:
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    out = tmp_path_factory.mktemp("bundle") / "ip-krona"
    train(
        ip_scene,
        resolve_train_config(adapter="krona+", epochs=1, split="per-class:5", model="tiny", head="patch"),
        out=out,
        progress=False,
    )
    return out


def test_bundle_item_validates_against_mlm_schema(tiny_bundle):
    from geohsi.bundle import load_bundle

    item = bundle_item(tiny_bundle)
    validate_mlm(item)
    b = load_bundle(tiny_bundle)
    p = item["properties"]
    assert p["mlm:framework"] == "PyTorch" and p["mlm:hyperparameters"]["adapter_method"] == "krona+"
    assert p["mlm:hyperparameters"]["adapter_trainable_parameters"] > 0
    wl = [round(band["center_wavelength"] * 1000, 6) for band in item["assets"]["model"]["eo:bands"]]
    np.testing.assert_allclose(wl, b.meta.spectral["input_wavelengths"])
    assert [c["name"] for c in p["mlm:output"][0]["classification:classes"]] == b.classes.names
    # the weights asset is the file itself (it had named the adapter folder, which no bucket has as an object)
    weights = item["assets"]["weights"]["href"]
    assert weights == f"{Path(tiny_bundle).resolve()}/adapter/adapter.safetensors" and Path(weights).is_file()
    assert ("backbone" in item["assets"]) == (b.meta.backbone.kind == "bundled")
    assert len(p["mlm:input"][0]["value_scaling"]) == p["mlm:input"][0]["input"]["shape"][1] == 12
    broken = json.loads(json.dumps(item))
    broken["properties"]["mlm:input"][0]["value_scaling"][0] = {"type": "z-score", "mean": 0.0}
    with pytest.raises(ModelError, match="mlm:input"):
        validate_mlm(broken)


def test_a_bundle_item_through_a_link_names_the_bundles_own_folder(tiny_bundle, tmp_path):
    """runs/latest moves to the next run: an item written through it must keep naming this bundle's files."""
    (tmp_path / "latest").symlink_to(Path(tiny_bundle).resolve(), target_is_directory=True)
    item = bundle_item(tmp_path / "latest")
    assert {Path(a["href"]).parent for a in item["assets"].values()} <= {
        Path(tiny_bundle).resolve(),
        Path(tiny_bundle).resolve() / "adapter",
    }


@pytest.mark.parametrize(
    "href",
    ["https://user:pw@host.example/b1", "https://host.example/b1?sig=SECRETSIG", "s3://bkt/b1#sect9", "ftp://u:pw@h.example/b1"],
)
def test_a_base_href_with_credentials_or_a_query_is_refused_unshown(tiny_bundle, href):
    """It had been published in every asset (``…/b1?sig=SECRETSIG/bundle.json``: secret and broken path)."""
    r = run_cli("bundle", "stac", tiny_bundle, "--href", href)
    suggested = r.stderr.rstrip().rsplit("e.g. --href ", 1)[1]
    assert suggested.split("/")[:1] == href.split("/")[:1] and "@" not in suggested and "?" not in suggested
    assert r.returncode == 2 and "--href was given with credentials, a query or a fragment" in r.stderr
    assert "pw" not in r.stdout + r.stderr and "SECRETSIG" not in r.stdout + r.stderr and "sect9" not in r.stdout + r.stderr


def test_patch_bundle_item_describes_windows_in_and_logits_per_window_out(tiny_bundle):
    p = bundle_item(tiny_bundle)["properties"]
    assert p["mlm:tasks"] == ["classification"]
    assert p["mlm:input"][0]["input"]["shape"] == [-1, 12, 32, 32] and p["mlm:input"][0]["resize_type"] == "interpolation-linear"
    assert p["mlm:output"][0]["result"] == {"shape": [-1, 16], "dim_order": ["batch", "class"], "data_type": "float32"}


def test_cli_bundle_stac_on_a_dense_bundle_describes_tiles_and_per_pixel_logits(tmp_path):
    # a dense bundle written before the head abstraction (tests/data/bundles-0.1): 32-px tiles, 16 classes
    bundle = Path(__file__).resolve().parents[1] / "data" / "bundles-0.1" / "dense-lora"
    r = run_cli("bundle", "stac", bundle, "--out", tmp_path / "item.json")
    assert r.returncode == 0, r.stderr
    item = json.loads((tmp_path / "item.json").read_text())
    validate_mlm(item)
    p = item["properties"]
    assert p["mlm:tasks"] == ["semantic-segmentation"]
    (inp,), (out,) = p["mlm:input"], p["mlm:output"]
    assert inp["input"] == {
        "shape": [-1, 12, 32, 32],
        "dim_order": ["batch", "channel", "height", "width"],
        "data_type": "float32",
    }
    assert inp["resize_type"] is None and "tiles of 32×32 pixels" in inp["description"] and "stride 24 px" in inp["description"]
    assert out["result"] == {
        "shape": [-1, 16, 32, 32],
        "dim_order": ["batch", "class", "height", "width"],
        "data_type": "float32",
    }
    assert out["tasks"] == ["semantic-segmentation"] and len(out["classification:classes"]) == 16
    assert p["mlm:hyperparameters"]["head"] == "dense"


def test_cli_bundle_stac(tiny_bundle, tmp_path):
    r = run_cli("bundle", "stac", tiny_bundle, "--out", tmp_path / "item.json")
    assert r.returncode == 0, r.stderr
    item = json.loads((tmp_path / "item.json").read_text())
    validate_mlm(item)
    assert "mlm:model" in item["assets"]["model"]["roles"]


def test_bundle_stac_never_writes_over_the_bundle_or_a_non_json_file(tiny_bundle, tmp_path):
    """``--out BUNDLE/bundle.json --overwrite`` had replaced the bundle's description with the item."""
    import shutil

    from geohsi.bundle import load_bundle
    from geohsi.errors import UsageError

    bundle = shutil.copytree(tiny_bundle, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in bundle.iterdir() if p.is_file()}
    for out, why in ((bundle / "bundle.json", "is inside the bundle"), (bundle / "item.json", "is inside the bundle"),
                     (tmp_path / "item.tif", "name it ITEM.json")):  # fmt: skip
        with pytest.raises(UsageError, match=why):
            bundle_stac(bundle, out, overwrite=True)
    r = run_cli("bundle", "stac", bundle, "--out", bundle / "bundle.json", "--overwrite")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "write the item beside it" in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in bundle.iterdir() if p.is_file()} == before
    load_bundle(bundle)
    assert not (tmp_path / "item.tif").exists()


@pytest.mark.parametrize(
    ("written", "datetime"),
    [
        ("2022:07:15 10:20:30", "2022-07-15T10:20:30Z"),  # TIFF's own DateTime form
        ("2022-07-15T10:20:30+02:00", "2022-07-15T08:20:30Z"),
        ("2022-07-15", "2022-07-15T00:00:00Z"),
    ],
)
def test_a_map_item_carries_the_scenes_time_as_rfc3339_utc(tiny_bundle, tmp_path, written, datetime):
    """The scene's time had been copied as written: items pystac and STAC validators refuse."""
    import pystac
    import rasterio
    from affine import Affine

    from geohsi.ingestion import open_source

    profile = dict(driver="GTiff", width=8, height=6, count=200, dtype="uint16", crs="EPSG:32633",
                   transform=Affine(30, 0, 400_000, 0, -30, 5_800_000), nodata=0)  # fmt: skip
    with rasterio.open(tmp_path / "scene.tif", "w", **profile) as dst:
        dst.write(np.ones((200, 6, 8), "uint16"))
        dst.update_tags(TIFFTAG_DATETIME=written)
    with rasterio.open(tmp_path / "map.tif", "w", **{**profile, "count": 1, "dtype": "uint8"}) as dst:
        dst.write(np.ones((1, 6, 8), "uint8"))
    item = map_item(tmp_path / "map.tif", tiny_bundle, open_source(tmp_path / "scene.tif"), href="./map.tif")
    assert item["properties"]["datetime"] == datetime
    assert pystac.Item.from_dict(item).datetime.isoformat().replace("+00:00", "Z") == datetime


def test_a_catalogue_of_maps_named_with_spaces_and_hashes_reads_in_pystac_and_geohsi(tiny_bundle, tmp_path):
    """``./plot #1.json`` had been read by STAC tools as ``./plot `` and a fragment: ``#`` and ``?`` are
    percent-encoded, the rest as written (pystac reads local catalogues by hrefs as written)."""
    from urllib.parse import urlsplit

    import pystac
    import rasterio
    from affine import Affine

    from geohsi.assessment.maps import catalog_maps
    from geohsi.classification.map_items import asset_href
    from geohsi.export.stac import link_item, write_item, write_map_collection

    items = []
    for name in ("plot #1", "50% cover", "Café 2"):
        tif = tmp_path / f"{name}.tif"
        with rasterio.open(tif, "w", driver="GTiff", width=4, height=3, count=1, dtype="uint8", crs="EPSG:32633",
                           transform=Affine(30, 0, 400_000, 0, -30, 5_800_000), nodata=0) as dst:  # fmt: skip
            dst.write(np.ones((1, 3, 4), "uint8"))
        item = link_item(map_item(tif, tiny_bundle, item_id=name, href=asset_href(tif)), "maps")
        write_item(item, tmp_path / f"{name}.json")
        items.append(item)
    collection = write_map_collection(tmp_path / "catalog.json", items, collection_id="maps", description="maps")
    # every href parses to the file it names: no fragment or query, '#' decoded as a server would
    hrefs = [ln["href"] for ln in collection["links"]] + [h for it in items for h in (it["assets"]["map"]["href"],)]
    for href in hrefs:
        parts = urlsplit(href)
        assert not parts.fragment and not parts.query and (tmp_path / parts.path.replace("%23", "#")).is_file(), href
    assert sorted(p.name for p in catalog_maps(tmp_path / "catalog.json")) == ["50% cover.tif", "Café 2.tif", "plot #1.tif"]
    # pystac reads local files by their hrefs as written: spaces, '%' and letters beyond ASCII work
    for name in ("Café 2", "50% cover"):
        plain = pystac.read_file(str(tmp_path / f"{name}.json"))
        assert Path(plain.assets["map"].get_absolute_href()).name == f"{name}.tif"
        assert Path(plain.get_root_link().get_absolute_href()).name == "catalog.json"


def test_map_item(tiny_bundle, stac_api, tmp_path):
    import rasterio

    src = stac_api.tiles[0]
    with rasterio.open(src) as s:
        profile = {
            "driver": "GTiff",
            "width": s.width,
            "height": s.height,
            "count": 1,
            "dtype": "uint8",
            "crs": s.crs,
            "transform": s.transform,
            "nodata": 0,
        }
    with rasterio.open(tmp_path / "map.tif", "w", **profile) as dst:
        dst.write(np.ones((1, profile["height"], profile["width"]), "uint8"))
    item = map_item(tmp_path / "map.tif", tiny_bundle)
    assert item["properties"]["proj:code"] == "EPSG:32633" and item["properties"]["label:type"] == "raster"
    assert len(item["assets"]["map"]["classification:classes"]) == 16
    np.testing.assert_allclose(item["bbox"], stac_api.enmap[0]["bbox"])


def test_a_base_href_in_azures_own_form_or_with_a_bad_port() -> None:
    from geohsi.errors import UsageError
    from geohsi.export.stac import _check_base_href

    _check_base_href("abfs://models@acct.dfs.core.windows.net/bundles/b1")  # container@account: no credential
    with pytest.raises(UsageError, match=r"e\.g\. --href https://host:abc/bundles/$"):  # had been exit 70 (ValueError)
        _check_base_href("https://u:p@host:abc/bundles/")
