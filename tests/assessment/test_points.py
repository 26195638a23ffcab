"""Points files (geohsi/assessment/points.py): class names or ids, atomic writes by suffix, reading back."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest

from geohsi.assessment.points import class_positions, read_points, write_points
from geohsi.errors import DataError, InputFormatError, OutputError, UsageError
from geohsi.scene import ClassInfo, Legend

LEGEND = Legend((ClassInfo(1, "Stable forest"), ClassInfo(3, "Water"), ClassInfo(7, "Urban area")))


def test_reference_values_are_class_names_or_ids():
    values = ["water", " Stable  FOREST ", 7, "3", 1.0, "", None, float("nan"), "7.0"]
    assert class_positions(values, LEGEND, field="ref", source="p.gpkg").tolist() == [1, 0, 2, 1, 0, -1, -1, -1, 2]
    with pytest.raises(DataError, match=r"2 value\(s\).*'Cloud', '2'.*1=Stable forest, 3=Water, 7=Urban area"):
        class_positions(["Cloud", "2", "water"], LEGEND, field="ref", source="p.gpkg")


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".csv"])
def test_points_are_written_atomically_by_suffix_and_read_back(tmp_path, suffix):
    g = gpd.GeoDataFrame({"point_id": [1, 2], "x": [400_500.0, 401_500.0], "y": [5_799_550.0, 5_798_650.0], "ref": ["", ""]},
                         geometry=gpd.points_from_xy([400_500.0, 401_500.0], [5_799_550.0, 5_798_650.0]), crs="EPSG:32633")  # fmt: skip
    out = write_points(g, tmp_path / f"p{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"p{suffix}"]  # no temporary left behind
    back = read_points(out, crs="EPSG:32633")
    assert len(back) == 2 and (back["ref"].fillna("") == "").all()
    np.testing.assert_allclose(back.to_crs("EPSG:32633").geometry.x, g.geometry.x, atol=1e-6)
    with pytest.raises(OutputError, match="--overwrite"):
        write_points(g, out)


def test_bad_points_files(tmp_path):
    g = gpd.GeoDataFrame({"a": [1]}, geometry=gpd.points_from_xy([0.0], [0.0]), crs="EPSG:4326")
    with pytest.raises(UsageError, match=".gpkg"):
        write_points(g, tmp_path / "p.kml")
    with pytest.raises(InputFormatError, match="does not exist"):
        read_points(tmp_path / "none.gpkg")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputFormatError, match="lon/lat"):
        read_points(tmp_path / "bad.csv")
    (tmp_path / "survey no. 2").mkdir()
    (tmp_path / "survey no. 2" / "broken.gpkg").write_text("not a geopackage")
    with pytest.raises(
        InputFormatError, match=r"cannot read .*survey no\. 2/broken\.gpkg: '.*survey no\. 2/broken\.gpkg' not"
    ) as e:
        read_points(tmp_path / "survey no. 2" / "broken.gpkg")  # a ". " in the path had cut the message
    # GDAL's first sentence and the fix, not an exception class and advice cut mid-sentence
    assert (
        "Error" not in str(e.value) and "It might help" not in str(e.value) and str(e.value).endswith("(e.g. from geohsi sample)")
    )


def test_a_geopackage_of_several_layers_reads_the_first_and_says_so(tmp_path):
    """Points saved again by geopandas without a layer name land in a second layer; the first was read behind
    pyogrio's UserWarning (with its source line), and assess then called the labelled points unlabelled."""
    import warnings

    from geohsi.errors import GeohsiWarning

    g = gpd.GeoDataFrame({"ref": ["", ""]}, geometry=gpd.points_from_xy([1.0, 2.0], [3.0, 4.0]), crs="EPSG:32633")
    g.to_file(tmp_path / "p.gpkg", driver="GPKG", layer="points")
    g.assign(ref=["water", "forest"]).to_file(tmp_path / "p.gpkg", driver="GPKG", layer="labelled")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = read_points(tmp_path / "p.gpkg")
    assert (back["ref"].fillna("") == "").all()  # the first layer, as GDAL reads it
    assert [str(w.message) for w in caught] == [
        "points file p.gpkg holds 2 layers (points, labelled); reading 'points', the first: keep the labelled points "
        "alone in the file"
    ]
    assert caught[0].category is GeohsiWarning
