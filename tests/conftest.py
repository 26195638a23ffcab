"""Shared fixtures: real scenes resolved from ``GEOHSI_DATA_DIR`` (CI: ``../shared/data``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: the real STAC API server (``stac_api``) and S3 API server (``s3``) fixtures, shared by several test modules
pytest_plugins = ["tests.stac_fixtures", "tests.s3_fixtures"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``gpu`` tests need CUDA: skipped (with the reason) on machines without it, e.g. CI."""
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run bash benchmarks/gpu_check.sh on a GPU machine)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


def _data_dir() -> Path:
    env = os.environ.get("GEOHSI_DATA_DIR")
    return Path(env) if env else (REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The directory holding the shared benchmark scenes."""
    d = _data_dir()
    if not d.is_dir():
        if os.environ.get("GEOHSI_DATA_DIR"):
            pytest.fail(f"GEOHSI_DATA_DIR={d} does not exist")
        pytest.skip(f"shared data not found at {d}; set GEOHSI_DATA_DIR")
    return d


@pytest.fixture(autouse=True, scope="session")
def _quiet_threads() -> None:
    # Two cores: keep torch from oversubscribing when Dask workers run beside the test process.
    try:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def ip_scene(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Indian Pines ingested once per session through the dataset registry (real files)."""
    from geohsi.datasets.registry import ingest_dataset

    os.environ.setdefault("GEOHSI_DATA_DIR", str(data_dir))
    out = tmp_path_factory.mktemp("scenes") / "indian_pines.zarr"
    return ingest_dataset("indian_pines", out)


@pytest.fixture(scope="session")
def enmap_scene(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 18 EnMAP Potsdam tiles mosaicked with their land-cover labels, once per session."""
    from geohsi.datasets.registry import ingest_dataset

    os.environ.setdefault("GEOHSI_DATA_DIR", str(data_dir))
    out = tmp_path_factory.mktemp("scenes") / "enmap_potsdam.zarr"
    return ingest_dataset("enmap_potsdam", out)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run the installed ``geohsi`` entry point in a subprocess; returns the CompletedProcess."""
    import subprocess
    import sys

    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "geohsi.cli.main", *map(str, args)], capture_output=True, text=True, env=e, cwd=cwd, timeout=900
    )
