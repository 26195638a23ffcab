"""Class maps read chunk by chunk (geohsi/assessment/maps.py): counts, values at pixels, catalogues, legends."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st

from geohsi.assessment.maps import _block_counts, catalog_maps, open_map, open_maps, pooled_legend, scan_map
from geohsi.errors import DataError, InputFormatError, UsageError
from tests.assessment.conftest import write_class_tif


def _ids(shape=(70, 50), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, shape).astype("uint8")


def test_one_chunked_pass_counts_every_class_and_reads_values_at_pixels(tmp_path):
    ids = _ids()
    m = open_map(write_class_tif(tmp_path / "m.tif", ids, ("a", "b", "c")), chunks=16)
    assert m.data.numblocks == (5, 4) and m.legend.names == ["a", "b", "c"] and m.legend.colors[0] == "#d62728"
    assert m.pixel_area_m2 == pytest.approx(900_000.0) and "m² per pixel" in m.area_note
    rows, cols = np.array([0, 69, 33, 15]), np.array([0, 49, 20, 16])
    s = scan_map(m, rows=rows, cols=cols)
    assert s.ids.tolist() == [1, 2, 3] and s.counts.tolist() == np.bincount(ids.ravel(), minlength=4)[1:].tolist()
    assert s.values.tolist() == ids[rows, cols].tolist()
    only = scan_map(m, count=False, rows=rows, cols=cols)  # reads just the chunks holding the pixels
    assert only.values.tolist() == ids[rows, cols].tolist() and only.counts.sum() == 0


def test_candidates_are_distinct_pixels_of_their_class(tmp_path):
    ids = _ids()
    m = open_map(write_class_tif(tmp_path / "m.tif", ids, ("a", "b", "c")), chunks=32)
    s = scan_map(m, draw=5, seed=(1,))
    flat = ids.ravel()
    for b, per_class in enumerate(s.candidates):
        for k, cand in enumerate(per_class):
            assert len(cand) == min(5, s.block_counts[b, k]) and len(set(cand.tolist())) == len(cand)
            assert (flat[cand] == s.ids[k]).all()
    assert s.block_counts.sum(axis=0).tolist() == s.counts.tolist()


def test_a_map_with_classes_its_legend_does_not_declare(tmp_path):
    ids = _ids()
    m = open_map(write_class_tif(tmp_path / "m.tif", ids, ("a", "b")))  # class 3 undeclared
    with pytest.raises(DataError, match=r"class ids \[3\]"):
        scan_map(m)


def test_catalogue_items_name_their_maps(tmp_path):
    (tmp_path / "maps").mkdir()
    write_class_tif(tmp_path / "maps" / "t1.tif", _ids(), ("a", "b", "c"))
    (tmp_path / "maps" / "t1.json").write_text(json.dumps({"assets": {"map": {"href": "./t1.tif"}}}))
    cat = tmp_path / "maps" / "catalog.json"
    cat.write_text(json.dumps({"links": [{"rel": "root", "href": "./catalog.json"}, {"rel": "item", "href": "./t1.json"}]}))
    assert catalog_maps(cat) == [(tmp_path / "maps" / "t1.tif").resolve()]
    with pytest.raises(UsageError, match="given twice"):
        open_maps([tmp_path / "maps" / "t1.tif"], cat)
    with pytest.raises(InputFormatError, match="catalog.json"):
        catalog_maps(tmp_path / "none.json")
    (tmp_path / "list.json").write_text("[1, 2]")  # JSON, but no catalogue: had been an AttributeError (exit 70)
    with pytest.raises(InputFormatError, match=r"cannot read catalogue .*list.json \(ValueError\)"):
        catalog_maps(tmp_path / "list.json")
    (tmp_path / "nohref.json").write_text(json.dumps({"links": [{"rel": "item"}]}))  # had been a KeyError
    with pytest.raises(InputFormatError, match="has an item link without href"):
        catalog_maps(tmp_path / "nohref.json")
    (tmp_path / "gone.json").write_text(json.dumps({"links": [{"rel": "item", "href": "./items/t9.json"}]}))
    with pytest.raises(InputFormatError, match=r"lists item \./items/t9\.json, which is missing"):
        catalog_maps(tmp_path / "gone.json")
    for links in ("x", None, [1], {"rel": "item"}):  # exit 70 each (AttributeError, TypeError)
        (tmp_path / "odd.json").write_text(json.dumps({"links": links}))
        with pytest.raises(InputFormatError, match="lists no map items"):
            catalog_maps(tmp_path / "odd.json")


def test_a_bucket_batchs_catalogue_copied_here_names_the_maps_beside_it(tmp_path):
    """A batch into s3:// links its items and maps by absolute URL; copied locally (as sample/assess ask), they had
    been read as ``./s3:/bucket/…`` and refused."""
    write_class_tif(tmp_path / "t1.tif", _ids(), ("a", "b", "c"))
    (tmp_path / "t1.json").write_text(json.dumps({"assets": {"map": {"href": "s3://bkt/batch/t1.tif"}}}))
    cat = tmp_path / "catalog.json"
    cat.write_text(json.dumps({"type": "Collection", "links": [{"rel": "item", "href": "s3://bkt/batch/t1.json"}]}))
    assert catalog_maps(cat) == [(tmp_path / "t1.tif").resolve()]
    with pytest.raises(UsageError, match="no map given"):
        open_maps([])


def test_legends_must_agree_and_geographic_pixels_have_geodesic_areas(tmp_path):
    a = open_map(write_class_tif(tmp_path / "a.tif", _ids(), ("a", "b", "c")))
    b = open_map(write_class_tif(tmp_path / "b.tif", _ids(), ("a", "x", "c")))
    with pytest.raises(DataError, match="disagree on class 2"):
        pooled_legend([a, b])
    geo = open_map(write_class_tif(tmp_path / "g.tif", _ids(), ("a", "b", "c"), crs="EPSG:4326",
                                   transform=rasterio.Affine(0.001, 0, 13.0, 0, -0.001, 52.5)))  # fmt: skip
    assert "geodesic" in geo.area_note and 6_000 < geo.pixel_area_m2 < 8_000  # ~68 m × 111 m at 52.5° N


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(1, 5),
    top=st.integers(0, 8),
    n=st.integers(0, 300),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(["uint8", "uint16", "int16"]),
    declared=st.sampled_from(["1..K", "gappy", "none"]),
)
def test_chunk_counts_equal_a_bincount_whatever_the_values(k, top, n, seed, dtype, declared):
    """Every way a chunk is counted (comparisons, last class by difference, bincount) gives the bincount."""
    block = np.random.default_rng(seed).integers(0, top + 1, (n, 3)).astype(dtype)
    ids = {"1..K": np.arange(1, k + 1), "gappy": np.arange(1, 2 * k + 1, 2), "none": None}[declared]
    found, counts = _block_counts(block, ids)
    truth = np.bincount(block.ravel().astype(np.int64), minlength=1)
    got = {int(i): int(c) for i, c in zip(found, counts, strict=True) if c}
    assert got == {i: int(c) for i, c in enumerate(truth) if c and i != 0}
    assert (counts >= 0).all()


def test_probed_candidates_are_simple_random_samples_of_each_class():
    """Classes common enough to be probed share one probe stream, a rare one is listed, an absent one
    gets none: over 3,000 draws each class's candidates are distinct pixels of it, and every part of
    the class is hit in proportion to its pixels there (chi-square over 16 bands of the chunk)."""
    from scipy.stats import chisquare

    from geohsi.assessment.maps import _PROBE_PIXELS, _random_positions

    rng = np.random.default_rng(0)
    flat = np.where(rng.random(8192) < np.linspace(0.1, 0.9, 8192), 1, 2).astype("uint8")
    flat[rng.choice(8192, 600, replace=False)] = 3  # rare: listed
    found = np.array([1, 2, 3, 4])  # 4: counted in another chunk, absent here
    counts = np.array([np.count_nonzero(flat == i) for i in found])
    draw = 2
    assert (counts[:2] >= draw * _PROBE_PIXELS).all() and 0 < counts[2] < draw * _PROBE_PIXELS and counts[3] == 0
    bands = np.arange(flat.size) // 512
    hits = np.zeros((3, 16))
    for seed in range(3000):
        cands = _random_positions(flat, found, counts, draw, np.random.default_rng(seed))
        assert cands[3].size == 0
        for k, cand in enumerate(cands[:3]):
            assert cand.size == draw and np.unique(cand).size == draw and (flat[cand] == found[k]).all()
            np.add.at(hits[k], bands[cand], 1)
    for k, i in enumerate(found[:3]):
        expected = np.bincount(bands[flat == i], minlength=16) / counts[k] * hits[k].sum()
        assert chisquare(hits[k], expected).pvalue > 0.001, i


def _plain_tif(path, ids, dtype, nodata, *, x0=400_000.0, px=10.0):
    """A class map as other tools write it: no legend, its own nodata value."""
    profile = dict(driver="GTiff", width=ids.shape[1], height=ids.shape[0], count=1, dtype=dtype, nodata=nodata,
                   crs="EPSG:32633", transform=rasterio.Affine(px, 0, x0, 0, -px, 5_800_000.0))  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(ids.astype(dtype), 1)
    return path


@pytest.mark.parametrize(("dtype", "nodata"), [("uint8", 255), ("int16", -1), ("int16", -9999), ("uint16", 65535)])
def test_a_maps_own_nodata_value_is_nodata(tmp_path, dtype, nodata):
    ids = _ids((40, 30)).astype(np.int64)  # 0–3; 0 becomes the file's nodata value
    tif = _plain_tif(tmp_path / "m.tif", np.where(ids == 0, nodata, ids), dtype, nodata)
    scan = scan_map(open_map(tif, chunks=16), rows=np.array([0, 5]), cols=np.array([0, 7]))
    truth = np.bincount(ids.ravel())
    assert scan.ids.tolist() == [1, 2, 3] and scan.counts.tolist() == truth[1:].tolist()
    assert scan.values.tolist() == [ids[0, 0], ids[5, 7]]


def test_negative_ids_a_zero_class_beside_another_nodata_and_huge_ids(tmp_path):
    ids = _ids((40, 30)).astype(np.int64)
    with pytest.raises(DataError, match="negative class id -3"):
        scan_map(open_map(_plain_tif(tmp_path / "neg.tif", np.where(ids == 2, -3, ids), "int16", 0)))
    with pytest.raises(DataError, match="declares nodata 255 but also holds class id 0"):
        scan_map(open_map(_plain_tif(tmp_path / "zero.tif", ids, "uint8", 255)))
    big = np.where(ids == 2, 4_000_000_000, ids)  # counted without a bincount table of 4·10⁹ entries
    scan = scan_map(open_map(_plain_tif(tmp_path / "big.tif", big, "uint32", 0)))
    assert scan.ids.tolist() == [1, 3, 4_000_000_000] and scan.counts.sum() == np.count_nonzero(ids)


def test_maps_of_other_pixel_sizes_are_refused_and_overlaps_found(tmp_path):
    from geohsi.assessment.maps import overlaps

    ids = _ids((40, 40))
    ten = _plain_tif(tmp_path / "ten.tif", ids, "uint8", 0)
    thirty = _plain_tif(tmp_path / "thirty.tif", ids, "uint8", 0, px=30.0)
    with pytest.raises(DataError, match=r"ten.tif \(100 m² pixels\) and thirty.tif \(900 m²\) differ in pixel area"):
        open_maps([ten, thirty])
    beside = _plain_tif(tmp_path / "beside.tif", ids, "uint8", 0, x0=400_400.0)  # shares an edge with ten.tif
    over = _plain_tif(tmp_path / "over.tif", ids, "uint8", 0, x0=400_200.0)  # covers its right half
    assert overlaps(open_maps([ten, beside])) == []
    assert overlaps(open_maps([ten, beside, over])) == [(0, 2, 200.0 * 400.0), (1, 2, 200.0 * 400.0)]


def test_pixel_areas_of_a_web_mercator_grid_are_geodesic():
    """EPSG:3857 scales areas by 1/cos²(latitude): a 30 m pixel at 52.4° N covers ≈ 335.6 m², not 900.
    UTM (scale within 0.2 %) and an equal-area grid keep the nominal area, as map users compute it."""
    from affine import Affine
    from pyproj import Geod, Transformer
    from rasterio.crs import CRS

    from geohsi.scene import grid_pixel_areas

    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    x, y = to_merc.transform(13.0, 52.4)
    areas, note = grid_pixel_areas(CRS.from_epsg(3857), Affine(30, 0, x, 0, -30, y), (50, 20))
    back = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    lon, lat = back.transform([x + 300, x + 330, x + 330, x + 300], [y, y, y - 30, y - 30])  # row 0, middle column
    assert areas[0] == pytest.approx(abs(Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)[0]), rel=1e-6)
    assert 335 < areas[0] < 336 and areas[-1] > areas[0] and "geodesic" in note  # rows further south cover more
    for epsg, origin in ((32633, (400_000, 5_800_000)), (3035, (4_500_000, 3_300_000))):
        nominal, _ = grid_pixel_areas(CRS.from_epsg(epsg), Affine(30, 0, origin[0], 0, -30, origin[1]), (5, 5))
        assert (nominal == 900.0).all()
