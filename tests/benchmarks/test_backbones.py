"""``python -m benchmarks backbones --quick``: one row trains in patch mode on Indian Pines, the table
and CSV are written, and a rerun reuses the finished bundle."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.benchmarks.test_peft import run_benchmarks


@pytest.mark.slow
def test_backbones_quick_writes_the_table_and_resumes(tmp_path: Path, data_dir: Path) -> None:
    out, env = tmp_path / "bb.md", {"GEOHSI_DATA_DIR": str(data_dir)}
    args = ("backbones", "--quick", "--row", "s2 backbone + KronA+", "--workdir", tmp_path / "w", "--out", out)
    r = run_benchmarks(*args, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = list(csv.DictReader(out.with_suffix(".csv").read_text().splitlines()))
    assert [row["row"] for row in rows] == ["s2 backbone + KronA+"] and 0.05 < float(rows[0]["oa"]) < 1
    bundle = next((tmp_path / "w" / "bundles").iterdir())
    stamp = (bundle / "bundle.json").stat().st_mtime_ns
    assert run_benchmarks(*args, env=env).returncode == 0
    assert (bundle / "bundle.json").stat().st_mtime_ns == stamp  # reused, not retrained
    assert "| s2 backbone + KronA+ | random-tiny-seed0 | 1 |" in out.read_text()
