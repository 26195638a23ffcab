"""The class legend (scene.ClassInfo / Legend): one typed record for scenes, bundles, maps and plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geohsi.errors import DataError
from geohsi.scene import ClassInfo, Legend, add_labels, default_color, make_scene, scene_legend

ITEMS = [{"id": 1, "name": "roof", "color": "#ff0000"}, {"id": 4, "name": "tree", "color": "#00ff00"}]


def test_list_attrs_and_tag_forms_round_trip() -> None:
    legend = Legend.from_list(ITEMS)
    assert legend.to_list() == ITEMS
    assert legend.ids.tolist() == [1, 4] and legend.names == ["roof", "tree"] and legend.positions() == {1: 0, 4: 1}
    assert Legend.from_attrs(legend.to_attrs()) == legend
    assert Legend.from_attrs({"GEOHSI_CLASSES": json.dumps(ITEMS)}) == legend  # a COG's dataset tag
    assert Legend.from_attrs({}) is None
    assert Legend.coerce(legend) is legend and Legend.coerce(ITEMS) == legend
    assert list(legend) == [ClassInfo(1, "roof", "#ff0000"), ClassInfo(4, "tree", "#00ff00")] and len(legend) == 2


def test_scene_legend_covers_every_label_id_present() -> None:
    ds = make_scene(np.zeros((3, 4, 4), "float32"))
    labels = np.zeros((4, 4), "uint8")
    labels[0, 0] = 1
    ds = add_labels(ds, labels, class_names=["a", "b"], class_colors=["#111111", "#222222"])
    ds["labels"].values[1, 1] = 3  # an id the attributes do not declare (a hand-edited label raster)
    legend = scene_legend(ds)
    # declared 1..2, present 1 and 3: id 3 gets a default name and colour
    assert legend.to_list() == [
        {"id": 1, "name": "a", "color": "#111111"},
        {"id": 2, "name": "b", "color": "#222222"},
        {"id": 3, "name": "class_3", "color": default_color(3)},
    ]


def test_a_scene_without_labels_has_no_legend() -> None:
    with pytest.raises(DataError, match="has no labels"):
        scene_legend(make_scene(np.zeros((3, 4, 4), "float32")))


def test_the_digest_of_sparse_labels_equals_the_digest_of_their_grid():
    """Evaluation recognises a training scene by this digest: built row block by row block from the
    sparse labels (in any order) it must equal the whole grid's, or older bundles would not match."""
    from geohsi.scene import labels_digest, sparse_labels_digest

    rng = np.random.default_rng(0)
    for shape, rows in (((1, 1), 1), ((37, 53), 5), ((1500, 700), 1024), ((300, 2), 7)):
        grid = np.where(rng.random(shape) < 0.05, rng.integers(1, 300, shape), 0)
        idx = np.flatnonzero(grid)
        order = rng.permutation(idx.size)
        assert sparse_labels_digest(idx[order], grid.reshape(-1)[idx][order], shape, rows=rows) == labels_digest(grid)
    assert sparse_labels_digest(np.array([3]), np.array([2]), (2, 2)) != labels_digest(np.zeros((2, 2), int))


def test_a_class_map_geotiffs_legend_from_its_tags_and_colour_table() -> None:
    """One reader for the map opener (assess, info) and the quicklooks, which had each parsed the tags."""
    import json

    from geohsi.scene import Legend

    cmap = {0: (0, 0, 0, 0), 1: (255, 0, 0, 255), 2: (0, 0, 255, 255)}
    tagged = Legend.from_geotiff(
        {"GEOHSI_CLASSES": json.dumps([{"id": 1, "name": "crop"}, {"id": 2, "name": "water", "color": "#00ff00"}])}, {}, cmap
    )
    assert [(c.id, c.name, c.color) for c in tagged] == [(1, "crop", "#ff0000"), (2, "water", "#00ff00")]
    banded = Legend.from_geotiff({}, {"CLASS_0": "nodata", "CLASS_2": "water", "CLASS_x": "?"}, cmap)
    assert [(c.id, c.name, c.color) for c in banded] == [(2, "water", "#0000ff")]
    assert Legend.from_geotiff({}, {}, cmap) is None
