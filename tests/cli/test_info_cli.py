"""geohsi info on scenes, model configs (+ adapters) and bundles."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_info_model_base_prints_formula_and_built_counts() -> None:
    r = run_cli("info", "--model", "base")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("85,218,048") == 2  # formula and built model agree


@pytest.mark.parametrize(("adapter", "count"), [("lora", "294,912"), ("krona", "38,400"), ("krona+", "38,400")])
def test_info_model_adapter_counts(adapter: str, count: str) -> None:
    r = run_cli("info", "--model", "base", "--adapter", adapter, "--num-classes", 16)
    assert r.returncode == 0, r.stderr
    assert count in r.stdout
    head = 768 * 2 + 768 * 16 + 16
    total = int(count.replace(",", "")) + head
    assert r.stdout.count(f"{total:,}") == 2


def test_info_scene(enmap_scene: Path) -> None:
    r = run_cli("info", enmap_scene)
    assert r.returncode == 0, r.stderr
    for needle in ("EPSG:32633", "224", "low vegetation", "1694", "-32768"):
        assert needle in r.stdout, needle


def test_info_without_path_or_model_is_a_one_line_error() -> None:
    r = run_cli("info")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--model" in r.stderr


def test_info_scene_prints_the_band_table_and_flags_inflated_widths(enmap_scene: Path, tmp_path: Path) -> None:
    import numpy as np

    from geohsi.scene import make_scene, open_scene, write_scene

    r = run_cli("info", enmap_scene)
    assert r.returncode == 0, r.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in r.stdout.splitlines() if line.count("│") >= 3}
    assert rows["band_table min_nm"] == "418.24" and rows["band_table max_nm"] == "2445.53"
    assert rows["band_table median_fwhm_nm"].startswith("8.") and rows["band_check"] == "ok"
    # a store written before the one unit rule: 8 nm widths read as 8 µm
    ds = open_scene(enmap_scene)
    old = make_scene(ds["reflectance"].data, wavelength=ds["wavelength"].values, fwhm=ds["fwhm"].values * 1000)
    write_scene(old, tmp_path / "old.zarr")
    r = run_cli("info", tmp_path / "old.zarr", env={"COLUMNS": "1000"})  # one table row per line
    assert r.returncode == 0, r.stderr
    assert "band widths up to" in r.stdout and "re-ingest the source with --overwrite" in r.stdout
    assert np.isfinite(open_scene(tmp_path / "old.zarr", check_band_table=False)["fwhm"].values).all()
