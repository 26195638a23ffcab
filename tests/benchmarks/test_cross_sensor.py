"""``python -m benchmarks cross-sensor --quick``: an s2 bundle trained on the real EnMAP Potsdam mosaic
(224 bands) maps the mosaic simulated through AVIRIS-NG's band table (425 bands) — and one trained on
the simulation maps the real mosaic — on the same test pixels, and the table is written."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.benchmarks.test_peft import run_benchmarks


def test_cross_sensor_quick_maps_another_band_table_both_ways(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "cross.md"
    r = run_benchmarks(
        "cross-sensor", "--quick", "--workdir", tmp_path / "w", "--out", out, env={"GEOHSI_DATA_DIR": str(data_dir)}
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = list(csv.DictReader(out.with_suffix(".csv").read_text().splitlines()))
    assert [r_["direction"] for r_ in rows] == ["real→sim", "sim→real"]
    for row in rows:
        a, b = float(row["oa_train_sensor"]), float(row["oa_other_sensor"])
        assert 0.2 < a < 1 and 0.2 < b < 1  # the other sensor was mapped, not refused
    import xarray as xr

    sim = xr.open_zarr(tmp_path / "w" / "enmap_potsdam_as_aviris_ng.zarr", consolidated=False)
    assert sim.sizes["band"] == 425 and "labels" in sim
    text = out.read_text()
    assert "| enmap→aviris-ng | real→sim | krona+ | 0 | 1 |" in text and "python -m benchmarks cross-sensor --quick" in text
