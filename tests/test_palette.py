"""Class colours people can tell apart: the CIEDE2000 difference (geohsi.plot) and the default palette."""

from __future__ import annotations

import numpy as np
import pytest

from geohsi.plot import closest_colors, delta_e2000, palette_distances, srgb_to_lab
from geohsi.scene import DEFAULT_COLORS

#: The least CIEDE2000 difference between any two of the 20 default colours, white (nodata, the
#: figure background) and black (text, outlines). Side by side ΔE₀₀ ≈ 1 is just noticeable; a map's
#: classes must be told apart from a legend patch, and tab20 (the palette before) managed 12.1.
MIN_DELTA_E = 24.0

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula", Table 1: the pairs that
# exercise the hue wrap-around, the G term and the rotation term.
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, -1.3802, -84.2814), (50.0, 0.0, -82.7485), 1.0000),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0009), 7.1792),
    ((50.0, -0.001, 2.49), (50.0, 0.0009, -2.49), 4.8045),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def test_ciede2000_matches_the_published_test_data() -> None:
    lab1 = np.array([p[0] for p in SHARMA_PAIRS])
    lab2 = np.array([p[1] for p in SHARMA_PAIRS])
    want = np.array([p[2] for p in SHARMA_PAIRS])
    np.testing.assert_allclose(delta_e2000(lab1, lab2), want, atol=1e-4)
    np.testing.assert_allclose(delta_e2000(lab2, lab1), want, atol=1e-4)  # symmetric


def test_srgb_to_lab_of_reference_colours() -> None:
    lab = srgb_to_lab(["#ffffff", "#000000", "#ff0000", "#808080"])
    np.testing.assert_allclose(lab[0], [100.0, 0.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(lab[1], [0.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.02)  # sRGB red, D65
    assert lab[3][0] == pytest.approx(53.59, abs=0.02) and np.hypot(*lab[3][1:]) < 1e-3  # mid grey is neutral


def test_default_palette_colours_are_far_apart_for_up_to_20_classes() -> None:
    palette = list(DEFAULT_COLORS)
    assert len(palette) == 20 and len(set(palette)) == 20
    worst, i, j = closest_colors([*palette, "#ffffff", "#000000"])
    assert worst >= MIN_DELTA_E, f"{palette[i] if i < 20 else 'white'} and {palette[j] if j < 20 else 'black'}: ΔE₀₀ {worst:.1f}"
    # the first classes of a small legend are further apart still: colours are ordered max–min
    assert closest_colors(palette[:5])[0] >= 30.0 and closest_colors(palette[:10])[0] >= 25.0


def test_closest_colors_names_the_least_distinguishable_pair() -> None:
    d, i, j = closest_colors(["#00ff00", "#ff0000", "#7cfc00"])  # the Indian Pines legend's two greens
    assert (i, j) == (0, 2) and d < 6.0
    assert closest_colors(["#123456"]) == (float("inf"), 0, 0)
    m = palette_distances(["#ff0000", "#00ff00", "#0000ff"])
    assert m.shape == (3, 3) and np.allclose(np.diag(m), 0.0) and np.allclose(m, m.T)


def test_classes_past_the_palette_get_colours_of_their_own() -> None:
    """Ids past the 20 palette colours had cycled it: class 21 was drawn exactly like class 1. They
    now get colours picked far from every earlier one (the palette stays as it is)."""
    from geohsi.scene import default_color

    colours = [default_color(i) for i in range(1, 257)]
    assert colours[:20] == list(DEFAULT_COLORS)
    assert len(set(colours)) == 256 and all(c.startswith("#") and len(c) == 7 for c in colours)
    assert closest_colors(colours[:25])[0] > 8.0  # 0 before (class 21 = class 1)
    assert closest_colors(colours[:60])[0] > 5.0
    lab = srgb_to_lab(colours[20:])
    assert (lab[:, 0] > 30).all() and (lab[:, 0] < 92).all()  # never white (nodata) nor black


def test_the_classes_of_one_legend_never_share_a_default_colour() -> None:
    """Past id 256 the colours repeat every 236 ids: codes 100 and 336 had both been #ff9955, so a map of the
    two read as one flat colour. Within one legend each class now gets its own; ids up to 256 keep theirs."""
    from geohsi.scene import default_color, default_colors

    assert default_color(100) == default_color(336)  # the id → colour rule alone
    a, b = default_colors([100, 336])
    assert a == default_color(100) and b != a
    sparse = [17, 21, 257, 493, 729, 1001, 1237]  # 21, 257, 493, 729 share one colour by id
    assert len(set(default_colors(sparse))) == len(sparse)
    assert default_colors(range(1, 257)) == [default_color(i) for i in range(1, 257)]
    assert default_colors([21], taken=[default_color(21)]) != [default_color(21)]  # a declared colour is not reused


def test_a_trained_legend_of_sparse_codes_has_distinct_colours(tmp_path) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    from geohsi.io.vector import read_vector_labels

    path = tmp_path / "codes.gpkg"
    gpd.GeoDataFrame({"code": [100, 336]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs="EPSG:32633").to_file(path)
    legend = read_vector_labels(path, "code").legend
    assert legend.ids.tolist() == [100, 336] and len(set(legend.colors)) == 2


def test_ingested_labels_and_pooled_map_legends_get_distinct_colours(tmp_path) -> None:
    """add_labels had cycled the 20 palette colours (classes 1 and 21 alike), and assess coloured each legend-less
    map on its own, so the pooled legend of two maps held one colour twice."""
    import rasterio

    from geohsi.assessment.assess import _legend
    from geohsi.assessment.maps import open_maps
    from geohsi.scene import add_labels, make_scene, scene_legend

    ds = add_labels(make_scene(np.zeros((2, 5, 5), "uint16"), wavelength=[500, 600]), np.arange(25).reshape(5, 5))
    colours = scene_legend(ds).colors
    assert len(colours) == 24 and len(set(colours)) == 24
    for name, ids in (("A.tif", np.r_[np.full((5, 10), 100), np.full((5, 10), 336)]), ("B.tif", np.ones((10, 10)))):
        profile = dict(driver="GTiff", width=10, height=10, count=1, dtype="uint16", crs="EPSG:32633", nodata=0,
                       transform=rasterio.Affine(10, 0, 0, 0, -10, 0))  # fmt: skip
        with rasterio.open(tmp_path / name, "w", **profile) as dst:
            dst.write(ids.astype("uint16"), 1)
    pooled = _legend(open_maps([tmp_path / "A.tif", tmp_path / "B.tif"]))
    assert pooled.ids.tolist() == [1, 100, 336] and len(set(pooled.colors)) == 3


def test_a_declared_colour_in_upper_case_is_not_given_again() -> None:
    from geohsi.scene import filled_colors

    a, b = filled_colors([None, "#FF004B"])  # the palette's first colour, written in capitals
    assert b == "#FF004B" and a.lower() != b.lower()
