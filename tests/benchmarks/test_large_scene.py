"""``python -m benchmarks large-scene``: a synthetic scene is written, classified with the profile, and set
against the bare forward measured on the same workers; each tile of its tiling runs once."""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks.test_peft import run_benchmarks


def test_large_scene_reports_ratios_stages_and_tile_forwards(tmp_path: Path, ip_scene: Path, data_dir: Path) -> None:
    import geohsi

    bundle = geohsi.train(ip_scene, adapter="lora", model="tiny", head="dense", epochs=1, split="per-class:5", device="cpu",
                          out=tmp_path / "b", progress=False, log=lambda m: None)  # fmt: skip
    r = run_benchmarks("large-scene", bundle, "--size", "96", "--chunks", "40", "--workers", "1", "--precision", "fp32",
                       "--workdir", tmp_path / "w", "--bare-seconds", "0.5", env={"GEOHSI_DATA_DIR": str(data_dir)})  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["shape"] == [200, 96, 96] and res["px_s"] > 0
    assert res["tile_forwards_per_px"] == res["bare"]["tiling_forwards_per_px"] == 25 * 32**2 / 96**2  # 5 × 5 tiles, once
    assert res["ratio_to_workers_forward"] > 0 and res["ratio_to_block_forward"] > 0
    assert abs(sum(res["profile"]["shares"].values()) - 1) < 1e-3
    assert "of the workers' bare forward of its tiling" in r.stdout and "stages: read + decompress" in r.stdout
