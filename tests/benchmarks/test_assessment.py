"""``python -m benchmarks assessment``: a class-map COG is written, read once, sampled and assessed in
rounds; the ratio is the one the timings give, and the assessment recovers the synthesised error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio

from tests.benchmarks.test_peft import run_benchmarks


def test_assessment_benchmark_times_every_step_and_reports_their_ratio(tmp_path: Path) -> None:
    out = tmp_path / "res.json"
    r = run_benchmarks("assessment", "--size", "1200", "--n", "200", "--repeats", "2", "--workdir", tmp_path, "--json", out)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    read, rest = res["full_read_s"], res["sample_s"] + res["assess_s"]
    rounding = 1e-4 / read + rest * 5e-5 / read**2  # the seconds are printed to 4 decimals
    assert res["ratio"] == pytest.approx(rest / read, abs=rounding + 1e-3)
    lo, mid, hi = res["ratio_per_round"]
    assert 0 < lo <= mid <= hi
    assert 0.8 < res["overall_accuracy"]["estimate"] < 1.0  # the reference gives another class to 10 % of the points
    with rasterio.open(tmp_path / "map_1200.tif") as src:
        assert src.shape == (1200, 1200) and src.overviews(1) and src.block_shapes[0] == (512, 512)
    assert "per round min/median/max" in r.stdout
