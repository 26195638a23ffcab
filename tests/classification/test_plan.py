"""The Dask graph equals the single-process per-pixel loop, for any chunking."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

from geohsi.classification import predict_map
from geohsi.classification.plan import build_plan
from geohsi.export.maps import labels_from_probabilities
from geohsi.heads import DenseHead, PatchHead
from tests.classification.conftest import reference_labels, reference_probabilities


@pytest.fixture(scope="module")
def ip_reference(ip_crop_geo, ip_bundle):
    return reference_probabilities(ip_crop_geo, ip_bundle)


# 5 < halo 7 (blocks need several neighbours and reflect across them), odd sizes, one chunk for the scene.
@pytest.mark.parametrize("chunks", [5, 13, 17, 64])
def test_dask_map_equals_in_memory_loop(ip_crop_geo, ip_bundle, ip_reference, chunks):
    from geohsi.bundle import load_bundle

    b = load_bundle(ip_bundle)
    probs = predict_map(ip_crop_geo, b, what="probabilities", chunks=chunks, batch_size=97)
    assert probs.data.chunks[1][0] == min(chunks, 40)
    with dask.config.set(scheduler="threads", num_workers=2):
        p = probs.values
        labels = predict_map(ip_crop_geo, b, chunks=chunks).values
    ref = ip_reference
    assert p.shape == ref.shape == (len(b.classes), 40, 50)
    assert np.array_equal(np.isnan(p), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(p), np.nan_to_num(ref), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(labels, reference_labels(ref, b.class_ids))


def test_nodata_pixels_become_nodata(ip_crop_geo, ip_bundle):
    from geohsi.scene import open_scene, valid_mask

    labels = predict_map(ip_crop_geo, ip_bundle, chunks=16)
    valid = valid_mask(open_scene(ip_crop_geo)).values
    with dask.config.set(scheduler="threads", num_workers=2):
        m = labels.values
    assert (~valid).sum() >= 35
    assert np.all(m[~valid] == 0)
    assert np.all(m[valid] > 0)
    assert labels.rio.nodata == 0


def test_dataarray_is_georeferenced_and_lazy(ip_crop_geo, ip_bundle):
    from geohsi.scene import open_scene

    ds = open_scene(ip_crop_geo)
    m = predict_map(ip_crop_geo, ip_bundle, chunks=16)
    assert isinstance(m.data, da.Array)
    assert m.dims == ("y", "x") and m.dtype == np.uint8
    assert m.rio.crs.to_epsg() == 32616
    assert m.rio.transform() == ds.rio.transform()
    np.testing.assert_array_equal(m.x.values, ds.x.values)
    conf = predict_map(ip_crop_geo, ip_bundle, what="confidence", chunks=16)
    assert conf.dims == ("y", "x") and conf.dtype == np.float32


def test_graph_carries_the_bundle_path_not_weights(ip_crop_geo, ip_bundle):
    import pickle

    from geohsi.bundle import load_bundle
    from geohsi.scene import open_scene

    b = load_bundle(ip_bundle)
    plan = build_plan(open_scene(ip_crop_geo), b, chunks=16)
    graph = dict(plan.probabilities.__dask_graph__())
    size = len(pickle.dumps(graph))
    weights = sum(f.stat().st_size for f in b.path.rglob("*.safetensors"))
    assert size < weights / 4, (size, weights)
    assert plan.spec.bundle_hash == b.hash and plan.spec.bundle_path == str(b.path.absolute())


def test_gpu_annotation_is_on_the_model_layer_only(ip_crop_geo, ip_bundle):
    from geohsi.bundle import load_bundle
    from geohsi.scene import open_scene

    plan = build_plan(open_scene(ip_crop_geo), load_bundle(ip_bundle), chunks=16, gpu_resources=True)
    layers = plan.probabilities.__dask_graph__().layers
    annotated = [n for n, layer in layers.items() if (layer.annotations or {}).get("resources") == {"GPU": 1}]
    assert annotated == [plan.probabilities.name]
    # what write_map submits: the unoptimised per-block graph keeps the annotation (dask issue 7036)
    blk = plan.probabilities.to_delayed(optimize_graph=False)[0, 0, 0]
    assert any((layer.annotations or {}).get("resources") == {"GPU": 1} for layer in blk.__dask_graph__().layers.values())


def test_labels_from_probabilities_marks_nan_as_nodata():
    p = np.array([[[0.1, np.nan], [0.7, 0.2]], [[0.9, np.nan], [0.3, 0.8]]], np.float32)
    ids = np.array([3, 300])
    out = labels_from_probabilities(p, ids)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[300, 0], [3, 300]])
    lazy = labels_from_probabilities(da.from_array(p, chunks=(2, 1, 1)), ids)
    np.testing.assert_array_equal(lazy.compute(), out)


def test_default_chunk_bounds_memory():
    patch = PatchHead(window=15)
    assert patch.default_chunk(10_000, 10_000, 12) == 128
    big = patch.default_chunk(10_000, 10_000, 4000)
    assert 32 <= big < 128 and 3 * 8 * 4000 * (big + 14) ** 2 <= 256 << 20
    assert patch.default_chunk(40, 50, 200) == 50
    dense = DenseHead()
    assert dense.default_chunk(10_000, 10_000, 224) == 256
    small = dense.default_chunk(10_000, 10_000, 4000)
    assert 32 <= small < 256 and 3 * 8 * 4000 * small**2 <= 2 * (256 << 20)


@pytest.mark.parametrize(("scene", "bundle", "chunks"), [("ip_crop_geo", "ip_bundle", 5), ("enmap_scene", "enmap_bundle", 48)])
def test_spectral_transform_on_the_device_gives_the_same_map(request, scene: str, bundle: str, chunks: int) -> None:
    """Raw bands overlapped and turned into channels inside each task (what GPU workers do) give the
    map of the host-side transform; on Indian Pines with 5-px chunks, below the 7-px halo."""
    from geohsi.bundle import load_bundle

    path, b = request.getfixturevalue(scene), load_bundle(request.getfixturevalue(bundle))
    lazy = {on: predict_map(path, b, what="probabilities", chunks=chunks, spectral_on_device=on) for on in (False, True)}
    assert lazy[True].data.name != lazy[False].data.name
    with dask.config.set(scheduler="threads", num_workers=2):
        host, dev = lazy[False].values, lazy[True].values
    assert np.array_equal(np.isnan(host), np.isnan(dev)) and np.isnan(host).any() and not np.isnan(host).all()
    np.testing.assert_allclose(np.nan_to_num(dev), np.nan_to_num(host), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(labels_from_probabilities(dev, b.class_ids), labels_from_probabilities(host, b.class_ids))


def test_a_chunk_edge_larger_than_the_scene_is_the_scene(ip_crop_geo, ip_bundle):
    """--chunks 100000 on a small scene had sized the parts store's chunks at 100,000² pixels: the worker
    filled its memory writing the scene into one."""
    from geohsi.bundle import load_bundle
    from geohsi.scene import open_scene

    ds = open_scene(ip_crop_geo)
    plan = build_plan(ds, load_bundle(ip_bundle), chunks=100_000)
    assert plan.chunk == max(ds.sizes["y"], ds.sizes["x"])
    assert plan.probabilities.chunks[1:] == ((ds.sizes["y"],), (ds.sizes["x"],))
