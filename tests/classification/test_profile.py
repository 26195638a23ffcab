"""Where a classification's time goes: tasks sorted into stages by their graph layer, the model task
split by the workers' forward timer, shares of the run's capacity."""

from __future__ import annotations

import pytest

from geohsi.classification.profile import STAGES, StageProfile, stage_of, stage_seconds


@pytest.mark.parametrize(
    ("key", "stage"),
    [
        (("original-zarr-reflectance-0f3a9c1e", 0, 1, 2), "read + decompress"),
        (("zarr-reflectance-0f3a9c1e", 0, 0, 0), "read + decompress"),
        (("rechunk-merge-0f3a9c1e", 0, 1, 1), "rechunk + halo"),
        (("overlap-concatenate-0f3a9c1e", 0, 1, 1), "rechunk + halo"),
        (("getitem-0f3a9c1e", 0, 0), "rechunk + halo"),
        (("spectral-transform-0f3a9c1e", 0, 0, 0), "spectral transform"),
        (("truediv-0f3a9c1e", 0, 0, 0), "spectral transform"),
        (("geohsi-classify-0f3a9c1e", 0, 0, 0), "model"),
        (("geohsi-blend-0f3a9c1e", 0, 0, 0), "tiles + blending"),
        ("geohsi-store-0-1-.map.zarr.parts.zarr-77aa", "parts write"),
        ("geohsi-finish-.map.zarr.parts.zarr-77aa", "map writing"),
    ],
)
def test_tasks_are_sorted_into_stages_by_their_layer(key, stage: str) -> None:
    assert stage_of(key) == stage


def test_the_model_task_is_split_by_the_forward_timer_and_transfers_counted_apart() -> None:
    stream = [
        {"key": ("geohsi-classify-ab", 0, 0, 0), "startstops": [{"action": "transfer", "start": 0.0, "stop": 0.5},
                                                                 {"action": "compute", "start": 1.0, "stop": 4.0}]},
        {"key": ("geohsi-blend-ab", 0, 0, 0), "startstops": [{"action": "compute", "start": 4.0, "stop": 4.25}]},
        {"key": ("zarr-x-ab", 0, 0, 0), "startstops": [{"action": "compute", "start": 0.0, "stop": 1.0}]},
    ]  # fmt: skip
    s = stage_seconds(stream, forward_s=2.0)
    assert s["model forward"] == 2.0 and s["tiles + blending"] == pytest.approx(1.25)
    assert s["transfer between workers"] == 0.5 and s["read + decompress"] == 1.0
    assert set(s) == set(STAGES)
    prof = StageProfile(seconds=s, wall_s=4.0, threads=2, model_inputs=100, pixels=51200, tile=32)
    assert sum(prof.shares.values()) == pytest.approx(1.0) and prof.shares["idle"] == pytest.approx(1 - 4.75 / 8)
    assert prof.tile_forwards_per_pixel == pytest.approx(2.0)
    assert any("2.000 tile forwards per map pixel" in line for line in prof.lines())
    assert StageProfile(model_inputs=5, pixels=10).tile_forwards_per_pixel is None  # a patch head
