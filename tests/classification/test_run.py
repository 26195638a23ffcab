"""Map files: COG georeferencing, validation, nodata, colour table, class names; Zarr maps; bad inputs."""

from __future__ import annotations

import re

import numpy as np
import pytest
import rasterio

from geohsi.classification import classify
from geohsi.classification.job import MapOutputs
from geohsi.errors import GeoreferenceError, OutputError, UsageError
from tests.classification.conftest import reference_labels, reference_probabilities


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    # In-process threads: these tests are about the files; the real-cluster tests use processes.
    c = Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0")
    yield c
    c.close()


def _quiet(_msg: str) -> None:
    pass


def test_cog_matches_scene_georeference_and_reference(tmp_path, ip_crop_geo, ip_bundle, client):
    from rio_cogeo.cogeo import cog_validate

    from geohsi.bundle import load_bundle
    from geohsi.scene import open_scene, valid_mask

    out = tmp_path / "map.tif"
    res = classify(
        ip_crop_geo,
        out,
        ip_bundle,
        client=client,
        chunks=16,
        confidence=True,
        probabilities=tmp_path / "p.tif",
        progress=False,
        log=_quiet,
    )
    assert res.computed == res.n_chunks == 12 and res.reused == 0
    ds = open_scene(ip_crop_geo)
    b = load_bundle(ip_bundle)
    ref = reference_probabilities(ip_crop_geo, ip_bundle)
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32616
        assert src.transform == ds.rio.transform()
        assert (src.width, src.height) == (50, 40)
        assert src.dtypes[0] == "uint8" and src.nodata == 0
        m = src.read(1)
        cmap = src.colormap(1)
        for c in b.classes:
            rgb = tuple(int(c.color[k : k + 2], 16) for k in (1, 3, 5))
            assert cmap[c.id][:3] == rgb
            assert src.tags(1)[f"CLASS_{c.id}"] == c.name
        assert "GEOHSI_CLASSES" in src.tags()
        assert src.block_shapes[0] == (512, 512) or src.is_tiled
    np.testing.assert_array_equal(m, reference_labels(ref, b.class_ids))
    valid = valid_mask(ds).values
    assert np.all(m[~valid] == 0) and np.all(m[valid] > 0)
    ok, errors, _ = cog_validate(str(out), quiet=True)
    assert ok, errors
    # probabilities: uint8, value/254, nodata 255; confidence beside the map
    with rasterio.open(tmp_path / "p.tif") as src:
        assert src.count == len(b.classes) and src.scales[0] == pytest.approx(1 / 254)
        q = src.read()
    assert np.all(q[:, ~valid] == 255)
    np.testing.assert_allclose(q[:, valid] / 254.0, ref[:, valid], atol=0.5 / 254 + 1e-6)
    conf = tmp_path / "map.confidence.tif"
    with rasterio.open(conf) as src:
        cq = src.read(1)
    # the reference is NaN only off the valid pixels
    np.testing.assert_allclose(cq[valid] / 254.0, ref[:, valid].max(axis=0), atol=0.5 / 254 + 1e-6)
    assert cog_validate(str(conf), quiet=True)[0] and cog_validate(str(tmp_path / "p.tif"), quiet=True)[0]
    assert not any(p.name.endswith(".parts.zarr") for p in tmp_path.iterdir())


def test_cog_of_the_enmap_mosaic(tmp_path, enmap_scene, enmap_bundle, client):
    """A real georeferenced mosaic: tiles cover part of the grid, the rest is nodata −32768."""
    from rio_cogeo.cogeo import cog_validate

    from geohsi.bundle import load_bundle
    from geohsi.scene import open_scene, valid_mask

    out = tmp_path / "enmap.tif"
    classify(enmap_scene, out, enmap_bundle, client=client, chunks=48, progress=False, log=_quiet)
    ds = open_scene(enmap_scene)
    b = load_bundle(enmap_bundle)
    with rasterio.open(out) as src:
        assert src.crs == ds.rio.crs and src.crs.to_epsg() == 32633
        assert src.transform == ds.rio.transform() and src.transform.a == 30.0
        m = src.read(1)
        assert src.overviews(1) == [] or src.overviews(1)[0] == 2
    valid = valid_mask(ds).values
    assert (~valid).any() and valid.any()
    assert np.all(m[~valid] == 0) and np.all(np.isin(m[valid], b.class_ids))
    assert cog_validate(str(out), quiet=True)[0]


def test_zarr_map_is_georeferenced(tmp_path, ip_crop_geo, ip_bundle, client):
    import xarray as xr

    from geohsi.scene import open_scene

    out = tmp_path / "map.zarr"
    classify(
        ip_crop_geo,
        out,
        ip_bundle,
        client=client,
        chunks=16,
        confidence=True,
        probabilities=tmp_path / "p.zarr",
        progress=False,
        log=_quiet,
    )
    m = xr.open_zarr(out, decode_coords="all", mask_and_scale=False, consolidated=False)  # keep class ids as integers
    ds = open_scene(ip_crop_geo)
    assert m.rio.crs.to_epsg() == 32616 and m.rio.transform() == ds.rio.transform()
    assert set(m.data_vars) == {"classes", "confidence"} and m["confidence"].dtype == np.float16
    assert m["classes"].dtype == np.uint8 and m["classes"].attrs["_FillValue"] == 0
    p = xr.open_zarr(tmp_path / "p.zarr", consolidated=False)["probabilities"]  # geohsi writes stores unconsolidated
    assert p.dtype == np.float16 and p.sizes["class"] == len(m.attrs["class_ids"])
    # as xarray opens it by default: each variable carries its CRS (spatial_ref had come back a data variable)
    for layer in (xr.open_zarr(out)["classes"], xr.open_zarr(out)["confidence"], p):
        assert layer.rio.crs.to_epsg() == 32616 and layer.rio.transform() == ds.rio.transform()
    ref = reference_probabilities(ip_crop_geo, ip_bundle)
    np.testing.assert_allclose(p.values.astype("float32"), ref, atol=5e-4, equal_nan=True)
    np.testing.assert_array_equal(m["classes"].values, reference_labels(ref, np.asarray(m.attrs["class_ids"])))


