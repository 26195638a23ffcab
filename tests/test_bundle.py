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
    ],
)
def test_malformed_descriptions_are_one_line_model_errors(change, match: str) -> None:
    doc = json.loads((LEGACY / "patch-krona+" / "bundle.json").read_text())
    change(doc)
    with pytest.raises(ModelError, match=match):
        BundleMeta.from_dict(doc)
