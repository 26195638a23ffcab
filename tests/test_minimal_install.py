"""The offline GPU check's install — no GDAL (rasterio, rioxarray, pyproj), no SciPy/scikit-learn, no
matplotlib — still ingests Indian Pines (from a pre-ingested store in the data dir), trains a bundle,
classifies it into a Zarr map on a Dask cluster (spectral transform inside the model tasks) and
refuses a georeferenced scene with one line. Run in a subprocess whose imports of those packages fail."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BLOCKED = ("rasterio", "rioxarray", "pyproj", "scipy", "sklearn", "matplotlib")

SITECUSTOMIZE = f"""
import importlib.abc, importlib.machinery, sys

class _Missing(importlib.abc.Loader):
    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {{spec.name!r}}", name=spec.name)

    def exec_module(self, module):
        pass

class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            return importlib.machinery.ModuleSpec(name, _Missing(), origin=None)
        return None

sys.meta_path.insert(0, _Block())
"""

SCRIPT = """
import sys
from pathlib import Path

import numpy as np

import geohsi
from geohsi.datasets.registry import ingest_dataset
from geohsi.errors import GeoreferenceError

if __name__ == "__main__":
    work = Path(sys.argv[1])
    scene = ingest_dataset("indian_pines", work / "ip.zarr")
    crop = geohsi.open_scene(scene).isel(y=slice(0, 48), x=slice(0, 48))
    small = geohsi.write_scene(crop, work / "crop.zarr")
    bundle = geohsi.train(small, adapter="lora", model="tiny", head="dense", epochs=1, split="per-class:2",
                          out=work / "bundle", progress=False, log=print)
    res = geohsi.classify(small, work / "map.zarr", bundle, workers=1, progress=False, log=print)
    m = geohsi.predict_map(small, bundle, spectral_on_device=True).compute()
    print("valid", res.valid_pixels, "classes", int((m.values > 0).sum()))
    from geohsi.scene import scene_crs

    try:
        scene_crs(geohsi.open_scene(sys.argv[2]))  # EnMAP Potsdam, EPSG:32633
    except GeoreferenceError as e:
        print("refused:", e)
    print("loaded:", sorted({k.split(".")[0] for k in sys.modules} & set(sys.argv[3].split(","))))
"""


@pytest.mark.slow
def test_the_zarr_path_runs_without_gdal_scipy_or_matplotlib(tmp_path: Path, ip_scene: Path, enmap_scene: Path) -> None:
    import shutil

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    data = tmp_path / "data"
    data.mkdir()
    shutil.copytree(ip_scene, data / "indian_pines.zarr")  # what scripts/gpu_wheels.sh puts in gpu_data/
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {"PYTHONPATH": str(tmp_path / "site"), "GEOHSI_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(enmap_scene), ",".join(BLOCKED)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    out = r.stdout
    assert "valid 2304 classes 2304" in out  # every pixel of the 48 × 48 crop classified, both ways
    assert "matplotlib is not installed" in out and (tmp_path / "map.zarr" / "zarr.json").is_file()
    assert "refused:" in out and "needs rasterio and rioxarray" in out
    assert "loaded: []" in out
