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
