"""The public API: every CLI stage has a Python twin at the top level, callable however it was imported."""

from __future__ import annotations

import importlib

import geohsi


def test_every_public_name_resolves() -> None:
    for name in geohsi.__all__:
        assert getattr(geohsi, name) is not None, name


def test_stage_twins_stay_callable_after_their_modules_are_imported() -> None:
    for stage, sub in [("train", "geohsi.train.config"), ("classify", "geohsi.classify.graph"), ("ingest", "geohsi.ingest"),
                       ("evaluate", "geohsi.evaluate"), ("pretrain", "geohsi.pretrain"), ("baseline", "geohsi.baseline")]:
        importlib.import_module(sub)
        assert callable(getattr(geohsi, stage)), stage
    from geohsi.ingest import scene_info

    assert geohsi.ingest.scene_info is scene_info  # still a module too


def test_callable_module_forwards_to_the_function(tmp_path) -> None:
    import pytest

    from geohsi.errors import InputFormatError

    with pytest.raises(InputFormatError, match="does not exist"):
        geohsi.ingest(tmp_path / "missing.mat", tmp_path / "x.zarr")
