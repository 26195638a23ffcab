"""`geohsi bench peft --quick` keeps the results-table script working (CI smoke run)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_peft_table_quick(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "results.md"
    r = run_cli("bench", "peft", "--quick", "--out", out, "--method", "krona+", "--method", "scratch", "--method", "svm",
                "--workdir", tmp_path / "scenes", env={"GEOHSI_DATA_DIR": str(data_dir)})
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert {(x["dataset"], x["split"], x["method"]) for x in rows} == {
        (d, s, m) for d, s in (("indian_pines", "per-class:10"), ("enmap_potsdam", "blocks:32")) for m in ("krona+", "scratch", "svm")
    }
    assert not any(x.get("error") for x in rows), rows
    text = out.read_text()
    assert "## indian_pines, `per-class:10`" in text and "## enmap_potsdam, `blocks:32`" in text
    assert "do not edit by hand" in text and "geohsi bench peft --quick" in text
    for x in rows:
        assert 0.0 <= float(x["oa"]) <= 1.0
    krona = next(x for x in rows if x["method"] == "krona+" and x["dataset"] == "indian_pines")
    assert int(krona["trainable_params"]) < int(next(x for x in rows if x["method"] == "scratch")["trainable_params"])
