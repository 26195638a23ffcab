"""The bundle's typed metadata (BundleMeta): it reads every bundle.json layout written so far and writes the same one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geohsi.bundle import BundleMeta, load_bundle
from geohsi.errors import ModelError
from geohsi.heads import DenseHead, PatchHead

LEGACY = Path(__file__).parent / "data" / "bundles-0.1"


def _canonical(d: dict) -> dict:
    return json.loads(json.dumps(d, sort_keys=True))


@pytest.mark.parametrize("name", ["patch-krona+", "dense-lora"])
def test_bundle_json_written_before_the_redesign_round_trips_unchanged(name: str) -> None:
    doc = json.loads((LEGACY / name / "bundle.json").read_text())
    meta = BundleMeta.from_dict(doc)
    assert _canonical(meta.to_dict()) == _canonical(doc)
    assert isinstance(meta.head, PatchHead if name.startswith("patch") else DenseHead)


def test_dense_record_carries_tile_overlap_and_decoder_widths() -> None:
    meta = load_bundle(LEGACY / "dense-lora").meta
    assert (meta.head.tile, meta.head.overlap) == (32, 8)
    assert dict(meta.head.widths) == {"fuse_dim": 128, "decoder_dim": 64, "spectral_dim": 32}
    assert meta.backbone.kind == "bundled" and meta.method == "lora" and len(meta.classes) == 16


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.update(format="other"), "not a geohsi bundle description"),
        (lambda d: d.update(version=99), "newer than this geohsi reads"),
        (lambda d: d["model"].update(head="voxel"), "malformed"),
        (lambda d: d.pop("classes"), "malformed"),
        # hand edits that had loaded and failed later (an unexpected error after the map was computed,
        # class 0 mapped as nodata, two logits mapped to one id)
        (lambda d: d.update(version="1.0"), r"format version '1\.0', not a whole number"),
        (lambda d: d.update(version=None), r"format version None, not a whole number"),
        (lambda d: d["classes"][0].update(color="red"), r"class colour 'red' is not #rrggbb"),
        (lambda d: d["classes"][0].update(id=0), r"class id 0 is below 1 \(0 is nodata in every map\)"),
        (lambda d: d["classes"][1].update(id=d["classes"][0]["id"]), r"class id 1 is listed twice"),
        (lambda d: d["classes"][1].update(name=d["classes"][0]["name"]), r"class name '.*' is listed twice"),
        (lambda d: d["adapter"].pop("method"), r"the field adapter\.method is missing"),
        (lambda d: d["model"]["config"].pop("embed_dim"), r"the field model\.config\.embed_dim is missing"),
        (lambda d: d.update(spectral={}), r"the field spectral\.reduction is missing"),
    ],
)
def test_malformed_descriptions_are_one_line_model_errors(change, match: str) -> None:
    doc = json.loads((LEGACY / "patch-krona+" / "bundle.json").read_text())
    change(doc)
    with pytest.raises(ModelError, match=match):
        BundleMeta.from_dict(doc)


def test_class_colours_are_read_as_hex_in_any_case() -> None:
    doc = json.loads((LEGACY / "patch-krona+" / "bundle.json").read_text())
    doc["classes"][0]["color"] = "1F77B4"
    assert BundleMeta.from_dict(doc).classes[0].color == "#1f77b4"
