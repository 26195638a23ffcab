"""Shared fixtures: real scenes resolved from ``GEOHSI_DATA_DIR`` (CI: ``../shared/data``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
