"""MapOptions: one typed home for the options classify and classify_many share, with their defaults."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from geohsi.classification.batch import classify_many
from geohsi.classification.options import MapOptions
from geohsi.classification.run import classify


@pytest.mark.parametrize("fn", [classify, classify_many])
def test_map_options_are_keyword_options_of_both_runs_with_the_same_defaults(fn) -> None:
    params = inspect.signature(fn).parameters
    for f in fields(MapOptions):
        assert f.name in params, f"{fn.__name__} has no option {f.name}"
        assert params[f.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[f.name].default == f.default, f"{fn.__name__}: {f.name} defaults to {params[f.name].default!r}"
    # the keywords bind to the real signature (no option is lost or renamed on the way)
    opts = MapOptions(device="cuda", precision="bf16", confidence=True, chunks=64, gpus="0,1")
    bound = inspect.signature(fn).bind_partial(**opts.keywords())
    assert bound.arguments == opts.keywords()
