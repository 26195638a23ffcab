"""The GPU cluster layout on a CPU machine: one worker process per GPU, each pinned to its own GPU by
a rotation of ``CUDA_VISIBLE_DEVICES`` (the GPU enumeration, ``visible_gpus``, stands in GPUs that do not
exist; the workers then run the model on the CPU), ``--gpus`` subsets, and existing clusters of
GPU-resource workers."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio

from geohsi.classification import cluster
from geohsi.classification.cluster import GPU_WORKER_THREADS, cluster_info, cuda_visible_devices, open_cluster, select_gpus
from geohsi.errors import UsageError
from tests.classification.conftest import reference_labels, reference_probabilities
from tests.classification.test_cluster import RealCluster
from tests.cli.test_ingest_cli import run_cli as run_in_process
from tests.conftest import run_cli


def _worker_layout(client) -> list[tuple[str, dict, int]]:
    """``(CUDA_VISIBLE_DEVICES, resources, nthreads)`` of every worker, sorted."""
    env = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
    info = client.scheduler_info(n_workers=-1)["workers"]
    return sorted((env[a], dict(w.get("resources", {})), int(w["nthreads"])) for a, w in info.items())


def test_rotation_starts_each_worker_at_its_own_gpu():
    assert [cuda_visible_devices(i, ["0", "1", "2", "3"]) for i in range(4)] == ["0,1,2,3", "1,2,3,0", "2,3,0,1", "3,0,1,2"]
    assert cuda_visible_devices(1, ["5", "GPU-ab12"]) == "GPU-ab12,5"


def _gpus(monkeypatch, n: int) -> None:
    """Stand ``n`` GPUs ``0..n-1`` in for the machine's (the workers then run the model on the CPU)."""
    monkeypatch.setattr(cluster, "visible_gpus", lambda: [str(i) for i in range(n)])


def test_gpu_selection_and_its_errors(monkeypatch):
    _gpus(monkeypatch, 4)
    assert select_gpus(None) == ["0", "1", "2", "3"]
    assert select_gpus("2, 0") == ["2", "0"]
    with pytest.raises(UsageError, match=r"--gpus 7: not a visible GPU \(this machine shows 0,1,2,3\)"):
        select_gpus("1,7")
    with pytest.raises(UsageError, match="names a GPU twice"):
        select_gpus("1,1")
    _gpus(monkeypatch, 0)
    with pytest.raises(UsageError, match="this machine shows none"):
        select_gpus("0")
    with pytest.raises(UsageError, match="--gpus picks the GPUs of --device cuda"), open_cluster(gpus="0"):
        pass


def test_embedded_cuda_cluster_starts_one_pinned_worker_per_gpu(monkeypatch):
    _gpus(monkeypatch, 3)
    with open_cluster(device="cuda") as info:
        layout = _worker_layout(info.client)
        assert (info.embedded, info.gpu_resources, info.device) == (True, True, "cuda")
    assert [v for v, _, _ in layout] == ["0,1,2", "1,2,0", "2,0,1"]  # three distinct rotations
    assert all(r == {"GPU": 1} and t == GPU_WORKER_THREADS for _, r, t in layout)
    _gpus(monkeypatch, 4)
    with open_cluster(device="cuda", gpus="3,1") as info:  # the subset, each worker starting at its own GPU
        assert [v for v, _, _ in _worker_layout(info.client)] == ["1,3", "3,1"]
    with pytest.raises(UsageError, match="one worker per GPU"), open_cluster(device="cuda", gpus="0,1", workers=3):
        pass


def test_cli_maps_on_the_pinned_gpu_workers_with_the_cpu_map(tmp_path, ip_crop_geo, ip_bundle, monkeypatch, capsys):
    """``--device cuda --gpus 0,1`` on two stand-in GPUs: two pinned workers, each falling back to the CPU,
    give the map the CPU run gives."""
    out = tmp_path / "map.tif"
    _gpus(monkeypatch, 2)
    code, _, err = run_in_process(
        ["classify", ip_crop_geo, "--bundle", ip_bundle, "--out", out, "--device", "cuda", "--gpus", "0,1", "--chunks", "20"],
        capsys,
    )
    assert code == 0, err
    from geohsi.bundle import load_bundle

    ref = reference_labels(reference_probabilities(ip_crop_geo, ip_bundle), load_bundle(ip_bundle).class_ids)
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), ref)
    bad = run_cli("classify", ip_crop_geo, "--bundle", ip_bundle, "--out", tmp_path / "b.tif", "--gpus", "0")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--gpus picks the GPUs of --device cuda" in bad.stderr


@pytest.mark.slow
def test_existing_clusters_of_gpu_workers_are_used_as_they_are(tmp_path, ip_crop_geo, ip_bundle):
    """``dask worker --resources GPU=1`` workers get the model tasks through the resource;
    ``dask cuda worker``-style workers (pinned by CUDA_VISIBLE_DEVICES, no resource) run them as they
    are; plain workers make ``--device cuda`` fall back to the CPU with a warning."""
    from distributed import Client

    gpu = RealCluster(tmp_path / "gpu", n_workers=2, extra=["--resources", "GPU=1"])
    try:
        with Client(gpu.address) as c:
            info = cluster_info(c, "cuda")
            assert (info.gpu_resources, info.device) == (True, "cuda")
        out = tmp_path / "map.tif"
        r = run_cli(
            "classify", ip_crop_geo, "--bundle", ip_bundle, "--out", out, "--device", "cuda", "--scheduler", gpu.address,
            "--gpus", "0", "--chunks", "20",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "--gpus is ignored with --scheduler" in r.stderr
        from geohsi.bundle import load_bundle

        ref = reference_labels(reference_probabilities(ip_crop_geo, ip_bundle), load_bundle(ip_bundle).class_ids)
        with rasterio.open(out) as src:
            np.testing.assert_array_equal(src.read(1), ref)
    finally:
        gpu.close()
    pinned = RealCluster(tmp_path / "pinned", n_workers=2, env={"CUDA_VISIBLE_DEVICES": "0"})
    try:
        with Client(pinned.address) as c:
            info = cluster_info(c, "cuda")
            assert (info.gpu_resources, info.device) == (False, "cuda")
    finally:
        pinned.close()
    plain = RealCluster(tmp_path / "plain", n_workers=1)
    try:
        warnings: list[str] = []
        with Client(plain.address) as c:
            info = cluster_info(c, "cuda", warn=warnings.append, where=plain.address)
        assert (info.gpu_resources, info.device) == (False, "cpu")
        assert warnings and "no worker of" in warnings[0] and "dask cuda worker" in warnings[0]
    finally:
        plain.close()