def test_pixel_grid_scene_to_zarr_works_and_to_tif_refuses(tmp_path, ip_crop_grid, ip_bundle, client):
    # the way forward names a Zarr path beside the GeoTIFF asked for (the bare name had lost its folder)
    (tmp_path / "maps").mkdir()
    with pytest.raises(GeoreferenceError, match=re.escape(f"write it as a Zarr map ({tmp_path / 'maps' / 'map.zarr'};")):
        classify(ip_crop_grid, tmp_path / "maps" / "map.tif", ip_bundle, client=client, progress=False, log=_quiet)
    assert not list((tmp_path / "maps").iterdir())
    classify(ip_crop_grid, tmp_path / "map.zarr", ip_bundle, client=client, progress=False, log=_quiet)
    assert (tmp_path / "map.zarr").is_dir()


def test_existing_output_is_kept_without_overwrite(tmp_path, ip_crop_geo, ip_bundle, client):
    out = tmp_path / "map.tif"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="--overwrite"):
        classify(ip_crop_geo, out, ip_bundle, client=client, progress=False, log=_quiet)
    assert out.read_bytes() == b"keep me"
    classify(ip_crop_geo, out, ip_bundle, client=client, chunks=64, overwrite=True, progress=False, log=_quiet)
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32616


def test_an_earlier_maps_confidence_left_beside_a_rewritten_map_is_said(tmp_path, ip_crop_geo, ip_bundle, client):
    """``--overwrite`` without ``--confidence`` had left ``map.confidence.tif`` of the earlier map beside the new one, unsaid."""
    out, said = tmp_path / "map.tif", []
    classify(ip_crop_geo, out, ip_bundle, client=client, confidence=True, progress=False, log=said.append)
    assert not [m for m in said if "earlier map" in m]
    classify(ip_crop_geo, out, ip_bundle, client=client, overwrite=True, progress=False, log=said.append)
    warned = [m for m in said if "earlier map" in m]
    assert len(warned) == 1 and "map.confidence.tif is an earlier map's" in warned[0] and "--confidence" in warned[0]
    assert (tmp_path / "map.confidence.tif").exists()  # said, not deleted: it may be the user's to keep


def test_outputs_that_would_write_one_file_name_the_two_options():
    """A --probabilities path equal to the confidence band's file had been reported as --out given twice."""
    with pytest.raises(UsageError, match=r"^--probabilities and --confidence would both write o/x\.confidence\.tif;"):
        MapOutputs.resolve("o/x.tif", "o/x.confidence.tif", confidence=True)
    with pytest.raises(UsageError, match=r"^--out and --probabilities would both write o/x\.tif;"):
        MapOutputs.resolve("o/x.tif", "o/x.tif")


def test_bad_suffix_and_chunks(tmp_path, ip_crop_geo, ip_bundle, client):
    with pytest.raises(UsageError, match=r"\.tif or \.zarr"):
        classify(ip_crop_geo, tmp_path / "map.png", ip_bundle, client=client, progress=False, log=_quiet)
    with pytest.raises(UsageError, match="--chunks"):
        classify(ip_crop_geo, tmp_path / "map.tif", ip_bundle, client=client, chunks=0, progress=False, log=_quiet)


def test_a_bundle_whose_backbone_file_moved_maps_with_backbone(tmp_path, ip_scene, ip_crop_geo, client):
    """A bundle trained on a backbone file names it by path; moved, classify finds it with --backbone
    (it had only been refused, pointing to an option classify did not have)."""
    import shutil

    import torch
    import xarray as xr

    from geohsi.errors import ModelError
    from geohsi.models import build_classifier, save_backbone
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    torch.manual_seed(1)
    bb = tmp_path / "bb" / "tiny.safetensors"
    bb.parent.mkdir()
    save_backbone(build_classifier("tiny", 9, img_size=32, num_bands=12), bb, include_head=True)
    cfg = resolve_train_config(adapter="lora", epochs=1, split="per-class:3", model="tiny", device="cpu", batch_size=32,
                               head="patch", backbone=str(bb))  # fmt: skip
    bundle = train(ip_scene, cfg, out=tmp_path / "b", progress=False, log=_quiet)
    run = dict(client=client, chunks=16, progress=False, log=_quiet)
    classify(ip_crop_geo, tmp_path / "before.zarr", bundle, **run)
    moved = tmp_path / "elsewhere" / "tiny.safetensors"
    moved.parent.mkdir()
    shutil.move(bb, moved)
    with pytest.raises(ModelError, match=r"which is missing; pass its new location with --backbone PATH"):
        classify(ip_crop_geo, tmp_path / "lost.zarr", bundle, **run)
    assert not list(tmp_path.glob("*lost*")) and not list(tmp_path.glob(".lost*"))  # refused before any work
    classify(ip_crop_geo, tmp_path / "after.zarr", bundle, backbone=moved, **run)
    before, after = (xr.open_zarr(tmp_path / f"{n}.zarr")["classes"].values for n in ("before", "after"))
    np.testing.assert_array_equal(after, before)
